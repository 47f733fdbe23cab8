"""Postgres -> DuckDB ingestion, side by side: Headwater, the ADBC floor and dlt.

    python bench/bench_ingest.py                  # 5M rows x 8 columns
    python bench/bench_ingest.py --rows 200000    # a quick end-to-end check
    python bench/bench_ingest.py --skip-dlt       # without the (slow) dlt runs

The table ``hw_bench.big_<rows>`` is generated in Postgres with generate_series
(kept between runs). Every tool runs in its own subprocess, writing a fresh
DuckDB file; wall time includes interpreter start and imports, and peak memory
is the subprocess's RSS high-water mark (``getrusage(RUSAGE_CHILDREN)`` of a
small wrapper process around it):

- headwater: ``python -m headwater.cli.main run --project DIR --json`` on a project
  that is just ``headwater.toml`` + ``sources/big.toml`` (type = "postgres");
- floor: ADBC ``fetch_record_batch()`` streamed into DuckDB with
  ``CREATE TABLE t AS SELECT * FROM reader`` in a bare script;
- dlt: ``sql_table(...)`` with its default backend (sqlalchemy), ``pyarrow`` and
  ``connectorx``, in a virtualenv of its own (bench/.work/venv-dlt, made here).

Targets: Headwater >= 0.8x the floor's rows/s and >= 3x dlt's default backend.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work" / "ingest"
DEFAULT_DSN = os.environ.get("HEADWATER_BENCH_PG_DSN",
                             "postgresql://postgres@127.0.0.1:5432/test")
DLT_PACKAGES = ["dlt[duckdb,sql_database]", "sqlalchemy", "psycopg2-binary", "connectorx",
                "pyarrow"]

# Runs a command and reports its wall time and the RSS high-water mark of its process tree's
# largest process (ru_maxrss of the waited-for children, in KiB on Linux).
WRAPPER = textwrap.dedent("""
    import json, resource, subprocess, sys, time
    t0 = time.perf_counter()
    p = subprocess.run(sys.argv[1:], capture_output=True, text=True)
    dt = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"seconds": dt, "maxrss_kib": rss, "rc": p.returncode,
                      "stdout": p.stdout[-4000:], "stderr": p.stderr[-4000:]}))
""")

FLOOR = textwrap.dedent("""
    import sys
    import adbc_driver_postgresql.dbapi as adbc
    import duckdb
    dsn, table, db = sys.argv[1:4]
    con = adbc.connect(dsn)
    cur = con.cursor()
    cur.execute(f"SELECT * FROM {table}")
    reader = cur.fetch_record_batch()
    out = duckdb.connect(db)
    out.execute("CREATE TABLE t AS SELECT * FROM reader")
    print(out.execute("SELECT count(*) FROM t").fetchone()[0])
    out.close()
    con.close()
""")

DLT = textwrap.dedent("""
    import sys
    import dlt
    from dlt.sources.sql_database import sql_table
    dsn, schema, table, backend, db, pipelines_dir = sys.argv[1:7]
    if dsn.startswith("postgresql://"):  # SQLAlchemy 2.1 defaults to psycopg 3; use psycopg2
        dsn = "postgresql+psycopg2://" + dsn[len("postgresql://"):]
    resource = sql_table(credentials=dsn, schema=schema, table=table, backend=backend)
    pipeline = dlt.pipeline(pipeline_name="bench_" + backend,
                            destination=dlt.destinations.duckdb(db),
                            dataset_name="bench", pipelines_dir=pipelines_dir)
    pipeline.run(resource)
    import duckdb
    con = duckdb.connect(db, read_only=True)
    print(con.execute(f"SELECT count(*) FROM bench.{table}").fetchone()[0])
""")


def ensure_table(dsn: str, rows: int) -> tuple[str, str]:
    """Create hw_bench.big_<rows> (8 columns) unless it is already there, complete."""
    import psycopg

    schema, table = "hw_bench", f"big_{rows}"
    with psycopg.connect(dsn, autocommit=True) as con:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        exists = con.execute("SELECT to_regclass(%s) IS NOT NULL",
                             [f"{schema}.{table}"]).fetchone()
        if exists and exists[0]:
            got = con.execute(f"SELECT count(*) FROM {schema}.{table}").fetchone()
            if got and got[0] == rows:
                return schema, table
            con.execute(f"DROP TABLE {schema}.{table}")
        t0 = time.perf_counter()
        con.execute(f"""
            CREATE TABLE {schema}.{table} AS
            SELECT g::bigint AS id,
                   (g % 5000)::int AS device_id,
                   timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second' AS ts,
                   round((random() * 1000)::numeric, 2)::numeric(12, 2) AS amount,
                   (ARRAY['ok', 'degraded', 'offline', 'unknown'])[1 + g % 4] AS status,
                   (g % 101)::smallint AS battery,
                   (random() * 500)::real AS latency_ms,
                   g % 7 <> 0 AS online
            FROM generate_series(1, {rows}) AS g""")
        con.execute(f"ANALYZE {schema}.{table}")
        print(f"generated {schema}.{table} ({rows:,} rows) in {time.perf_counter() - t0:.1f}s",
              flush=True)
    return schema, table


def measure(cmd: list[str], env: dict[str, str] | None = None,
            timeout: float | None = None) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", WRAPPER, *cmd], capture_output=True, text=True,
                         env=env, timeout=timeout, check=True)
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def duckdb_count(db: Path, sql: str) -> int:
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        row = con.execute(sql).fetchone()
        return int(row[0]) if row else -1
    finally:
        con.close()


def run_headwater(dsn: str, schema: str, table: str) -> dict[str, object]:
    project = WORK / "hw-project"
    shutil.rmtree(project, ignore_errors=True)
    (project / "sources").mkdir(parents=True)
    (project / "headwater.toml").write_text('name = "bench_ingest"\n')
    (project / "sources" / "big.toml").write_text(
        'type = "postgres"\ndsn = "${HW_BENCH_DSN}"\n'
        f'table = "{schema}.{table}"\nchunk_rows = 100000\n')
    env = {**os.environ, "HW_BENCH_DSN": dsn}
    r = measure([sys.executable, "-m", "headwater.cli", "run", "--project", str(project),
                 "--json"], env=env)
    if r["rc"] != 0:
        r["error"] = f"headwater run exited {r['rc']}: {r['stderr'] or r['stdout']}"
        return r
    r["rows"] = duckdb_count(project / ".headwater" / "warehouse.duckdb",
                             "SELECT count(*) FROM main.big")
    return r


def run_floor(dsn: str, schema: str, table: str) -> dict[str, object]:
    db = WORK / "floor.duckdb"
    db.unlink(missing_ok=True)
    r = measure([sys.executable, "-c", FLOOR, dsn, f"{schema}.{table}", str(db)])
    if r["rc"] != 0:
        r["error"] = str(r["stderr"])
        return r
    r["rows"] = int(str(r["stdout"]).strip().splitlines()[-1])
    return r


def dlt_python() -> Path:
    venv = HERE / ".work" / "venv-dlt"
    py = venv / "bin" / "python"
    marker = venv / ".installed"
    if not marker.exists():
        print(f"creating {venv} and installing {' '.join(DLT_PACKAGES)} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
                       check=True)
        subprocess.run([str(py), "-m", "pip", "install", "--quiet", *DLT_PACKAGES], check=True)
        marker.write_text("ok\n")
    return py


def run_dlt(py: Path, dsn: str, schema: str, table: str, backend: str,
            timeout: float) -> dict[str, object]:
    db = WORK / f"dlt_{backend}.duckdb"
    pipelines = WORK / f"dlt_pipelines_{backend}"
    db.unlink(missing_ok=True)
    shutil.rmtree(pipelines, ignore_errors=True)
    env = {**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false"}
    try:
        r = measure([str(py), "-c", DLT, dsn, schema, table, backend, str(db), str(pipelines)],
                    env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f}s", "seconds": timeout, "maxrss_kib": 0}
    if r["rc"] != 0:
        r["error"] = str(r["stderr"])[-1500:]
        return r
    r["rows"] = int(str(r["stdout"]).strip().splitlines()[-1])
    return r


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--dsn", default=DEFAULT_DSN)
    ap.add_argument("--skip-dlt", action="store_true")
    ap.add_argument("--dlt-backends", default="sqlalchemy,pyarrow,connectorx")
    ap.add_argument("--dlt-timeout", type=float, default=3600)
    ap.add_argument("--repeat", type=int, default=1, help="best of N for headwater and floor")
    args = ap.parse_args(argv)

    WORK.mkdir(parents=True, exist_ok=True)
    schema, table = ensure_table(args.dsn, args.rows)
    results: dict[str, dict[str, object]] = {}

    # interleaved, best of N: a machine whose load changes affects both alike
    runs: dict[str, list[dict[str, object]]] = {"floor (ADBC -> DuckDB)": [], "headwater": []}
    for _ in range(args.repeat):
        runs["floor (ADBC -> DuckDB)"].append(run_floor(args.dsn, schema, table))
        runs["headwater"].append(run_headwater(args.dsn, schema, table))
    for label, tries in runs.items():
        ok = [r for r in tries if "error" not in r]
        results[label] = min(ok, key=lambda r: float(r["seconds"])) if ok else tries[0]  # type: ignore[arg-type]
    if not args.skip_dlt:
        py = dlt_python()
        for backend in args.dlt_backends.split(","):
            label = f"dlt sql_database ({backend}{', default' if backend == 'sqlalchemy' else ''})"
            print(f"running {label} ...", flush=True)
            results[label] = run_dlt(py, args.dsn, schema, table, backend, args.dlt_timeout)

    floor_rps = None
    f = results["floor (ADBC -> DuckDB)"]
    if "error" not in f:
        floor_rps = args.rows / float(f["seconds"])  # type: ignore[arg-type]
    print(f"\nPostgres -> DuckDB, {args.rows:,} rows x 8 columns ({schema}.{table})\n")
    print(f"{'tool':<40} {'seconds':>9} {'rows/s':>12} {'peak MiB':>9} {'x floor':>8}")
    for label, r in results.items():
        if "error" in r:
            print(f"{label:<40} FAILED: {str(r['error']).strip().splitlines()[-1][:200]}")
            continue
        secs = float(r["seconds"])  # type: ignore[arg-type]
        rps = args.rows / secs
        mib = int(r["maxrss_kib"]) / 1024  # type: ignore[call-overload]
        ratio = f"{rps / floor_rps:.2f}" if floor_rps else "-"
        wrong = "" if r.get("rows") == args.rows else f"  (loaded {r.get('rows')} rows!)"
        print(f"{label:<40} {secs:>9.2f} {rps:>12,.0f} {mib:>9.0f} {ratio:>8}{wrong}")
        r["rows_per_s"] = rps
        r["peak_mib"] = mib

    hw = results["headwater"]
    verdicts = []
    if "error" not in hw and floor_rps:
        hw_rps = float(hw["rows_per_s"])  # type: ignore[arg-type]
        verdicts.append(("headwater >= 0.8x floor", hw_rps >= 0.8 * floor_rps))
        dflt = results.get("dlt sql_database (sqlalchemy, default)")
        if dflt and "error" not in dflt:
            verdicts.append(("headwater >= 3x dlt default",
                             hw_rps >= 3 * float(dflt["rows_per_s"])))  # type: ignore[arg-type]
    print()
    for name, ok in verdicts:
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    out = WORK / f"results-{args.rows}.json"
    for r in results.values():
        r.pop("stdout", None)
    out.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nraw results: {out}")
    return 0 if all(ok for _, ok in verdicts) and "error" not in hw else 1


if __name__ == "__main__":
    sys.exit(main())
