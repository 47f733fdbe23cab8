"""Docs and lineage benchmark: ``headwater docs`` on a generated 1,000-model project (< 5 s).

Generates a layered project (``bench/generate.py``) in ``bench/.work/``, builds it
once with ``headwater run``, then times, as subprocesses (wall time of the whole
command, interpreter start included, and its CPU time):

* ``headwater docs`` cold: no lineage cache, no highlight cache, no site;
* ``headwater docs`` warm: the same again (``--repeat`` times, median);
* ``headwater docs`` after an edit: one model's file changed (a comment), so its
  lineage is recomputed and its page rewritten;
* ``headwater lineage MART.COLUMN`` (a leaf column, upstream to the source) and
  ``headwater lineage telemetry.battery_pct --downstream`` (impact analysis of a
  source column), warm.

Reports the figures against the target (warm docs < 5 s), then one JSON line.

    python bench/bench_docs.py [--models 1000] [--rows 20000] [--repeat 3]
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

TARGET = 5.0


def headwater_cmd() -> list[str]:
    env_bin = os.environ.get("HEADWATER_BIN")
    if env_bin:
        return [env_bin]
    for cand in (Path(sys.executable).parent / "headwater", REPO / ".venv" / "bin" / "headwater"):
        if cand.exists():
            return [str(cand)]
    return [sys.executable, "-m", "headwater.cli"]


def busy_seconds() -> float:
    """CPU seconds all processes on the machine have used since boot (from /proc/stat)."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def timed(args: list[str]) -> dict[str, Any]:
    """Run ``headwater ARGS``; wall seconds, CPU seconds (with children), others' CPU meanwhile."""
    cmd = [*headwater_cmd(), *args]
    b0 = busy_seconds()
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    if proc.returncode != 0:
        sys.stderr.write(f"command failed ({proc.returncode}): {' '.join(cmd)}\n")
        sys.stderr.write(proc.stdout[-4000:] + "\n" + proc.stderr[-4000:] + "\n")
        raise SystemExit(1)
    # CPU other processes used meanwhile: > 0 means the timing shared the cores
    load = max(0.0, busy_seconds() - b0 - cpu)
    return {"wall": wall, "cpu": cpu, "load": load, "stdout": proc.stdout}


def wait_quiet(limit: float, max_wait: float) -> None:
    """Wait (up to ``max_wait`` s) until other processes use fewer than ``limit`` cores."""
    deadline = time.monotonic() + max_wait
    while time.monotonic() < deadline:
        b0, t0 = busy_seconds(), time.monotonic()
        time.sleep(1.0)
        if (busy_seconds() - b0) / (time.monotonic() - t0) < limit:
            return


def clear_caches(project: Path) -> None:
    for name in ("lineage-cache.json", "docs-cache.json"):
        (project / ".headwater" / name).unlink(missing_ok=True)
    shutil.rmtree(project / "target" / "docs", ignore_errors=True)


def leaf_column(project: Path, mart: str) -> str:
    """The first column of a mart (from the lineage JSON of the node)."""
    r = timed(["lineage", mart, "--format", "json", "--project", str(project)])
    return str(json.loads(r["stdout"])["columns"][0]["name"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", type=int, default=1000)
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, default=HERE / ".work")
    ap.add_argument("--quiet-wait", type=float, default=30.0,
                    help="before each timing, wait up to this many seconds for the machine "
                         "to be idle (other processes < 0.2 cores); 0 disables")
    args = ap.parse_args(argv)

    project = args.work / f"docs_{args.models}m_{args.rows}r_s{args.seed}"
    spec = generate_project(project, args.models, args.rows, args.seed)
    summary = spec.summary()
    print(f"project {project}: {summary['models']} models in {summary['layers']} layers, "
          f"{summary['edges']} edges, {args.rows:,} rows")
    built = timed(["run", "--project", str(project), "--json"])
    counts = json.loads(built["stdout"])["counts"]
    print(f"headwater run: {built['wall']:.1f}s ({counts})")

    def quiet() -> None:
        if args.quiet_wait:
            wait_quiet(0.2, args.quiet_wait)

    docs = ["docs", "--project", str(project)]
    quiet()
    clear_caches(project)
    cold = timed(docs)
    warm = []
    for _ in range(args.repeat):
        quiet()
        warm.append(timed(docs))
    edited = spec.models[len(spec.models) // 2].name
    path = project / "transforms" / f"{edited}.sql"
    original = path.read_text()
    try:
        path.write_text("-- edited by bench_docs\n" + original)
        quiet()
        edit = timed(docs)
    finally:
        path.write_text(original)
    mart = spec.models[-1].name
    column = leaf_column(project, mart)
    up, down = [], []
    for _ in range(args.repeat):
        quiet()
        up.append(timed(["lineage", f"{mart}.{column}", "--project", str(project)]))
        quiet()
        down.append(timed(["lineage", "telemetry.battery_pct", "--downstream", "--format",
                           "json", "--project", str(project)]))
    impact = len(json.loads(down[-1]["stdout"])["impact"])

    def med(runs: list[dict[str, Any]], key: str = "wall") -> float:
        return statistics.median(r[key] for r in runs)

    site = project / "target" / "docs"
    size = sum(p.stat().st_size for p in site.rglob("*") if p.is_file())
    rows = [
        ("docs, cold (no caches)", cold["wall"], cold["cpu"], cold["load"]),
        ("docs, warm (median)", med(warm), med(warm, "cpu"), med(warm, "load")),
        (f"docs after editing {edited}", edit["wall"], edit["cpu"], edit["load"]),
        (f"lineage {mart}.{column}", med(up), med(up, "cpu"), med(up, "load")),
        (f"lineage telemetry.battery_pct --downstream ({impact} nodes)", med(down),
         med(down, "cpu"), med(down, "load")),
    ]
    print(f"\n{'':<64} {'wall s':>8} {'cpu s':>8} {'others':>8}")
    for label, wall, cpu, load in rows:
        print(f"{label:<64} {wall:8.2f} {cpu:8.2f} {load:8.2f}")
    ok = med(warm) < TARGET
    print(f"\nsite: {len(list((site / 'nodes').glob('*.html')))} node pages, "
          f"{size / 1e6:.1f} MB; target: warm docs < {TARGET:.0f} s: "
          f"{'met' if ok else 'MISSED'}; cores: {os.cpu_count()}")
    print("('others' is CPU seconds other processes used meanwhile: > 0 means shared cores)")
    print(json.dumps({
        "bench": "docs", "models": summary["models"], "rows": args.rows,
        "docs_cold_s": round(cold["wall"], 3), "docs_warm_s": round(med(warm), 3),
        "docs_edit_s": round(edit["wall"], 3), "lineage_up_s": round(med(up), 3),
        "lineage_down_s": round(med(down), 3), "impact_nodes": impact,
        "site_mb": round(size / 1e6, 2), "target_met": ok, "cores": os.cpu_count(),
    }))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
