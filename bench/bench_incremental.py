"""Incremental benchmark: adding a day of telemetry vs rebuilding everything.

30 days of telemetry (``--rows``, 10M by default) as one Parquet file per day, a
small devices dimension, and seven transforms:

* five chained incremental ones (``-- @incremental: by <col> day [from <col>]``):
  ``stg_telemetry`` (casts) -> ``enriched`` (joins the devices dimension, which is
  read whole) -> ``device_hour`` -> ``device_hour_rolling`` (a rolling 3-hour
  latency and errors so far that day, computed within the day: window-local) ->
  ``device_day``;
* two full aggregations over ``device_day``: ``fleet_daily`` and ``device_alltime``.

Per ``--repeat``, for Headwater: a full build from empty state (30 days); day 31
arrives (a new file) and ``headwater run``; a no-op run; a full build from scratch of
the same 31 days (a copy of the project without ``.headwater``), whose
order-independent checksums must equal the incremental result; then day 15 is
re-delivered with corrected content, a run, and the same check again.

The same models as dbt incremental models (``is_incremental()`` filters on the
timestamp; ``append`` for the row-level models, ``delete+insert`` on the key for the
aggregations, which re-do their last built day) over the same Parquet files read by
dbt-duckdb (``external_location``): full build, add a day (its checksums against
Headwater's full rebuild of the same inputs), no-op, ``--full-refresh``, and the
re-delivered day (which a max-timestamp filter does not see: its result is checked
against the full rebuild too, and reported as stale when it differs).

    python bench/bench_incremental.py [--rows 10000000] [--days 30] [--repeat 2]
                                      [--tools headwater,dbt]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_core import git_rev, headwater_cmd, wait_quiet  # noqa: E402
from generate import START_DAY, _telemetry_select  # noqa: E402
from peers import (  # noqa: E402
    Venv,
    clean,
    dbt_cmd,
    dbt_venv,
    run_cmd,
)

TARGET = 0.10
INCREMENTAL = ["stg_telemetry", "enriched", "device_hour", "device_hour_rolling", "device_day"]
FULL = ["fleet_daily", "device_alltime"]
MODELS = INCREMENTAL + FULL

# name -> (headwater annotation, dbt config, dbt incremental filter, SQL with {ref:x} / {inc})
# ``{inc}`` is where the dbt filter goes ("" for Headwater); ``{src:x}`` a source.
SQL: dict[str, tuple[str, str, str, str]] = {
    "stg_telemetry": (
        "-- @incremental: by ts day",
        "materialized='incremental', incremental_strategy='append'",
        "AND ts > (SELECT max(ts) FROM {this})",
        """-- Staging: typed, cleaned telemetry.
{ann}
SELECT
    device_id::BIGINT AS device_id,
    ts,
    lower(status) AS status,
    battery_pct::DOUBLE AS battery_pct,
    coalesce(signal_dbm, -120)::INTEGER AS signal_dbm,
    app_latency_ms::DOUBLE AS latency_ms,
    status IN ('error', 'offline') AS is_error
FROM {src:telemetry}
WHERE ts IS NOT NULL AND battery_pct BETWEEN 0 AND 100 {inc}
"""),
    "enriched": (
        "-- @incremental: by ts day",
        "materialized='incremental', incremental_strategy='append'",
        "WHERE t.ts > (SELECT max(ts) FROM {this})",
        """-- Telemetry with the device's region and model and a health score.
{ann}
SELECT
    t.device_id,
    t.ts,
    t.status,
    t.battery_pct,
    t.signal_dbm,
    t.latency_ms,
    t.is_error,
    coalesce(d.region, 'unknown') AS region,
    coalesce(d.hw_model, 'unknown') AS hw_model,
    round(0.5 * t.battery_pct + 0.3 * (t.signal_dbm + 120) * 1.25
          + 0.2 * greatest(0, 100 - t.latency_ms / 10), 2) AS health
FROM {ref:stg_telemetry} AS t
LEFT JOIN {src:devices} AS d ON t.device_id = d.device_id
{inc}
"""),
    "device_hour": (
        "-- @incremental: by hour_ts day from ts",
        "materialized='incremental', incremental_strategy='delete+insert', "
        "unique_key=['device_id', 'hour_ts']",
        "WHERE ts >= (SELECT max(hour_ts) FROM {this})",
        """-- One row per device and hour.
{ann}
SELECT
    device_id,
    date_trunc('hour', ts) AS hour_ts,
    min(region) AS region,
    count(*)::BIGINT AS events,
    count_if(is_error)::BIGINT AS errors,
    avg(battery_pct) AS battery,
    avg(signal_dbm) AS signal,
    avg(latency_ms) AS latency,
    max(latency_ms) AS max_latency,
    avg(health) AS health
FROM {ref:enriched}
{inc}
GROUP BY device_id, date_trunc('hour', ts)
"""),
    "device_hour_rolling": (
        "-- @incremental: by hour_ts day",
        "materialized='incremental', incremental_strategy='delete+insert', "
        "unique_key=['device_id', 'hour_ts']",
        "WHERE CAST(hour_ts AS DATE) >= (SELECT max(CAST(hour_ts AS DATE)) FROM {this})",
        """-- Rolling 3-hour latency and errors so far that day, per device (within the day).
{ann}
SELECT
    device_id,
    hour_ts,
    region,
    events,
    errors,
    battery,
    signal,
    latency,
    health,
    avg(latency) OVER w AS latency_3h,
    sum(errors) OVER (PARTITION BY device_id, CAST(hour_ts AS DATE) ORDER BY hour_ts)
        AS errors_today
FROM {ref:device_hour}
{inc}
WINDOW w AS (PARTITION BY device_id, CAST(hour_ts AS DATE) ORDER BY hour_ts
             ROWS BETWEEN 2 PRECEDING AND CURRENT ROW)
"""),
    "device_day": (
        "-- @incremental: by day day from hour_ts",
        "materialized='incremental', incremental_strategy='delete+insert', "
        "unique_key=['device_id', 'day']",
        "WHERE CAST(hour_ts AS DATE) >= (SELECT max(day) FROM {this})",
        """-- One row per device and day.
{ann}
SELECT
    device_id,
    CAST(hour_ts AS DATE) AS day,
    min(region) AS region,
    count(*)::BIGINT AS active_hours,
    sum(events)::BIGINT AS events,
    sum(errors)::BIGINT AS errors,
    avg(battery) AS battery,
    avg(signal) AS signal,
    max(latency_3h) AS worst_latency_3h,
    max(errors_today)::BIGINT AS errors_day,
    avg(health) AS health
FROM {ref:device_hour_rolling}
{inc}
GROUP BY device_id, CAST(hour_ts AS DATE)
"""),
    "fleet_daily": (
        "", "materialized='table'", "",
        """-- Fleet-wide daily statistics (a full aggregation).
SELECT
    day,
    count(*)::BIGINT AS devices,
    sum(events)::BIGINT AS events,
    sum(errors)::BIGINT AS errors,
    round(sum(errors) / sum(events), 5) AS error_rate,
    avg(battery) AS battery,
    avg(health) AS health,
    quantile_cont(worst_latency_3h, 0.95) AS p95_latency_3h
FROM {ref:device_day}
GROUP BY day
"""),
    "device_alltime": (
        "", "materialized='table'", "",
        """-- Per-device statistics over all time (a full aggregation).
SELECT
    dd.device_id,
    min(d.region) AS region,
    min(d.hw_model) AS hw_model,
    count(*)::BIGINT AS days_active,
    sum(dd.events)::BIGINT AS events,
    sum(dd.errors)::BIGINT AS errors,
    avg(dd.health) AS health,
    max(dd.worst_latency_3h) AS worst_latency_3h,
    min(dd.day) AS first_day,
    max(dd.day) AS last_day
FROM {ref:device_day} AS dd
LEFT JOIN {src:devices} AS d ON dd.device_id = d.device_id
GROUP BY dd.device_id
"""),
}


def render(name: str, tool: str) -> str:
    ann, config, inc, body = SQL[name]
    import re

    if tool == "headwater":
        text = body.replace("{ann}\n", ann + "\n" if ann else "").replace(" {inc}", "")
        text = text.replace("{inc}\n", "")
        return re.sub(r"\{(?:ref|src):(\w+)\}", r"\1", text)
    text = body.replace("{ann}\n", "")
    filt = inc.replace("{this}", "{{ this }}")
    text = text.replace("{inc}", "{% if is_incremental() %}" + filt + "{% endif %}" if inc else "")
    text = re.sub(r"\{ref:(\w+)\}", r"{{ ref('\1') }}", text)
    text = re.sub(r"\{src:(\w+)\}", r"{{ source('raw', '\1') }}", text)
    return "{{ config(" + config + ") }}\n" + text


# --------------------------------------------------------------------------- data


def day_of(i: int) -> str:
    return (START_DAY + timedelta(days=i)).isoformat()


def write_day(con: Any, folder: Path, i: int, per_day: int, devices: int, seed: int) -> Path:
    path = folder / f"{day_of(i)}.parquet"
    tmp = path.with_suffix(".tmp")
    sql = _telemetry_select(i * per_day, (i + 1) * per_day,
                            START_DAY + timedelta(days=i), devices, seed)
    con.execute(f"COPY ({sql}) TO '{tmp}' (FORMAT parquet)")
    os.replace(tmp, path)
    return path


def make_data(root: Path, days: int, per_day: int, devices: int, seed: int) -> dict[str, Path]:
    """30 days in data/telemetry; day 31 and the re-delivered day 15 kept aside."""
    import duckdb

    tel = root / "data" / "telemetry"
    spare = root / "spare"
    marker = root / "data" / ".params.json"
    params = {"days": days, "per_day": per_day, "devices": devices, "seed": seed}
    paths = {"new": spare / f"{day_of(days)}.parquet",
             "orig": spare / f"orig-{day_of(days // 2)}.parquet",
             "redelivered": spare / f"redelivered-{day_of(days // 2)}.parquet",
             "dim": root / "data" / "devices" / "devices.parquet"}
    if marker.exists() and json.loads(marker.read_text()) == params and all(
            p.exists() for p in paths.values()):
        return paths
    for p in (tel, spare, root / "data" / "devices"):
        clean(p)
        p.mkdir(parents=True)
    con = duckdb.connect()
    t0 = time.perf_counter()
    try:
        for i in range(days):
            write_day(con, tel, i, per_day, devices, seed)
        shutil.copy2(tel / f"{day_of(days // 2)}.parquet", paths["orig"])
        os.replace(write_day(con, spare, days, per_day, devices, seed), paths["new"])
        # the re-delivery: the same day, corrected values (another seed), same size class
        red = write_day(con, spare, days // 2, per_day, devices, seed + 1)
        os.replace(red, paths["redelivered"])
        con.execute(f"""COPY (
            SELECT i::BIGINT AS device_id,
                   ['north', 'south', 'east', 'west', 'central'][1 + i % 5] AS region,
                   'model_' || chr(65 + (i % 7)::INTEGER) AS hw_model,
                   DATE '{START_DAY.isoformat()}' - (i % 400)::INTEGER AS installed
            FROM range({devices}) AS t(i)
            WHERE i % 97 <> 5      -- a few devices unknown to the dimension
        ) TO '{paths["dim"]}' (FORMAT parquet)""")
    finally:
        con.close()
    marker.write_text(json.dumps(params))
    print(f"data: {days} days x {per_day:,} rows, {devices} devices, written in "
          f"{time.perf_counter() - t0:.1f}s", flush=True)
    return paths


def reset_data(root: Path, days: int, paths: dict[str, Path]) -> None:
    """Back to the 30 original days (day 31 absent, day 15 original)."""
    tel = root / "data" / "telemetry"
    (tel / f"{day_of(days)}.parquet").unlink(missing_ok=True)
    shutil.copy2(paths["orig"], tel / f"{day_of(days // 2)}.parquet")


def add_day(root: Path, days: int, paths: dict[str, Path]) -> None:
    shutil.copy2(paths["new"], root / "data" / "telemetry" / f"{day_of(days)}.parquet")


def redeliver(root: Path, days: int, paths: dict[str, Path]) -> None:
    shutil.copy2(paths["redelivered"], root / "data" / "telemetry" / f"{day_of(days // 2)}.parquet")


# --------------------------------------------------------------------------- projects


def write_headwater(root: Path, threads: int | None) -> Path:
    proj = root / "headwater"
    proj.mkdir(parents=True, exist_ok=True)
    toml = 'name = "bench_incremental"\n'
    if threads:
        toml += f"threads = {threads}\n\n[duckdb]\nthreads = {threads}\n"
    (proj / "headwater.toml").write_text(toml)
    for sub in ("sources", "transforms"):
        clean(proj / sub)
        (proj / sub).mkdir()
    data = root / "data"
    link = proj / "data"
    if not link.exists():
        link.symlink_to(data, target_is_directory=True)
    (proj / "sources" / "telemetry.toml").write_text(
        'type = "files"\ndescription = "Telemetry, one Parquet file per day."\n'
        'path = "data/telemetry/*.parquet"\nformat = "parquet"\n')
    (proj / "sources" / "devices.toml").write_text(
        'type = "files"\ndescription = "The devices dimension."\n'
        'path = "data/devices/*.parquet"\nformat = "parquet"\n')
    for name in MODELS:
        (proj / "transforms" / f"{name}.sql").write_text(render(name, "headwater"))
    return proj


def write_dbt(root: Path, threads: int | None) -> Path:
    proj = root / "dbt"
    proj.mkdir(parents=True, exist_ok=True)
    threads = threads or os.cpu_count() or 1
    (proj / "dbt_project.yml").write_text(
        "name: bench_incremental\nversion: '1.0'\nconfig-version: 2\nprofile: bench\n"
        "model-paths: ['models']\n")
    (proj / "profiles.yml").write_text(
        "bench:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
        f"      path: {json.dumps(str(proj / 'warehouse.duckdb'))}\n"
        f"      threads: {threads}\n")
    models = proj / "models"
    clean(models)
    models.mkdir()
    tel = str(root / "data" / "telemetry" / "*.parquet")
    dim = str(root / "data" / "devices" / "*.parquet")
    (models / "sources.yml").write_text(
        "version: 2\nsources:\n  - name: raw\n    tables:\n"
        f"      - name: telemetry\n        meta:\n          external_location: "
        f"{json.dumps(f'read_parquet({chr(39)}{tel}{chr(39)})')}\n"
        f"      - name: devices\n        meta:\n          external_location: "
        f"{json.dumps(f'read_parquet({chr(39)}{dim}{chr(39)})')}\n")
    for name in MODELS:
        (models / f"{name}.sql").write_text(render(name, "dbt"))
    return proj


# --------------------------------------------------------------------------- checks


Checksum = tuple[int, int, tuple[float, ...]]


def checksums(db: Path, schema: str = "main") -> dict[str, Checksum]:
    """Per model: (rows, order-independent hash of the exact columns, sum of each float column).

    Floats are summed rather than hashed: an aggregate computed in another order differs
    in its last bits, and rounding them would still flip at ties (averages of one-decimal
    readings land exactly on rounding boundaries); ``compare`` allows 1e-9 relative.
    """
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    out = {}
    try:
        for name in MODELS:
            cols = con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
                [schema, name]).fetchall()
            floats = [c for c, t in cols if t in ("DOUBLE", "FLOAT") or t.startswith("DECIMAL")]
            exact = [f'"{c}"' for c, _ in cols if c not in floats]
            sums = "".join(f', sum("{c}")::DOUBLE' for c in floats)
            row = con.execute(f'SELECT count(*), coalesce(sum(hash({", ".join(exact)})), 0)'
                              f'{sums} FROM "{schema}"."{name}"').fetchone()
            assert row is not None
            out[name] = (int(row[0]), int(row[1]),
                         tuple(float(x) if x is not None else 0.0 for x in row[2:]))
    finally:
        con.close()
    return out


def compare(a: dict[str, Checksum], b: dict[str, Checksum]) -> list[str]:
    def same(x: Checksum | None, y: Checksum | None) -> bool:
        if x is None or y is None:
            return x is y
        if x[:2] != y[:2] or len(x[2]) != len(y[2]):
            return False
        return all(abs(p - q) <= 1e-9 * max(abs(p), abs(q)) + 1e-9
                   for p, q in zip(x[2], y[2], strict=True))

    return [f"{n}: {a.get(n)} vs {b.get(n)}" for n in MODELS if not same(a.get(n), b.get(n))]


# --------------------------------------------------------------------------- runs


RETRIED: list[str] = []


def hw_run(proj: Path) -> dict[str, Any]:
    t = run_cmd([*headwater_cmd(), "run", "--project", str(proj), "--json"])
    if not t.ok and "internal error: ImportError" in t.stdout + t.stderr:
        # src/ is being edited by others while the benchmark runs: try once more
        RETRIED.append(t.tail(400))
        time.sleep(20)
        t = run_cmd([*headwater_cmd(), "run", "--project", str(proj), "--json"])
    if not t.ok:
        raise RuntimeError(f"headwater run failed:\n{t.tail()}")
    out = json.loads(t.stdout)
    if out["status"] != "success":
        raise RuntimeError(f"headwater run: {out['status']} {out['counts']}")
    nodes = {n["name"]: n for n in out["nodes"]}
    return {"wall": t.wall, "inner": out["seconds"], "other": t.other_cores, "cpu": t.cpu,
            "executed": [n for n, v in nodes.items() if v["status"] == "executed"],
            "reasons": {n: v["reason"] for n, v in nodes.items()},
            "node_seconds": {n: v["seconds"] for n, v in nodes.items()}}


def dbt_run(venv: Venv, proj: Path, *extra: str) -> dict[str, Any]:
    t = run_cmd(dbt_cmd(venv, proj, "run", *extra))
    if not t.ok:
        raise RuntimeError(f"dbt run failed:\n{t.tail()}")
    res = json.loads((proj / "target" / "run_results.json").read_text())["results"]
    return {"wall": t.wall, "other": t.other_cores, "cpu": t.cpu,
            "executed": [r["unique_id"].split(".")[-1] for r in res if r["status"] == "success"],
            "node_seconds": {r["unique_id"].split(".")[-1]: round(r["execution_time"], 3)
                             for r in res}}


def scratch_copy(proj: Path, dest: Path) -> Path:
    clean(dest)
    shutil.copytree(proj, dest, symlinks=True, ignore=shutil.ignore_patterns(".headwater"))
    return dest


def med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=10_000_000, help="rows over --days days")
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--devices", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--tools", default="headwater,dbt")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, default=HERE / ".work")
    ap.add_argument("--quiet-wait", type=float, default=20.0,
                    help="before each full build wait up to this many seconds for the machine "
                         "to be idle (other processes < 0.3 cores); 0 disables")
    ap.add_argument("--json-out", type=Path, default=None)
    args = ap.parse_args(argv)
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    per_day = args.rows // args.days
    root = args.work / f"incremental_{args.rows}r_{args.days}d_s{args.seed}"
    root.mkdir(parents=True, exist_ok=True)
    print(f"headwater {git_rev()}, cores {os.cpu_count()}; {args.days} days x {per_day:,} rows "
          f"(+1 day), {args.devices} devices; project {root}", flush=True)
    paths = make_data(root, args.days, per_day, args.devices, args.seed)
    hw_proj = write_headwater(root, args.threads)
    venv = None
    problems: list[str] = []
    if "dbt" in tools:
        venv = dbt_venv(args.work)
        print(f"dbt: {venv.versions if venv.ok else 'NOT AVAILABLE: ' + venv.error}", flush=True)
        if not venv.ok:
            problems.append(f"dbt could not be installed: {venv.error}")
            venv = None
    dbt_proj = write_dbt(root, args.threads) if venv else None

    def quiet() -> None:
        if args.quiet_wait > 0:
            wait_quiet(0.3, args.quiet_wait)

    hw: dict[str, list[Any]] = {k: [] for k in ("full", "add", "noop", "scratch", "redeliver",
                                               "scratch2")}
    db: dict[str, list[Any]] = {k: [] for k in ("full", "add", "noop", "refresh", "redeliver")}
    hw_reasons: dict[str, dict[str, str]] = {}
    ref_sums: dict[str, dict[str, Checksum]] = {}
    verify: dict[str, list[str]] = {}

    def hw_repeat(rep: int) -> None:
        clean(hw_proj / ".headwater")
        quiet()
        r = hw_run(hw_proj)
        hw["full"].append(r)
        add_day(root, args.days, paths)
        a = hw_run(hw_proj)
        hw["add"].append(a)
        n = hw_run(hw_proj)
        hw["noop"].append(n)
        sums = checksums(hw_proj / ".headwater" / "warehouse.duckdb")
        sc = scratch_copy(hw_proj, root / "scratch")
        quiet()
        s = hw_run(sc)
        hw["scratch"].append(s)
        ref_sums["add"] = checksums(sc / ".headwater" / "warehouse.duckdb")
        verify.setdefault("headwater add-a-day", []).extend(compare(sums, ref_sums["add"]))
        redeliver(root, args.days, paths)
        d = hw_run(hw_proj)
        hw["redeliver"].append(d)
        sums2 = checksums(hw_proj / ".headwater" / "warehouse.duckdb")
        sc = scratch_copy(hw_proj, root / "scratch")
        s2 = hw_run(sc)
        hw["scratch2"].append(s2)
        ref_sums["redeliver"] = checksums(sc / ".headwater" / "warehouse.duckdb")
        verify.setdefault("headwater re-delivered day", []).extend(
            compare(sums2, ref_sums["redeliver"]))
        if not hw_reasons:
            hw_reasons.update({"add": a["reasons"], "noop": n["reasons"],
                               "redeliver": d["reasons"]})
        for label, x in (("add", a), ("noop", n), ("redeliver", d)):
            unexpected = [m for m in x["executed"]
                          if label == "noop" or m not in MODELS + ["telemetry"]]
            if unexpected:
                problems.append(f"headwater {label} executed {unexpected}")
        print(f"  [{rep + 1}/{args.repeat}] headwater full {r['wall']:.2f}s; add a day "
              f"{a['wall']:.2f}s ({len(a['executed'])} nodes, cpu {a['cpu']:.1f}s); no-op "
              f"{n['wall']:.2f}s ({len(n['executed'])}); full of {args.days + 1} days "
              f"{s['wall']:.2f}s "
              f"(cpu {s['cpu']:.1f}s); re-delivered day {d['wall']:.2f}s "
              f"({len(d['executed'])}); other procs "
              f"{med([x['other'] for x in (r, a, n, s, d)]):.2f} cores", flush=True)

    def dbt_repeat(rep: int, venv: Venv, dbt_proj: Path) -> None:
        clean(dbt_proj / "target", dbt_proj / "warehouse.duckdb",
              dbt_proj / "warehouse.duckdb.wal", dbt_proj / "logs")
        quiet()
        f = dbt_run(venv, dbt_proj)
        db["full"].append(f)
        add_day(root, args.days, paths)
        a = dbt_run(venv, dbt_proj)
        db["add"].append(a)
        if "add" in ref_sums:
            verify.setdefault("dbt add-a-day vs headwater full rebuild", []).extend(
                compare(checksums(dbt_proj / "warehouse.duckdb"), ref_sums["add"]))
        n = dbt_run(venv, dbt_proj)
        db["noop"].append(n)
        quiet()
        fr = dbt_run(venv, dbt_proj, "--full-refresh")
        db["refresh"].append(fr)
        redeliver(root, args.days, paths)
        d = dbt_run(venv, dbt_proj)
        db["redeliver"].append(d)
        if "redeliver" in ref_sums:
            verify.setdefault("dbt re-delivered day vs headwater full rebuild", []).extend(
                compare(checksums(dbt_proj / "warehouse.duckdb"), ref_sums["redeliver"]))
        print(f"  [{rep + 1}/{args.repeat}] dbt       full {f['wall']:.2f}s; add a day "
              f"{a['wall']:.2f}s (cpu {a['cpu']:.1f}s); no-op {n['wall']:.2f}s; --full-refresh "
              f"of {args.days + 1} days {fr['wall']:.2f}s (cpu {fr['cpu']:.1f}s); re-delivered day "
              f"{d['wall']:.2f}s; other procs {med([x['other'] for x in (f, a, n, fr, d)]):.2f}"
              " cores", flush=True)

    for rep in range(args.repeat):
        order = tools if rep % 2 == 0 else list(reversed(tools))
        for tool in order:
            reset_data(root, args.days, paths)
            try:
                if tool == "headwater":
                    hw_repeat(rep)
                elif tool == "dbt" and venv and dbt_proj:
                    dbt_repeat(rep, venv, dbt_proj)
            except RuntimeError as e:
                problems.append(f"{tool}, repeat {rep + 1}: {str(e)[-1500:]}")
                print(f"  [{rep + 1}/{args.repeat}] {tool} FAILED: {str(e)[-1500:]}", flush=True)
    reset_data(root, args.days, paths)

    def m(xs: list[Any], key: str = "wall") -> float:
        return med([x[key] for x in xs])

    print()
    print(f"{args.days} days, {per_day * args.days:,} rows (+{per_day:,} per day), "
          f"{args.devices} devices; medians of {args.repeat}; wall seconds (cpu: user+sys)")
    d0, d1 = f"full ({args.days} d)", f"full ({args.days + 1} d)"
    head = (f"{'tool':<11}{d0:>12}{d1:>12}{'add a day':>11}"
            f"{'ratio':>8}{'cpu ratio':>10}{'no-op':>8}{'re-delivered':>14}  "
            f"target <= {TARGET:.0%}")
    print(head)
    print("-" * len(head))
    rows: list[list[Any]] = []
    if hw["full"]:
        full31 = hw["scratch"] + hw["scratch2"]
        rows.append(["headwater", m(hw["full"]), m(full31), m(hw["add"]),
                     m(hw["add"]) / m(full31), m(hw["add"], "cpu") / m(full31, "cpu"),
                     m(hw["noop"]), m(hw["redeliver"])])
    if db["full"]:
        rows.append(["dbt", m(db["full"]), m(db["refresh"]), m(db["add"]),
                     m(db["add"]) / m(db["refresh"]), m(db["add"], "cpu") / m(db["refresh"], "cpu"),
                     m(db["noop"]), m(db["redeliver"])])
    for r in rows:
        print(f"{r[0]:<11}{r[1]:>12.2f}{r[2]:>12.2f}{r[3]:>11.2f}{r[4]:>8.1%}{r[5]:>10.1%}"
              f"{r[6]:>8.2f}{r[7]:>14.2f}  {'ok' if r[4] <= TARGET else 'MISSED'}")
    print(f"ratio = add a day / full rebuild of the same {args.days + 1} days (headwater: a"
          " fresh project copy; dbt: --full-refresh)")
    if hw_reasons:
        print("\nheadwater, what ran (first repeat):")
        for label, reasons in hw_reasons.items():
            for name in ["telemetry", "devices", *MODELS]:
                print(f"  {label:<10} {name:<20} {reasons.get(name, '')[:110]}")
    if hw["add"]:
        print("\nheadwater add-a-day, seconds per node (median): " + ", ".join(
            f"{k} {med([x['node_seconds'].get(k, 0) for x in hw['add']]):.2f}"
            for k in ["telemetry", *MODELS]))
    if hw["scratch"]:
        print(f"headwater full build of {args.days + 1} days, seconds per node (median): "
              + ", ".join(
            f"{k} {med([x['node_seconds'].get(k, 0) for x in hw['scratch']]):.2f}"
            for k in ["telemetry", *MODELS]))
    if db["add"]:
        print("dbt add-a-day, seconds per model (median): " + ", ".join(
            f"{k} {med([x['node_seconds'].get(k, 0) for x in db['add']]):.2f}"
            for k in MODELS))
    print("\ncorrectness (order-independent checksums; float columns as sums, 1e-9 relative):")
    for what, diffs in verify.items():
        print(f"  {what}: " + ("equal" if not diffs else
                               f"DIFFERENT in {len({d.split(':')[0] for d in diffs})} of "
                               f"{len(MODELS)} table(s): {'; '.join(diffs[:4])}"))
    loads = [x["other"] for v in list(hw.values()) + list(db.values()) for x in v]
    if loads:
        print(f"other processes' CPU during timed commands: {min(loads):.2f} .. {max(loads):.2f}"
              f" cores (median {med(loads):.2f})")
    problems += [f"retried a headwater run that failed with: {r}" for r in RETRIED]
    if problems:
        print("\nPROBLEMS:")
        for p in problems:
            print("  - " + p)
    result = {
        "bench": "incremental", "headwater_rev": git_rev(), "rows": per_day * args.days,
        "days": args.days, "devices": args.devices, "repeat": args.repeat,
        "cores": os.cpu_count(), "threads": args.threads,
        "table": [[r[0], *(round(x, 4) for x in r[1:])] for r in rows],
        "columns": ["tool", "full30", "full31", "add_day", "ratio", "cpu_ratio", "noop",
                    "redelivered"],
        "runs": {"headwater": {k: [[round(x["wall"], 3), round(x["cpu"], 2)] for x in v]
                               for k, v in hw.items()},
                 "dbt": {k: [[round(x["wall"], 3), round(x["cpu"], 2)] for x in v]
                         for k, v in db.items()}},
        "node_seconds": {"headwater_add": hw["add"][-1]["node_seconds"] if hw["add"] else {},
                         "headwater_full31": hw["scratch"][-1]["node_seconds"]
                         if hw["scratch"] else {},
                         "dbt_add": db["add"][-1]["node_seconds"] if db["add"] else {},
                         "dbt_refresh": db["refresh"][-1]["node_seconds"] if db["refresh"] else {}},
        "verify": {k: v for k, v in verify.items()},
        "headwater_reasons": hw_reasons,
        "other_cores_median": round(med(loads), 2) if loads else None,
        "problems": problems,
    }
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
