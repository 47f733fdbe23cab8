"""What only the mysql connector does, against a real MariaDB/MySQL server (no mocks):
its type mapping on reads, naive DATETIME cursors, ``mysql://`` DSN forms. What every
database connector does is tested once for all of them in ``test_sql_connectors.py``.

Every test works in its own database, dropped afterwards. Without a reachable
server the tests skip with the reason (in CI a skip counts as a failure).
Set HEADWATER_TEST_MYSQL_DSN to point them at another server.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from headwater.connectors.sql.mysql import (
    MySQLSource,
    MySQLSourceConfig,
    parse_dsn,
)

pymysql = pytest.importorskip("pymysql", reason="PyMySQL is missing: pip install -e '.[dev]'")

DSN = os.environ.get("HEADWATER_TEST_MYSQL_DSN", "mysql://root@127.0.0.1:3306/test")
# the server check (skip with the reason when unreachable) is tests/integration/conftest.py


def _connect(**kw: Any) -> Any:
    p = parse_dsn(DSN)
    return pymysql.connect(host=p.get("host", "127.0.0.1"), port=int(p.get("port", 3306)),
                           user=p.get("user", "root"), password=p.get("password", ""),
                           database=p.get("database"), autocommit=True, **kw)


@pytest.fixture(scope="module")
def admin(mysql_dsn: str) -> Iterator[Any]:
    con = _connect(connect_timeout=3)
    yield con
    con.close()


def run(admin: Any, sql: str) -> list[tuple[Any, ...]]:
    with admin.cursor() as cur:
        cur.execute(sql)
        return list(cur.fetchall())


@pytest.fixture
def db(admin: Any) -> Iterator[str]:
    name = f"hw_test_{uuid.uuid4().hex[:10]}"
    run(admin, f"CREATE DATABASE `{name}`")
    yield name
    run(admin, f"DROP DATABASE `{name}`")


def source(name: str = "src", **cfg: Any) -> MySQLSource:
    cfg.setdefault("dsn", DSN)
    config = MySQLSourceConfig.model_validate({"type": "mysql", **cfg})
    return MySQLSource(name, config, Path("."), Path("sources") / f"{name}.toml")


def read_all(src: MySQLSource, since: Any = None) -> pa.Table:
    reader = src.read(since)
    return pa.Table.from_batches(list(reader), reader.schema)


# -- reading ---------------------------------------------------------------------------


def test_read_table_streams_typed_batches(admin: Any, db: str) -> None:
    run(admin, f"""CREATE TABLE `{db}`.t (id INT, tiny TINYINT UNSIGNED, big BIGINT UNSIGNED,
        amount DECIMAL(10,2), huge DECIMAL(50,5), f FLOAT, d DOUBLE, name VARCHAR(20),
        body TEXT, bin VARBINARY(8), day DATE, at DATETIME(6), ts TIMESTAMP(3) NULL,
        dur TIME, yr YEAR, doc JSON, kind ENUM('x','y'), bits BIT(3))""")
    run(admin, f"""INSERT INTO `{db}`.t VALUES (1, 255, 18446744073709551615, 1.25,
        123.45, 1.5, 2.5, 'a,"b', 'x\ny', x'00ff', '2024-01-02', '2024-01-02 03:04:05.5',
        '2024-01-02 03:04:05.25', '-10:00:00', 2024, '{{"a": 1}}', 'y', b'101')""")
    run(admin, f"INSERT INTO `{db}`.t (id, name) SELECT seq, '' FROM seq_2_to_2500")
    src = source(table=f"{db}.t", chunk_rows=1000)
    reader = src.read()
    batches = list(reader)
    assert [b.num_rows for b in batches] == [1000, 1000, 500]
    t = pa.Table.from_batches(batches, reader.schema)
    types = {f.name: f.type for f in t.schema}
    assert types == {
        "id": pa.int32(), "tiny": pa.uint8(), "big": pa.uint64(),
        "amount": pa.decimal128(10, 2), "huge": pa.string(), "f": pa.float32(),
        "d": pa.float64(), "name": pa.string(), "body": pa.string(), "bin": pa.binary(),
        "day": pa.date32(), "at": pa.timestamp("us"), "ts": pa.timestamp("us", "UTC"),
        "dur": pa.duration("us"), "yr": pa.int16(), "doc": pa.string(), "kind": pa.string(),
        "bits": pa.int64(),
    }
    first = t.sort_by("id").slice(0, 2).to_pylist()
    assert first[0] == {
        "id": 1, "tiny": 255, "big": 18446744073709551615, "amount": Decimal("1.25"),
        "huge": "123.45000", "f": 1.5, "d": 2.5, "name": 'a,"b', "body": "x\ny",
        "bin": b"\x00\xff", "day": dt.date(2024, 1, 2),
        "at": dt.datetime(2024, 1, 2, 3, 4, 5, 500000),
        "ts": dt.datetime(2024, 1, 2, 3, 4, 5, 250000, tzinfo=dt.UTC),
        "dur": dt.timedelta(hours=-10), "yr": 2024, "doc": '{"a": 1}', "kind": "y", "bits": 5,
    }
    assert first[1]["name"] == "" and first[1]["amount"] is None


def test_a_datetime_cursor_compares_its_naive_values(admin: Any, db: str) -> None:
    """A DATETIME reads back naive, so the cursor value a run keeps is naive: it is
    compared as written, as the session's UTC wall time."""
    run(admin, f"CREATE TABLE `{db}`.ev (id INT, at DATETIME)")
    run(admin, f"INSERT INTO `{db}`.ev SELECT seq, '2024-01-01' + INTERVAL seq DAY "
               "FROM seq_1_to_100")
    src = source(table=f"{db}.ev", cursor="at")
    top = max(read_all(src).column("at").to_pylist())
    assert top == dt.datetime(2024, 4, 10) and top.tzinfo is None
    got = read_all(src, dt.datetime(2024, 3, 1))  # day 60
    assert sorted(got.column("id").to_pylist()) == list(range(61, 101))
    assert read_all(src, top).num_rows == 0


def test_dsn_forms() -> None:
    assert parse_dsn("mysql://u:p%40ss@h1:3307/db?charset=latin1") == {
        "user": "u", "password": "p@ss", "host": "h1", "port": "3307", "database": "db",
        "charset": "latin1"}
    assert parse_dsn("mariadb://u:${PW}@[::1]/d") == {
        "user": "u", "password": "${PW}", "host": "::1", "database": "d"}
    assert parse_dsn("mysql+pymysql://h") == {"host": "h"}
    with pytest.raises(ValueError, match="expected mysql://"):
        parse_dsn("postgresql://h/d")
