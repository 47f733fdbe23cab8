"""Spark benchmark: a cold ``headwater run`` on Spark (local mode) against the Spark floor,
and against Headwater on DuckDB.

Generates the layered project of ``bench/generate.py`` in ``bench/.work/`` and, ``--repeat``
times, each as a subprocess (wall time includes interpreter and JVM start):

* headwater-spark: delete ``.headwater/``, ``headwater run --engine spark --json``;
  then the same again with nothing changed (the no-op rerun);
* spark-floor: this script with ``--floor``: one SparkSession with the same settings,
  the source as ``CREATE TABLE telemetry USING parquet AS SELECT * FROM parquet.`glob```,
  then ``CREATE TABLE <model> USING parquet AS <sql>`` in topological order through
  ``spark.sql`` alone, each model's SQL translated to Spark SQL exactly as Headwater
  translates it (so both compute the same thing);
* headwater-duckdb: ``headwater run --engine duckdb --json`` on a fresh state.

Reports medians, the ratio headwater-spark / spark-floor against the target (<= 1.2), the
ratio to DuckDB, row counts compared model by model, then one JSON line for scripts.

    python bench/bench_spark.py [--models 200] [--rows 2000000] [--repeat 1] [--master local[*]]
"""

from __future__ import annotations

import argparse
import json
import os
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

from bench_core import busy_seconds, git_rev, headwater_cmd  # noqa: E402
from generate import SOURCE, generate_project, load_manifest  # noqa: E402

TARGET = 1.2


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds other processes used meanwhile, stdout."""
    b0 = busy_seconds()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write(f"command failed ({proc.returncode}): {' '.join(cmd)}\n")
        sys.stderr.write(proc.stdout[-4000:] + "\n" + proc.stderr[-4000:] + "\n")
        raise SystemExit(1)
    return wall, max(0.0, busy_seconds() - b0), proc.stdout


def run_headwater(project: Path, engine: str, env: dict[str, str]) -> dict[str, Any]:
    shutil.rmtree(project / ".headwater", ignore_errors=True)
    cmd = [*headwater_cmd(), "run", "--project", str(project), "--engine", engine, "--json"]
    wall, busy, out = timed(cmd, env)
    cold = json.loads(out)
    if cold["status"] != "success":
        raise SystemExit(f"headwater run on {engine} failed: {cold['counts']}")
    wall2, _, out2 = timed(cmd, env)
    noop = json.loads(out2)
    return {"wall": wall, "busy": busy, "inner": cold["seconds"], "counts": cold["counts"],
            "noop_wall": wall2, "noop_executed": noop["counts"].get("executed", 0)}


def run_floor_subprocess(project: Path, master: str, env: dict[str, str]) -> dict[str, Any]:
    shutil.rmtree(project / ".spark-floor", ignore_errors=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--floor", str(project),
           "--master", master]
    wall, busy, out = timed(cmd, env)
    inner = json.loads(out.strip().splitlines()[-1])
    return {"wall": wall, "busy": busy, "inner": inner["seconds"]}


def floor(project: Path, master: str) -> dict[str, Any]:
    """The Spark floor, in this process: the same SQL through spark.sql, nothing else."""
    import sqlglot

    from headwater.engines.spark.engine import make_session
    from headwater.engines.spark.sql import to_spark

    spec = load_manifest(project)
    warehouse = project / ".spark-floor" / "warehouse"
    t0 = time.perf_counter()
    spark = make_session(master=master, conf={
        "spark.sql.warehouse.dir": str(warehouse),
        "spark.sql.catalogImplementation": "in-memory",
    })
    glob = str(project / spec.source.glob).replace("`", "``")
    spark.sql(f"CREATE TABLE {SOURCE} USING parquet AS SELECT * FROM parquet.`{glob}`")
    for m in spec.models:
        sql = to_spark(sqlglot.parse_one(m.sql, dialect="duckdb"), "duckdb").sql("spark")
        spark.sql(f"CREATE TABLE `{m.name}` USING parquet AS {sql}")
    seconds = time.perf_counter() - t0
    spark.stop()
    return {"seconds": round(seconds, 3), "tables": len(spec.models) + 1}


def row_counts_match(project: Path) -> list[str]:
    """Rows of every model: the floor's tables against Headwater's catalog."""
    import pyarrow.dataset as ds

    from headwater.engines.spark.catalog import Catalog

    catalog = Catalog(project / ".headwater/spark-warehouse")
    catalog.load()
    published = catalog.published["prod"]
    problems = []
    for m in load_manifest(project).models:
        entry = catalog.tables[published[m.name]]
        ours = sum(int(entry.metrics[s][0]) for s in entry.segments)
        theirs = ds.dataset(str(project / ".spark-floor/warehouse" / m.name),
                            format="parquet").count_rows()
        if ours != theirs:
            problems.append(f"{m.name}: headwater {ours} rows, floor {theirs}")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", type=int, default=200)
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--master", default="local[*]")
    ap.add_argument("--work", type=Path, default=HERE / ".work")
    ap.add_argument("--no-duckdb", action="store_true", help="skip Headwater on DuckDB")
    ap.add_argument("--floor", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.floor is not None:
        print(json.dumps(floor(args.floor, args.master)))
        return 0

    project = args.work / f"spark_{args.models}m_{args.rows}r_s{args.seed}"
    spec = generate_project(project, args.models, args.rows, args.seed)
    toml = project / "headwater.toml"
    text = toml.read_text()
    if "[spark]" not in text:
        toml.write_text(text + f'\n[spark]\nmaster = "{args.master}"\n')
    summary = spec.summary()
    print(f"project {project} ({summary['models']} models in {summary['layers']} layers, "
          f"{args.rows:,} rows), master {args.master}, {os.cpu_count()} cores", flush=True)
    env = {**os.environ, "SPARK_LOCAL_IP": os.environ.get("SPARK_LOCAL_IP", "127.0.0.1")}

    runs: dict[str, list[dict[str, Any]]] = {"spark": [], "floor": [], "duckdb": []}
    for i in range(args.repeat):
        order = ["spark", "floor"] if i % 2 == 0 else ["floor", "spark"]
        for what in order:
            if what == "spark":
                runs["spark"].append(run_headwater(project, "spark", env))
            else:
                runs["floor"].append(run_floor_subprocess(project, args.master, env))
            print(f"  run {i + 1}: {what} {runs[what][-1]['wall']:.1f}s", flush=True)
        problems = row_counts_match(project)
        if problems:
            print("ROW COUNTS DIFFER:\n  " + "\n  ".join(problems[:10]))
            return 1
        if not args.no_duckdb:
            runs["duckdb"].append(run_headwater(project, "duckdb", env))
            print(f"  run {i + 1}: duckdb {runs['duckdb'][-1]['wall']:.1f}s", flush=True)

    def med(key: str, field: str = "wall") -> float:
        return statistics.median(r[field] for r in runs[key])

    hw, fl = med("spark"), med("floor")
    ratio = hw / fl
    rows = [("headwater on Spark (cold run)", hw), ("Spark floor (spark.sql CTAS)", fl)]
    if runs["duckdb"]:
        rows.append(("headwater on DuckDB (cold run)", med("duckdb")))
    rows.append(("headwater on Spark, no-op rerun", med("spark", "noop_wall")))
    print()
    print(f"{'':36} {'seconds':>9}")
    for label, value in rows:
        print(f"{label:36} {value:9.1f}")
    verdict = "OK" if ratio <= TARGET else "OVER TARGET"
    print(f"{'headwater-spark / spark-floor':36} {ratio:9.2f}   target <= {TARGET} {verdict}")
    if runs["duckdb"]:
        print(f"{'headwater-spark / headwater-duckdb':36} {hw / med('duckdb'):9.2f}")
    print(f"row counts: all {len(spec.models)} models equal to the floor; no-op rerun executed "
          f"{runs['spark'][-1]['noop_executed']} node(s)")
    busy = max(r["busy"] for rs in runs.values() for r in rs)
    if busy > 0.5 * (os.cpu_count() or 1) * hw:
        print("note: other processes used the cores during the timings; figures are noisy")
    print(json.dumps({
        "bench": "spark", "rev": git_rev(), "models": len(spec.models), "rows": args.rows,
        "master": args.master, "repeat": args.repeat, "headwater_spark": round(hw, 2),
        "spark_floor": round(fl, 2), "ratio": round(ratio, 3), "target": TARGET,
        "headwater_duckdb": round(med("duckdb"), 2) if runs["duckdb"] else None,
        "noop_spark": round(med("spark", "noop_wall"), 2),
    }))
    return 0 if ratio <= TARGET else 2


if __name__ == "__main__":
    sys.exit(main())
