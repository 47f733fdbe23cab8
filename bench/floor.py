"""The raw DuckDB floor for a generated project: the same SQL, nothing else.

Loads the source with ``CREATE TABLE telemetry AS SELECT * FROM read_parquet([...])``
and then runs ``CREATE TABLE <model> AS <sql>`` for every model in topological
order, in one DuckDB connection to a fresh database file, in this one process.

    python bench/floor.py PROJECT_DIR --db /path/floor.duckdb [--threads N] [--json]

Meant to be run as a subprocess so its wall time includes interpreter start and
``import duckdb``, like a ``headwater run``. Prints one JSON line with the
time spent inside (connect .. close) and per-table seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import load_manifest  # noqa: E402


def run_floor(project: Path, db: Path, threads: int | None = None) -> dict[str, object]:
    import duckdb

    spec = load_manifest(project)
    for p in (db, Path(str(db) + ".wal")):
        if p.exists():
            p.unlink()
    db.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    config = {"threads": threads} if threads else {}
    con = duckdb.connect(str(db), config=config)
    tables: list[tuple[str, float]] = []
    try:
        for name, stmt in spec.floor_statements():
            t = time.perf_counter()
            con.execute(stmt)
            tables.append((name, time.perf_counter() - t))
    finally:
        con.close()
    return {
        "seconds": round(time.perf_counter() - t0, 3),
        "tables": len(tables),
        "source_seconds": round(tables[0][1], 3),
        "table_seconds": {n: round(s, 4) for n, s in tables},
        "pid": os.getpid(),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Run a generated project's SQL on plain DuckDB.")
    ap.add_argument("project", type=Path)
    ap.add_argument("--db", type=Path, required=True)
    ap.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: cores)")
    args = ap.parse_args(argv)
    print(json.dumps(run_floor(args.project, args.db, args.threads)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
