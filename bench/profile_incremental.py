"""Where does an incremental run spend its time? Times every warehouse statement.

Copies the bench_incremental project (built by ``bench/bench_incremental.py``, kept in
bench/.work) with its data, optionally sets it up to add its newest day, runs it
in-process and prints the slowest statements with their node, and the time per node::

    python bench/profile_incremental.py [--project DIR] [--add-day [--fresh]] [--top 25]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--project", type=Path, default=None,
                    help="a built headwater project (default: the newest under bench/.work)")
    ap.add_argument("--add-day", action="store_true",
                    help="profile adding the newest day (taken out and caught up first)")
    ap.add_argument("--fresh", action="store_true",
                    help="with --add-day: a full build first (as bench_incremental does)")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    proj = args.project
    if proj is None:
        found = sorted((HERE / ".work").glob("incremental_*/headwater"),
                       key=lambda p: p.stat().st_mtime)
        if not found:
            sys.exit("no bench_incremental project: run bench/bench_incremental.py first")
        proj = found[-1]
    work = proj.parent / "profile"
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(proj, work, symlinks=False)  # its own copy of the data
    from headwater.api import Project

    if args.add_day:  # take the newest day out, catch up, put it back: the run profiled
        newest = sorted((work / "data" / "telemetry").glob("*.parquet"))[-1]
        aside = work / newest.name
        newest.rename(aside)
        if args.fresh:
            shutil.rmtree(work / ".headwater")
        Project(work).run()
        aside.rename(newest)
        print(f"profiling the run that adds {newest.name}")
    from headwater.api import Project
    from headwater.engines.duckdb import DuckDBEngine

    timings: list[tuple[float, str, str]] = []
    current = threading.local()

    def timed(name: str) -> Any:
        original = getattr(DuckDBEngine, name)

        def wrapper(self: Any, *a: Any, **k: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return original(self, *a, **k)
            finally:
                what = a[0] if a and isinstance(a[0], str) else ""
                timings.append((time.perf_counter() - t0, f"{name}: {what[:160]}",
                                getattr(current, "node", "?")))
        return wrapper

    for name in ("execute", "fetch", "stats", "load_arrow", "publish", "exists", "columns"):
        setattr(DuckDBEngine, name, timed(name))

    import headwater.run.runner as runner_mod

    original_build = runner_mod.Runner._build

    def build(self: Any, np: Any) -> Any:
        current.node = np.name
        try:
            return original_build(self, np)
        finally:
            current.node = "?"

    runner_mod.Runner._build = build  # type: ignore[method-assign]
    t0 = time.perf_counter()
    c0 = time.process_time()
    result = Project(work).run()
    print(f"run: {time.perf_counter() - t0:.2f}s wall, {time.process_time() - c0:.2f}s CPU;"
          f" {result.status}")
    per_node: dict[str, float] = defaultdict(float)
    for secs, _, node in timings:
        per_node[node] += secs
    for node, secs in sorted(per_node.items(), key=lambda x: -x[1]):
        print(f"  {secs:7.2f}s  {node}")
    print("slowest statements:")
    for secs, what, node in sorted(timings, reverse=True)[: args.top]:
        print(f"  {secs:7.2f}s  [{node}] {' '.join(what.split())}")


if __name__ == "__main__":
    main()
