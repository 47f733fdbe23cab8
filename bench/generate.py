"""A synthetic, layered Headwater project for benchmarks.

``generate_project(dest, models=200, rows=2_000_000, seed=0)`` writes:

* ``data/telemetry/<day>.parquet`` -- one Parquet file per day (``days`` files),
  columns device_id, ts, status, battery_pct, signal_dbm, app_latency_ms;
  made by DuckDB ``COPY (SELECT ... FROM range(n)) TO ...``, deterministic in
  ``seed`` for a given DuckDB version.
* ``sources/telemetry.toml`` -- a ``files`` source over that glob.
* ``transforms/<model>.sql`` -- ``models`` plain DuckDB SELECTs in layers:

  - staging (~10%): read the source directly (filters, casts, derived columns,
    one device dimension); the heavy models, full row set;
  - middle layers: aggregations, joins, window functions, CTEs, UNION ALL over
    models of earlier layers (1-3 inputs each, chosen by ``seed``);
  - marts (~10%): the end of the DAG, report-shaped outputs.

* ``headwater.toml`` and ``manifest.json`` (the models in topological order with
  their SQL, so a "floor" run or another tool can execute the very same SQL).

Every model's SQL is kept as a *template* in which references are tokens
(``@{src:telemetry}`` for the source, ``@{ref:name}`` for a model), so the same
project can be rendered for other tools::

    spec = generate_project(Path("/tmp/p"))
    for m in spec.models:                      # topological order
        m.sql                                  # bare names (Headwater, DuckDB floor)
        m.render(ref=lambda n: "{{ ref('%s') }}" % n,
                 source=lambda n: "{{ source('raw', '%s') }}" % n)   # dbt

CLI: ``python bench/generate.py DEST --models 200 --rows 2000000 [--seed 0]``.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path

SOURCE = "telemetry"
START_DAY = date(2024, 3, 1)
MANIFEST = "manifest.json"
GENERATOR_VERSION = 2  # 2: staging adds hour_ts, bands, latency_bucket, event_key

# Output schemas ("shapes") every model of a kind has, in this column order,
# so that any model of a shape can feed any template that consumes that shape.
SHAPES: dict[str, list[tuple[str, str]]] = {
    # row-level events (staging output; as many rows as the source, minus filters)
    "E": [("device_id", "BIGINT"), ("ts", "TIMESTAMP"), ("day", "DATE"), ("hour", "BIGINT"),
          ("status", "VARCHAR"), ("battery_pct", "DOUBLE"), ("signal_dbm", "INTEGER"),
          ("latency_ms", "DOUBLE"), ("is_error", "BOOLEAN"), ("health_score", "DOUBLE"),
          ("hour_ts", "TIMESTAMP"), ("battery_band", "VARCHAR"), ("signal_quality", "VARCHAR"),
          ("latency_bucket", "INTEGER"), ("event_key", "VARCHAR")],
    # one row per device (dimension)
    "DIM": [("device_id", "BIGINT"), ("region", "VARCHAR"), ("hw_model", "VARCHAR"),
            ("first_seen", "DATE"), ("lifetime_events", "BIGINT")],
    # one row per device and day
    "DD": [("device_id", "BIGINT"), ("day", "DATE"), ("events", "BIGINT"), ("errors", "BIGINT"),
           ("battery", "DOUBLE"), ("signal", "DOUBLE"), ("latency", "DOUBLE"),
           ("score", "DOUBLE")],
    # one row per device
    "D": [("device_id", "BIGINT"), ("days_active", "BIGINT"), ("events", "BIGINT"),
          ("errors", "BIGINT"), ("battery", "DOUBLE"), ("signal", "DOUBLE"),
          ("latency", "DOUBLE"), ("score", "DOUBLE"), ("tier", "VARCHAR")],
    # one row per day
    "DY": [("day", "DATE"), ("devices", "BIGINT"), ("events", "BIGINT"), ("errors", "BIGINT"),
           ("battery", "DOUBLE"), ("signal", "DOUBLE"), ("latency", "DOUBLE"),
           ("score", "DOUBLE")],
    "MART": [],  # free-form; nothing reads marts
}

_TOKEN = re.compile(r"@\{(src|ref):([A-Za-z_][A-Za-z0-9_]*)\}")


# --------------------------------------------------------------------------- data model


@dataclass
class Model:
    name: str
    layer: int
    template: str  # which SQL family produced it (for reports and debugging)
    shape: str  # output shape, a key of SHAPES
    refs: list[str]  # upstream names in the order they appear; the source is SOURCE
    sql_template: str  # SQL with @{src:NAME} / @{ref:NAME} tokens

    def render(
        self,
        ref: Callable[[str], str] = lambda n: n,
        source: Callable[[str], str] = lambda n: n,
    ) -> str:
        """The SQL with each reference rendered by ``ref`` (models) or ``source``."""

        def sub(m: re.Match[str]) -> str:
            return source(m.group(2)) if m.group(1) == "src" else ref(m.group(2))

        return _TOKEN.sub(sub, self.sql_template)

    @property
    def sql(self) -> str:
        """The SQL with bare table names, as Headwater and the DuckDB floor run it."""
        return self.render()

    def dbt_sql(self, source_name: str = "raw") -> str:
        """The SQL as a dbt model: ``{{ ref('x') }}`` and ``{{ source('raw', 'telemetry') }}``."""
        return self.render(ref=lambda n: "{{ ref('" + n + "') }}",
                           source=lambda n: "{{ source('" + source_name + "', '" + n + "') }}")

    @property
    def model_refs(self) -> list[str]:
        return [r for r in self.refs if r != SOURCE]


@dataclass
class SourceSpec:
    name: str
    format: str
    glob: str  # relative to the project root
    files: list[str]  # relative to the project root, sorted
    rows: int
    devices: int
    days: int
    columns: list[tuple[str, str]]


@dataclass
class ProjectSpec:
    """What ``generate_project`` wrote; ``models`` is in topological order."""

    root: Path
    name: str
    models_requested: int
    rows: int
    seed: int
    source: SourceSpec
    models: list[Model] = field(default_factory=list)
    data_seconds: float = 0.0  # time spent writing Parquet (0 when reused)

    @property
    def layers(self) -> int:
        return max((m.layer for m in self.models), default=-1) + 1

    def source_files(self) -> list[Path]:
        return [self.root / f for f in self.source.files]

    def floor_statements(self) -> list[tuple[str, str]]:
        """(table, statement) pairs that build the project on plain DuckDB, in order."""
        files = ", ".join("'" + str(p).replace("'", "''") + "'" for p in self.source_files())
        out = [(SOURCE, f"CREATE TABLE {SOURCE} AS SELECT * FROM read_parquet([{files}])")]
        out += [(m.name, f"CREATE TABLE {m.name} AS\n{m.sql}") for m in self.models]
        return out

    def summary(self) -> dict[str, object]:
        by_layer: dict[int, int] = {}
        by_template: dict[str, int] = {}
        for m in self.models:
            by_layer[m.layer] = by_layer.get(m.layer, 0) + 1
            by_template[m.template] = by_template.get(m.template, 0) + 1
        return {
            "root": str(self.root),
            "models": len(self.models),
            "rows": self.rows,
            "seed": self.seed,
            "files": len(self.source.files),
            "devices": self.source.devices,
            "layers": self.layers,
            "models_per_layer": [by_layer[k] for k in sorted(by_layer)],
            "templates": dict(sorted(by_template.items())),
            "edges": sum(len(m.refs) for m in self.models),
        }

    def to_json(self) -> dict[str, object]:
        return {
            "generator_version": GENERATOR_VERSION,
            "name": self.name,
            "models_requested": self.models_requested,
            "rows": self.rows,
            "seed": self.seed,
            "source": asdict(self.source),
            "models": [{**asdict(m), "sql": m.sql} for m in self.models],
        }


def load_manifest(root: Path) -> ProjectSpec:
    """Read back the ProjectSpec a previous ``generate_project`` wrote into ``root``."""
    root = Path(root).resolve()
    data = json.loads((root / MANIFEST).read_text())
    src = data["source"]
    src["columns"] = [tuple(c) for c in src["columns"]]
    models = [Model(**{k: v for k, v in m.items() if k != "sql"}) for m in data["models"]]
    return ProjectSpec(root, data["name"], data["models_requested"], data["rows"], data["seed"],
                       SourceSpec(**src), models)


# --------------------------------------------------------------------------- source data


def _telemetry_select(start: int, end: int, day: date, devices: int, seed: int) -> str:
    """A deterministic day of telemetry: rows ``start`` .. ``end`` of the whole set."""

    def h(tag: str) -> str:
        return f"hash(i, {seed}, '{tag}')"

    return f"""
SELECT
    ({h('dev')} % {devices})::BIGINT AS device_id,
    TIMESTAMP '{day.isoformat()} 00:00:00' + to_seconds(({h('ts')} % 86400)::BIGINT) AS ts,
    CASE
        WHEN {h('st')} % 1000 < 850 THEN 'ok'
        WHEN {h('st')} % 1000 < 930 THEN 'warn'
        WHEN {h('st')} % 1000 < 985 THEN 'error'
        ELSE 'offline'
    END AS status,
    round(greatest(0.0, least(100.0,
        100.0 - ({h('dev')} % {devices}) % 40 - ({h('bat')} % 6000) / 100.0)), 1)::DOUBLE
        AS battery_pct,
    CASE WHEN {h('sig')} % 100 = 0 THEN NULL
         ELSE (-120 + {h('sig')} % 81)::INTEGER END AS signal_dbm,
    round(15.0 + pow(({h('lat')} % 10000) / 10000.0, 4) * 2500.0, 1)::DOUBLE AS app_latency_ms
FROM range({start}, {end}) AS t(i)
ORDER BY ts
"""


def write_telemetry(root: Path, rows: int, days: int, devices: int, seed: int) -> list[str]:
    import duckdb

    folder = root / "data" / SOURCE
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    con = duckdb.connect()
    files = []
    try:
        for d in range(days):
            start, end = rows * d // days, rows * (d + 1) // days
            day = START_DAY + timedelta(days=d)
            rel = f"data/{SOURCE}/{day.isoformat()}.parquet"
            target = str(root / rel).replace("'", "''")
            con.execute(
                f"COPY ({_telemetry_select(start, end, day, devices, seed)}) "
                f"TO '{target}' (FORMAT parquet)"
            )
            files.append(rel)
    finally:
        con.close()
    return files


# --------------------------------------------------------------------------- SQL templates
#
# Each template: (name, input shapes, output shape, function(rng, refs) -> SQL).
# ``refs`` are reference tokens (``@{ref:x}``) in the order of the input shapes.


def _src() -> str:
    return f"@{{src:{SOURCE}}}"


def _pick(rng: random.Random, xs: Sequence[str]) -> str:
    return xs[rng.randrange(len(xs))]


def _health_expr(rng: random.Random) -> str:
    """A health score in roughly 0..100 from the cleaned columns."""
    variant = rng.randrange(3)
    wb, ws, wl = rng.choice([(0.5, 0.3, 0.2), (0.4, 0.4, 0.2), (0.6, 0.2, 0.2), (0.3, 0.3, 0.4)])
    if variant == 0:
        return (f"round({wb} * battery_pct + {ws} * (signal_dbm + 120) * 1.25"
                f" + {wl} * greatest(0, 100 - latency_ms / 10), 2)")
    if variant == 1:
        return ("CASE\n"
                "        WHEN status = 'offline' THEN 0.0\n"
                "        WHEN status = 'error' THEN 20.0\n"
                f"        WHEN latency_ms > {rng.choice([500, 800, 1200])} THEN 45.0\n"
                f"        WHEN battery_pct < {rng.choice([15, 20, 25])} THEN 55.0\n"
                f"        ELSE 70.0 + {wb * 60:.0f} * battery_pct / 100.0\n"
                "    END")
    return (f"100.0 * (1 - exp(-({wb} * battery_pct + {ws} * (signal_dbm + 120))"
            f" / {rng.choice([40, 50, 60])}))"
            f" * CASE WHEN status IN ('ok', 'warn') THEN 1.0 ELSE 0.5 END")


def _stg_filter(rng: random.Random) -> str:
    options = [
        f"battery_pct >= {rng.choice([2, 5, 10])}",
        f"hour BETWEEN {rng.choice([0, 2, 4])} AND {rng.choice([20, 22, 23])}",
        f"device_id % {rng.choice([7, 11, 13])} <> {rng.randrange(7)}",
        "status <> 'offline'",
        f"latency_ms < {rng.choice([1500, 2000, 2400])}",
        f"signal_dbm > {rng.choice([-118, -115, -110])}",
    ]
    chosen = rng.sample(options, rng.choice([1, 1, 2]))
    return " AND ".join(chosen)


def _stg_extra(rng: random.Random) -> str:
    """Derived columns every staging model adds (written against the cleaned names)."""
    lo, hi = rng.choice([(20, 60), (15, 50), (25, 70)])
    good, fair = rng.choice([(-80, -100), (-75, -95), (-85, -105)])
    return f""",
    date_trunc('hour', ts) AS hour_ts,
    CASE WHEN battery_pct < {lo} THEN 'low' WHEN battery_pct < {hi} THEN 'mid'
         ELSE 'high' END AS battery_band,
    CASE WHEN signal_dbm >= {good} THEN 'good' WHEN signal_dbm >= {fair} THEN 'fair'
         ELSE 'poor' END AS signal_quality,
    least(12, floor(log2(greatest(latency_ms, 1))))::INTEGER AS latency_bucket,
    device_id::VARCHAR || '-' || strftime(ts, '%Y%m%d%H%M%S') AS event_key"""


def _columns(shape: str, replace: dict[str, str] | None = None, indent: str = "    ") -> str:
    """The columns of ``shape`` as a SELECT list, some replaced by expressions."""
    replace = replace or {}
    out = [f"{replace[c]} AS {c}" if c in replace else c for c, _ in SHAPES[shape]]
    return ",\n".join(indent + c for c in out)


def t_stg_events(rng: random.Random, refs: list[str]) -> str:
    variant = rng.randrange(4)
    health = _health_expr(rng)
    where = _stg_filter(rng)
    extra = _stg_extra(rng)
    if variant == 3:  # dedup by (device, ts), keeping the worst status
        return f"""-- Staging: cleaned telemetry, one row per device and timestamp.
WITH cleaned AS (
    SELECT
        device_id::BIGINT AS device_id,
        ts,
        CAST(ts AS DATE) AS day,
        hour(ts) AS hour,
        lower(trim(status)) AS status,
        CAST(battery_pct AS DOUBLE) AS battery_pct,
        CAST(coalesce(signal_dbm, -120) AS INTEGER) AS signal_dbm,
        CAST(app_latency_ms AS DOUBLE) AS latency_ms
    FROM {_src()}
)
SELECT
    device_id, ts, day, hour, status, battery_pct, signal_dbm, latency_ms,
    status IN ('error', 'offline') AS is_error,
    {health} AS health_score{extra}
FROM cleaned
WHERE {where}
QUALIFY row_number() OVER (
    PARTITION BY device_id, ts
    ORDER BY CASE status WHEN 'offline' THEN 0 WHEN 'error' THEN 1 ELSE 2 END
) = 1
"""
    if variant in (1, 2):  # CTE then derived columns
        return f"""-- Staging: telemetry with casts, defaults and a health score.
WITH cleaned AS (
    SELECT
        device_id::BIGINT AS device_id,
        ts,
        CAST(ts AS DATE) AS day,
        hour(ts) AS hour,
        lower(status) AS status,
        CAST(battery_pct AS DOUBLE) AS battery_pct,
        CAST(coalesce(signal_dbm, {rng.choice([-120, -110, -100])}) AS INTEGER) AS signal_dbm,
        CAST(app_latency_ms AS DOUBLE) AS latency_ms
    FROM {_src()}
    WHERE ts IS NOT NULL
)
SELECT
    device_id, ts, day, hour, status, battery_pct, signal_dbm, latency_ms,
    status IN ('error', 'offline') OR latency_ms > {rng.choice([1800, 2000, 2200])} AS is_error,
    {health} AS health_score{extra}
FROM cleaned
WHERE {where}
"""
    where_src = (where.replace("hour", "hour(ts)").replace("latency_ms", "app_latency_ms"))
    health_src, extra_src = ((x.replace("latency_ms", "app_latency_ms")
                              .replace("signal_dbm", "coalesce(signal_dbm, -120)"))
                             for x in (health, extra))
    return f"""-- Staging: telemetry filtered and typed.
SELECT
    device_id::BIGINT AS device_id,
    ts,
    CAST(ts AS DATE) AS day,
    hour(ts) AS hour,
    status,
    battery_pct::DOUBLE AS battery_pct,
    coalesce(signal_dbm, -120)::INTEGER AS signal_dbm,
    app_latency_ms::DOUBLE AS latency_ms,
    status IN ('error', 'offline') AS is_error,
    {health_src} AS health_score{extra_src}
FROM {_src()}
WHERE {where_src}
"""


def t_stg_devices(rng: random.Random, refs: list[str]) -> str:
    regions = ["north", "south", "east", "west", "central"]
    rng.shuffle(regions)
    k = len(regions)
    cases = "\n".join(f"        WHEN {i} THEN '{r}'" for i, r in enumerate(regions))
    return f"""-- Staging: one row per device with its region and hardware model.
SELECT
    device_id::BIGINT AS device_id,
    CASE device_id % {k}
{cases}
    END AS region,
    'model_' || chr(65 + (device_id % {rng.choice([5, 6, 7])})::INTEGER) AS hw_model,
    min(ts)::DATE AS first_seen,
    count(*)::BIGINT AS lifetime_events
FROM {_src()}
GROUP BY device_id
"""


def _lat_agg(rng: random.Random, col: str) -> str:
    return _pick(rng, [f"avg({col})", f"max({col})", f"median({col})",
                       f"quantile_cont({col}, 0.9)"])


def t_e_dd(rng: random.Random, refs: list[str]) -> str:
    where = _pick(rng, ["", f"\nWHERE hour BETWEEN {rng.choice([6, 8])} AND {rng.choice([18, 20])}",
                        "\nWHERE status <> 'offline'", ""])
    return f"""-- Device-day rollup of events.
SELECT
    device_id,
    day,
    count(*)::BIGINT AS events,
    count(*) FILTER (WHERE is_error)::BIGINT AS errors,
    avg(battery_pct)::DOUBLE AS battery,
    avg(signal_dbm)::DOUBLE AS signal,
    {_lat_agg(rng, 'latency_ms')}::DOUBLE AS latency,
    avg(health_score)::DOUBLE AS score
FROM {refs[0]}{where}
GROUP BY device_id, day
"""


def t_e_d(rng: random.Random, refs: list[str]) -> str:
    hi, lo = rng.choice([(70, 50), (65, 45), (75, 55)])
    return f"""-- Device profile over the whole period.
SELECT
    device_id,
    count(DISTINCT day)::BIGINT AS days_active,
    count(*)::BIGINT AS events,
    sum(CASE WHEN is_error THEN 1 ELSE 0 END)::BIGINT AS errors,
    avg(battery_pct)::DOUBLE AS battery,
    avg(signal_dbm)::DOUBLE AS signal,
    {_lat_agg(rng, 'latency_ms')}::DOUBLE AS latency,
    avg(health_score)::DOUBLE AS score,
    CASE
        WHEN avg(health_score) >= {hi} THEN 'gold'
        WHEN avg(health_score) >= {lo} THEN 'silver'
        ELSE 'bronze'
    END AS tier
FROM {refs[0]}
GROUP BY device_id
"""


def t_e_dy(rng: random.Random, refs: list[str]) -> str:
    return f"""-- Fleet-wide daily totals.
SELECT
    day,
    count(DISTINCT device_id)::BIGINT AS devices,
    count(*)::BIGINT AS events,
    count_if(is_error)::BIGINT AS errors,
    avg(battery_pct)::DOUBLE AS battery,
    avg(signal_dbm)::DOUBLE AS signal,
    {_lat_agg(rng, 'latency_ms')}::DOUBLE AS latency,
    avg(health_score)::DOUBLE AS score
FROM {refs[0]}
GROUP BY day
"""


def t_e_e_gaps(rng: random.Random, refs: list[str]) -> str:
    gap = rng.choice([1, 2, 3])
    cols = _columns("E", {
        "is_error": f"is_error OR (prev_ts IS NOT NULL AND ts - prev_ts > INTERVAL {gap} HOUR)",
        "health_score": ("CASE WHEN prev_ts IS NULL THEN health_score "
                         f"ELSE health_score * {rng.choice([0.9, 0.95])} END"),
    })
    return f"""-- Events flagged when the device was silent for a while before them.
WITH ordered AS (
    SELECT
        *,
        lag(ts) OVER (PARTITION BY device_id ORDER BY ts) AS prev_ts
    FROM {refs[0]}
)
SELECT
{cols}
FROM ordered
"""


def t_e_e_filter(rng: random.Random, refs: list[str]) -> str:
    cond = _pick(rng, [
        f"hour BETWEEN {rng.choice([7, 8, 9])} AND {rng.choice([17, 18, 19])}",
        f"device_id % {rng.choice([2, 3])} = 0",
        f"health_score < {rng.choice([60, 70, 80])} OR is_error",
        "signal_quality <> 'good' OR battery_band = 'low'",
    ])
    cols = _columns("E", {
        "health_score": (f"least(100.0, health_score * {rng.choice([1.05, 1.1])}"
                         " - CASE WHEN is_error THEN 10 ELSE 0 END)"),
    })
    return f"""-- A slice of the events, rescored.
SELECT
{cols}
FROM {refs[0]}
WHERE {cond}
"""


def t_e_dim_dd(rng: random.Random, refs: list[str]) -> str:
    regions = rng.sample(["north", "south", "east", "west", "central"], rng.choice([2, 3, 4]))
    in_list = ", ".join(f"'{r}'" for r in regions)
    return f"""-- Device-day rollup for some regions.
SELECT
    e.device_id,
    e.day,
    count(*)::BIGINT AS events,
    sum(CASE WHEN e.is_error THEN 1 ELSE 0 END)::BIGINT AS errors,
    avg(e.battery_pct)::DOUBLE AS battery,
    avg(e.signal_dbm)::DOUBLE AS signal,
    {_lat_agg(rng, 'e.latency_ms')}::DOUBLE AS latency,
    avg(e.health_score)::DOUBLE AS score
FROM {refs[0]} AS e
JOIN {refs[1]} AS d ON e.device_id = d.device_id
WHERE d.region IN ({in_list})
GROUP BY e.device_id, e.day
"""


def t_dd_rolling(rng: random.Random, refs: list[str]) -> str:
    k = rng.choice([2, 3, 6])
    return f"""-- Rolling {k + 1}-day device metrics.
SELECT
    device_id,
    day,
    events,
    errors,
    avg(battery) OVER w AS battery,
    signal,
    max(latency) OVER w AS latency,
    avg(score) OVER w AS score
FROM {refs[0]}
WINDOW w AS (PARTITION BY device_id ORDER BY day ROWS BETWEEN {k} PRECEDING AND CURRENT ROW)
"""


def t_dd_flags(rng: random.Random, refs: list[str]) -> str:
    return f"""-- Device-days penalised for errors and low battery.
SELECT
    device_id,
    day,
    events,
    errors,
    battery,
    signal,
    latency,
    CASE
        WHEN errors > events * {rng.choice([0.1, 0.15, 0.2])} THEN score * 0.5
        WHEN battery < {rng.choice([30, 40, 50])} THEN score * 0.8
        WHEN latency > {rng.choice([300, 500, 800])} THEN score * 0.9
        ELSE score
    END AS score
FROM {refs[0]}
WHERE events >= {rng.choice([1, 2, 3])}
"""


def t_dd_join(rng: random.Random, refs: list[str]) -> str:
    return f"""-- Two device-day views combined.
SELECT
    a.device_id,
    a.day,
    (a.events + coalesce(b.events, 0))::BIGINT AS events,
    greatest(a.errors, coalesce(b.errors, 0))::BIGINT AS errors,
    (a.battery + coalesce(b.battery, a.battery)) / 2 AS battery,
    least(a.signal, coalesce(b.signal, a.signal)) AS signal,
    greatest(a.latency, coalesce(b.latency, 0)) AS latency,
    CASE WHEN b.device_id IS NULL THEN a.score
         ELSE {rng.choice([0.5, 0.6, 0.7])} * a.score + {rng.choice([0.5, 0.4, 0.3])} * b.score
    END AS score
FROM {refs[0]} AS a
LEFT JOIN {refs[1]} AS b ON a.device_id = b.device_id AND a.day = b.day
"""


def t_dd_union(rng: random.Random, refs: list[str]) -> str:
    cols = "device_id, day, events, errors, battery, signal, latency, score"
    parts = "\n    UNION ALL\n".join(f"    SELECT {cols} FROM {r}" for r in refs)
    return f"""-- Device-days from several rollups merged.
WITH unioned AS (
{parts}
)
SELECT
    device_id,
    day,
    sum(events)::BIGINT AS events,
    sum(errors)::BIGINT AS errors,
    avg(battery) AS battery,
    min(signal) AS signal,
    max(latency) AS latency,
    avg(score) AS score
FROM unioned
GROUP BY device_id, day
"""


def t_dd_d_baseline(rng: random.Random, refs: list[str]) -> str:
    where = _pick(rng, ["", "\nWHERE d.tier <> 'bronze'", "\nWHERE d.days_active >= 3"])
    return f"""-- Device-days relative to the device's own baseline.
SELECT
    dd.device_id,
    dd.day,
    dd.events,
    dd.errors,
    dd.battery,
    dd.signal,
    dd.latency,
    (50 + dd.score - d.score)::DOUBLE AS score
FROM {refs[0]} AS dd
JOIN {refs[1]} AS d ON dd.device_id = d.device_id{where}
"""


def t_dd_dy_relative(rng: random.Random, refs: list[str]) -> str:
    f = rng.choice([1.5, 2.0])
    return f"""-- Device-days compared with the fleet on the same day.
SELECT
    dd.device_id,
    dd.day,
    dd.events,
    dd.errors,
    dd.battery - dy.battery AS battery,
    dd.signal - dy.signal AS signal,
    dd.latency / nullif(dy.latency, 0) AS latency,
    CASE WHEN dd.latency > dy.latency * {f} THEN dd.score * 0.8 ELSE dd.score END AS score
FROM {refs[0]} AS dd
JOIN {refs[1]} AS dy ON dd.day = dy.day
"""


def t_dd_d_dy(rng: random.Random, refs: list[str]) -> str:
    return f"""-- Device-days scored against both the device and the fleet.
WITH base AS (
    SELECT dd.*, d.score AS device_score, d.tier
    FROM {refs[0]} AS dd
    JOIN {refs[1]} AS d USING (device_id)
)
SELECT
    b.device_id,
    b.day,
    b.events,
    b.errors,
    b.battery,
    b.signal,
    b.latency,
    (b.score - b.device_score + dy.score
        + CASE b.tier WHEN 'gold' THEN 5 WHEN 'silver' THEN 0 ELSE -5 END)::DOUBLE AS score
FROM base AS b
JOIN {refs[2]} AS dy ON b.day = dy.day
"""


def t_dd_d(rng: random.Random, refs: list[str]) -> str:
    hi, lo = rng.choice([(70, 50), (65, 45), (60, 40)])
    return f"""-- Device profile from daily rollups.
SELECT
    device_id,
    count(*)::BIGINT AS days_active,
    sum(events)::BIGINT AS events,
    sum(errors)::BIGINT AS errors,
    avg(battery) AS battery,
    avg(signal) AS signal,
    {_pick(rng, ['max(latency)', 'avg(latency)', 'median(latency)'])} AS latency,
    avg(score) AS score,
    CASE WHEN avg(score) >= {hi} THEN 'gold' WHEN avg(score) >= {lo} THEN 'silver'
         ELSE 'bronze' END AS tier
FROM {refs[0]}
GROUP BY device_id
"""


def t_dd_dy(rng: random.Random, refs: list[str]) -> str:
    return f"""-- Fleet-wide daily totals from device-days.
SELECT
    day,
    count(DISTINCT device_id)::BIGINT AS devices,
    sum(events)::BIGINT AS events,
    sum(errors)::BIGINT AS errors,
    avg(battery) AS battery,
    avg(signal) AS signal,
    quantile_cont(latency, {rng.choice([0.5, 0.9, 0.95])}) AS latency,
    avg(score) AS score
FROM {refs[0]}
GROUP BY day
"""


def t_d_join(rng: random.Random, refs: list[str]) -> str:
    return f"""-- Two device profiles reconciled.
SELECT
    a.device_id,
    greatest(a.days_active, b.days_active) AS days_active,
    a.events,
    (a.errors + b.errors)::BIGINT AS errors,
    (a.battery + b.battery) / 2 AS battery,
    least(a.signal, b.signal) AS signal,
    greatest(a.latency, b.latency) AS latency,
    (a.score + b.score) / 2 AS score,
    CASE WHEN a.tier = b.tier THEN a.tier
         WHEN 'bronze' IN (a.tier, b.tier) THEN 'bronze'
         ELSE 'silver' END AS tier
FROM {refs[0]} AS a
JOIN {refs[1]} AS b ON a.device_id = b.device_id
"""


def t_d_dim(rng: random.Random, refs: list[str]) -> str:
    region = _pick(rng, ["north", "south", "east", "west", "central"])
    return f"""-- Device profiles with regional tiering.
SELECT
    d.device_id,
    d.days_active,
    d.events,
    d.errors,
    d.battery,
    d.signal,
    d.latency,
    d.score + CASE WHEN dim.region = '{region}' THEN {rng.choice([2, 5])} ELSE 0 END AS score,
    CASE
        WHEN d.errors * 10 > d.events THEN 'bronze'
        WHEN dim.first_seen > DATE '{(START_DAY + timedelta(days=1)).isoformat()}' THEN 'silver'
        ELSE d.tier
    END AS tier
FROM {refs[0]} AS d
LEFT JOIN {refs[1]} AS dim ON d.device_id = dim.device_id
"""


def t_d_rank(rng: random.Random, refs: list[str]) -> str:
    return f"""-- Device tiers by percentile of score.
SELECT
    device_id,
    days_active,
    events,
    errors,
    battery,
    signal,
    latency,
    score,
    CASE
        WHEN percent_rank() OVER (ORDER BY score) >= {rng.choice([0.8, 0.9])} THEN 'gold'
        WHEN percent_rank() OVER (ORDER BY score) >= {rng.choice([0.4, 0.5])} THEN 'silver'
        ELSE 'bronze'
    END AS tier
FROM {refs[0]}
"""


def t_dy_window(rng: random.Random, refs: list[str]) -> str:
    k = rng.choice([1, 2, 3])
    return f"""-- Daily totals smoothed over {k + 1} days.
SELECT
    day,
    devices,
    events,
    errors,
    avg(battery) OVER w AS battery,
    avg(signal) OVER w AS signal,
    coalesce(latency - lag(latency) OVER (ORDER BY day), 0) + latency AS latency,
    avg(score) OVER w AS score
FROM {refs[0]}
WINDOW w AS (ORDER BY day ROWS BETWEEN {k} PRECEDING AND CURRENT ROW)
"""


def t_dy_join(rng: random.Random, refs: list[str]) -> str:
    return f"""-- Two daily views side by side.
SELECT
    a.day,
    greatest(a.devices, b.devices) AS devices,
    a.events,
    a.errors + b.errors AS errors,
    a.battery,
    b.signal,
    greatest(a.latency, b.latency) AS latency,
    (a.score * {rng.choice([2, 3])} + b.score) / {rng.choice([3, 4])} AS score
FROM {refs[0]} AS a
FULL OUTER JOIN {refs[1]} AS b ON a.day = b.day
WHERE a.day IS NOT NULL
"""


# marts: free-form outputs


def t_mart_region(rng: random.Random, refs: list[str]) -> str:
    return f"""-- Mart: health by region and hardware model.
SELECT
    dim.region,
    dim.hw_model,
    count(*) AS devices,
    sum(d.events) AS events,
    round(avg(d.score), 2) AS avg_score,
    round(avg(CASE WHEN d.tier = 'gold' THEN 1.0 ELSE 0.0 END), 3) AS gold_share,
    round(sum(d.errors) / nullif(sum(d.events), 0), 4) AS error_rate
FROM {refs[0]} AS d
JOIN {refs[1]} AS dim ON d.device_id = dim.device_id
GROUP BY ALL
ORDER BY dim.region, dim.hw_model
"""


def t_mart_daily_kpis(rng: random.Random, refs: list[str]) -> str:
    return f"""-- Mart: daily KPIs with day-over-day change.
SELECT
    day,
    devices,
    events,
    round(errors / nullif(events, 0), 4) AS error_rate,
    round(score, 2) AS score,
    round(avg(score) OVER (ORDER BY day ROWS BETWEEN 2 PRECEDING AND CURRENT ROW), 2)
        AS score_3d,
    events - lag(events) OVER (ORDER BY day) AS events_change
FROM {refs[0]}
ORDER BY day
"""


def t_mart_top_devices(rng: random.Random, refs: list[str]) -> str:
    n = rng.choice([50, 100, 200])
    return f"""-- Mart: the best and worst devices of each tier.
SELECT
    tier,
    device_id,
    score,
    events,
    errors,
    rank() OVER (PARTITION BY tier ORDER BY score DESC) AS rank_in_tier
FROM {refs[0]}
QUALIFY rank() OVER (PARTITION BY tier ORDER BY score DESC) <= {n}
     OR rank() OVER (PARTITION BY tier ORDER BY score ASC) <= {n // 5}
"""


def t_mart_region_day(rng: random.Random, refs: list[str]) -> str:
    return f"""-- Mart: region by day, with a breakdown of device-day quality.
SELECT
    dim.region,
    dd.day,
    count(*) AS device_days,
    sum(dd.events) AS events,
    sum(CASE WHEN dd.score >= {rng.choice([60, 70])} THEN 1 ELSE 0 END) AS good_days,
    sum(CASE WHEN dd.score < {rng.choice([30, 40])} THEN 1 ELSE 0 END) AS bad_days,
    round(avg(dd.latency), 1) AS avg_latency
FROM {refs[0]} AS dd
JOIN {refs[1]} AS dim ON dd.device_id = dim.device_id
GROUP BY dim.region, dd.day
ORDER BY dim.region, dd.day
"""


def t_mart_anomalies(rng: random.Random, refs: list[str]) -> str:
    f = rng.choice([1.2, 1.5, 2.0])
    return f"""-- Mart: device-days far above the fleet's latency that day.
WITH fleet AS (
    SELECT day, latency AS fleet_latency, score AS fleet_score FROM {refs[1]}
)
SELECT
    dd.device_id,
    dd.day,
    dd.latency,
    f.fleet_latency,
    round(dd.latency / nullif(f.fleet_latency, 0), 2) AS latency_ratio,
    dd.score - f.fleet_score AS score_gap
FROM {refs[0]} AS dd
JOIN fleet AS f ON dd.day = f.day
WHERE dd.latency > f.fleet_latency * {f}
"""


@dataclass(frozen=True)
class Template:
    name: str
    inputs: tuple[str, ...]
    output: str
    make: Callable[[random.Random, list[str]], str]
    weight: float = 1.0
    heavy: bool = False  # reads/writes row-level data (limited by a budget)


STAGING = [
    Template("stg_events", (), "E", t_stg_events),
    Template("stg_devices", (), "DIM", t_stg_devices),
]
MIDDLE = [
    Template("e_dd", ("E",), "DD", t_e_dd, 3.0),
    Template("e_d", ("E",), "D", t_e_d, 1.5),
    Template("e_dy", ("E",), "DY", t_e_dy, 1.0),
    Template("e_dim_dd", ("E", "DIM"), "DD", t_e_dim_dd, 1.5),
    Template("e_e_gaps", ("E",), "E", t_e_e_gaps, 1.0, heavy=True),
    Template("e_e_filter", ("E",), "E", t_e_e_filter, 1.0, heavy=True),
    Template("dd_rolling", ("DD",), "DD", t_dd_rolling, 2.0),
    Template("dd_flags", ("DD",), "DD", t_dd_flags, 1.5),
    Template("dd_join", ("DD", "DD"), "DD", t_dd_join, 2.0),
    Template("dd_union", ("DD", "DD"), "DD", t_dd_union, 1.0),
    Template("dd_union3", ("DD", "DD", "DD"), "DD", t_dd_union, 0.5),
    Template("dd_d_baseline", ("DD", "D"), "DD", t_dd_d_baseline, 1.5),
    Template("dd_dy_relative", ("DD", "DY"), "DD", t_dd_dy_relative, 1.5),
    Template("dd_d_dy", ("DD", "D", "DY"), "DD", t_dd_d_dy, 1.0),
    Template("dd_d", ("DD",), "D", t_dd_d, 2.0),
    Template("dd_dy", ("DD",), "DY", t_dd_dy, 1.0),
    Template("d_join", ("D", "D"), "D", t_d_join, 1.0),
    Template("d_dim", ("D", "DIM"), "D", t_d_dim, 1.0),
    Template("d_rank", ("D",), "D", t_d_rank, 1.0),
    Template("dy_window", ("DY",), "DY", t_dy_window, 1.0),
    Template("dy_join", ("DY", "DY"), "DY", t_dy_join, 0.7),
]
MARTS = [
    Template("mart_region", ("D", "DIM"), "MART", t_mart_region),
    Template("mart_daily_kpis", ("DY",), "MART", t_mart_daily_kpis),
    Template("mart_top_devices", ("D",), "MART", t_mart_top_devices),
    Template("mart_region_day", ("DD", "DIM"), "MART", t_mart_region_day),
    Template("mart_anomalies", ("DD", "DY"), "MART", t_mart_anomalies),
]
PREFIX = {"E": "int_events", "DD": "int_device_day", "D": "int_device", "DY": "int_daily"}


# --------------------------------------------------------------------------- the DAG


def plan_models(
    models: int,
    seed: int = 0,
    *,
    staging_share: float = 0.10,
    mart_share: float = 0.10,
    middle_layers: int | None = None,
    heavy_share: float = 0.03,
    row_level_decay: float = 0.5,
) -> list[Model]:
    """The models (with SQL templates) in topological (layer) order; no I/O.

    ``heavy_share`` caps middle models that materialise row-level events;
    ``row_level_decay`` shrinks the chance that a layer's model reads row-level
    events (aggregations over the staging tables) with each layer after the first.
    """
    if models < 4:
        raise ValueError("models must be at least 4 (staging, dimension, middle, mart)")
    rng = random.Random(seed)
    n_stg = max(2, round(models * staging_share))
    n_mart = max(1, round(models * mart_share))
    n_mid = models - n_stg - n_mart
    if n_mid < 1:
        n_stg, n_mart = 2, 1
        n_mid = models - 3
    n_layers = middle_layers or max(1, min(8, models // 25, n_mid // 2), min(2, n_mid // 4))
    n_dim = max(1, n_stg // 10)
    heavy_left = max(0, round(models * heavy_share))

    out: list[Model] = []
    by_shape: dict[str, list[Model]] = {s: [] for s in SHAPES}
    consumed: set[str] = set()
    counters: dict[str, int] = {}

    def name_for(prefix: str) -> str:
        counters[prefix] = counters.get(prefix, 0) + 1
        return f"{prefix}_{counters[prefix]:03d}"

    def add(model: Model) -> None:
        out.append(model)
        by_shape[model.shape].append(model)

    # layer 0: staging, reading the source
    for i in range(n_stg):
        tpl = STAGING[1] if i >= n_stg - n_dim else STAGING[0]
        prefix = "stg_devices" if tpl.output == "DIM" else "stg_events"
        sql = tpl.make(rng, [])
        add(Model(name_for(prefix), 0, tpl.name, tpl.output, [SOURCE], sql))

    def choose_input(shape: str, layer: int, taken: list[str]) -> Model:
        pool = [m for m in by_shape[shape] if m.layer < layer and m.name not in taken]
        if not pool:  # a template may need two of a shape that has one model so far
            pool = [m for m in by_shape[shape] if m.layer < layer]
        fresh = [m for m in pool if m.name not in consumed]
        recent = [m for m in pool if m.layer >= layer - 2]
        r = rng.random()
        if fresh and r < 0.6:
            choice = fresh[rng.randrange(len(fresh))]
        elif recent and r < 0.85:
            choice = recent[rng.randrange(len(recent))]
        else:
            choice = pool[rng.randrange(len(pool))]
        return choice

    def available(tpl: Template, layer: int) -> bool:
        counts = {s: sum(1 for m in by_shape[s] if m.layer < layer) for s in SHAPES}
        return all(counts[s] >= 1 for s in tpl.inputs)

    def instantiate(tpl: Template, layer: int, prefix: str) -> Model:
        chosen: list[Model] = []
        for shape in tpl.inputs:
            chosen.append(choose_input(shape, layer, [m.name for m in chosen]))
        for m in chosen:
            consumed.add(m.name)
        refs = [m.name for m in chosen]
        sql = tpl.make(rng, [f"@{{ref:{r}}}" for r in refs])
        return Model(name_for(prefix), layer, tpl.name, tpl.output, refs, sql)

    # middle layers
    per_layer = [n_mid // n_layers + (1 if i < n_mid % n_layers else 0) for i in range(n_layers)]
    for li, count in enumerate(per_layer):
        layer = li + 1
        row_level_p = 1.0 if layer == 1 else row_level_decay ** (layer - 1)
        for _ in range(count):
            options = [t for t in MIDDLE if available(t, layer)]
            if heavy_left <= 0:
                options = [t for t in options if not t.heavy]
            reads_e = [t for t in options if "E" in t.inputs]
            other = [t for t in options if "E" not in t.inputs]
            use_e = not other or (reads_e and rng.random() < row_level_p)
            options = reads_e if use_e else other
            tpl = rng.choices(options, weights=[t.weight for t in options])[0]
            if tpl.heavy:
                heavy_left -= 1
            add(instantiate(tpl, layer, PREFIX[tpl.output]))

    # marts: prefer models nobody reads yet
    mart_layer = n_layers + 1
    for i in range(n_mart):
        options = [t for t in MARTS if available(t, mart_layer)]
        tpl = options[i % len(options)] if i < len(options) else rng.choice(options)
        add(instantiate(tpl, mart_layer, "mart_" + tpl.name.removeprefix("mart_")))
    return out


# --------------------------------------------------------------------------- writing


def generate_project(
    dest: Path,
    models: int = 200,
    rows: int = 2_000_000,
    seed: int = 0,
    *,
    days: int = 10,
    devices: int | None = None,
    threads: int | None = None,
    duckdb_threads: int | None = None,
    name: str | None = None,
    reuse_data: bool = True,
    **plan_options: float,
) -> ProjectSpec:
    """Write the project into ``dest`` and return its description.

    ``transforms/`` and ``sources/`` are rewritten; the Parquet files are reused
    when they were made with the same rows/days/devices/seed (``reuse_data``).
    ``.headwater/`` is left alone: callers that want a cold run delete it.
    ``threads`` goes to ``headwater.toml`` (parallel builds), ``duckdb_threads``
    to its ``[duckdb]`` table (DuckDB's own worker threads).
    """
    root = Path(dest).resolve()
    root.mkdir(parents=True, exist_ok=True)
    devices = devices or max(50, min(5000, rows // 1000))
    name = name or f"bench_{models}m_{rows}r"

    marker = root / "data" / ".params.json"
    params = {"rows": rows, "days": days, "devices": devices, "seed": seed,
              "generator_version": GENERATOR_VERSION}
    data_seconds = 0.0
    files = sorted(f"data/{SOURCE}/{(START_DAY + timedelta(days=d)).isoformat()}.parquet"
                   for d in range(days))
    fresh = (
        not reuse_data
        or not marker.exists()
        or json.loads(marker.read_text()) != params
        or not all((root / f).exists() for f in files)
    )
    if fresh:
        t0 = time.perf_counter()
        files = write_telemetry(root, rows, days, devices, seed)
        marker.write_text(json.dumps(params))
        data_seconds = time.perf_counter() - t0

    source = SourceSpec(
        name=SOURCE, format="parquet", glob=f"data/{SOURCE}/*.parquet", files=files, rows=rows,
        devices=devices, days=days,
        columns=[("device_id", "BIGINT"), ("ts", "TIMESTAMP"), ("status", "VARCHAR"),
                 ("battery_pct", "DOUBLE"), ("signal_dbm", "INTEGER"),
                 ("app_latency_ms", "DOUBLE")],
    )
    spec = ProjectSpec(root, name, models, rows, seed, source,
                       plan_models(models, seed, **plan_options), data_seconds)

    toml = f'name = "{name}"\n'
    if threads:
        toml += f"threads = {threads}\n"
    if duckdb_threads:
        toml += f"\n[duckdb]\nthreads = {duckdb_threads}\n"
    (root / "headwater.toml").write_text(toml)
    for sub in ("sources", "transforms"):
        if (root / sub).exists():
            shutil.rmtree(root / sub)
        (root / sub).mkdir()
    (root / "sources" / f"{SOURCE}.toml").write_text(
        'type = "files"\n'
        f'description = "Synthetic device telemetry, one Parquet file per day ({rows} rows)."\n'
        f'path = "{source.glob}"\n'
        'format = "parquet"\n'
    )
    for m in spec.models:
        (root / "transforms" / f"{m.name}.sql").write_text(m.sql)
    (root / MANIFEST).write_text(json.dumps(spec.to_json(), indent=1))
    return spec


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dest", type=Path)
    ap.add_argument("--models", type=int, default=200)
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--days", type=int, default=10, help="Parquet files (one per day)")
    ap.add_argument("--threads", type=int, default=None, help="write threads = N to headwater.toml")
    ap.add_argument("--no-reuse-data", action="store_true", help="always rewrite the Parquet files")
    args = ap.parse_args(argv)
    spec = generate_project(args.dest, args.models, args.rows, args.seed, days=args.days,
                            threads=args.threads, reuse_data=not args.no_reuse_data)
    print(json.dumps({**spec.summary(), "data_seconds": round(spec.data_seconds, 2)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
