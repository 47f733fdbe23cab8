"""Synthetic data for the example project, generated with DuckDB SQL.

Every value derives from ``hash(row, seed, salt)`` rather than ``random()`` so the output is
identical for a given seed no matter how many threads DuckDB uses, and the whole thing stays
vectorised: ten million telemetry rows never pass through a Python loop.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path

import duckdb

from headwater.core.quoting import quote_literal

TELEMETRY_DAYS = 7
LAST_DAY = dt.date(2026, 11, 7)  # fixed so example results never depend on the clock
TRANSACTION_DAYS = 91  # a quarter of loyalty history, enough for "at risk" customers

# Per category: name suffix, min and max ticket in cents (amounts are skewed toward the min).
CATEGORIES: list[tuple[str, str, int, int]] = [
    ("cafe", "Coffee", 250, 1_800),
    ("bakery", "Bakery", 300, 2_500),
    ("grocery", "Market", 800, 18_000),
    ("restaurant", "Kitchen", 1_500, 12_000),
    ("pharmacy", "Pharmacy", 500, 6_000),
    ("bookstore", "Books", 800, 6_000),
    ("fuel", "Fuel", 2_500, 9_000),
    ("apparel", "Outfitters", 2_000, 20_000),
]
ADJECTIVES = ["Blue Door", "Golden", "Corner", "Harbor", "Little", "Maple", "Northside", "Old Town"]
CITIES = ["Riverton", "Lakeside", "Hillcrest", "Eastport", "Millbrook", "Westfield"]
# Countertop models run on mains power; the "Pocket" handhelds live on their battery.
MODELS = ["Counter C7", "Counter C9", "Pocket P3", "Pocket P5"]


@dataclass(frozen=True)
class DataPlan:
    """Sizes of every generated data set, derived from the requested telemetry row count."""

    rows: int
    seed: int

    @property
    def merchants(self) -> int:
        # Fourth-root growth: 50 merchants at the default size, ~160 at ten million rows.
        return max(10, min(500, round(50 * math.pow(self.rows / 100_000, 0.25))))

    @property
    def transactions(self) -> int:
        return max(1_000, self.rows // 4)

    @property
    def customers(self) -> int:
        return max(200, self.transactions // 10)


def generate_data(data_dir: Path, rows: int, seed: int) -> list[Path]:
    """Write merchants, devices, transactions and day-partitioned telemetry; return the files."""
    plan = DataPlan(rows=rows, seed=seed)
    (data_dir / "telemetry").mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false")  # the CLI owns the terminal
        _create_macros(con, seed)
        _create_merchants(con, plan)
        n_devices = _create_devices(con)
        merchants = "SELECT merchant_id, name, category, city, loyalty_tier FROM gen_merchants"
        devices = "SELECT device_id, merchant_id, model, installed_on FROM gen_devices"
        written = [
            _copy(con, merchants + " ORDER BY idx", data_dir / "merchants.csv"),
            _copy(con, devices + " ORDER BY idx", data_dir / "devices.csv"),
            _copy(con, _transactions_sql(plan), data_dir / "transactions.csv"),
        ]
        written += _write_telemetry(con, plan, n_devices, data_dir / "telemetry")
    finally:
        con.close()
    return written


def _create_macros(con: duckdb.DuckDBPyConnection, seed: int) -> None:
    # u(): uniform [0, 1) from a key and a salt, so each attribute gets an independent stream.
    con.execute(
        f"CREATE MACRO u(k, salt) AS (hash(k, {int(seed)}, salt) % 1000000007) / 1000000007.0"
    )
    # Device traits are pure functions of the device index, shared by devices.csv and telemetry.
    con.execute(f"CREATE MACRO model_idx(d) AS 1 + floor(u(d, 'model') * {len(MODELS)})::INT")
    con.execute("CREATE MACRO is_pocket(d) AS model_idx(d) >= 3")
    # About 9% of terminals are flaky; a third of those die during the week and stay dark.
    con.execute("CREATE MACRO is_flaky(d) AS u(d, 'flaky') < 0.09")
    con.execute(
        f"CREATE MACRO dies_on(d) AS CASE WHEN u(d, 'flaky') < 0.03 "
        f"THEN floor(u(d, 'dies_on') * {TELEMETRY_DAYS})::INT END"
    )


def _sql_list(values: list[str]) -> str:
    return "[" + ", ".join(_sql_str(v) for v in values) + "]"


def _sql_str(value: str) -> str:
    return quote_literal(value)


def _create_merchants(con: duckdb.DuckDBPyConnection, plan: DataPlan) -> None:
    cats = _sql_list([c[0] for c in CATEGORIES])
    nouns = _sql_list([c[1] for c in CATEGORIES])
    lows = "[" + ", ".join(str(c[2]) for c in CATEGORIES) + "]"
    highs = "[" + ", ".join(str(c[3]) for c in CATEGORIES) + "]"
    con.execute(f"""
        CREATE TABLE gen_merchants AS
        WITH base AS (
            SELECT
                i AS idx,
                1 + floor(u(i, 'cat') * {len(CATEGORIES)})::INT AS c,
                u(i, 'tier') AS t,
                -- 1..7 terminals, most merchants have two to four
                1 + floor(pow(u(i, 'terminals'), 1.5) * 7)::INT AS n_terminals
            FROM range({plan.merchants}) r(i)
        ),
        named AS (
            SELECT *, row_number() OVER (PARTITION BY name ORDER BY idx) AS branch
            FROM (
                SELECT *,
                    {_sql_list(ADJECTIVES)}[1 + floor(u(idx, 'adj') * {len(ADJECTIVES)})::INT]
                        || ' ' || {nouns}[c] AS name
                FROM base
            )
        )
        SELECT
            idx,
            printf('mer-%04d', idx + 1) AS merchant_id,
            -- a repeated name is another branch of the same chain: "Corner Coffee #2"
            name || CASE WHEN branch > 1 THEN ' #' || branch ELSE '' END AS name,
            {cats}[c] AS category,
            {_sql_list(CITIES)}[1 + floor(u(idx, 'city') * {len(CITIES)})::INT] AS city,
            CASE WHEN t < 0.45 THEN 'bronze' WHEN t < 0.75 THEN 'silver'
                 WHEN t < 0.93 THEN 'gold' ELSE 'platinum' END AS loyalty_tier,
            CASE WHEN t < 0.45 THEN 1.0 WHEN t < 0.75 THEN 1.25
                 WHEN t < 0.93 THEN 1.5 ELSE 2.0 END AS multiplier,
            {lows}[c] AS min_cents,
            {highs}[c] AS max_cents,
            n_terminals,
            (sum(n_terminals) OVER (ORDER BY idx) - n_terminals)::BIGINT AS first_device
        FROM named
    """)


def _create_devices(con: duckdb.DuckDBPyConnection) -> int:
    con.execute(f"""
        CREATE TABLE gen_devices AS
        WITH slots AS (
            SELECT merchant_id, first_device + unnest(range(n_terminals)) AS idx
            FROM gen_merchants
        )
        SELECT
            idx,
            printf('dev-%04d', idx + 1) AS device_id,
            merchant_id,
            {_sql_list(MODELS)}[model_idx(idx)] AS model,
            DATE '2023-01-01' + floor(u(idx, 'installed') * 1300)::INT AS installed_on
        FROM slots
    """)
    row = con.execute("SELECT count(*) FROM gen_devices").fetchone()
    assert row is not None
    return int(row[0])


def _transactions_sql(plan: DataPlan) -> str:
    n, start = plan.transactions, LAST_DAY - dt.timedelta(days=TRANSACTION_DAYS - 1)
    return f"""
        WITH picks AS (
            SELECT
                i,
                i * {TRANSACTION_DAYS} // {n} AS day_idx,
                -- Squared draw favours low customer ids (regulars); the ceiling rises over time
                -- so high ids first appear near the end: the "new" customers.
                floor(pow(u(i, 'cust'), 2) * {plan.customers}
                      * (0.6 + 0.4 * i / {n}))::BIGINT AS c0
            FROM range({n}) r(i)
        ),
        churned AS (
            -- One customer in six stops coming after day 40-80; their visits go to a neighbour.
            SELECT *,
                CASE WHEN c0 % 6 = 5 AND day_idx > 40 + floor(u(c0, 'churn') * 40)
                     THEN c0 - 1 ELSE c0 END AS c
            FROM picks
        ),
        visits AS (
            -- Customers mostly shop at their home merchant, more so the richer its points tier
            -- (55% at bronze up to 85% at platinum); the other visits go anywhere.
            SELECT p.*,
                CASE WHEN u(p.i, 'loyal') < 0.55 + 0.3 * (h.multiplier - 1)
                     THEN h.idx
                     ELSE floor(u(p.i, 'merchant') * {plan.merchants})::BIGINT END AS m_idx
            FROM churned p
            JOIN gen_merchants h ON h.idx = hash(p.c, {plan.seed}, 'home') % {plan.merchants}
        ),
        purchases AS (
            SELECT
                p.i + 1 AS txn_id,
                m.merchant_id,
                printf('cus-%06d', p.c + 1) AS customer_id,
                m.min_cents + floor(pow(u(p.i, 'amount'), 2) * (m.max_cents - m.min_cents))::BIGINT
                    AS amount_cents,
                m.multiplier,
                TIMESTAMP '{start} 07:00:00' + to_days(p.day_idx::INT)
                    + to_seconds(floor(u(p.i, 'time') * 14 * 3600)::BIGINT) AS ts,
                u(p.i, 'refund') < 0.02 AS refunded
            FROM visits p
            JOIN gen_merchants m ON m.idx = p.m_idx
        ),
        ledger AS (
            SELECT txn_id, merchant_id, customer_id, amount_cents,
                   floor(amount_cents * multiplier / 100)::BIGINT AS points_earned, ts
            FROM purchases
            UNION ALL
            -- Refunds reverse the purchase and its points one to 72 hours later.
            SELECT {n} + txn_id, merchant_id, customer_id, -amount_cents,
                   -floor(amount_cents * multiplier / 100)::BIGINT,
                   ts + to_hours(1 + floor(u(txn_id, 'refund_delay') * 71)::INT)
            FROM purchases
            WHERE refunded
        )
        SELECT txn_id, merchant_id, customer_id, amount_cents, points_earned,
               strftime(ts, '%Y-%m-%d %H:%M:%S') AS ts
        FROM ledger
        WHERE ts < TIMESTAMP '{LAST_DAY + dt.timedelta(days=1)}'
        ORDER BY txn_id
    """


def _telemetry_sql(n_devices: int, day: dt.date, k: int, lo: int, hi: int) -> str:
    """Telemetry rows lo..hi, all on day number k of the week."""
    per_device = max(1, -(-(hi - lo) // n_devices))  # readings per device that day, rounded up
    # One cluster of devices loses connectivity in a mid-afternoon outage two days from the end.
    outage = "d % 13 = 5 AND sec BETWEEN 13 * 3600 AND 15 * 3600"
    if k != TELEMETRY_DAYS - 3:
        outage = "FALSE"
    return f"""
        WITH slots AS (
            SELECT
                i,
                (i - {lo}) % {n_devices} AS d,
                -- spread each device's readings evenly over the day, with jitter
                floor(((i - {lo}) // {n_devices} + u(i, 'jitter') * 0.9)
                      * {86_400 / per_device})::BIGINT AS sec
            FROM range({lo}, {hi}) r(i)
        ),
        traits AS (
            SELECT *,
                sec / 3600.0 AS hour,
                {k} >= coalesce(dies_on(d), {TELEMETRY_DAYS}) AS dead,
                -- Offline spells last whole hours; flaky devices get them far more often.
                dead
                    OR u(d * 1000 + {k * 24} + sec // 3600, 'offline')
                        < CASE WHEN is_flaky(d) THEN 0.15 ELSE 0.01 END
                    OR ({outage}) AS offline,
                u(i, 'degraded') < CASE WHEN is_flaky(d) THEN 0.3 ELSE 0.03 END AS degraded
            FROM slots
        ),
        readings AS (
            SELECT
                d, sec,
                CASE WHEN offline THEN 'offline' WHEN degraded THEN 'degraded'
                     ELSE 'online' END AS status,
                -- Handhelds charge overnight and drain from 07:00; a third of them have worn
                -- batteries that run flat by the evening. Countertops sit near 100.
                CASE WHEN dead THEN 0
                     WHEN is_pocket(d)
                     THEN 100 - greatest(0, hour - 7)
                                * CASE WHEN u(d, 'weak') < 0.33 THEN 8 ELSE 3.5 END
                          + (u(i, 'battery') - 0.5) * 8
                     ELSE 96 + u(i, 'battery') * 4 END AS battery,
                -95 + u(d, 'signal') * 40 + (u(i, 'signal') - 0.5) * 20
                    - CASE WHEN degraded THEN 15 ELSE 0 END AS signal,
                -- Exponential latency (mean ~45 ms) plus rare multi-second spikes.
                (35 - ln(1 - u(i, 'latency')) * 45
                    + CASE WHEN u(i, 'spike') < 0.01 THEN 1500 + u(i, 'spike_size') * 3500
                           ELSE 0 END)
                    * CASE WHEN degraded THEN 4 ELSE 1 END AS latency
            FROM traits
        )
        SELECT
            printf('dev-%04d', d + 1) AS device_id,
            strftime(TIMESTAMP '{day}' + to_seconds(sec), '%Y-%m-%d %H:%M:%S') AS ts,
            status,
            greatest(0, least(100, round(battery)))::INT AS battery_pct,
            greatest(-120, least(-40, round(signal)))::INT AS signal_dbm,
            CASE WHEN status <> 'offline' THEN round(latency)::INT END AS app_latency_ms
        FROM readings
    """


def _write_telemetry(
    con: duckdb.DuckDBPyConnection, plan: DataPlan, n_devices: int, out_dir: Path
) -> list[Path]:
    first_day = LAST_DAY - dt.timedelta(days=TELEMETRY_DAYS - 1)
    written = []
    for k in range(TELEMETRY_DAYS):
        day = first_day + dt.timedelta(days=k)
        # Exact split so the total row count is precisely `rows`.
        lo, hi = plan.rows * k // TELEMETRY_DAYS, plan.rows * (k + 1) // TELEMETRY_DAYS
        sql = _telemetry_sql(n_devices, day, k, lo, hi)
        written.append(_copy(con, sql, out_dir / f"{day.isoformat()}.ndjson", fmt="json"))
    return written


def _copy(con: duckdb.DuckDBPyConnection, sql: str, path: Path, fmt: str = "csv") -> Path:
    options = "FORMAT csv, HEADER" if fmt == "csv" else "FORMAT json"
    con.execute(f"COPY ({sql}) TO {_sql_str(path.as_posix())} ({options})")
    return path
