"""Where a cold ``headwater run`` spends its time, by function, all threads.

Runs ``Project.run()`` in this process on a generated project (``bench/.work``)
with timing wrappers around the functions that matter (loading, planning, SQL
rendering, engine builds, content stats, publishing, state-store writes), then
prints inclusive seconds and call counts per function. Wrappers are installed
from outside; nothing under src/ is changed.

    python bench/profile_core.py [--models 200] [--rows 2000000] [--threads N]
        [--cprofile FILE]      # also a cProfile of the main thread

``--threads`` is the number of parallel builds (``Project.run(threads=N)``);
DuckDB's own threads stay at their default unless ``--duckdb-threads`` is set.
Per-call seconds of functions that run in worker threads overlap when builds
run in parallel; use ``--threads 1`` for additive numbers.
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

T_START = time.perf_counter()

_lock = threading.Lock()
# name -> [calls, wall seconds, process cpu seconds]; process CPU (all threads, DuckDB's
# included) is only attributable to one function when builds run one at a time (--threads 1)
STATS: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])


def wrap(owner: Any, attr: str, label: str | None = None) -> None:
    fn = getattr(owner, attr, None)
    if fn is None:  # the code under test moved on; skip quietly
        print(f"(not instrumented: {getattr(owner, '__name__', owner)}.{attr})", file=sys.stderr)
        return
    name = label or f"{getattr(owner, '__name__', owner)}.{attr}"

    @functools.wraps(fn)
    def timed(*a: Any, **k: Any) -> Any:
        t, c = time.perf_counter(), time.process_time()
        try:
            return fn(*a, **k)
        finally:
            dt, dc = time.perf_counter() - t, time.process_time() - c
            with _lock:
                s = STATS[name]
                s[0] += 1
                s[1] += dt
                s[2] += dc

    setattr(owner, attr, timed)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", type=int, default=200)
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="parallel builds (default cores)")
    ap.add_argument("--duckdb-threads", type=int, default=None)
    ap.add_argument("--work", type=Path, default=HERE / ".work")
    ap.add_argument("--cprofile", type=Path, default=None)
    ap.add_argument("--noop", action="store_true", help="profile a no-op rerun instead")
    args = ap.parse_args(argv)

    from generate import generate_project

    project_dir = args.work / f"core_{args.models}m_{args.rows}r_s{args.seed}"
    generate_project(project_dir, args.models, args.rows, args.seed,
                     duckdb_threads=args.duckdb_threads)
    if not args.noop and (project_dir / ".headwater").exists():
        shutil.rmtree(project_dir / ".headwater")

    t_imp = time.perf_counter()
    import headwater.api as api
    import headwater.connectors.files.source as files
    import headwater.engines.duckdb as hwduck
    import headwater.load.sql as hwsql
    import headwater.run.build as build
    import headwater.run.runner as runner
    import headwater.state.store as state

    import_s = time.perf_counter() - t_imp

    wrap(api, "load_project", "loader.load_project")
    wrap(api, "build_plan", "plan.build_plan")
    wrap(api.Project, "_reconcile", "Project._reconcile")
    wrap(build, "build_node", "build.build_node (worker, total)")
    try:
        import headwater.run.ingest as ingest_mod

        wrap(ingest_mod, "ingest", "ingest.ingest (source load, worker)")
    except ImportError:
        wrap(build, "_ingest_source", "build._ingest_source (worker)")
    if hasattr(build, "verify_checks"):
        wrap(build, "verify_checks", "build.verify_checks (worker)")
    wrap(build, "_build_sql", "build._build_sql (worker)")
    wrap(hwsql, "render_for_engine", "sql.render_for_engine (sqlglot parse+render)")
    wrap(hwsql, "analyse_sql", "sql.analyse_sql (sqlglot, parse cache miss)")
    wrap(files.FilesSource, "read", "FilesSource.read")
    wrap(files.FilesSource, "data_fingerprint", "FilesSource.data_fingerprint")
    for m in ("open", "close", "build_sql", "build_arrow", "stats", "publish",
              "physical_tables", "exists", "execute"):
        wrap(hwduck.DuckDBEngine, m, f"DuckDBEngine.{m}")
    for m in ("record_physical", "publish", "record_node", "start_run", "finish_run",
              "record_nodes", "published", "physical", "all_physical", "get_many",
              "put_many"):
        wrap(state.StateStore, m, f"StateStore.{m}")
    for m in ("run", "_execute", "_settle", "_complete", "_publish", "_finish", "_flush"):
        wrap(runner.Runner, m, f"Runner.{m}")

    project = api.Project(project_dir)
    prof = None
    if args.cprofile:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    t0, c0 = time.perf_counter(), time.process_time()
    result = project.run(threads=args.threads)
    run_s, run_cpu = time.perf_counter() - t0, time.process_time() - c0
    if prof is not None:
        prof.disable()
        prof.dump_stats(str(args.cprofile))

    counts = result.counts()
    print(f"project {project_dir}: status {result.status}, {counts}, "
          f"threads {args.threads or 'default'}, duckdb threads {args.duckdb_threads or 'default'}")
    print(f"import headwater.* {import_s:.2f}s; Project.run {run_s:.2f}s wall, {run_cpu:.2f}s cpu "
          f"(RunResult.seconds {result.seconds:.2f}s); process so far "
          f"{time.perf_counter() - T_START:.2f}s")
    node_s = defaultdict(float)
    for n in result.nodes:
        node_s[n.kind] += n.seconds
    print("per-node seconds reported, by kind: "
          + ", ".join(f"{k} {v:.2f}s" for k, v in node_s.items()))
    print()
    print(f"{'function':58} {'calls':>6} {'wall s':>8} {'cpu s':>8} {'ms/call':>8}")
    for name, (calls, secs, cpu) in sorted(STATS.items(), key=lambda kv: -kv[1][1]):
        print(f"{name:58} {int(calls):>6} {secs:>8.3f} {cpu:>8.3f} "
              f"{1000 * secs / max(calls, 1):>8.2f}")
    slow = sorted(result.nodes, key=lambda n: -n.seconds)[:8]
    print()
    print("slowest nodes: " + ", ".join(f"{n.name} {n.seconds:.2f}s" for n in slow))
    print(json.dumps({"run_seconds": round(run_s, 3), "import_seconds": round(import_s, 3),
                      "run_cpu_seconds": round(run_cpu, 3),
                      "functions": {k: [int(v[0]), round(v[1], 4), round(v[2], 4)]
                                    for k, v in STATS.items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
