"""`headwater init`: the example project is complete, its data sound, and its SQL runs.

The pipeline is executed here with a plain DuckDB connection (not Headwater's runner) so
these tests pin down the template itself: every transform must run on the generated data
and give sensible, mutually consistent results.
"""

from __future__ import annotations

import importlib.util
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
import sqlglot
from sqlglot import exp

from headwater.errors import ProjectError
from headwater.scaffold import init_project

ROWS = 5_000
SOURCES = {"telemetry", "transactions", "merchants", "devices"}
DAYS = [f"2026-11-0{d}" for d in range(1, 8)]


def _sql_refs(sql: str) -> tuple[set[str], set[str]]:
    """(tables referenced, CTE names) of a SELECT."""
    tree = sqlglot.parse_one(sql, read="duckdb")
    ctes = {cte.alias for cte in tree.find_all(exp.CTE)}
    tables = {t.name for t in tree.find_all(exp.Table)} - ctes
    return tables, ctes


def _header(sql: str) -> tuple[str, dict[str, str]]:
    """Description and annotations from the leading comment block."""
    desc: list[str] = []
    notes: dict[str, str] = {}
    for line in sql.splitlines():
        if not line.startswith("--"):
            break
        text = line[2:].strip()
        if text.startswith("@"):
            key, _, value = text[1:].partition(":")
            notes[key.strip()] = value.strip()
        else:
            desc.append(text)
    return " ".join(desc), notes


def _topological(deps: dict[str, set[str]]) -> list[str]:
    order: list[str] = []
    pending = dict(deps)
    while pending:
        ready = sorted(n for n, d in pending.items() if d <= set(order) | SOURCES)
        assert ready, f"cycle or unknown reference among {sorted(pending)}"
        order += ready
        for n in ready:
            del pending[n]
    return order


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("shop")
    init_project(dest, rows=ROWS)
    return dest


@pytest.fixture(scope="module")
def warehouse(project: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """The whole pipeline materialised in an in-memory DuckDB."""
    con = duckdb.connect()
    for toml_path in sorted((project / "sources").glob("*.toml")):
        cfg = tomllib.loads(toml_path.read_text())
        glob = (project / cfg["path"]).as_posix()
        if cfg["format"] == "ndjson":
            reader = f"read_json('{glob}', format = 'newline_delimited')"
        else:
            reader = f"read_csv('{glob}', header = {cfg.get('header', True)})"
        con.execute(f"CREATE TABLE {toml_path.stem} AS SELECT * FROM {reader}")

    sql_files = {p.stem: p.read_text() for p in (project / "transforms").glob("*.sql")}
    deps = {name: _sql_refs(sql)[0] for name, sql in sql_files.items()}
    for name in _topological(deps):
        kind = _header(sql_files[name])[1].get("materialized", "table").upper()
        con.execute(f"CREATE {kind} {name} AS {sql_files[name]}")

    spec = importlib.util.spec_from_file_location(
        "customer_segments", project / "transforms" / "customer_segments.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    segments = module.customer_segments(con.table("customer_points_balance").to_arrow_table())
    assert isinstance(segments, pa.Table)
    con.register("customer_segments_arrow", segments)
    con.execute("CREATE TABLE customer_segments AS SELECT * FROM customer_segments_arrow")
    yield con
    con.close()


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[object, ...]:
    row = con.execute(sql).fetchone()
    assert row is not None
    return row


# --- layout -------------------------------------------------------------------------------


def test_writes_the_project_layout(project: Path) -> None:
    config = ["headwater.toml", "README.md", ".gitignore", "sinks/device_health_export.toml"]
    sources = [f"sources/{name}.toml" for name in SOURCES]
    csvs = [f"data/{name}.csv" for name in ("transactions", "merchants", "devices")]
    telemetry = [f"data/telemetry/{day}.ndjson" for day in DAYS]
    expected = {*config, *sources, *csvs, *telemetry, "transforms/customer_segments.py"}
    on_disk = {p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file()}
    assert expected <= on_disk
    assert len(list((project / "transforms").glob("*.sql"))) >= 6
    assert not any("__pycache__" in p or p.endswith(".pyc") for p in on_disk)


def test_returns_every_file_written(tmp_path: Path) -> None:
    written = init_project(tmp_path / "new" / "shop", rows=700)
    on_disk = {p for p in (tmp_path / "new" / "shop").rglob("*") if p.is_file()}
    assert set(written) == on_disk
    assert len(written) == len(on_disk)


def test_config_files(project: Path) -> None:
    cfg = tomllib.loads((project / "headwater.toml").read_text())
    assert cfg == {"name": "shop", "engine": "duckdb", "dialect": "duckdb"}
    ignored = (project / ".gitignore").read_text().split()
    assert {".headwater/", "target/", "output/", "data/"} <= set(ignored)
    sink = tomllib.loads((project / "sinks" / "device_health_export.toml").read_text())
    assert sink == {
        "type": "files",
        "from": "device_health_daily",
        "path": "output/device_health_daily.parquet",
        "format": "parquet",
    }


def test_sources_point_at_generated_files(project: Path) -> None:
    names = set()
    for toml_path in (project / "sources").glob("*.toml"):
        cfg = tomllib.loads(toml_path.read_text())
        names.add(toml_path.stem)
        assert cfg["type"] == "files"
        assert cfg["format"] in {"csv", "parquet", "ndjson"}
        assert cfg["description"] and cfg["tags"]
        assert list(project.glob(cfg["path"])), cfg["path"]
    assert names == SOURCES


def test_sql_transforms_have_headers_and_valid_references(project: Path) -> None:
    nodes = SOURCES | {p.stem for p in (project / "transforms").iterdir()}
    for path in (project / "transforms").glob("*.sql"):
        sql = path.read_text()
        description, notes = _header(sql)
        assert sql.startswith("-- ") and description, path.name
        assert set(notes) <= {"tags", "materialized"}
        assert notes.get("materialized", "table") in {"table", "view"}
        tables, ctes = _sql_refs(sql)
        assert tables <= nodes, f"{path.name} refers to unknown {tables - nodes}"
        assert not ctes & nodes, f"{path.name} has CTEs named like nodes: {ctes & nodes}"
        assert len(sqlglot.parse(sql, read="duckdb")) == 1


def test_readme_lists_the_real_dependencies(project: Path) -> None:
    # Rows of the "Table | Built from" table: "| `name` (Python) | `a`, `b` |"
    row = re.compile(r"^\| `(\w+)`(?: \(Python\))? \| ((?:`\w+`(?:, )?)+) \|$", re.MULTILINE)
    documented = {
        name: set(re.findall(r"`(\w+)`", upstreams))
        for name, upstreams in row.findall((project / "README.md").read_text())
    }
    actual = {p.stem: _sql_refs(p.read_text())[0] for p in (project / "transforms").glob("*.sql")}
    actual["customer_segments"] = {"customer_points_balance"}
    assert documented == actual


# --- generated data -------------------------------------------------------------------------


def test_telemetry_is_day_partitioned_and_well_formed(warehouse: duckdb.DuckDBPyConnection) -> None:
    con = warehouse
    assert _one(con, "SELECT count(*) FROM telemetry") == (ROWS,)
    per_file = con.execute(
        "SELECT DISTINCT strftime(CAST(ts AS TIMESTAMP), '%Y-%m-%d') FROM telemetry ORDER BY 1"
    ).fetchall()
    assert [d for (d,) in per_file] == DAYS
    bad = _one(
        con,
        """
        SELECT count(*) FILTER (WHERE status NOT IN ('online', 'offline', 'degraded')),
               count(*) FILTER (WHERE battery_pct NOT BETWEEN 0 AND 100),
               count(*) FILTER (WHERE signal_dbm NOT BETWEEN -120 AND -40),
               count(*) FILTER (WHERE app_latency_ms < 0),
               count(*) FILTER (WHERE device_id NOT LIKE 'dev-____')
        FROM telemetry
    """,
    )
    assert bad == (0, 0, 0, 0, 0)
    online, offline, degraded, low_battery, spikes = _one(
        con,
        """
        SELECT avg((status = 'online')::INT), avg((status = 'offline')::INT),
               avg((status = 'degraded')::INT), avg((battery_pct < 20)::INT),
               count(*) FILTER (WHERE app_latency_ms > 1000)
        FROM telemetry
    """,
    )
    assert online > 0.8  # mostly online ...
    assert offline > 0 and degraded > 0 and low_battery > 0 and spikes > 0  # ... but not boring


def test_referential_integrity(warehouse: duckdb.DuckDBPyConnection) -> None:
    con = warehouse
    orphans = _one(
        con,
        """
        SELECT
            (SELECT count(*) FROM transactions ANTI JOIN merchants USING (merchant_id)),
            (SELECT count(*) FROM devices ANTI JOIN merchants USING (merchant_id)),
            (SELECT count(*) FROM telemetry ANTI JOIN devices USING (device_id)),
            -- every merchant has at least one terminal
            (SELECT count(*) FROM merchants ANTI JOIN devices USING (merchant_id))
    """,
    )
    assert orphans == (0, 0, 0, 0)
    unique = _one(
        con,
        """
        SELECT (SELECT count(*) = count(DISTINCT txn_id) FROM transactions),
               (SELECT count(*) = count(DISTINCT merchant_id) FROM merchants),
               (SELECT count(*) = count(DISTINCT device_id) FROM devices)
    """,
    )
    assert unique == (True, True, True)


def test_data_sizes(warehouse: duckdb.DuckDBPyConnection) -> None:
    con = warehouse
    merchants, devices, purchases = _one(
        con,
        """
        SELECT (SELECT count(*) FROM merchants), (SELECT count(*) FROM devices),
               (SELECT count(*) FROM transactions WHERE amount_cents > 0)
    """,
    )
    assert 10 <= merchants <= 60
    assert merchants <= devices <= 7 * merchants
    assert purchases == max(1_000, ROWS // 4)


def test_refunds_follow_their_purchase(warehouse: duckdb.DuckDBPyConnection) -> None:
    refunds, bad = _one(
        warehouse,
        """
        SELECT count(*),
               count(*) FILTER (WHERE p.txn_id IS NULL OR p.ts >= r.ts
                                OR p.amount_cents <> -r.amount_cents
                                OR p.points_earned <> -r.points_earned)
        FROM transactions AS r
        LEFT JOIN transactions AS p
          ON p.txn_id = r.txn_id - (SELECT count(*) FROM transactions WHERE amount_cents > 0)
        WHERE r.amount_cents < 0
    """,
    )
    assert refunds > 0 and bad == 0


# --- transforms -------------------------------------------------------------------------------


def test_every_transform_produces_rows(warehouse: duckdb.DuckDBPyConnection, project: Path) -> None:
    for path in (project / "transforms").iterdir():
        assert _one(warehouse, f"SELECT count(*) FROM {path.stem}")[0] > 0, path.stem


def test_device_health_scores(warehouse: duckdb.DuckDBPyConnection) -> None:
    lo, hi, devices, days, readings = _one(
        warehouse,
        """
        SELECT min(health_score), max(health_score), count(DISTINCT device_id),
               count(DISTINCT reading_date), sum(readings)
        FROM device_health_daily
    """,
    )
    assert 0 <= lo < hi <= 100
    assert lo < 60  # some terminals are in trouble
    assert days == 7 and readings == ROWS
    assert devices == _one(warehouse, "SELECT count(DISTINCT device_id) FROM telemetry")[0]
    fleet = "SELECT min(avg_health_score), max(avg_health_score) FROM merchant_device_health"
    lo, hi = _one(warehouse, fleet)
    assert 0 <= lo <= hi <= 100


def test_points_balances_add_up(warehouse: duckdb.DuckDBPyConnection) -> None:
    con = warehouse
    total_points, customers = _one(
        con, "SELECT sum(points_earned), count(DISTINCT customer_id) FROM transactions"
    )
    balance, earned_minus_reversed, rows, negative = _one(
        con,
        """
        SELECT sum(points_balance), sum(points_earned - points_reversed), count(*),
               count(*) FILTER (WHERE points_balance < 0 OR peak_balance < points_balance)
        FROM customer_points_balance
    """,
    )
    assert balance == earned_minus_reversed == total_points
    assert rows == customers
    assert negative == 0
    issued = _one(con, "SELECT sum(points_issued) FROM merchant_loyalty_stats")[0]
    assert issued == total_points


def test_revenue_adds_up(warehouse: duckdb.DuckDBPyConnection) -> None:
    con = warehouse
    total = _one(con, "SELECT sum(amount_cents) FROM transactions")[0]
    assert _one(con, "SELECT sum(net_cents) FROM merchant_daily_revenue")[0] == total
    assert _one(con, "SELECT sum(net_revenue_cents) FROM merchant_loyalty_stats")[0] == total
    gross_less_refunds = "SELECT sum(gross_cents) - sum(refunded_cents) FROM merchant_daily_revenue"
    assert _one(con, gross_less_refunds)[0] == total
    rates = (
        "SELECT min(repeat_customer_rate), max(repeat_customer_rate) FROM merchant_loyalty_stats"
    )
    lo, hi = _one(con, rates)
    assert 0 <= lo <= hi <= 1


def test_scorecard_covers_every_merchant(warehouse: duckdb.DuckDBPyConnection) -> None:
    con = warehouse
    merchants = _one(con, "SELECT count(*) FROM merchants")[0]
    assert _one(con, "SELECT count(*) FROM merchant_scorecard")[0] == merchants
    actions = {a for (a,) in con.execute("SELECT next_action FROM merchant_scorecard").fetchall()}
    assert actions <= {"fix terminals", "check terminals", "grow loyalty", "ok"}


def test_customer_segments(warehouse: duckdb.DuckDBPyConnection) -> None:
    con = warehouse
    customers = _one(con, "SELECT count(*) FROM customer_points_balance")[0]
    assert _one(con, "SELECT count(*), count(DISTINCT customer_id) FROM customer_segments") == (
        customers,
        customers,
    )
    segments = {s for (s,) in con.execute("SELECT segment FROM customer_segments").fetchall()}
    assert segments == {"champion", "regular", "at_risk", "new"}


# --- init behaviour -----------------------------------------------------------------------------


def test_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ProjectError) as info:
        init_project(tmp_path, rows=700)
    assert info.value.path == tmp_path
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert not (tmp_path / "headwater.toml").exists()


def test_rerun_needs_force(tmp_path: Path) -> None:
    init_project(tmp_path, rows=700)
    with pytest.raises(ProjectError):
        init_project(tmp_path, rows=700)
    written = init_project(tmp_path, rows=1_400, force=True)
    assert tmp_path / "headwater.toml" in written
    assert _telemetry_lines(tmp_path) == 1_400  # data regenerated, not appended


def test_refuses_a_file_and_too_few_rows(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(ProjectError):
        init_project(tmp_path / "file", rows=700)
    with pytest.raises(ProjectError):
        init_project(tmp_path / "empty", rows=3)


def _telemetry_lines(project: Path) -> int:
    files = sorted((project / "data" / "telemetry").glob("*.ndjson"))
    assert [f.stem for f in files] == DAYS
    return sum(len(f.read_text().splitlines()) for f in files)


def test_rows_sets_the_telemetry_row_count(tmp_path: Path) -> None:
    init_project(tmp_path / "small", rows=700)
    init_project(tmp_path / "large", rows=7_003)
    assert _telemetry_lines(tmp_path / "small") == 700
    assert _telemetry_lines(tmp_path / "large") == 7_003


def _data_files(project: Path) -> dict[str, bytes]:
    return {
        p.relative_to(project).as_posix(): p.read_bytes()
        for p in sorted((project / "data").rglob("*"))
        if p.is_file()
    }


def test_same_seed_same_data(tmp_path: Path) -> None:
    init_project(tmp_path / "a", rows=3_000, seed=7)
    init_project(tmp_path / "b", rows=3_000, seed=7)
    init_project(tmp_path / "c", rows=3_000, seed=8)
    a, b, c = (_data_files(tmp_path / x) for x in "abc")
    assert a == b
    assert a.keys() == c.keys()
    assert a["data/transactions.csv"] != c["data/transactions.csv"]
    assert a["data/telemetry/2026-11-01.ndjson"] != c["data/telemetry/2026-11-01.ndjson"]
