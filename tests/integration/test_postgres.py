"""What only the postgres connector does, against a real PostgreSQL server (no mocks):
its type mapping on reads (both drivers), libpq DSN forms, a window node over a
cursor source. What every database connector does is tested once for all of them
in ``test_sql_connectors.py``.

Every test works in its own schema, dropped afterwards. Without a reachable
server the tests skip with the reason (in CI a skip counts as a failure).
Set HEADWATER_TEST_PG_DSN to point them at another server.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from headwater.connectors.sql.postgres import (
    PostgresSource,
    PostgresSourceConfig,
    parse_dsn,
)

psycopg = pytest.importorskip("psycopg", reason="psycopg is missing: pip install -e '.[dev]'")

DSN = os.environ.get("HEADWATER_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
# the server check (skip with the reason when unreachable) is tests/integration/conftest.py


@pytest.fixture(scope="module")
def admin(pg_dsn: str) -> Iterator[Any]:
    con = psycopg.connect(pg_dsn, autocommit=True, connect_timeout=3)
    yield con
    con.close()


@pytest.fixture
def schema(admin: Any) -> Iterator[str]:
    name = f"hw_test_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE SCHEMA "{name}"')
    yield name
    admin.execute(f'DROP SCHEMA "{name}" CASCADE')


@pytest.fixture(params=["adbc", "psycopg"])
def driver(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def source(name: str = "src", tmp: Path = Path("."), **cfg: Any) -> PostgresSource:
    cfg.setdefault("dsn", DSN)
    config = PostgresSourceConfig.model_validate({"type": "postgres", **cfg})
    return PostgresSource(name, config, tmp, tmp / "sources" / f"{name}.toml")


def read_all(src: PostgresSource, since: Any = None) -> pa.Table:
    reader = src.read(since)
    return pa.Table.from_batches(list(reader), reader.schema)


# -- reading ---------------------------------------------------------------------------


def test_read_table_streams_typed_batches(admin: Any, schema: str, driver: str) -> None:
    admin.execute(f"""
        CREATE TABLE "{schema}".orders (id int, ts timestamptz, amount numeric(10,2),
            note text, payload bytea, day date, paid bool, ratio numeric, big bigint);
        INSERT INTO "{schema}".orders SELECT g, '2024-01-01'::timestamptz + g * interval '1 hour',
            g / 4.0, CASE g % 3 WHEN 0 THEN '' WHEN 1 THEN NULL ELSE 'a,"b' || chr(10) || 'c' END,
            '\\x00ff', '2024-01-01'::date + g, g % 2 = 0, g * 1.5, g::bigint * 10000000000
        FROM generate_series(1, 2500) g""")
    src = source(table=f"{schema}.orders", chunk_rows=1000, driver=driver)
    reader = src.read()
    batches = list(reader)
    assert [b.num_rows for b in batches] == [1000, 1000, 500]
    t = pa.Table.from_batches(batches, reader.schema)
    types = {f.name: f.type for f in t.schema}
    assert types["id"] == pa.int32()
    assert types["ts"] == pa.timestamp("us", "UTC")
    assert types["amount"] == pa.decimal128(10, 2)
    assert types["ratio"] == pa.float64()  # unconstrained numeric
    assert types["payload"] == pa.binary()
    assert types["day"] == pa.date32()
    first = t.sort_by("id").slice(0, 3).to_pylist()
    assert first[0]["note"] is None and first[1]["note"] == 'a,"b\nc' and first[2]["note"] == ""
    assert first[0]["amount"] == Decimal("0.25")
    assert first[0]["payload"] == b"\x00\xff"
    assert first[0]["ts"] == dt.datetime(2024, 1, 1, 1, tzinfo=dt.UTC)
    assert first[1]["big"] == 20000000000
    assert t.num_rows == 2500


def test_dsn_forms() -> None:
    assert parse_dsn("postgresql://u:p%40ss@h1:5433/db?sslmode=require") == {
        "user": "u", "password": "p@ss", "host": "h1", "port": "5433", "dbname": "db",
        "sslmode": "require"}
    assert parse_dsn("host=h port=1 password='a b\\'c'") == {
        "host": "h", "port": "1", "password": "a b'c"}
    assert parse_dsn("postgres://u:${PW}@[::1]:5432/d")["password"] == "${PW}"


# -- a whole project ---------------------------------------------------------------------


def test_window_node_over_a_cursor_source_reads_only_the_new_range(
        admin: Any, schema: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each load of a cursor source is a range of the cursor with its own sums: a window
    node downstream learns which windows changed without hashing the source's history,
    and still equals a full rebuild."""
    from headwater import Project
    from headwater.engines.duckdb import DuckDBEngine as Engine
    from headwater.testing import write_project

    admin.execute(f"""CREATE TABLE "{schema}".events (id int, at timestamptz, v int);
        INSERT INTO "{schema}".events SELECT g, '2024-01-01 00:00:00+00'::timestamptz
            + g * interval '1 hour', g % 7 FROM generate_series(1, 200) g""")
    monkeypatch.setenv("HW_TEST_PG_DSN", DSN)
    files = {
        "sources/events.toml": f'type = "postgres"\ndsn = "${{HW_TEST_PG_DSN}}"\n'
                               f'table = "{schema}.events"\ncursor = "at"\n',
        "transforms/daily.sql": "-- @incremental: by day day from at\n"
                                "SELECT CAST(at AS DATE) AS day, count(*) AS n, sum(v) AS v\n"
                                "FROM events GROUP BY ALL\n",
    }
    root = write_project(tmp_path / "p", files)
    project = Project(root)
    assert project.run().ok
    admin.execute(f"""INSERT INTO "{schema}".events SELECT g, '2024-01-01 00:00:00+00'::timestamptz
        + g * interval '1 hour', 1 FROM generate_series(201, 230) g""")
    seen: list[str] = []
    original = Engine.fetch

    def spy(self, sql, params=None):  # type: ignore[no-untyped-def]
        seen.append(" ".join(sql.split()))
        return original(self, sql, params)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Engine, "fetch", spy)
        result = project.run()
    assert result.ok, [(n.name, n.error) for n in result.nodes]
    reason = {n.name: n.reason for n in result.nodes}["daily"]
    assert "window(s) changed" in reason, reason
    hashing = [q for q in seen if "hash(" in q.lower()]
    assert hashing and all("CASE WHEN" in q and '"at" >' in q for q in hashing), hashing
    ref = tmp_path / "ref"
    shutil.copytree(root, ref, ignore=shutil.ignore_patterns(".headwater"))
    other = Project(ref)
    assert other.run().ok
    check = "SELECT count(*) AS n, sum(hash(t)::HUGEINT)::VARCHAR AS h FROM daily AS t"
    assert project.query(check).to_pylist() == other.query(check).to_pylist()
