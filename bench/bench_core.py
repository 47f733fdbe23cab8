"""Core benchmark: a cold ``headwater run`` against the raw DuckDB floor.

Generates a layered project (``bench/generate.py``) in ``bench/.work/``, then,
``--repeat`` times in alternating order:

* headwater: delete ``.headwater/``, time ``headwater run --project P --json`` as
  a subprocess (wall time of the whole command, interpreter start included),
  then time the same command again with nothing changed (the no-op rerun);
* floor: time ``python bench/floor.py P --db P/.floor/warehouse.duckdb`` as a
  subprocess: the same SQL as ``CREATE TABLE name AS <sql>`` in topological
  order, one DuckDB connection, a fresh database file.

Reports medians, the ratio headwater/floor against the target (<= 1.10), the
no-op rerun and how many nodes it executed, then one JSON line for scripts.

    python bench/bench_core.py [--models 200] [--rows 2000000] [--repeat 3] [--threads N]

``--threads N`` caps both sides: headwater.toml gets ``threads = N`` (parallel
builds) and ``[duckdb] threads = N``; the floor's connection gets ``threads = N``.
Without it both use their defaults (the number of cores).
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
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from generate import generate_project  # noqa: E402

TARGET = 1.10


def headwater_cmd() -> list[str]:
    env_bin = os.environ.get("HEADWATER_BIN")
    if env_bin:
        return [env_bin]
    for cand in (Path(sys.executable).parent / "headwater", REPO / ".venv" / "bin" / "headwater"):
        if cand.exists():
            return [str(cand)]
    found = shutil.which("headwater")
    if found:
        return [found]
    return [sys.executable, "-m", "headwater.cli"]


LAST: dict[str, float] = {}  # cpu seconds of the last timed command, and of everything else


def busy_seconds() -> float:
    """CPU seconds all processes on the machine have used since boot (from /proc/stat)."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def timed(
    cmd: list[str], cwd: Path | None = None
) -> tuple[float, subprocess.CompletedProcess[str]]:
    b0 = busy_seconds()
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    LAST["cpu"] = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    # CPU other processes used meanwhile: > 0 means the timing shared the cores
    LAST["load"] = max(0.0, busy_seconds() - b0 - LAST["cpu"])
    if proc.returncode != 0:
        sys.stderr.write(f"command failed ({proc.returncode}): {' '.join(cmd)}\n")
        sys.stderr.write(proc.stdout[-4000:] + "\n" + proc.stderr[-4000:] + "\n")
        raise SystemExit(1)
    return wall, proc


def wait_quiet(limit: float, max_wait: float) -> float:
    """Wait (up to ``max_wait`` s) until other processes use < ``limit`` cores; the last level."""
    deadline = time.monotonic() + max_wait
    while True:
        b0, t0 = busy_seconds(), time.monotonic()
        time.sleep(1.0)
        level = (busy_seconds() - b0) / (time.monotonic() - t0)
        if level < limit or time.monotonic() >= deadline:
            return level
        time.sleep(1.0)


def git_rev() -> str:
    try:
        rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "src"],
                               capture_output=True, text=True).stdout.strip()
        return rev + ("+dirty-src" if dirty else "")
    except OSError:
        return "unknown"


def run_headwater(project: Path) -> dict[str, Any]:
    state = project / ".headwater"
    if state.exists():
        shutil.rmtree(state)
    cmd = [*headwater_cmd(), "run", "--project", str(project), "--json"]
    wall, proc = timed(cmd)
    cpu, load = LAST["cpu"], LAST["load"]
    cold = json.loads(proc.stdout)
    if cold["status"] != "success":
        raise SystemExit(f"headwater run failed: {cold['counts']}")
    wall2, proc2 = timed(cmd)
    noop = json.loads(proc2.stdout)
    return {
        "wall": wall,
        "cpu": cpu,
        "load": load,
        "inner": cold["seconds"],
        "counts": cold["counts"],
        "nodes": cold["nodes"],
        "noop_wall": wall2,
        "noop_inner": noop["seconds"],
        "noop_counts": noop["counts"],
        "noop_executed": noop["counts"].get("executed", 0),
        "noop_executed_nodes": [f"{n['name']} ({n['reason']})" for n in noop["nodes"]
                                if n["status"] == "executed"],
    }


def run_floor(project: Path, threads: int | None) -> dict[str, Any]:
    db = project / ".floor" / "warehouse.duckdb"
    for p in (db, Path(str(db) + ".wal")):
        p.unlink(missing_ok=True)
    cmd = [sys.executable, str(HERE / "floor.py"), str(project), "--db", str(db)]
    if threads:
        cmd += ["--threads", str(threads)]
    wall, proc = timed(cmd)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"wall": wall, "cpu": LAST["cpu"], "load": LAST["load"], "inner": out["seconds"],
            "tables": out["table_seconds"]}


def verify(project: Path, models: list[str]) -> list[str]:
    """Row counts of every model, floor vs headwater's published views."""
    import duckdb

    problems = []
    hw = duckdb.connect(str(project / ".headwater" / "warehouse.duckdb"), read_only=True)
    fl = duckdb.connect(str(project / ".floor" / "warehouse.duckdb"), read_only=True)
    try:
        for name in models:
            a = hw.execute(f'SELECT count(*) FROM main."{name}"').fetchone()
            b = fl.execute(f'SELECT count(*) FROM main."{name}"').fetchone()
            if a != b:
                problems.append(f"{name}: headwater {a[0] if a else None} rows, "
                                f"floor {b[0] if b else None}")
    finally:
        hw.close()
        fl.close()
    return problems


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", type=int, default=200)
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None,
                    help="cap threads on both sides (default: cores)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, default=HERE / ".work")
    ap.add_argument("--no-verify", action="store_true", help="skip the row-count comparison")
    ap.add_argument("--quiet-wait", type=float, default=60.0,
                    help="before each timed run, wait up to this many seconds for the machine "
                         "to be idle (other processes < 0.2 cores); 0 disables")
    args = ap.parse_args(argv)

    project = args.work / f"core_{args.models}m_{args.rows}r_s{args.seed}"
    t0 = time.perf_counter()
    spec = generate_project(project, args.models, args.rows, args.seed,
                            threads=args.threads, duckdb_threads=args.threads)
    summary = spec.summary()
    print(f"project {project} ({summary['models']} models in {summary['layers']} layers, "
          f"{summary['edges']} edges, {args.rows:,} rows in {summary['files']} files, "
          f"{summary['devices']} devices; generated in {time.perf_counter() - t0:.1f}s)",
          flush=True)
    print(f"headwater {git_rev()}, cores {os.cpu_count()}, threads {args.threads or 'default'}, "
          f"headwater: {' '.join(headwater_cmd())}", flush=True)

    rev_start = git_rev()
    floors: list[dict[str, Any]] = []
    hws: list[dict[str, Any]] = []
    for i in range(args.repeat):
        order = ["floor", "headwater"] if i % 2 == 0 else ["headwater", "floor"]
        for what in order:
            if args.quiet_wait > 0:
                wait_quiet(0.2, args.quiet_wait)
            if what == "floor":
                r = run_floor(project, args.threads)
                floors.append(r)
                print(f"  [{i + 1}/{args.repeat}] floor      {r['wall']:7.2f}s "
                      f"(inside {r['inner']:.2f}s, cpu {r['cpu']:.1f}s, "
                      f"other procs' cpu {r['load']:.1f}s)", flush=True)
            else:
                r = run_headwater(project)
                hws.append(r)
                print(f"  [{i + 1}/{args.repeat}] headwater  {r['wall']:7.2f}s "
                      f"(inside {r['inner']:.2f}s, cpu {r['cpu']:.1f}s, "
                      f"other procs' cpu {r['load']:.1f}s, "
                      f"executed {r['counts'].get('executed')}); "
                      f"no-op {r['noop_wall']:.2f}s, executed {r['noop_executed']}", flush=True)

    floor_s = med([r["wall"] for r in floors])
    hw_s = med([r["wall"] for r in hws])
    ratio = hw_s / floor_s
    noop_s = med([r["noop_wall"] for r in hws])
    noop_exec = max(r["noop_executed"] for r in hws)

    rev_end = git_rev()
    if rev_end != rev_start:
        print(f"WARNING: headwater changed during the benchmark ({rev_start} -> {rev_end})")
    problems = [] if args.no_verify else verify(project, [m.name for m in spec.models])

    # where headwater's per-node time exceeds the floor's, by node (last runs)
    hw_nodes = {n["name"]: n["seconds"] for n in hws[-1]["nodes"]}
    fl_tables = floors[-1]["tables"]
    node_sum_hw = sum(hw_nodes.values())
    node_sum_fl = sum(fl_tables.values())

    print()
    header = (f"{'models':>6}  {'rows':>11}  {'floor s':>8}  {'headwater s':>11}  "
              f"{'ratio':>6}  target")
    print(header)
    print("-" * len(header))
    verdict = "ok" if ratio <= TARGET else "MISSED"
    print(f"{len(spec.models):>6}  {args.rows:>11,}  {floor_s:>8.2f}  {hw_s:>11.2f}  "
          f"{ratio:>6.3f}  <= {TARGET:.2f} ({verdict})")
    best_f, best_h = min(r["wall"] for r in floors), min(r["wall"] for r in hws)
    print(f"{'':>6}  {'best of ' + str(args.repeat):>11}  {best_f:>8.2f}  {best_h:>11.2f}  "
          f"{best_h / best_f:>6.3f}")
    print()
    print(f"medians of {args.repeat}: floor inside {med([r['inner'] for r in floors]):.2f}s, "
          f"headwater inside {med([r['inner'] for r in hws]):.2f}s (its own 'seconds')")
    print(f"sum of per-node seconds (last run): headwater {node_sum_hw:.2f}s "
          f"(parallel, {os.cpu_count()} cores), floor {node_sum_fl:.2f}s (sequential)")
    print(f"cpu seconds (user+sys, median): floor {med([r['cpu'] for r in floors]):.1f}s, "
          f"headwater {med([r['cpu'] for r in hws]):.1f}s")
    loads = [r["load"] / max(r["wall"], 1e-9) for r in floors + hws]
    print(f"other processes' cpu during runs: {min(loads):.2f} .. {max(loads):.2f} cores"
          + ("  (the machine was shared: timings are noisy)" if max(loads) > 0.2 else ""))
    print(f"no-op rerun: {noop_s:.2f}s wall (median), nodes executed: {noop_exec}")
    for i, r in enumerate(hws):
        if r["noop_executed_nodes"]:
            print(f"  run {i + 1} no-op executed: " + ", ".join(r["noop_executed_nodes"][:5]))
    if problems:
        print(f"VERIFY: {len(problems)} tables differ: " + "; ".join(problems[:5]))
    elif not args.no_verify:
        print(f"verify: row counts of all {len(spec.models)} models match the floor")

    result = {
        "bench": "core",
        "headwater_rev": rev_start if rev_start == rev_end else f"{rev_start}->{rev_end}",
        "models": len(spec.models),
        "rows": args.rows,
        "seed": args.seed,
        "repeat": args.repeat,
        "threads": args.threads,
        "cores": os.cpu_count(),
        "floor_seconds": round(floor_s, 3),
        "headwater_seconds": round(hw_s, 3),
        "ratio": round(ratio, 4),
        "target": TARGET,
        "meets_target": ratio <= TARGET,
        "best_ratio": round(best_h / best_f, 4),
        "noop_seconds": round(noop_s, 3),
        "noop_executed": noop_exec,
        "noop_executed_nodes": sorted({x for r in hws for x in r["noop_executed_nodes"]}),
        "floor_runs": [round(r["wall"], 3) for r in floors],
        "headwater_runs": [round(r["wall"], 3) for r in hws],
        "noop_runs": [round(r["noop_wall"], 3) for r in hws],
        "headwater_inner": [r["inner"] for r in hws],
        "floor_cpu": [round(r["cpu"], 2) for r in floors],
        "headwater_cpu": [round(r["cpu"], 2) for r in hws],
        "other_cpu_floor": [round(r["load"], 2) for r in floors],
        "other_cpu_headwater": [round(r["load"], 2) for r in hws],
        "floor_inner": [r["inner"] for r in floors],
        "verify_problems": len(problems),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
