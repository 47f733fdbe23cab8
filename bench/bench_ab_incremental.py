"""A/B of adding a day: two Headwater source trees, alternating, on copies of the
bench_incremental project (run ``bench/bench_incremental.py`` once first).

Each round writes one new day of telemetry (a day never seen before, so nothing can be
reused) into both copies and times ``headwater run`` of A, then of B (and the other way
round the next round). Prints medians and B/A ratios of wall and CPU seconds.

    git worktree add /tmp/base 94ff902
    python bench/bench_ab_incremental.py --a /tmp/base/src --b src --rounds 6
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

from bench_incremental import write_day  # noqa: E402


def run(src: Path, proj: Path) -> tuple[float, float, int]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "headwater.cli", "run", "--json", "--project",
                           str(proj)], env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"run failed ({src}): {proc.stdout[-1500:]} {proc.stderr[-1500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, json.loads(proc.stdout)["counts"]["executed"]


def main(argv: list[str] | None = None) -> int:
    import duckdb

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--a", type=Path, required=True)
    ap.add_argument("--b", type=Path, required=True)
    ap.add_argument("--project", type=Path,
                    default=Path(__file__).parent / ".work" / "incremental_10000000r_30d_s0",
                    help="a bench_incremental project folder (holding data/ and headwater/)")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--work", type=Path, default=Path(__file__).parent / ".work" / "ab_inc")
    args = ap.parse_args(argv)
    params = json.loads((args.project / "data" / ".params.json").read_text())
    copies = {}
    for side in ("a", "b"):
        dest = args.work / side
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        shutil.copytree(args.project / "data", dest / "data")
        shutil.copytree(args.project / "headwater", dest / "headwater", symlinks=True,
                        ignore=shutil.ignore_patterns(".headwater", "data"))
        (dest / "headwater" / "data").symlink_to(dest / "data", target_is_directory=True)
        copies[side] = dest
    srcs = {"a": args.a.resolve(), "b": args.b.resolve()}
    for side in ("a", "b"):
        run(srcs[side], copies[side] / "headwater")  # the full build of 30 days, not timed
    con = duckdb.connect()
    times: dict[str, list[tuple[float, float, int]]] = {"a": [], "b": []}
    for r in range(args.rounds):
        day = params["days"] + r
        for side in ("a", "b"):
            write_day(con, copies[side] / "data" / "telemetry", day, params["per_day"],
                      params["devices"], params["seed"])
        time.sleep(0.2)  # past the racy window of the new files' timestamps (both sides)
        for side in (("a", "b") if r % 2 == 0 else ("b", "a")):
            times[side].append(run(srcs[side], copies[side] / "headwater"))
    print(f"add a day ({params['per_day']:,} rows) to {params['days']} days, {args.rounds}"
          f" rounds; A = {args.a}, B = {args.b}")
    a, b = times["a"], times["b"]
    aw, bw = statistics.median(x[0] for x in a), statistics.median(x[0] for x in b)
    ac, bc = statistics.median(x[1] for x in a), statistics.median(x[1] for x in b)
    print(f"wall A {aw:.2f}  B {bw:.2f}  B/A {bw / aw:.2f};  cpu A {ac:.2f}  B {bc:.2f}"
          f"  B/A {bc / ac:.2f};  executed {a[0][2]} / {b[0][2]}")
    print(json.dumps({"bench": "ab_incremental", "a": a, "b": b}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
