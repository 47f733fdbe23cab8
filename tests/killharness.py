"""Kill -9 a run at random moments and check the project stays consistent.

Two projects:

* ``kill_test``: 24 layered full-rebuild models over parquet files, with code edits
  and forced rebuilds (``tests/integration/test_kill.py``, 8 kills in CI);
* ``incremental_kill_test``: 50 models with window, append and merge incremental
  nodes over day-partitioned files and a PostgreSQL source read by an ``id`` cursor;
  the inputs change between kills and every kill is followed by an integrity check
  of the state store, the published views, the partition and window bookkeeping
  (``tests/reliability/test_kill_incremental.py``, 8 kills in CI).

Long form (``make reliability``)::

    python tests/killharness.py --kills 50 --seed 1                 # the 50-model project
    python tests/killharness.py --project layered --kills 50 --seed 1
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from headwater.testing import write_project


def make_project(root: Path, rows: int = 400_000, models: int = 24) -> Path:
    """A layered project big enough that a run takes a couple of seconds."""
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    for day in range(4):
        con.execute(
            f"COPY (SELECT 'dev-' || (i % 500) AS device_id, i AS seq, {day} AS day,"
            " (hash(i * 7 + ?) % 100)::INT AS battery_pct,"
            " (hash(i * 13 + ?) % 900)::INT AS latency_ms"
            f" FROM range({rows // 4}) t(i)) TO '{data}/day{day}.parquet' (FORMAT parquet)",
            [day, day],
        )
    con.close()
    files: dict[str, str] = {
        "sources/telemetry.toml": 'type = "files"\npath = "data/*.parquet"\n',
        "transforms/stg.sql": "SELECT device_id, seq, day, battery_pct, latency_ms,"
        " latency_ms > 500 AS slow FROM telemetry\n",
    }
    prev = ["stg"]
    for i in range(models):
        up = prev[i % len(prev)]
        if i % 3 == 0:
            sql = (f"SELECT device_id, day, avg(battery_pct) AS battery, count(*) AS n,"
                   f" sum(latency_ms) AS lat FROM {'stg' if i % 2 == 0 else 'stg'}"
                   f" WHERE seq % {i + 2} <> 0 GROUP BY ALL")
        elif i % 3 == 1:
            sql = (f"SELECT device_id, day, battery + {i} AS battery, n, lat,"
                   f" rank() OVER (PARTITION BY day ORDER BY lat DESC, device_id) AS r FROM {up}")
        else:
            sql = (f"SELECT a.device_id, a.day, a.battery, b.n FROM {up} a"
                   f" JOIN {prev[0]} b USING (device_id, day)")
        name = f"m{i:02d}"
        files[f"transforms/{name}.sql"] = sql + "\n"
        if i % 3 == 0:
            prev = [name]
        else:
            prev.append(name)
    return write_project(root, files, config="threads = 2\n")


def checksums(root: Path) -> dict[str, tuple[int, str]]:
    con = duckdb.connect(str(root / ".headwater/warehouse.duckdb"), read_only=True)
    try:
        views = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = 'main' AND table_type = 'VIEW'").fetchall()]
        out = {}
        for v in sorted(views):
            n, h = con.execute(
                f'SELECT count(*), coalesce(sum(hash(t)::HUGEINT), 0)::VARCHAR FROM main."{v}" t'
            ).fetchall()[0]
            out[v] = (int(n), str(h))
        return out
    finally:
        con.close()


def read_state(root: Path) -> tuple[list[str], dict[str, tuple[str, int]], dict[str, str]] | None:
    """(integrity problems, recorded physical -> (node, rows), prod node -> physical) of a
    project's state store; None when a kill came before the store was created."""
    if not (root / ".headwater/state.db").exists():
        return None
    problems: list[str] = []
    db = sqlite3.connect(str(root / ".headwater/state.db"))
    try:
        ok = db.execute("PRAGMA integrity_check").fetchall()
        if ok != [("ok",)]:
            problems.append(f"state integrity: {ok}")
        try:
            recorded = {p: (n, r) for p, n, r in db.execute(
                "SELECT physical, node, rows FROM physical")}
            published = dict(db.execute(
                "SELECT node, physical FROM env_nodes WHERE env = 'prod'"
                " AND physical IS NOT NULL").fetchall())
        except sqlite3.OperationalError:  # killed while creating the store: nothing in it yet
            recorded, published = {}, {}
    finally:
        db.close()
    return problems, recorded, published


def check_consistent(root: Path) -> list[str]:
    """Problems found after a kill: state integrity, views resolving to complete tables."""
    state = read_state(root)
    if state is None:
        return (["a warehouse without a state store"]
                if (root / ".headwater/warehouse.duckdb").exists() else [])
    problems, physicals, prod = state
    recorded = {p: r for p, (_, r) in physicals.items()}
    published = list(prod.items())
    wh = root / ".headwater/warehouse.duckdb"
    if not wh.exists():
        return problems
    con = duckdb.connect(str(wh), read_only=True)
    try:
        for node, physical in published:
            try:
                n = con.execute(f'SELECT count(*) FROM main."{node}"').fetchall()[0][0]
            except duckdb.Error as exc:
                problems.append(f"view {node} broken: {exc}")
                continue
            if physical in recorded and recorded[physical] is not None and n != recorded[physical]:
                problems.append(f"view {node}: {n} rows, state says {recorded[physical]}")
    finally:
        con.close()
    return problems


def headwater(root: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "headwater.cli", "run", "--project", str(root), *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def kill_test(work: Path, *, kills: int, seed: int, rows: int = 400_000) -> dict[str, object]:
    rng = random.Random(seed)
    shutil.rmtree(work, ignore_errors=True)
    reference = make_project(work / "reference", rows=rows)
    t0 = time.perf_counter()
    assert headwater(reference).wait() == 0
    full = time.perf_counter() - t0
    expected = checksums(reference)

    victim = work / "victim"
    shutil.copytree(reference, victim, ignore=shutil.ignore_patterns(".headwater"))
    problems: list[str] = []
    killed = 0
    for k in range(kills):
        if k % 4 == 0:  # sometimes start from a code change, so reuse and rebuild mix
            (victim / "transforms/stg.sql").write_text(
                "SELECT device_id, seq, day, battery_pct, latency_ms,"
                f" latency_ms > 500 AS slow FROM telemetry WHERE seq >= -{k}\n"
            )
        proc = headwater(victim, "--full-refresh") if k % 5 == 4 else headwater(victim)
        time.sleep(rng.uniform(0.0, full * 1.1))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            killed += 1
        proc.wait()
        problems += [f"after kill {k}: {p}" for p in check_consistent(victim)]
    (victim / "transforms/stg.sql").write_text(
        (reference / "transforms/stg.sql").read_text())
    final = headwater(victim)
    _, err = final.communicate()
    if final.returncode != 0:
        problems.append(f"final run failed: {err.decode()[-500:]}")
    got = checksums(victim)
    if got != expected:
        bad = [n for n in expected if got.get(n) != expected[n]]
        problems.append(f"final result differs from an uninterrupted build: {bad}")
    return {"kills": killed, "attempts": kills, "problems": problems, "full_run_s": full}



# == the 50-model incremental project (issue 12) ======================================
#
# Sources: day-partitioned telemetry (parquet) and events (CSV) files, a static device
# dimension (CSV) and orders from PostgreSQL read by an `id` cursor (or day files when
# no server is given). 50 transforms: staging, window incremental (`by day`, `by hour`,
# `by month`), `append by id` and `merge id by id` incremental, a Python transform and a
# generated web of full transforms (joins, window functions, unions, aggregates); a
# files sink. Between kills the inputs change: new day files, re-delivered files (new
# content, or the same bytes), new Postgres rows, a code edit and its revert, forced
# rebuilds. After each kill the project is checked (see `check_project`), and at the
# end the result must equal an uninterrupted build of the final inputs.

START = dt.date(2026, 1, 1)
DEVICES = 120
PG_ENV = "HW_KILL_PG_DSN"  # the dsn reaches the project through the environment


def _day(n: int) -> dt.date:
    return START + dt.timedelta(days=n)


class Inputs:
    """The data the harness owns, and the changes it makes between kills."""

    def __init__(self, root: Path, *, rows_per_day: int, seed: int, pg_dsn: str | None) -> None:
        self.root = root
        self.rows_per_day = rows_per_day
        self.events_per_day = max(10, rows_per_day // 8)
        self.rng = random.Random(seed * 7919 + 1)
        self.pg_dsn = pg_dsn
        self.schema = f"hw_kill_{seed}_{os.getpid()}"
        self.telemetry_days = 0
        self.event_days = 0
        self.version: dict[int, int] = {}
        self.next_order = 1
        self.order_batches = 0
        self.log: list[str] = []

    # -- writing ------------------------------------------------------------------
    def setup(self, days: int = 6) -> None:
        (self.root / "data/telemetry").mkdir(parents=True, exist_ok=True)
        (self.root / "data/events").mkdir(parents=True, exist_ok=True)
        (self.root / "data/orders").mkdir(parents=True, exist_ok=True)
        lines = ["device_id,region,model"] + [
            f"dev-{i:03d},{['north', 'south', 'east', 'west'][i % 4]},m{i % 7}"
            for i in range(DEVICES)]
        (self.root / "data/devices.csv").write_text("\n".join(lines) + "\n")
        if self.pg_dsn:
            import psycopg

            with psycopg.connect(self.pg_dsn, autocommit=True) as con:
                con.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
                con.execute(f'CREATE SCHEMA "{self.schema}"')
                con.execute(f'CREATE TABLE "{self.schema}".orders (id BIGINT PRIMARY KEY,'
                            " device_id TEXT NOT NULL, amount_cents BIGINT NOT NULL,"
                            " created_at TIMESTAMP NOT NULL)")
        for _ in range(days):
            self.new_telemetry_day()
            self.new_events_day()
        for _ in range(3):
            self.new_orders()

    def drop(self) -> None:
        if self.pg_dsn:
            import psycopg

            with psycopg.connect(self.pg_dsn, autocommit=True) as con:
                con.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')

    def _telemetry(self, day: int, version: int) -> None:
        path = self.root / f"data/telemetry/{_day(day)}.parquet"
        tmp = path.with_name(".tmp-" + path.name)
        n = self.rows_per_day
        con = duckdb.connect()
        con.execute(
            "COPY (SELECT printf('dev-%03d', (i * 7 + $day) % $devices) AS device_id,"
            " $day * 10000000 + i AS seq,"
            " $start::TIMESTAMP + to_seconds((i * 86399) // $n) AS ts,"
            " (hash(i * 7 + $day * 31 + $v * 101) % 100)::INT AS battery_pct,"
            " (hash(i * 13 + $day * 17 + $v * 37) % 900)::INT AS latency_ms"
            f" FROM range($n) t(i)) TO '{tmp}' (FORMAT parquet)",
            {"day": day, "devices": DEVICES, "start": str(_day(day)), "n": n, "v": version})
        con.close()
        os.replace(tmp, path)  # files arrive whole, as a delivery would

    def new_telemetry_day(self) -> None:
        day = self.telemetry_days
        self.version[day] = 0
        self._telemetry(day, 0)
        self.telemetry_days += 1
        self.log.append(f"new telemetry day {_day(day)}")

    def redeliver_telemetry(self, same: bool) -> None:
        day = self.rng.randrange(self.telemetry_days)
        if not same:
            self.version[day] += 1
        self._telemetry(day, self.version[day])
        self.log.append(f"re-delivered telemetry {_day(day)}" + (" (same bytes)" if same else ""))

    def new_events_day(self) -> None:
        day = self.event_days
        path = self.root / f"data/events/{_day(day)}.csv"
        kinds = ["boot", "sync", "error", "update"]
        lines = ["device_id,ts,kind,value"]
        for i in range(self.events_per_day):
            secs = (i * 86399) // self.events_per_day
            ts = dt.datetime.combine(_day(day), dt.time()) + dt.timedelta(seconds=secs)
            lines.append(f"dev-{(i * 3 + day) % DEVICES:03d},{ts:%Y-%m-%d %H:%M:%S},"
                         f"{kinds[(i + day) % 4]},{(i * 37 + day) % 1000}")
        tmp = path.with_name(".tmp-" + path.name)
        tmp.write_text("\n".join(lines) + "\n")
        os.replace(tmp, path)
        self.event_days += 1
        self.log.append(f"new events day {_day(day)}")

    def new_orders(self) -> None:
        n = self.rng.randint(20, 200)
        days = max(1, self.telemetry_days)
        rows = []
        for _ in range(n):
            i = self.next_order
            self.next_order += 1
            ts = dt.datetime.combine(_day(self.rng.randrange(days)), dt.time()) + dt.timedelta(
                seconds=self.rng.randrange(86400))
            rows.append((i, f"dev-{self.rng.randrange(DEVICES):03d}",
                         self.rng.randint(100, 99_999), ts))
        if self.pg_dsn:
            import psycopg

            with psycopg.connect(self.pg_dsn, autocommit=True) as con, con.cursor() as cur:
                cur.executemany(f'INSERT INTO "{self.schema}".orders VALUES (%s, %s, %s, %s)',
                                rows)
        else:
            path = self.root / f"data/orders/batch-{self.order_batches:04d}.csv"
            path.write_text("id,device_id,amount_cents,created_at\n" + "".join(
                f"{i},{d},{a},{t:%Y-%m-%d %H:%M:%S}\n" for i, d, a, t in rows))
        self.order_batches += 1
        self.log.append(f"{n} new orders")

    def pg_ids(self, up_to: int) -> int:
        """How many orders the server holds with id <= up_to."""
        import psycopg

        assert self.pg_dsn
        with psycopg.connect(self.pg_dsn, autocommit=True) as con:
            row = con.execute(f'SELECT count(*) FROM "{self.schema}".orders WHERE id <= %s',
                              [up_to]).fetchone()
        return int(row[0]) if row else 0

    def mutate(self) -> list[str]:
        """One random change of the inputs (sometimes several)."""
        before = len(self.log)
        r = self.rng.random()
        if r < 0.30:
            self.new_telemetry_day()
        elif r < 0.45:
            self.redeliver_telemetry(same=False)
        elif r < 0.52:
            self.redeliver_telemetry(same=True)
        elif r < 0.65:
            self.new_events_day()
        elif r < 0.9:
            self.new_orders()
        if self.rng.random() < 0.3:
            self.new_orders()
        return self.log[before:]


def project_files(pg_schema: str | None) -> dict[str, str]:
    """headwater.toml, 4 sources, 50 transforms and a sink."""
    files: dict[str, str] = {
        "headwater.toml": 'name = "killtest"\nthreads = 2\n',
        "sources/telemetry.toml": 'type = "files"\npath = "data/telemetry/*.parquet"\n'
                                  'description = "Terminal telemetry, one file per day."\n',
        "sources/events.toml": 'type = "files"\npath = "data/events/*.csv"\n'
                               'columns = { device_id = "VARCHAR", ts = "TIMESTAMP",'
                               ' kind = "VARCHAR", value = "BIGINT" }\n',
        "sources/devices.toml": 'type = "files"\npath = "data/devices.csv"\n',
        "sinks/final_export.toml": 'type = "files"\nfrom = "m_final"\n'
                                   'path = "output/final.parquet"\n',
    }
    if pg_schema:
        files["sources/orders.toml"] = (
            f'type = "postgres"\ndsn = "${{{PG_ENV}}}"\ntable = "{pg_schema}.orders"\n'
            'cursor = "id"\nretries = 2\nretry_delay = 0.2\n')
    else:
        files["sources/orders.toml"] = (
            'type = "files"\npath = "data/orders/*.csv"\n'
            'columns = { id = "BIGINT", device_id = "VARCHAR", amount_cents = "BIGINT",'
            ' created_at = "TIMESTAMP" }\n')
    t = {
        # staging (full)
        "stg_telemetry": "-- Staged telemetry.\nSELECT device_id, seq, ts, battery_pct,"
                         " latency_ms, latency_ms > 500 AS slow FROM telemetry",
        "stg_events": "SELECT device_id, ts, kind, value FROM events",
        "stg_orders": "SELECT id, device_id, amount_cents, created_at AS ts FROM orders",
        "dim_devices": "SELECT device_id, region, model FROM devices",
        # window incremental
        "inc_battery_daily": "-- @incremental: by day day from ts\n"
                             "SELECT device_id, CAST(ts AS DATE) AS day, sum(battery_pct) AS"
                             " battery, count(*) AS n FROM telemetry GROUP BY ALL",
        "inc_latency_daily": "-- @incremental: by day day from ts\n"
                             "SELECT device_id, CAST(ts AS DATE) AS day, max(latency_ms) AS"
                             " worst, sum(latency_ms) AS total, count(*) FILTER (WHERE slow)"
                             " AS slow_n FROM stg_telemetry GROUP BY ALL",
        "inc_events_daily": "-- @incremental: by day day from ts\n"
                            "SELECT kind, CAST(ts AS DATE) AS day, count(*) AS n,"
                            " sum(value) AS v FROM stg_events GROUP BY ALL",
        "inc_orders_daily": "-- @incremental: by day day from ts\n"
                            "SELECT device_id, CAST(ts AS DATE) AS day, sum(amount_cents) AS"
                            " revenue, count(*) AS orders FROM stg_orders GROUP BY ALL",
        "inc_region_daily": "-- @incremental: by day day from ts\n"
                            "SELECT d.region, CAST(t.ts AS DATE) AS day, sum(t.battery_pct)"
                            " AS battery, count(*) AS n FROM stg_telemetry t"
                            " JOIN dim_devices d USING (device_id) GROUP BY ALL",
        "inc_slow_hourly": "-- @incremental: by hour hour from ts\n"
                           "SELECT device_id, date_trunc('hour', ts) AS hour, count(*) AS n"
                           " FROM stg_telemetry WHERE slow GROUP BY ALL",
        "inc_events_monthly": "-- @incremental: by month month from ts\n"
                              "SELECT kind, date_trunc('month', ts) AS month, count(*) AS n"
                              " FROM stg_events GROUP BY ALL",
        "inc_orders_append": "-- @incremental: append by id\n"
                             "SELECT id, device_id, amount_cents * 2 AS doubled FROM stg_orders",
        "inc_orders_merge": "-- @incremental: merge id by id\n"
                            "SELECT id, device_id, amount_cents, ts FROM stg_orders",
        # (device_id, day, metric) adapters the generated web reads
        "d_battery": "SELECT device_id, day, battery AS metric FROM inc_battery_daily",
        "d_latency": "SELECT device_id, day, total AS metric FROM inc_latency_daily",
        "d_orders": "SELECT device_id, day, revenue AS metric FROM inc_orders_daily",
    }
    files["transforms/py_device_totals.py"] = (
        '"""Per-device totals, in Python."""\n'
        "import pyarrow as pa\n\n\n"
        "def py_device_totals(d_battery: pa.Table) -> pa.Table:\n"
        '    out = d_battery.group_by("device_id").aggregate([("metric", "sum")])\n'
        '    return out.rename_columns(["device_id", "metric"])\n')
    pool = ["d_battery", "d_latency", "d_orders"]
    templates = [
        "SELECT device_id, day, metric * {k} + {i} AS metric FROM {a}",
        "SELECT a.device_id, a.day, a.metric + coalesce(b.metric, 0) AS metric"
        " FROM {a} a LEFT JOIN {b} b USING (device_id, day)",
        "SELECT device_id, day, sum(metric) OVER (PARTITION BY device_id ORDER BY day"
        " ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS metric FROM {a}",
        "SELECT device_id, max(day) AS day, sum(metric) AS metric FROM {a} GROUP BY device_id",
        "SELECT device_id, day, metric FROM {a} WHERE metric % {k} <> 0"
        " UNION ALL SELECT device_id, day, -metric FROM {b} WHERE metric % {k} = 0",
        "SELECT device_id, day, metric FROM (SELECT *, row_number() OVER (PARTITION BY day"
        " ORDER BY metric DESC, device_id) AS r FROM {a}) WHERE r <= 50",
    ]
    generated = 50 - len(t) - 1  # the Python transform counts too
    for i in range(generated):
        name = "m_final" if i == generated - 1 else f"m{i:02d}"
        a = pool[-1 - (i % min(len(pool), 4))]
        b = pool[(i * 5) % len(pool)]
        t[name] = templates[i % len(templates)].format(a=a, b=b, k=(i % 5) + 2, i=i)
        pool.append(name)
    for name, sql in t.items():
        files[f"transforms/{name}.sql"] = sql + "\n"
    return files


INCREMENTAL = ("inc_battery_daily", "inc_latency_daily", "inc_events_daily", "inc_orders_daily",
               "inc_region_daily", "inc_slow_hourly", "inc_events_monthly")
EDITABLE = "stg_telemetry"  # the node whose code the harness edits (and reverts)


def _views(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], str | None]:
    """(schema, view) -> the physical table it reads (None if it reads none)."""
    out: dict[tuple[str, str], str | None] = {}
    for schema, name, sql in con.execute(
            "SELECT schema_name, view_name, sql FROM duckdb_views() WHERE NOT internal").fetchall():
        m = re.search(r'(?<![\w"])"?_hw"?\.(?:"((?:[^"]|"")+)"|(\w+))', sql or "")
        out[(schema, name)] = (m.group(1) or "").replace('""', '"') or m.group(2) if m else None
    return out


def _base(physical: str) -> str:
    """The in-place table a published snapshot shows (its bookkeeping is the base's)."""
    from headwater.engines.versioning import parse_snapshot

    parsed = parse_snapshot(physical)
    return parsed[0] if parsed else physical


HEAD = 'SELECT * EXCLUDE ("_hw_vf") FROM "_hw"."{}"'  # a base's rows as its newest version


def _head(con: duckdb.DuckDBPyConnection, physical: str) -> str:
    """SQL reading a table's current rows without the version stamp (if it has one)."""
    cols = {c for (c,) in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = '_hw'"
        " AND table_name = ?", [physical]).fetchall()}
    return f"({HEAD.format(physical)})" if "_hw_vf" in cols else f'"_hw"."{physical}"'


def check_project(root: Path, inputs: Inputs | None = None) -> list[str]:
    """Everything that must hold after a kill -9, whenever it landed.

    - the state store passes SQLite's integrity check;
    - every public view resolves, reads an existing physical table, and that table is
      complete: for a table built whole, its row count is the one recorded when it was
      built (a partial table cannot have it);
    - a file source's table holds exactly the files its bookkeeping
      (``_hw_meta.partitions``) lists, each with all of its rows (no file loaded twice,
      none half-loaded); the Postgres source holds every id up to its cursor, once;
    - a window-incremental table has bookkeeping (``_hw_meta.windows``) for every window
      it holds, and every window whose recorded input is still the current input holds
      exactly what recomputing that window gives (no window applied twice or lost);
    - an `append`/`merge` table holds no key twice;
    - the sink's file, when present, is a whole Parquet file.
    """
    from headwater.core.incremental import window_label_sql
    from headwater.engines.base import INTERNAL_SCHEMA
    from headwater.load.loader import load_project
    from headwater.load.sql import render_for_engine

    state = read_state(root)
    if state is None:
        return (["a warehouse without a state store"]
                if (root / ".headwater/warehouse.duckdb").exists() else [])
    problems, recorded, published = state
    wh = root / ".headwater/warehouse.duckdb"
    if not wh.exists():
        return problems
    project = load_project(root)
    try:
        con = duckdb.connect(str(wh), read_only=True)
    except duckdb.Error as exc:
        return [*problems, f"warehouse does not open: {exc}"]
    try:
        tables = {r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ?",
            [INTERNAL_SCHEMA]).fetchall()}
        views = _views(con)
        physical_of: dict[str, str] = {}
        for (schema, name), physical in sorted(views.items()):
            if schema != "main":
                continue
            try:
                n = con.execute(f'SELECT count(*) FROM main."{name}"').fetchall()[0][0]
            except duckdb.Error as exc:
                problems.append(f"view {name} broken: {exc}")
                continue
            if physical is None or physical not in tables:
                problems.append(f"view {name} reads no physical table ({physical})")
                continue
            physical_of[name] = physical
            # a snapshot of an in-place table is as immutable as a table built whole: its
            # rows are checked like theirs, its base against its bookkeeping below
            rec = recorded.get(physical)
            if rec is None:
                problems.append(f"view {name} reads {physical}, which was never recorded")
            elif rec[1] is not None and rec[1] != n:
                problems.append(f"view {name}: {n} rows, its build recorded {rec[1]}")
        for node_name, physical in published.items():
            if physical not in tables:
                problems.append(f"state publishes {node_name} as {physical}, which is missing")

        # file sources: the files the bookkeeping lists, each whole, each once
        for src, per_file in (("telemetry", inputs.rows_per_day if inputs else None),
                              ("events", inputs.events_per_day if inputs else None)):
            phys = physical_of.get(src)
            if phys is None:
                continue
            phys = _base(phys)
            meta = {p for (p,) in con.execute(
                'SELECT part FROM "_hw_meta".partitions WHERE physical = ?', [phys]).fetchall()}
            held = dict(con.execute(
                f'SELECT "_hw_file", count(*) FROM "_hw"."{phys}" GROUP BY ALL').fetchall())
            if set(held) != meta:
                problems.append(f"{src}: files held {sorted(set(held) ^ meta)} disagree with"
                                " its bookkeeping")
            if per_file is not None:
                bad = {f: c for f, c in held.items() if c != per_file}
                if bad:
                    problems.append(f"{src}: files not held exactly once: {bad}")
        phys = physical_of.get("orders")
        if phys is not None:
            phys = _base(phys)
            n, distinct, top = con.execute(
                f'SELECT count(*), count(DISTINCT id), max(id) FROM "_hw"."{phys}"').fetchall()[0]
            if n != distinct:
                problems.append(f"orders: {n - distinct} id(s) ingested twice")
            if inputs is not None and inputs.pg_dsn and top is not None:
                on_server = inputs.pg_ids(int(top))
                if on_server != n:
                    problems.append(f"orders: {n} rows up to id {top}, the server has {on_server}")
        for name, key in (("inc_orders_append", "id"), ("inc_orders_merge", "id")):
            phys = physical_of.get(name)
            if phys is not None:
                phys = _base(phys)
                n, distinct = con.execute(
                    f'SELECT count(*), count(DISTINCT "{key}") FROM "_hw"."{phys}"').fetchall()[0]
                if n != distinct:
                    problems.append(f"{name}: {n - distinct} row(s) applied twice")

        # window-incremental tables against their bookkeeping and a recomputation
        for name in INCREMENTAL:
            phys = physical_of.get(name)
            node = project.nodes.get(name)
            if phys is None or node is None:
                continue
            phys = _base(phys)
            spec = node.incremental
            label = window_label_sql('"' + spec.column + '"', spec.grain)
            in_label = window_label_sql('"' + spec.input_column + '"', spec.grain)
            stored = dict(con.execute(
                'SELECT label, fp FROM "_hw_meta".windows WHERE physical = ?', [phys]).fetchall())
            held = dict(con.execute(
                f'SELECT {label} AS w, count(*)::VARCHAR || \':\' ||'
                f" coalesce(sum(hash(t)::HUGEINT), 0)::VARCHAR FROM {_head(con, phys)} t"
                " GROUP BY w").fetchall())
            orphans = sorted(set(held) - set(stored))
            if orphans:
                problems.append(f"{name}: windows {orphans[:5]} have rows but no bookkeeping")
            ups = {u: physical_of.get(u) for u in project.graph.upstream[name]}
            if any(p is None for p in ups.values()):
                continue
            refs = {}
            for u, p in ups.items():
                cols = [c for (c,) in con.execute(
                    "SELECT column_name FROM information_schema.columns"
                    " WHERE table_schema = '_hw' AND table_name = ?", [p]).fetchall()]
                keep = ", ".join('"' + c + '"' for c in cols if not c.startswith("_hw_"))
                import sqlglot

                refs[u] = sqlglot.exp.Subquery(this=sqlglot.parse_one(
                    f'SELECT {keep} FROM "_hw"."{p}"', dialect="duckdb"))
            windowed = [u for u, p in ups.items() if spec.input_column in [
                c for (c,) in con.execute(
                    "SELECT column_name FROM information_schema.columns"
                    " WHERE table_schema = '_hw' AND table_name = ?", [p]).fetchall()]]
            # the current input fingerprint of each window, as the runner computes it
            current: dict[str, str] = {}
            for u in sorted(windowed):
                src_sql = refs[u].sql(dialect="duckdb")
                for w, fp in con.execute(
                        f"SELECT coalesce({in_label}, '(null)') AS w, count(*)::VARCHAR || ':' ||"
                        f" coalesce(sum(hash(t)::HUGEINT), 0)::VARCHAR FROM {src_sql} AS t"
                        " GROUP BY w").fetchall():
                    current[w] = hashlib.sha256(
                        f"{current.get(w, '')}|{u}:{fp}".encode()).hexdigest()
            dims = sorted(u for u in ups if u not in windowed)
            if dims:
                db = sqlite3.connect(str(root / ".headwater/state.db"))
                try:
                    ident = []
                    for u in dims:
                        row = db.execute("SELECT content_fp FROM physical WHERE physical = ?",
                                         [ups[u]]).fetchone()
                        ident.append(f"{u}={row[0] if row else ''}")
                finally:
                    db.close()
                dim_fp = hashlib.sha256("|".join(ident).encode()).hexdigest()
                if stored.get("(dimensions)") != dim_fp:
                    continue  # a dimension changed since: every window is stale anyway
            fresh_sql = render_for_engine(node.sql, "duckdb", refs, "duckdb")
            expected = dict(con.execute(
                f"SELECT {label} AS w, count(*)::VARCHAR || ':' ||"
                f" coalesce(sum(hash(t)::HUGEINT), 0)::VARCHAR FROM ({fresh_sql}) t"
                " GROUP BY w").fetchall())
            for w, fp in stored.items():
                if w == "(dimensions)" or current.get(w) != fp:
                    continue  # its input changed since it was built: the next run redoes it
                if held.get(w) != expected.get(w):
                    problems.append(f"{name}: window {w} holds {held.get(w)}, recomputing it"
                                    f" gives {expected.get(w)}")
        problems += stats_problems(con)
    finally:
        con.close()
    sink = root / "output/final.parquet"
    if sink.exists():
        import pyarrow.parquet as pq

        try:
            pq.read_table(sink)
        except Exception as exc:  # noqa: BLE001 - any failure to read is the finding
            problems.append(f"sink file unreadable: {exc}")
    return problems


def stats_problems(con: Any) -> list[str]:
    """Every sum kept in ``_hw_meta.window_stats`` equals a recount of the rows it stands for.

    A stale sum would make a later run skip a changed window or give a wrong content
    fingerprint: the sums must change in the same transaction as the rows.
    """
    from headwater.engines import window_stats as ws

    problems: list[str] = []
    try:
        kept = con.execute("SELECT physical, key, part, label, rows, total::VARCHAR"
                           ' FROM "_hw_meta".window_stats').fetchall()
    except duckdb.Error:
        return problems  # made before the table existed
    groups: dict[tuple[str, str, str], dict[str, str]] = {}
    for physical, key, part, label, n, total in kept:
        groups.setdefault((physical, key, part), {})[label] = f"{n}:{total}"
    for (physical, key, part), sums in groups.items():
        if ws.MARK not in sums:
            continue  # not (yet) complete: never used
        del sums[ws.MARK]
        table = f'"_hw"."{physical}"'
        try:  # DESCRIBE, as the engine reads column types (the version stamp is no content)
            cols = [(str(r[0]), str(r[1])) for r in con.execute(f"DESCRIBE {table}").fetchall()
                    if str(r[0]) != "_hw_vf"]
        except duckdb.Error:
            problems.append(f"window_stats kept for {physical}, which is gone")
            continue
        if part:  # a file or cursor range of a source: content, or windows (visible columns)
            spec, _, _sig = key.partition("@")
            where = f"WHERE {ws.part_filter(part)}"
            if spec == ws.CONTENT:
                label, hashed = "'*'", [c for c, _ in cols]
            else:
                column, grain = spec.split("/")
                label, hashed = ws.label_sql(column, grain), [
                    c for c, _ in cols if not c.startswith("_hw_")]
            # kept under an older column list: superseded, never read
            if _sig != ws.signature(cols):
                continue
        else:
            column, grain = key.split("/")
            label, where = ws.label_sql(column, grain), ""
            hashed = [c for c, _ in cols if not c.startswith("_hw_")]
        recount = dict(con.execute(
            f"SELECT {label} AS w, count(*)::VARCHAR || ':' || sum({ws.row_hash_sql(hashed)})"
            f"::VARCHAR FROM {table} {where} GROUP BY w").fetchall())
        if recount != sums:
            diff = sorted(w for w in set(recount) | set(sums) if recount.get(w) != sums.get(w))
            problems.append(f"window_stats of {physical} ({key}{', ' + part if part else ''})"
                            f" disagree with its rows in {diff[:5]}")
    return problems


def _run_env(pg_dsn: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    if pg_dsn:
        env[PG_ENV] = pg_dsn
    return env


def _start(root: Path, pg_dsn: str | None, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "headwater.cli", "run", "--project", str(root), *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_run_env(pg_dsn),
    )


def _run_state(root: Path, pid: int) -> tuple[bool, int]:
    """Whether the killed process had started its run (it has a row), and nodes it finished."""
    path = root / ".headwater/state.db"
    if not path.exists():
        return False, 0
    db = sqlite3.connect(str(path))
    try:
        row = db.execute("SELECT run_id FROM runs WHERE pid = ? ORDER BY started_at DESC LIMIT 1",
                         [pid]).fetchone()
        if row is None:
            return False, 0
        done = db.execute("SELECT count(*) FROM run_nodes WHERE run_id = ? AND status ="
                          " 'executed'", [row[0]]).fetchone()
        return True, int(done[0]) if done else 0
    except sqlite3.OperationalError:  # the store is being created: no run yet
        return False, 0
    finally:
        db.close()


def _sleep_while(proc: subprocess.Popen[bytes], seconds: float) -> None:
    end = time.perf_counter() + seconds
    while proc.poll() is None and time.perf_counter() < end:
        time.sleep(0.005)


def _wait_run_started(root: Path, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    """Until ``proc`` has recorded its run in the state store (or exited)."""
    end = time.perf_counter() + timeout
    while proc.poll() is None and time.perf_counter() < end:
        if _run_state(root, proc.pid)[0]:
            return
        time.sleep(0.01)


def incremental_kill_test(
    work: Path, *, kills: int, seed: int, rows: int = 60_000, pg_dsn: str | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """kill -9 ``headwater run`` on the 50-model project until ``kills`` kills landed (at
    most ``2 * kills`` attempts: a run may finish before its kill); see the module doc.

    Returns the figures: attempts, kills landed (the process was still running),
    landed mid-run (it had started its run), landed mid-build (some node had been
    built and recorded), problems found, and the seconds it took.
    """
    say = log or (lambda _m: None)
    rng = random.Random(seed)
    t_start = time.perf_counter()
    shutil.rmtree(work, ignore_errors=True)
    victim = work / "victim"
    inputs = Inputs(victim, rows_per_day=rows // 6, seed=seed, pg_dsn=pg_dsn)
    write_project(victim, project_files(inputs.schema if pg_dsn else None))
    inputs.setup()
    problems: list[str] = []
    figures: dict[str, Any] = {"attempts": kills, "kills": 0, "mid_run": 0, "mid_build": 0,
                               "completed_before_kill": 0, "changes": 0, "failed_runs": 0,
                               "survived": 0}
    try:
        t0 = time.perf_counter()
        first = _start(victim, pg_dsn)
        _wait_run_started(victim, first)
        startup = time.perf_counter() - t0
        _, err = first.communicate()
        if first.returncode != 0:
            raise RuntimeError(f"the first run failed: {err.decode()[-2000:]}")
        expect = time.perf_counter() - t0 - startup  # how long a run takes once started
        first_expect = expect
        figures["first_run_s"] = round(time.perf_counter() - t0, 2)
        edited = False
        original = (victim / f"transforms/{EDITABLE}.sql").read_text()
        k = -1
        while figures["kills"] < kills and k + 1 < 2 * kills:  # `kills` kills that land
            k += 1
            changes = inputs.mutate()
            if k % 7 == 3:  # a code change rebuilds from scratch; its revert reuses tables
                edited = not edited
                (victim / f"transforms/{EDITABLE}.sql").write_text(
                    original.replace("FROM telemetry", "FROM telemetry WHERE seq >= 0")
                    if edited else original)
                changes.append(("edited" if edited else "reverted") + f" {EDITABLE}.sql")
            figures["changes"] += len(changes)
            args: list[str] = []
            if k % 9 == 8:
                args = ["--full-refresh", "--select", "inc_battery_daily+,orders+"]
            proc = _start(victim, pg_dsn, *args)
            t0 = time.perf_counter()
            run_started: float | None = None
            if rng.random() < 0.2:  # while it starts: loading, planning, opening the warehouse
                delay = rng.uniform(0.0, startup)
                _sleep_while(proc, delay)
                when = f"{delay:.2f}s after launch"
            else:  # once its run has started: while nodes build and publish
                _wait_run_started(victim, proc)
                run_started = time.perf_counter()
                delay = rng.uniform(0.0, expect * 1.1)
                _sleep_while(proc, delay)
                when = f"{delay:.2f}s into its run"
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                figures["kills"] += 1
                started, built = _run_state(victim, proc.pid)
                figures["mid_run"] += started
                figures["mid_build"] += built > 0
                what = f"killed {when}, " + (f"{built} node(s) built" if started
                                             else "before its run started")
            else:
                figures["completed_before_kill"] += 1
                elapsed = time.perf_counter() - t0
                if proc.returncode != 0:
                    figures["failed_runs"] += 1
                    problems.append(f"kill {k}: run failed on its own: "
                                    f"{proc.stderr.read().decode()[-800:] if proc.stderr else ''}")
                if run_started is not None:  # learn how long a run takes once started
                    took = time.perf_counter() - run_started
                    # (incremental runs are much shorter than the first, full build)
                    expect = max(first_expect / 10, 0.5 * expect + 0.5 * took)
                what = f"finished in {elapsed:.2f}s, before the kill"
            if proc.stderr:
                proc.stderr.close()
            found = check_project(victim, inputs)
            problems += [f"after kill {k} ({what}): {p}" for p in found]
            if "killed" in what and not found:
                figures["survived"] += 1
            say(f"attempt {k + 1} (kills so far {figures['kills']}/{kills}): "
                f"{'; '.join(changes) or 'no change'} -> {what}"
                + (f" PROBLEMS: {found}" if found else ""))
        figures["attempts"] = k + 1
        if edited:
            (victim / f"transforms/{EDITABLE}.sql").write_text(original)
        final = _start(victim, pg_dsn)
        _, err = final.communicate()
        if final.returncode != 0:
            problems.append(f"final run failed: {err.decode()[-2000:]}")
        problems += [f"after the final run: {p}" for p in check_project(victim, inputs)]
        again = subprocess.run(
            [sys.executable, "-m", "headwater.cli", "run", "--json", "--project", str(victim)],
            capture_output=True, text=True, env=_run_env(pg_dsn))
        if again.returncode == 0:
            import json

            executed = [n["name"] for n in json.loads(again.stdout)["nodes"]
                        if n["status"] == "executed"]
            if executed:
                problems.append(f"a no-op run after recovery still executed {executed}")
        else:
            problems.append(f"the no-op run failed: {again.stderr[-800:]}")
        # an uninterrupted build of the same final inputs
        reference = work / "reference"
        shutil.copytree(victim, reference, ignore=shutil.ignore_patterns(".headwater", "output"))
        t0 = time.perf_counter()
        ref = _start(reference, pg_dsn)
        _, err = ref.communicate()
        figures["reference_run_s"] = round(time.perf_counter() - t0, 2)
        if ref.returncode != 0:
            problems.append(f"reference run failed: {err.decode()[-2000:]}")
        else:
            expected, got = checksums(reference), checksums(victim)
            if got != expected:
                bad = sorted(n for n in set(expected) | set(got) if got.get(n) != expected.get(n))
                problems.append(f"final result differs from an uninterrupted build: {bad}")
            figures["tables_compared"] = len(expected)
            import pyarrow.parquet as pq

            a = pq.read_table(victim / "output/final.parquet")
            b = pq.read_table(reference / "output/final.parquet")
            if a.num_rows != b.num_rows or a.sort_by(
                    [(c, "ascending") for c in a.column_names]) != b.sort_by(
                    [(c, "ascending") for c in b.column_names]):
                problems.append("the sink's file differs from an uninterrupted build's")
    finally:
        inputs.drop()
    figures["problems"] = problems
    figures["seconds"] = round(time.perf_counter() - t_start, 1)
    figures["postgres"] = bool(pg_dsn)
    return figures

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=50,
                    help="kills that must land (incremental project; at most twice as many "
                    "attempts) or attempts (layered project)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rows", type=int, default=None,
                    help="telemetry rows (default: 60000 for the 50-model project, "
                    "400000 for the layered one)")
    ap.add_argument("--project", choices=["incremental", "layered"], default="incremental",
                    help="incremental: the 50-model project with incremental nodes, file and "
                    "Postgres sources (default); layered: the 24-model full-rebuild project")
    ap.add_argument("--pg", default=None, metavar="DSN",
                    help="PostgreSQL for the orders source (default: $HEADWATER_TEST_PG_DSN or "
                    "postgresql://postgres@127.0.0.1:5432/test when it answers; "
                    "'none' for a files source instead)")
    ap.add_argument("--work", type=Path, default=Path("bench/.work/kill"))
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args()
    if args.project == "layered":
        report: dict[str, Any] = kill_test(args.work, kills=args.kills, seed=args.seed,
                                           rows=args.rows or 400_000)
    else:
        pg = default_pg() if args.pg is None else (None if args.pg == "none" else args.pg)
        report = incremental_kill_test(
            args.work, kills=args.kills, seed=args.seed, rows=args.rows or 60_000, pg_dsn=pg,
            log=None if args.json else (lambda m: print(m, flush=True)))
    if args.json:
        import json

        print(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            if key != "problems":
                print(f"{key}: {value}")
        for p in report["problems"]:
            print("PROBLEM:", p)
    sys.exit(1 if report["problems"] else 0)


def default_pg() -> str | None:
    """The test server's dsn when it answers, else None."""
    dsn = os.environ.get("HEADWATER_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
    try:
        import psycopg

        psycopg.connect(dsn, connect_timeout=3).close()
    except Exception:  # noqa: BLE001 - no server, no driver: run without it
        return None
    return dsn


if __name__ == "__main__":
    main()
