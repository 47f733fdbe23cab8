"""Replaying a logged operation sequence on a fresh project, and shrinking one that breaks
a rule to a small sequence that still breaks it (delta debugging over real replays)."""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from pathlib import Path

from . import compare as C
from . import ops as O
from .machine import World


def replay(ops: list[O.Op], work: Path, dsn: str, *, log: Callable[[str], None] | None = None,
           seed: int | None = None) -> list[C.Mismatch]:
    """Apply ``ops`` to a fresh World; the rules they break."""
    with World(work, dsn, seed=seed, log=log) as world:
        world.setup()
        for op in ops:
            world.step(op)
        return world.figures.mismatches


def candidate_after_reset(ops: list[O.Op]) -> list[O.Op]:
    """Runs before the last ``reset`` cannot matter (it wipes the warehouse); only the
    changes of files, code and data before it do."""
    last = max((i for i, op in enumerate(ops) if op["op"] == "reset"), default=-1)
    if last < 0:
        return ops
    return [op for op in ops[:last] if op["op"] not in O.RUN_OPS] + ops[last + 1:]


def shrink(ops: list[O.Op], signature: tuple[str, str, str], work: Path, dsn: str, *,
           budget: float = 300.0, log: Callable[[str], None] | None = None) -> list[O.Op]:
    """A shorter sequence that still breaks the rule ``signature`` (rule, env, node):
    delta debugging over everything but the last operation (the one that found it),
    within ``budget`` seconds. Runs are real, so a result that depends on timing (a
    kill) may shrink less."""
    say = log or (lambda _m: None)
    deadline = time.monotonic() + budget
    tries = itertools.count()

    def breaks(candidate: list[O.Op]) -> bool:
        n = next(tries)
        found = replay(candidate, work / f"shrink-{n % 2}", dsn)
        hit = any(m.signature == signature for m in found)
        say(f"  shrink try {n}: {len(candidate)} ops -> {'reproduces' if hit else 'no'}")
        return hit

    last = ops[-1]
    items = ops[:-1]
    short = candidate_after_reset(items)
    if len(short) < len(items) and breaks([*short, last]):
        items = short
    granularity = 2
    while len(items) >= 1 and time.monotonic() < deadline:
        chunk = max(1, math.ceil(len(items) / granularity))
        reduced = False
        for start in range(0, len(items), chunk):
            if time.monotonic() >= deadline:
                break
            candidate = items[:start] + items[start + chunk:]
            if breaks([*candidate, last]):
                items = candidate
                granularity = max(granularity - 1, 2)
                reduced = True
                break
        if not reduced:
            if chunk == 1:
                break
            granularity = min(len(items), granularity * 2)
    return [*items, last]
