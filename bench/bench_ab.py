"""A/B: two Headwater source trees on bench_change's project, interleaved.

On a shared machine a figure measured an hour ago is no baseline. This runs the
edits of ``bench_change.py`` (same-output edit, output-changing edit, whitespace, comment,
revert, then a no-op) for two source trees (``--a`` and ``--b``: folders holding the ``headwater``
package, e.g. a ``git worktree`` of an older commit), A and B alternating, each on its own
copy of the project, and prints the medians and B/A ratios of wall and CPU seconds.

    git worktree add /tmp/base 94ff902
    python bench/bench_ab.py --a /tmp/base/src --b src --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bench_change import pick_target, variants, with_template  # noqa: E402
from generate import generate_project  # noqa: E402

# bench_change's sequence of edits (each on top of the one before), then a no-op
SCENARIOS = ("identical", "changed", "whitespace", "comment", "revert", "noop")


def run(src: Path, root: Path) -> tuple[float, float, int]:
    """(wall, CPU seconds, nodes executed) of ``headwater run --json`` from ``src``."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "headwater.cli", "run", "--json", "--project",
                           str(root)], env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"run failed ({src}): {proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, json.loads(proc.stdout)["counts"]["executed"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--a", type=Path, required=True, help="source folder of A (the baseline)")
    ap.add_argument("--b", type=Path, required=True, help="source folder of B")
    ap.add_argument("--models", type=int, default=200)
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--work", type=Path, default=Path(__file__).parent / ".work" / "ab")
    args = ap.parse_args(argv)
    roots = {}
    for side in ("a", "b"):
        root = args.work / side
        shutil.rmtree(root, ignore_errors=True)
        spec = generate_project(root, args.models, args.rows, 0)
        roots[side] = root
    target = pick_target(spec)
    edits = {k: with_template(target, v).sql for k, v in variants(target).items()}
    rel = Path("transforms") / f"{target.name}.sql"
    srcs = {"a": args.a.resolve(), "b": args.b.resolve()}
    for side in ("a", "b"):
        run(srcs[side], roots[side])  # the full build, not timed
    times: dict[tuple[str, str], list[tuple[float, float, int]]] = {}
    for r in range(1, args.rounds + 1):
        # new code every round (else later rounds would reuse the first round's builds)
        mine = {k: v.replace("device_id >= 0", f"device_id >= -{r}").replace(
            "device_id % 50 <> 7", f"device_id % 50 <> {7 + r}") for k, v in edits.items()}
        for scenario in SCENARIOS:
            for side in ("a", "b"):
                if scenario != "noop":
                    (roots[side] / rel).write_text(mine[scenario])
                times.setdefault((scenario, side), []).append(run(srcs[side], roots[side]))
                if scenario in ("identical", "changed"):  # a real build, not a reuse
                    assert times[(scenario, side)][-1][2] >= 1, (scenario, side)
    print(f"{args.models} models, {args.rows:,} rows, {args.rounds} rounds; A = {args.a},"
          f" B = {args.b}")
    print(f"{'scenario':<12} {'A wall':>8} {'B wall':>8} {'B/A':>6} {'A cpu':>8} {'B cpu':>8}"
          f" {'B/A':>6}  executed")
    out = {}
    for scenario in SCENARIOS:
        a, b = times[(scenario, "a")], times[(scenario, "b")]
        aw, bw = statistics.median(x[0] for x in a), statistics.median(x[0] for x in b)
        ac, bc = statistics.median(x[1] for x in a), statistics.median(x[1] for x in b)
        out[scenario] = {"a_wall": aw, "b_wall": bw, "a_cpu": ac, "b_cpu": bc,
                         "executed": [a[0][2], b[0][2]]}
        print(f"{scenario:<12} {aw:8.2f} {bw:8.2f} {bw / aw:6.2f} {ac:8.2f} {bc:8.2f}"
              f" {bc / ac:6.2f}  {a[0][2]} / {b[0][2]}")
    print(json.dumps({"bench": "ab", "rounds": args.rounds, "results": out}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
