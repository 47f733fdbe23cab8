"""The oracle's short CI form: seeded random operation sequences on the oracle project
(tests/oracle/project.py), every rule of tests/oracle/machine.py checked after each
operation, and the regression cases of tests/oracle/regressions.py replayed.

Scale it with environment variables:

- ``HW_ORACLE_SEED`` (first seed, default 1) and ``HW_ORACLE_EXAMPLES`` (how many seeds,
  default 2): sequences ``seed, seed + 1, ...``;
- ``HW_ORACLE_STEPS`` (operations per sequence, default 110);
- ``HW_ORACLE_SHRINK=1``: shrink each distinct mismatch to a minimal sequence (slow:
  minutes), ``HW_ORACLE_SHRINK_BUDGET`` seconds each (default 300);
- ``HW_ORACLE_WITHOUT=pg_delete,code:remove_node``: leave kinds of operation out;
- ``HW_ORACLE_CURSOR_UPDATES=1``: updates and deletes on the cursor source (issue 19),
  and its regression cases (``regressions.ISSUE_19_CASES``).

Every operation is printed as it is applied (``pytest -s`` to watch). A failure lists each
broken rule with its diff and the operation sequence that led there, as JSON lines to
paste into regressions.py. The long form: ``python tests/oracle/run_long.py``.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

from .compare import Mismatch
from .machine import World, drive
from .ops import CURSOR_UPDATES
from .regressions import CASES, ISSUE_19_CASES, Case
from .shrink import candidate_after_reset, replay, shrink

SEED = int(os.environ.get("HW_ORACLE_SEED", "1"))
EXAMPLES = int(os.environ.get("HW_ORACLE_EXAMPLES", "2"))
STEPS = int(os.environ.get("HW_ORACLE_STEPS", "110"))
SHRINK = os.environ.get("HW_ORACLE_SHRINK", "") == "1"
SHRINK_BUDGET = float(os.environ.get("HW_ORACLE_SHRINK_BUDGET", "300"))

pytestmark = pytest.mark.slow


def report(mismatches: list[Mismatch], work: Path, dsn: str) -> str:
    """Each distinct broken rule: its diff and the operations to reproduce it."""
    out: list[str] = []
    seen: set[tuple[str, str, str]] = set()
    for m in mismatches:
        if m.signature in seen:
            continue
        seen.add(m.signature)
        ops = candidate_after_reset(m.ops)
        if SHRINK:
            ops = shrink(m.ops, m.signature, work / "shrink", dsn, budget=SHRINK_BUDGET,
                         log=print)
        out.append(f"{m.render()}\n  seed {m.seed}, step {m.step}; {len(ops)} operations"
                   " reproduce it from a fresh project:\n"
                   + "\n".join(f"    {json.dumps(op)}," for op in ops))
    return "\n\n".join(out)


@pytest.mark.parametrize("seed", range(SEED, SEED + EXAMPLES))
def test_random_operations_keep_every_rule(seed: int, pg_dsn: str, tmp_path: Path) -> None:
    with World(tmp_path / "oracle", pg_dsn, seed=seed, log=print) as world:
        world.setup()
        figures = drive(world, random.Random(seed), STEPS)
    print(json.dumps(figures.to_json()))
    assert figures.comparisons > 0
    assert not figures.mismatches, (
        f"{len(figures.mismatches)} rule(s) broken (seed {seed}):\n\n"
        + report(figures.mismatches, tmp_path, pg_dsn))


REPLAYED = CASES + (ISSUE_19_CASES if CURSOR_UPDATES else ())


@pytest.mark.parametrize("case", REPLAYED, ids=[c.name for c in REPLAYED])
def test_regression(case: Case, pg_dsn: str, tmp_path: Path) -> None:
    found = replay(list(case.ops), tmp_path / "oracle", pg_dsn, log=print)
    assert not found, f"{case.name} ({case.found}): {case.bug}\n\n" + "\n".join(
        m.render() for m in found)
