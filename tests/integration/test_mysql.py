"""The mysql source and sink against a real MariaDB/MySQL server (no mocks).

Every test works in its own database, dropped afterwards. Without a reachable
server the tests skip with the reason (in CI a skip counts as a failure).
Set HEADWATER_TEST_MYSQL_DSN to point them at another server.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from headwater.connectors.base import SinkInput
from headwater.connectors.sql.mysql import (
    MySQLSink,
    MySQLSinkConfig,
    MySQLSource,
    MySQLSourceConfig,
    parse_dsn,
)
from headwater.engines.duckdb import DuckDBEngine
from headwater.errors import ConnectorError, HeadwaterError, ProjectError
from headwater.run.build import with_retries

pymysql = pytest.importorskip("pymysql", reason="PyMySQL is missing: pip install -e '.[dev]'")

DSN = os.environ.get("HEADWATER_TEST_MYSQL_DSN", "mysql://root@127.0.0.1:3306/test")
# the server check (skip with the reason when unreachable) is tests/integration/conftest.py
SECRET = "Sup3r$ecret-pw/@:x"


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


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[DuckDBEngine]:
    eng = DuckDBEngine(tmp_path / "w.duckdb")
    eng.open()
    yield eng
    eng.close()


def source(name: str = "src", **cfg: Any) -> MySQLSource:
    cfg.setdefault("dsn", DSN)
    config = MySQLSourceConfig.model_validate({"type": "mysql", **cfg})
    return MySQLSource(name, config, Path("."), Path("sources") / f"{name}.toml")


def sink(name: str = "out", **cfg: Any) -> MySQLSink:
    cfg.setdefault("dsn", DSN)
    cfg.setdefault("from", "node")
    config = MySQLSinkConfig.model_validate({"type": "mysql", **cfg})
    return MySQLSink(name, config, Path("."), Path("sinks") / f"{name}.toml")


def read_all(src: MySQLSource, since: Any = None) -> pa.Table:
    reader = src.read(since)
    return pa.Table.from_batches(list(reader), reader.schema)


def sink_input(engine: DuckDBEngine, table: pa.Table, previous: dict[str, str] | None = None,
               physical: str = "t") -> SinkInput:
    engine.build_arrow(physical, table)
    return SinkInput(engine, physical, "node", previous_partitions=previous or {})


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


def test_incremental_read_binds_since(admin: Any, db: str) -> None:
    run(admin, f"CREATE TABLE `{db}`.ev (id INT, at DATETIME, code VARCHAR(10))")
    run(admin, f"""INSERT INTO `{db}`.ev SELECT seq, '2024-01-01' + INTERVAL seq DAY,
        CONCAT('c', LPAD(seq, 3, '0')) FROM seq_1_to_100""")
    src = source(table=f"{db}.ev", cursor="at")
    assert read_all(src).num_rows == 100
    got = read_all(src, dt.datetime(2024, 3, 1))  # day 60
    assert sorted(got.column("id").to_pylist()) == list(range(61, 101))
    aware = read_all(src, dt.datetime(2024, 3, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=2))))
    assert min(aware.column("id").to_pylist()) == 60  # 2024-02-29 23:00 UTC
    q = source(query=f"SELECT id, code FROM `{db}`.ev WHERE code LIKE 'c%' AND id % 2 = 0;",
               cursor="code")
    assert read_all(q, "c090").column("id").to_pylist() == [92, 94, 96, 98, 100]
    assert read_all(q, "x'; DROP TABLE ev; --").num_rows == 0
    assert run(admin, f"SELECT count(*) FROM `{db}`.ev") == [(100,)]


def test_identifiers_are_quoted_never_injected(admin: Any, db: str, engine: DuckDBEngine) -> None:
    run(admin, f"CREATE TABLE `{db}`.`x; drop table y` (id INT)")
    run(admin, f"INSERT INTO `{db}`.`x; drop table y` VALUES (1), (2)")
    run(admin, f"CREATE TABLE `{db}`.y (id INT)")
    odd = source(table=f"{db}.`x; drop table y`")
    assert sorted(read_all(odd).column("id").to_pylist()) == [1, 2]
    assert odd.data_fingerprint().startswith("content:2:")
    for src in (source(table=f"{db}.y; DROP TABLE {db}.y"),
                source(table=f"{db}.y", cursor="id` > 0; DROP TABLE y; --")):
        with pytest.raises(ConnectorError):
            read_all(src, since=0)
    sink(table=f"{db}.`z%s; drop table y`").write(sink_input(engine, pa.table({"id": [7]})))
    assert run(admin, f"SELECT id FROM `{db}`.`z%s; drop table y`") == [(7,)]
    assert run(admin, f"SELECT count(*) FROM information_schema.tables WHERE table_schema = "
                      f"'{db}' AND table_name = 'y'") == [(1,)]


def test_config_needs_exactly_one_of_table_or_query() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="either `table` or `query`"):
        MySQLSourceConfig.model_validate({"type": "mysql", "table": "a", "query": "b"})
    with pytest.raises(ValidationError, match="needs the key columns"):
        MySQLSinkConfig.model_validate({"type": "mysql", "from": "n", "table": "t",
                                        "mode": "upsert"})


def test_fingerprint_is_a_change_marker(admin: Any, db: str) -> None:
    run(admin, f"CREATE TABLE `{db}`.t (id INT, v VARCHAR(5))")
    run(admin, f"INSERT INTO `{db}`.t SELECT seq, 'v' FROM seq_1_to_10")
    tab = source(table=f"{db}.t")
    fp1 = tab.data_fingerprint()
    assert fp1 == tab.data_fingerprint() and fp1.startswith("content:10:")
    # at once, in the same second (UPDATE_TIME, which has a second's resolution, missed it)
    run(admin, f"UPDATE `{db}`.t SET v = 'w' WHERE id = 3")
    assert tab.data_fingerprint() != fp1
    run(admin, f"UPDATE `{db}`.t SET v = 'v' WHERE id = 3")  # back as it was
    assert tab.data_fingerprint() == fp1
    assert source(table=f"{db}.t", cursor="id").data_fingerprint() == "cursor:10:10"
    q = source(query=f"SELECT * FROM `{db}`.t WHERE id > 5")
    fq = q.data_fingerprint()
    assert fq.startswith("content:5:")
    run(admin, f"UPDATE `{db}`.t SET v = 'z' WHERE id = 7")  # same count
    assert q.data_fingerprint() != fq


# -- failures, secrets, retries -----------------------------------------------------------


def test_connection_failure_is_transient_and_hides_the_password(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, mysql_dsn: str
) -> None:
    monkeypatch.setenv("HW_TEST_MY_SECRET", SECRET)
    caplog.set_level(logging.DEBUG)
    src = source(dsn="mysql://root:${HW_TEST_MY_SECRET}@127.0.0.1:1/test", table="t")
    with pytest.raises(ConnectorError) as info:
        with_retries(lambda: read_all(src), retries=1, delay=0)
    err = info.value
    assert err.transient
    text = err.render()
    assert "source 'src'" in text and "127.0.0.1:1/test" in text
    for form in (SECRET, "Sup3r"):
        assert form not in text and form not in repr(err.__dict__) and form not in caplog.text
    assert "retrying" in caplog.text
    # a wrong password against the real server: not transient, still not shown
    bad = source(dsn=DSN.replace("mysql://root@", "mysql://hw_nobody:${HW_TEST_MY_SECRET}@"),
                 table="t")
    with pytest.raises(ConnectorError) as info:
        bad.read()
    assert not info.value.transient and "Sup3r" not in info.value.render()
    with pytest.raises(ValueError, match="the dsn holds a password"):
        source(dsn="mysql://root:plain-pw@h/d", table="t")
    with pytest.raises(ValueError, match="must name an environment variable"):
        source(table="t", password="other")


def test_missing_env_var_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HW_TEST_UNSET_PW", raising=False)
    src = source(dsn="mysql://root:${HW_TEST_UNSET_PW}@127.0.0.1/test", table="t")
    with pytest.raises(ProjectError, match="HW_TEST_UNSET_PW is not set"):
        src.read()


@pytest.fixture(scope="module")
def big(admin: Any) -> Iterator[tuple[str, int]]:
    name = f"hw_test_big_{uuid.uuid4().hex[:8]}"
    n = 600_000
    run(admin, f"CREATE DATABASE `{name}`")
    run(admin, f"CREATE TABLE `{name}`.big AS SELECT seq AS id, "
               f"CONCAT(MD5(seq), MD5(seq + 1)) AS pad FROM seq_1_to_{n}")
    yield f"{name}.big", n
    run(admin, f"DROP DATABASE `{name}`")


def _kill(admin: Any, table: str) -> int:
    ids = run(admin, "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE "
                     f"'%{table.split('.')[0]}%' AND ID <> CONNECTION_ID()")
    for (pid,) in ids:
        run(admin, f"KILL CONNECTION {int(pid)}")
    return len(ids)


def test_connection_killed_mid_read_then_retry_loses_nothing(admin: Any,
                                                             big: tuple[str, int]) -> None:
    table, n = big
    src = source(table=table, chunk_rows=20_000)
    reader = src.read()
    assert reader.read_next_batch().num_rows == 20_000
    assert _kill(admin, table) == 1
    with pytest.raises(ConnectorError) as info:
        for _ in reader:
            pass
    assert info.value.transient, info.value.render()
    assert src.last_error is info.value

    attempts: list[int] = []

    def consume() -> list[int]:
        attempts.append(1)
        ids: list[int] = []
        for i, batch in enumerate(src.read()):
            ids.extend(batch.column("id").to_pylist())
            if len(attempts) == 1 and i == 2:
                assert _kill(admin, table) == 1
        return ids

    ids = with_retries(consume, retries=2, delay=0)
    assert len(attempts) == 2
    assert len(ids) == n and len(set(ids)) == n and min(ids) == 1 and max(ids) == n


# -- sinks ----------------------------------------------------------------------------------


def test_replace_creates_then_swaps(admin: Any, db: str, engine: DuckDBEngine) -> None:
    typed = engine.native().sql("""SELECT i AS id, i::TINYINT AS tiny, i * 1.5 AS dbl,
        (i / 4)::DECIMAL(10,2) AS dec, 'n' || i AS name, DATE '2024-01-01' + i::INT AS day,
        TIMESTAMP '2024-01-01 10:00:00' AS ts, TIMESTAMPTZ '2024-01-01 10:00:00+00' AS tstz,
        i % 2 = 0 AS flag, '\\x01\\x02'::BLOB AS bin, i::UBIGINT AS ub, [i, i] AS arr
        FROM range(1, 6) r(i)""").to_arrow_table()
    out = sink(table=f"{db}.report")
    assert out.write(sink_input(engine, typed)).rows == 5
    got = run(admin, f"SELECT * FROM `{db}`.report ORDER BY id")
    assert got[0] == (1, 1, 1.5, Decimal("0.25"), "n1", dt.date(2024, 1, 2),
                      dt.datetime(2024, 1, 1, 10), dt.datetime(2024, 1, 1, 10), 0, b"\x01\x02",
                      1, "[1, 1]")
    out.write(sink_input(engine, pa.table({"id": [10, 11], "extra": ["a", None]})))
    assert run(admin, f"SELECT * FROM `{db}`.report ORDER BY id") == [(10, "a"), (11, None)]
    assert run(admin, f"SELECT table_name FROM information_schema.tables WHERE "
                      f"table_schema = '{db}'") == [("report",)]


class FailingInput(SinkInput):
    def reader(self) -> pa.RecordBatchReader:
        schema = pa.schema([("id", pa.int64())])

        def batches() -> Iterator[pa.RecordBatch]:
            yield pa.record_batch([pa.array(range(1000))], schema=schema)
            raise OSError("disk went away mid-load")

        return pa.RecordBatchReader.from_batches(schema, batches())

    def partition_reader(self, column: str, value: str) -> pa.RecordBatchReader:
        return self.reader()


@pytest.mark.parametrize("mode", ["replace", "append", "upsert", "sync"])
def test_failure_mid_load_leaves_the_old_table(admin: Any, db: str, engine: DuckDBEngine,
                                               mode: str) -> None:
    run(admin, f"CREATE TABLE `{db}`.keep (id BIGINT PRIMARY KEY)")
    run(admin, f"INSERT INTO `{db}`.keep VALUES (1), (2), (3)")
    engine.build_arrow("t", pa.table({"id": pa.array([5], pa.int64())}))
    data = FailingInput(engine, "t", "node", previous_partitions={"1": "x"})
    out = sink(table=f"{db}.keep", mode=mode, key=["id"], partition_by="id")
    with pytest.raises(HeadwaterError):
        out.write(data)
    assert run(admin, f"SELECT id FROM `{db}`.keep ORDER BY id") == [(1,), (2,), (3,)]
    assert run(admin, f"SELECT table_name FROM information_schema.tables WHERE "
                      f"table_schema = '{db}'") == [("keep",)]


def test_concurrent_readers_never_see_a_partial_table(admin: Any, db: str,
                                                      engine: DuckDBEngine) -> None:
    n = 20_000
    out = sink(table=f"{db}.live")
    old = engine.native().sql(f"SELECT i AS id, 1 AS v FROM range({n}) r(i)").to_arrow_table()
    new = engine.native().sql(f"SELECT i AS id, 2 AS v FROM range({n}) r(i)").to_arrow_table()
    out.write(sink_input(engine, old))
    seen: set[tuple[Any, ...]] = set()
    errors: list[BaseException] = []
    stop = threading.Event()

    def watch() -> None:
        con = _connect()
        try:
            while not stop.is_set():
                with con.cursor() as cur:
                    cur.execute(f"SELECT count(*), CAST(sum(v) AS SIGNED) FROM `{db}`.live")
                    seen.add(tuple(cur.fetchone()))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            con.close()

    thread = threading.Thread(target=watch)
    thread.start()
    try:
        for table in (new, old, new):
            out.write(sink_input(engine, table))
    finally:
        stop.set()
        thread.join()
    assert not errors, errors
    assert seen <= {(n, n), (n, 2 * n)}
    assert (n, 2 * n) in seen


def test_append_and_upsert(admin: Any, db: str, engine: DuckDBEngine) -> None:
    log = sink(table=f"{db}.log", mode="append")
    data = pa.table({"id": [1, 2], "msg": ["a", "b%s"]})
    log.write(sink_input(engine, data))
    log.write(sink_input(engine, data))
    assert run(admin, f"SELECT count(*) FROM `{db}`.log") == [(4,)]
    with pytest.raises(ConnectorError, match="has no column 'new'"):
        log.write(sink_input(engine, pa.table({"id": [3], "new": [1]})))

    out = sink(table=f"{db}.health", mode="upsert", key=["device_id", "day"])
    first = pa.table({"device_id": ["a", "a", "b"], "day": ["d1", "d2", "d1"], "score": [1, 2, 3]})
    assert out.write(sink_input(engine, first)).rows == 3
    second = pa.table({"device_id": ["a", "c"], "day": ["d2", "d1"], "score": [20, 30]})
    out.write(sink_input(engine, second))
    assert run(admin, f"SELECT device_id, day, score FROM `{db}`.health ORDER BY 1, 2") == [
        ("a", "d1", 1), ("a", "d2", 20), ("b", "d1", 3), ("c", "d1", 30)]
    with pytest.raises(ConnectorError, match="more than one row"):
        out.write(sink_input(engine, pa.table({"device_id": ["z", "z"], "day": ["d", "d"],
                                               "score": [1, 2]})))
    run(admin, f"CREATE TABLE `{db}`.nokey (device_id VARCHAR(9), day VARCHAR(9), score INT)")
    with pytest.raises(ConnectorError, match="no primary key or unique index"):
        sink(table=f"{db}.nokey", mode="upsert",
             key=["device_id", "day"]).write(sink_input(engine, first))


def test_sync_rewrites_only_changed_partitions(admin: Any, db: str, engine: DuckDBEngine) -> None:
    out = sink(table=f"{db}.daily", mode="sync", partition_by="day")
    v1 = pa.table({"day": [dt.date(2024, 1, d) for d in (1, 1, 2, 3)], "v": [1, 2, 3, 4]})
    r1 = out.write(sink_input(engine, v1))
    assert r1.rows == 4 and r1.partitions is not None and len(r1.partitions) == 3
    run(admin, f"UPDATE `{db}`.daily SET v = 100 WHERE day = '2024-01-01' AND v = 1")
    v2 = pa.table({"day": [dt.date(2024, 1, d) for d in (1, 1, 2, 4)], "v": [1, 2, 33, 5]})
    r2 = out.write(sink_input(engine, v2, previous=r1.partitions, physical="t2"))
    assert r2.rows == 2
    assert r2.partitions == SinkInput(engine, "t2", "n").partition_fingerprints("day")
    assert run(admin, f"SELECT CAST(day AS CHAR), v FROM `{db}`.daily ORDER BY 1, 2") == [
        ("2024-01-01", 2), ("2024-01-01", 100), ("2024-01-02", 33), ("2024-01-04", 5)]
    # timestamps with a time zone are compared in UTC
    hourly = sink(table=f"{db}.hourly", mode="sync", partition_by="hour")
    hours = pa.array([dt.datetime(2024, 1, 1, h, tzinfo=dt.UTC) for h in (1, 2)],
                     pa.timestamp("us", "UTC"))
    h1 = hourly.write(sink_input(engine, pa.table({"hour": hours, "v": [1, 2]}), physical="t3"))
    hourly.write(sink_input(engine, pa.table({"hour": hours.slice(0, 1), "v": [5]}),
                            previous=h1.partitions, physical="t4"))
    assert run(admin, f"SELECT v FROM `{db}`.hourly") == [(5,)]


def test_project_run_mysql_to_mysql(admin: Any, db: str, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from headwater import Project
    from headwater.testing import write_project

    run(admin, f"CREATE TABLE `{db}`.orders (id INT, amount DECIMAL(10,2), day DATE)")
    run(admin, f"INSERT INTO `{db}`.orders SELECT seq, seq * 1.25, '2024-01-01' + "
               f"INTERVAL (seq % 3) DAY FROM seq_1_to_1000")
    monkeypatch.setenv("HW_TEST_MYSQL_DSN", DSN)
    root = write_project(tmp_path / "p", {
        "sources/orders.toml": f'type = "mysql"\ndsn = "${{HW_TEST_MYSQL_DSN}}"\n'
                               f'table = "{db}.orders"\n',
        "transforms/daily.sql": "SELECT day, count(*) AS n, sum(amount) AS total\n"
                                "FROM orders GROUP BY day\n",
        "sinks/daily_out.toml": f'type = "mysql"\nfrom = "daily"\ndsn = "${{HW_TEST_MYSQL_DSN}}"\n'
                                f'table = "{db}.daily"\nmode = "replace"\n',
    })
    result = Project(root).run()
    assert result.ok, [(n.name, n.error) for n in result.nodes]
    assert run(admin, f"SELECT CAST(sum(n) AS SIGNED), sum(total) FROM `{db}`.daily") == [
        (1000, Decimal("625625.00"))]
