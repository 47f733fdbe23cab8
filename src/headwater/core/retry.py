"""Retrying transient connector failures (its own module: planning needs it without
importing the build machinery and pyarrow)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from headwater.errors import ConnectorError

log = logging.getLogger("headwater.run.build")


def with_retries(action: Callable[[], Any], *, retries: int, delay: float) -> Any:
    """Run ``action``; retry transient ConnectorErrors with exponential backoff.

    Every attempt must be all-or-nothing (a build is one transaction), so a
    retry starts clean: nothing is read twice into the output.
    """
    for attempt in range(retries + 1):
        try:
            return action()
        except ConnectorError as exc:
            if not exc.transient or attempt == retries:
                if exc.transient:
                    exc.message += f" (gave up after {retries + 1} attempts)"
                raise
            log.warning("%s; retrying in %.1fs", exc.message, delay * 2**attempt)
            time.sleep(delay * 2**attempt)
    raise AssertionError("unreachable")  # pragma: no cover
