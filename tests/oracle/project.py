"""The project the oracle drives: its code as a settings model, its data, its PostgreSQL tables.

The code is a flat dict of settings (``CODE``: "daily.mode" -> "incremental" ...);
``render_code`` turns any combination into valid project files, so an operation is just
"set this key to this value" and any subsequence of operations replays to a valid
project. Nodes:

- sources: ``telemetry`` (CSV files, one per day, plus late and renamed files),
  ``devices`` (one CSV, a dimension), ``orders`` (PostgreSQL, full load: inserts,
  updates, deletes), ``payments`` (PostgreSQL, ``cursor = "updated_at"``: inserts only);
- ``stg_telemetry`` (table or view), ``stg_copy`` (``SELECT *`` view), ``wide_devices``;
- window incremental ``daily`` (``by day day from ts``, or full), ``daily_region``
  (``by day day``, joined to the dimension ``devices``), ``hourly`` (``by hour hour from
  ts`` straight over the files source, with or without ``@lookback: 2``) and ``monthly``
  (``by month month from day`` over ``daily``, or full);
- ``orders_merge`` (``merge id by updated_at``) and ``payments_append`` (``append by id``);
- ``device_totals`` (Python, pyarrow); ``overall`` (checks: error and warn severity),
  ``stats`` (floats), ``order_stats``, ``report``; ``hub``/``hub_renamed`` and its reader
  ``hub_leaf`` (a node renamed with its reader rewritten); optional leaves ``extra_*``;
- sinks: ``report`` to Parquet, ``overall`` to CSV.
"""

from __future__ import annotations

import random
from pathlib import Path

PG_ENV = "HW_ORACLE_PG_DSN"  # the dsn reaches the project through the environment
DEVICES = [f"d{i}" for i in range(5)]
DAYS = range(1, 10)  # 2026-11-01 .. 2026-11-09
TELEMETRY = "data/telemetry"
TELEMETRY_TYPES = {"device_id": "VARCHAR", "ts": "TIMESTAMP", "v": "BIGINT"}
SINKS = {"report_export": ("report", "output/report.parquet"),
         "overall_export": ("overall", "output/overall.csv")}

# -- code -------------------------------------------------------------------------------

# setting -> its default; CHOICES: setting -> [(value, kind of edit it is)]
CODE: dict[str, str] = {
    "stg.variant": "base", "stg.mat": "table",
    "daily.variant": "base", "daily.mode": "incremental", "daily.check": "none",
    "region.variant": "base",
    "merge.variant": "base", "merge.mode": "incremental",
    "append.variant": "base", "append.mode": "incremental",
    "py.variant": "base",
    "overall.variant": "base", "overall.mat": "table", "overall.check": "base",
    "stats.variant": "base", "order_stats.mat": "table",
    "hub.name": "hub",
    "extra_a": "on", "extra_b": "off", "extra_c": "off",
    "hourly.lookback": "none", "monthly.mode": "incremental",
}
CHOICES: dict[str, list[tuple[str, str]]] = {
    "stg.variant": [("base", "revert"), ("cosmetic", "cosmetic"), ("same", "same_output"),
                    ("filter", "output_change"), ("bucket5", "output_change"),
                    ("addcol", "add_column"), ("dropcol", "remove_column"),
                    ("renamecol", "rename_column")],
    "stg.mat": [("table", "materialized"), ("view", "materialized")],
    "daily.variant": [("base", "revert"), ("cosmetic", "cosmetic"), ("same", "same_output"),
                      ("changed", "output_change"), ("broken", "fail")],
    "daily.mode": [("incremental", "incremental_mode"), ("full", "incremental_mode")],
    "daily.check": [("none", "remove_check"), ("notnull", "add_check"),
                    ("warn", "add_check")],
    "region.variant": [("base", "revert"), ("changed", "output_change"), ("broken", "fail")],
    "merge.variant": [("base", "revert"), ("changed", "output_change")],
    "merge.mode": [("incremental", "incremental_mode"), ("full", "incremental_mode")],
    "append.variant": [("base", "revert"), ("changed", "output_change")],
    "append.mode": [("incremental", "incremental_mode"), ("full", "incremental_mode")],
    "py.variant": [("base", "revert"), ("cosmetic", "cosmetic"), ("same", "same_output"),
                   ("changed", "output_change"), ("raises", "fail")],
    "overall.variant": [("base", "revert"), ("addcol", "add_column")],
    "overall.mat": [("table", "materialized"), ("view", "materialized")],
    "overall.check": [("base", "remove_check"), ("extra", "add_check"),
                      ("failing", "fail")],
    "stats.variant": [("base", "revert"), ("changed", "output_change")],
    "order_stats.mat": [("table", "materialized"), ("view", "materialized")],
    "hub.name": [("hub", "rename_node"), ("hub_renamed", "rename_node")],
    "extra_a": [("on", "add_node"), ("off", "remove_node")],
    "extra_b": [("on", "add_node"), ("off", "remove_node")],
    "extra_c": [("on", "add_node"), ("off", "remove_node")],
    "hourly.lookback": [("none", "lookback"), ("2", "lookback")],
    "monthly.mode": [("incremental", "incremental_mode"), ("full", "incremental_mode")],
}
# values that make a run fail (the generator fixes them soon after)
BROKEN = {("daily.variant", "broken"), ("region.variant", "broken"),
          ("py.variant", "raises"), ("overall.check", "failing")}


def _incremental(mode: str, spec: str) -> str:
    return f"-- @incremental: {spec}\n" if mode == "incremental" else ""


def _stg(c: dict[str, str]) -> str:
    head = f"-- Staged telemetry.\n-- @tags: staging\n-- @materialized: {c['stg.mat']}\n"
    body = {
        "base": "SELECT device_id, ts, v, v % 7 AS bucket\nFROM telemetry\n"
                "WHERE v >= 0 AND device_id IS NOT NULL\n",
        "cosmetic": "select   device_id,\n         ts,  v,\n"
                    "         v % 7 as bucket   -- the bucket\n"
                    "from telemetry\nwhere v >= 0 and device_id is not null\n",
        "same": "SELECT device_id, ts, v + 0 AS v, v % 7 AS bucket\nFROM telemetry\n"
                "WHERE device_id IS NOT NULL AND v >= 0\n",
        "filter": "SELECT device_id, ts, v, v % 7 AS bucket\nFROM telemetry\n"
                  "WHERE v >= 10 AND device_id IS NOT NULL\n",
        "bucket5": "SELECT device_id, ts, v, v % 5 AS bucket\nFROM telemetry\n"
                   "WHERE v >= 0 AND device_id IS NOT NULL\n",
        "addcol": "SELECT device_id, ts, v, v % 7 AS bucket, v * 2 AS v2\nFROM telemetry\n"
                  "WHERE v >= 0 AND device_id IS NOT NULL\n",
        "dropcol": "SELECT device_id, ts, v\nFROM telemetry\n"
                   "WHERE v >= 0 AND device_id IS NOT NULL\n",
        "renamecol": "SELECT device_id, ts, v, v % 7 AS bkt\nFROM telemetry\n"
                     "WHERE v >= 0 AND device_id IS NOT NULL\n",
    }[c["stg.variant"]]
    return head + body


def _daily(c: dict[str, str]) -> str:
    head = "-- Daily totals per device.\n-- @tags: daily\n"
    head += _incremental(c["daily.mode"], "by day day from ts")
    head += {"none": "", "notnull": "-- @check: not_null(device_id)\n",
             "warn": "-- @check: expression(n < 3) severity=warn\n"}[c["daily.check"]]
    body = {
        "base": "SELECT CAST(ts AS DATE) AS day, device_id, sum(v) AS total, count(*) AS n\n"
                "FROM stg_telemetry\nGROUP BY ALL\n",
        "cosmetic": "select cast(ts as date) as day, device_id,\n"
                    "       sum(v) as total,  -- the sum\n       count(*) as n\n"
                    "from stg_telemetry group by all\n",
        "same": "SELECT CAST(ts AS DATE) AS day, device_id, sum(v) AS total, count(1) AS n\n"
                "FROM stg_telemetry\nGROUP BY device_id, CAST(ts AS DATE)\n",
        "changed": "SELECT CAST(ts AS DATE) AS day, device_id, sum(v) + 1 AS total,"
                   " count(*) AS n\nFROM stg_telemetry\nGROUP BY ALL\n",
        "broken": "SELECT CAST(ts AS DATE) AS day, device_id, sum(v_missing) AS total,"
                  " count(*) AS n\nFROM stg_telemetry\nGROUP BY ALL\n",
    }[c["daily.variant"]]
    return head + body


def _region(c: dict[str, str]) -> str:
    region = {"base": "coalesce(v.region, 'none')", "changed": "upper(coalesce(v.region, 'none'))",
              "broken": "coalesce(v.region_missing, 'none')"}[c["region.variant"]]
    return ("-- Daily totals with the device's region (a dimension read whole).\n"
            "-- @incremental: by day day\n"
            f"SELECT d.day, d.device_id, {region} AS region, d.total\n"
            "FROM daily AS d LEFT JOIN devices AS v ON v.device_id = d.device_id\n")


def _merge(c: dict[str, str]) -> str:
    amount = "amount * 10 AS amount" if c["merge.variant"] == "changed" else "amount"
    return ("-- Orders, merged by id.\n" + _incremental(c["merge.mode"], "merge id by updated_at")
            + f"SELECT id, device_id, {amount}, updated_at FROM orders\n")


def _append(c: dict[str, str]) -> str:
    k = 3 if c["append.variant"] == "changed" else 2
    return ("-- Payments, appended by id.\n" + _incremental(c["append.mode"], "append by id")
            + f"SELECT id, device_id, amount * {k} AS doubled, updated_at FROM payments\n")


_PY_HEAD = ('"""Per-device totals, in Python."""\n'
            "import pyarrow as pa\nimport pyarrow.compute as pc\n")
_PY = {
    "base": "\n\ndef device_totals(daily: pa.Table) -> pa.Table:\n"
            '    out = daily.group_by("device_id").aggregate([("total", "sum"), ("n", "sum")])\n'
            '    return pa.table({"device_id": out["device_id"],\n'
            '                     "total": pc.cast(out["total_sum"], pa.int64()),\n'
            '                     "n": pc.cast(out["n_sum"], pa.int64())})\n',
    "cosmetic": "\n\ndef device_totals(daily: pa.Table) -> pa.Table:\n"
                "    # sums per device\n"
                '    out = daily.group_by("device_id").aggregate(\n'
                '        [("total", "sum"), ("n", "sum")]\n    )\n\n'
                '    return pa.table({"device_id": out["device_id"],\n'
                '                     "total": pc.cast(out["total_sum"], pa.int64()),  # sums\n'
                '                     "n": pc.cast(out["n_sum"], pa.int64())})\n',
    "same": "\n\ndef device_totals(daily: pa.Table) -> pa.Table:\n"
            "    sums: dict[str, list[int]] = {}\n"
            '    for row in daily.select(["device_id", "total", "n"]).to_pylist():\n'
            '        acc = sums.setdefault(row["device_id"], [0, 0])\n'
            '        acc[0] += int(row["total"])\n'
            '        acc[1] += int(row["n"])\n'
            "    keys = sorted(sums)\n"
            '    return pa.table({"device_id": pa.array(keys, pa.string()),\n'
            '                     "total": pa.array([sums[k][0] for k in keys], pa.int64()),\n'
            '                     "n": pa.array([sums[k][1] for k in keys], pa.int64())})\n',
    "changed": "\n\ndef device_totals(daily: pa.Table) -> pa.Table:\n"
               '    out = daily.group_by("device_id").aggregate([("total", "sum"), ("n", "sum")])\n'
               '    return pa.table({"device_id": out["device_id"],\n'
               '                     "total": pc.multiply(pc.cast(out["total_sum"], pa.int64()),'
               ' 2),\n'
               '                     "n": pc.cast(out["n_sum"], pa.int64())})\n',
    "raises": "\n\ndef device_totals(daily: pa.Table) -> pa.Table:\n"
              '    raise ValueError("oracle: a Python transform that fails")\n',
}


def _overall(c: dict[str, str]) -> str:
    head = (f"-- Totals per device.\n-- @materialized: {c['overall.mat']}\n"
            "-- @check: not_null(device_id)\n-- @check: unique(device_id)\n"
            "-- @check: expression(total < 400) severity=warn\n")
    head += {"base": "", "extra": "-- @check: row_count(min=1)\n",
             "failing": "-- @check: expression(total < 0)\n"}[c["overall.check"]]
    extra = ", max(day) AS last_day" if c["overall.variant"] == "addcol" else ""
    return head + (f"SELECT device_id, sum(n) AS n, sum(total) AS total{extra}\n"
                   "FROM daily\nGROUP BY ALL\n")


def _stats(c: dict[str, str]) -> str:
    mean = "avg(v) + 0.5" if c["stats.variant"] == "changed" else "avg(v)"
    return ("-- Floating-point statistics per device.\n"
            f"SELECT device_id, {mean} AS mean_v, stddev_pop(v) AS sd_v, sum(v) / 3.0 AS third,"
            " count(*) AS n\nFROM stg_telemetry\nGROUP BY ALL\n")


def render_code(c: dict[str, str]) -> dict[str, str]:
    """Every file under transforms/ for settings ``c`` (relative path -> text)."""
    hub = c["hub.name"]
    files = {
        "transforms/stg_telemetry.sql": _stg(c),
        "transforms/stg_copy.sql": "-- Everything staged.\n-- @materialized: view\n"
                                   "SELECT * FROM stg_telemetry\n",
        "transforms/wide_devices.sql": "-- @materialized: view\nSELECT * FROM devices\n",
        "transforms/daily.sql": _daily(c),
        "transforms/daily_region.sql": _region(c),
        "transforms/orders_merge.sql": _merge(c),
        "transforms/payments_append.sql": _append(c),
        "transforms/device_totals.py": _PY_HEAD + _PY[c["py.variant"]],
        "transforms/overall.sql": _overall(c),
        "transforms/stats.sql": _stats(c),
        "transforms/order_stats.sql": (
            f"-- @materialized: {c['order_stats.mat']}\n"
            "SELECT coalesce(v.region, 'none') AS region, count(*) AS orders,"
            " sum(o.amount) AS amount\n"
            "FROM orders_merge AS o LEFT JOIN devices AS v ON v.device_id = o.device_id\n"
            "GROUP BY ALL\n"),
        "transforms/report.sql": (
            "-- The report the sink exports.\n"
            "SELECT t.device_id, t.total, t.n, coalesce(p.paid, 0) AS paid, s.mean_v\n"
            "FROM overall AS t\n"
            "LEFT JOIN (SELECT device_id, sum(doubled) AS paid FROM payments_append"
            " GROUP BY ALL) AS p ON p.device_id = t.device_id\n"
            "LEFT JOIN stats AS s ON s.device_id = t.device_id\n"),
        # windows over a file source's own per-file sums, and over a window node's
        "transforms/hourly.sql": (
            "-- Hourly counts straight from the source files.\n"
            "-- @incremental: by hour hour from ts\n"
            + ("-- @lookback: 2\n" if c["hourly.lookback"] != "none" else "")
            + "SELECT date_trunc('hour', ts) AS hour, device_id, count(*) AS n, sum(v) AS total\n"
            "FROM telemetry\nGROUP BY ALL\n"),
        "transforms/monthly.sql": (
            "-- Monthly totals from the daily windows.\n"
            + _incremental(c["monthly.mode"], "by month month from day")
            + "SELECT CAST(date_trunc('month', day) AS DATE) AS month, sum(total) AS total,"
            " sum(n) AS n\nFROM daily\nGROUP BY ALL\n"),
        f"transforms/{hub}.sql": "SELECT device_id, total FROM overall WHERE total > 20\n",
        "transforms/hub_leaf.sql": "SELECT count(*) AS c, coalesce(sum(total), 0) AS t"
                                   f" FROM {hub}\n",
    }
    extras = {
        "extra_a": "SELECT device_id, count(*) AS c FROM stg_telemetry GROUP BY ALL\n",
        "extra_b": "SELECT region, count(*) AS c FROM devices GROUP BY ALL\n",
        "extra_c": "SELECT max(total) AS top, count(*) AS c FROM daily_region\n",
    }
    for name, sql in extras.items():
        if c[name] == "on":
            files[f"transforms/{name}.sql"] = sql
    return files


def static_files(table_prefix: str) -> dict[str, str]:
    """headwater.toml, sources and sinks (they never change)."""
    files = {
        "headwater.toml": 'name = "oracle"\nthreads = 2\n',
        "sources/telemetry.toml": (
            f'type = "files"\npath = "{TELEMETRY}/*.csv"\n'
            "columns = { " + ", ".join(f'{c} = "{t}"' for c, t in TELEMETRY_TYPES.items())
            + " }\n"),
        "sources/devices.toml": 'type = "files"\npath = "data/devices.csv"\n',
        "sources/orders.toml": (
            f'type = "postgres"\ndsn = "${{{PG_ENV}}}"\ntable = "public.{table_prefix}_orders"\n'),
        "sources/payments.toml": (
            f'type = "postgres"\ndsn = "${{{PG_ENV}}}"\n'
            f'table = "public.{table_prefix}_payments"\ncursor = "updated_at"\n'),
    }
    for sink, (node, path) in SINKS.items():
        files[f"sinks/{sink}.toml"] = f'type = "files"\nfrom = "{node}"\npath = "{path}"\n'
    return files


def write_code(root: Path, c: dict[str, str]) -> None:
    """Make transforms/ hold exactly ``render_code(c)`` (files unchanged are not touched)."""
    files = render_code(c)
    for rel, text in files.items():
        path = root / rel
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
    for path in (root / "transforms").iterdir():
        if f"transforms/{path.name}" not in files and path.is_file():
            path.unlink()


# -- data -------------------------------------------------------------------------------


def telemetry_csv(day: int, seed: int, rows: int, note: bool) -> str:
    rng = random.Random(f"telemetry:{day}:{seed}")
    lines = ["device_id,ts,v" + (",note" if note else "")]
    for _ in range(rows):
        ts = f"2026-11-{day:02d} {rng.randrange(24):02d}:{rng.randrange(60):02d}:00"
        line = f"{rng.choice(DEVICES)},{ts},{rng.randrange(-5, 100)}"
        lines.append(line + (f",n{rng.randrange(4)}" if note else ""))
    return "\n".join(lines) + "\n"


def devices_csv(seed: int, model: bool) -> str:
    rng = random.Random(f"devices:{seed}")
    # d4 is left out now and then (its rows join to no region); d5 has no telemetry
    names = [d for d in [*DEVICES, "d5"] if d != "d4" or rng.random() < 0.7]
    lines = ["device_id,region" + (",model" if model else "")]
    for d in names:
        line = f"{d},{rng.choice(['north', 'south', 'east'])}"
        lines.append(line + (f",m{rng.randrange(3)}" if model else ""))
    return "\n".join(lines) + "\n"


def shift_digits(text: str, k: int) -> str:
    """The same CSV with every digit of the last numeric field (``v``) shifted by ``k``:
    the same size, different content."""
    out = text.splitlines(keepends=True)
    for i in range(1, len(out)):
        fields = out[i].rstrip("\n").split(",")
        fields[2] = "".join(str((int(ch) + k) % 10) if ch.isdigit() else ch for ch in fields[2])
        out[i] = ",".join(fields) + "\n"
    return "".join(out)


def strip_note(text: str) -> str:
    return "".join(",".join(line.rstrip("\n").split(",")[:3]) + "\n"
                   for line in text.splitlines(keepends=True))


def add_note(text: str, seed: int) -> str:
    rng = random.Random(f"note:{seed}")
    lines = text.splitlines()
    out = [lines[0] + ",note"] + [f"{line},n{rng.randrange(4)}" for line in lines[1:]]
    return "\n".join(out) + "\n"
