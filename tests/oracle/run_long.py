"""The oracle's long form (``make reliability`` runs it through tests/reliability/report.py).

    python tests/oracle/run_long.py --ops 2000 --seed 1 [--json out.json] [--no-shrink]

Applies about N seeded random operations to the oracle project (tests/oracle/project.py)
on the real PostgreSQL server, checking the rules of tests/oracle/machine.py after each,
and prints the figures: operations applied (per kind), clean-build comparisons and
tables compared, other rule checks, mismatches (must be 0), kills, wall time. For each
distinct mismatch (rule, env, node) it prints the diff and a minimal operation sequence
that reproduces it (delta debugging, ``--shrink-budget`` seconds each, ``--shrink-total``
in all; the rules one operation broke together share one shrink), ready to paste into
tests/oracle/regressions.py. Exit status 1 when a rule was broken.

The server: $HEADWATER_TEST_PG_DSN, default postgresql://postgres@127.0.0.1:5432/test.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from oracle import ops as O  # noqa: E402
from oracle.machine import World, drive  # noqa: E402
from oracle.shrink import candidate_after_reset, shrink  # noqa: E402
from reliability.helpers import PG_DSN, pg_reachable  # noqa: E402


def long_run(n_ops: int, seed: int, work: Path, *, dsn: str = PG_DSN, shrink_each: bool = True,
             shrink_budget: float = 300.0, shrink_total: float = 1800.0,
             quiet: bool = False) -> dict[str, Any]:
    """The figures of one long run (and, per distinct mismatch, its minimal sequence)."""
    say = (lambda _m: None) if quiet else (lambda m: print(m, flush=True))
    t0 = time.perf_counter()
    with World(work / "main", dsn, seed=seed, log=say) as world:
        world.setup()
        figures = drive(world, random.Random(seed), n_ops)
    report = figures.to_json()
    report.update(seed=seed, command=f"python tests/oracle/run_long.py --ops {n_ops}"
                  f" --seed {seed}", postgres=True)
    seen: dict[tuple[str, str, str], Any] = {}
    minimal: dict[int, list[dict[str, Any]]] = {}  # step -> its minimal sequence
    shrink_end = time.monotonic() + shrink_total
    for m in figures.mismatches:
        if m.signature in seen:
            seen[m.signature]["count"] += 1
            continue
        entry = {**m.to_json(), "count": 1, "render": m.render()}
        # the rules one operation broke together mostly share a cause: shrink the first
        if shrink_each and m.step not in minimal and time.monotonic() < shrink_end:
            say(f"shrinking {m.signature} ({len(m.ops)} ops) ...")
            minimal[m.step or 0] = shrink(
                m.ops, m.signature, work / "shrink", dsn, log=say,
                budget=min(shrink_budget, max(0.0, shrink_end - time.monotonic())))
        if m.step in minimal:
            entry["minimal"] = minimal[m.step or 0]
        entry["ops"] = candidate_after_reset(m.ops)  # reproduces it, unshrunk
        seen[m.signature] = entry
    report["mismatch_details"] = list(seen.values())
    report["wall_seconds"] = round(time.perf_counter() - t0, 1)
    return report


def render(report: dict[str, Any]) -> str:
    lines = [f"operations: {report['ops']} ({report['applied']} changed something or ran)"]
    lines += [f"  {k}: {v}" for k, v in report["ops_per_kind"].items()]
    lines += [
        f"clean-build comparisons: {report['comparisons']} ({report['tables_compared']} tables"
        f" compared; {report['clean_builds']} clean builds, {report['clean_cache_hits']}"
        " reused)",
        f"other rule checks (isolation, select, promote, sink, gc): {report['rule_checks']}",
        f"runs: {report['runs_ok']} succeeded, {report['runs_failed']} failed",
        f"kills: {report['kills']} landed of {report['kill_attempts']}",
        f"mismatches: {report['mismatches']} ({report['distinct_mismatches']} distinct)",
        f"wall time: {report['wall_seconds']} s",
    ]
    for m in report["mismatch_details"]:
        lines += ["", f"seed {m['seed']}, step {m['step']}, seen {m['count']} time(s):",
                  m["render"]]
        if "minimal" in m:
            lines.append(f"minimal sequence ({len(m['minimal'])} ops):")
            lines += [f"  {json.dumps(op)}," for op in m["minimal"]]
            lines.append("  as applied: " + " | ".join(O.describe(op) for op in m["minimal"]))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ops", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None, help="save the figures as JSON")
    ap.add_argument("--work", type=Path, default=Path("bench/.work/oracle"))
    ap.add_argument("--no-shrink", action="store_true", help="do not minimise mismatches")
    ap.add_argument("--shrink-budget", type=float, default=300.0,
                    help="seconds of shrinking per distinct mismatch")
    ap.add_argument("--shrink-total", type=float, default=1800.0,
                    help="seconds of shrinking in all (the rest are reported unshrunk)")
    ap.add_argument("--quiet", action="store_true", help="do not print every operation")
    args = ap.parse_args()
    problem = pg_reachable(PG_DSN)
    if problem:
        sys.exit(f"PostgreSQL is not reachable at {PG_DSN}: {problem}")
    report = long_run(args.ops, args.seed, args.work, shrink_each=not args.no_shrink,
                      shrink_budget=args.shrink_budget, shrink_total=args.shrink_total,
                      quiet=args.quiet)
    print(render(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, default=str))
    sys.exit(1 if report["mismatches"] else 0)


if __name__ == "__main__":
    main()
