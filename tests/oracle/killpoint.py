"""``headwater`` (the CLI) that ``kill -9``s itself at a chosen point of a run: when the
state store is about to record something for one node. A random kill rarely lands in the
few microseconds between two writes; this one always does.

    python tests/oracle/killpoint.py publish:orders -- run --project DIR --env dev

Points (``StateStore`` methods, called with ``node=``): ``publish`` (the node's view was
just swapped, the state store does not know yet), ``record_physical`` (its table was
built, not yet recorded). When the run never gets there, it ends normally.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any


def main() -> None:
    point, rest = sys.argv[1], sys.argv[sys.argv.index("--") + 1:]
    method, _, node = point.partition(":")
    from headwater.state import store as state

    original = getattr(state.StateStore, method)

    def hooked(self: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("node") == node:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(self, *args, **kwargs)

    setattr(state.StateStore, method, hooked)
    from headwater.cli.main import main as cli

    sys.argv = ["headwater", *rest]
    cli()


if __name__ == "__main__":
    main()
