"""Every database connector through the same tests, on real servers (no mocks).

``server`` runs each test on PostgreSQL (once per driver, ADBC and psycopg) and on
MariaDB/MySQL (see ``sql_servers``); ``kind`` runs the tests that need no server
once per connector type. Every test works in its own schema or database, dropped
afterwards. Without a reachable server the tests skip with the reason (in CI a skip
counts as a failure); HEADWATER_TEST_PG_DSN / HEADWATER_TEST_MYSQL_DSN point them
elsewhere. What only one server does is tested in ``test_postgres.py`` and
``test_mysql.py``.
"""

from __future__ import annotations

import datetime as dt
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from sql_servers import KINDS, SERVERS, Kind, Server, read_all

from headwater.connectors.base import SinkInput
from headwater.engines.duckdb import DuckDBEngine
from headwater.errors import ConnectorError, HeadwaterError, ProjectError
from headwater.run.build import with_retries

SECRET = "Sup3r$ecret-pw/@:x"


@pytest.fixture(scope="module", params=list(SERVERS))
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    kind, driver = SERVERS[request.param]
    pytest.importorskip("psycopg" if kind == "postgres" else "pymysql",
                        reason="a driver is missing: pip install -e '.[dev]'")
    # skips with the reason when the server does not answer (tests/integration/conftest.py)
    dsn = request.getfixturevalue("pg_dsn" if kind == "postgres" else "mysql_dsn")
    srv = Server(request.param, KINDS[kind], dsn, driver)
    srv.admin = srv.connect()
    yield srv
    srv.admin.close()


@pytest.fixture(params=list(KINDS))
def kind(request: pytest.FixtureRequest) -> Kind:
    return KINDS[request.param]


@pytest.fixture
def ns(server: Server) -> Iterator[str]:
    with server.namespace() as name:
        yield name


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[DuckDBEngine]:
    eng = DuckDBEngine(tmp_path / "w.duckdb")
    eng.open()
    yield eng
    eng.close()


def sink_input(engine: DuckDBEngine, table: pa.Table, previous: dict[str, str] | None = None,
               physical: str = "t") -> SinkInput:
    engine.build_arrow(physical, table)
    return SinkInput(engine, physical, "node", previous_partitions=previous or {})


UTC = dt.UTC


# -- config ------------------------------------------------------------------------------


def test_config_needs_exactly_one_of_table_or_query(kind: Kind) -> None:
    from pydantic import ValidationError

    src, out = kind.source_config, kind.sink_config
    with pytest.raises(ValidationError, match="either `table` or `query`"):
        src.model_validate({"type": kind.name, "table": "a", "query": "b"})
    with pytest.raises(ValidationError, match="set `table"):
        src.model_validate({"type": kind.name})
    with pytest.raises(ValidationError, match="needs the key columns"):
        out.model_validate({"type": kind.name, "from": "n", "table": "t", "mode": "upsert"})
    with pytest.raises(ValidationError, match="needs the partition column"):
        out.model_validate({"type": kind.name, "from": "n", "table": "t", "mode": "sync"})
    q = kind.quote
    with pytest.raises(ValidationError, match=f"quote parts that hold dots or quotes with {q}"):
        src.model_validate({"type": kind.name, "table": 'x."y'})


def test_loader_reports_config_errors_with_the_file(kind: Kind, tmp_path: Path) -> None:
    from headwater.load.loader import load_project
    from headwater.testing import write_project

    root = write_project(tmp_path / "p", {
        "sources/orders.toml": f'type = "{kind.name}"\ndsn = "{kind.scheme}://h/db"\n'
                               'table = "t"\nquery = "SELECT 1"\n',
    })
    with pytest.raises(ProjectError) as info:
        load_project(root)
    assert "orders.toml" in info.value.render()
    assert "either `table` or `query`" in info.value.render()


def test_a_password_written_in_the_project_is_refused(kind: Kind) -> None:
    from pydantic import ValidationError

    url_pw = SECRET.replace("/", "%2F").replace("@", "%40")
    with pytest.raises(ValidationError, match="the dsn holds a password") as refused:
        kind.source_config.model_validate({
            "type": kind.name, "table": "t",
            "dsn": f"{kind.scheme}://{kind.user}:{url_pw}@127.0.0.1:1/test"})
    assert "Sup3r" not in str(refused.value).split("input_value")[0]
    with pytest.raises(ValidationError, match="must name an environment variable"):
        kind.sink_config.model_validate({"type": kind.name, "from": "n", "table": "t",
                                         "password": "plain-pw"})


def test_registry_does_not_import_drivers() -> None:
    code = ("import sys; from headwater.connectors.registry import source_types, sink_types; "
            "s = source_types(); k = sink_types(); "
            "assert 'postgres' in s and 'mysql' in s and 'postgres' in k and 'mysql' in k; "
            "bad = [m for m in ('adbc_driver_postgresql', 'psycopg', 'pymysql') "
            "if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


# -- reading -----------------------------------------------------------------------------


def test_read_streams_batches_of_chunk_rows(server: Server, ns: str) -> None:
    server.run(f"CREATE TABLE {server.fq(ns, 't')} (id int, note varchar(20))")
    notes = [None, 'a,"b\nc', "", "x'y"]
    server.insert(server.fq(ns, "t"), ["id", "note"],
                  [(i, notes[i % 4]) for i in range(1, 2501)])
    reader = server.source(table=f"{ns}.t", chunk_rows=1000).read()
    batches = list(reader)
    assert [b.num_rows for b in batches] == [1000, 1000, 500]
    t = pa.Table.from_batches(batches, reader.schema).sort_by("id")
    assert t.schema.field("note").type == pa.string()
    assert t.column("note").to_pylist()[:4] == ['a,"b\nc', "", "x'y", None]
    assert t.column("id").to_pylist() == list(range(1, 2501))


def test_incremental_read_binds_since(server: Server, ns: str) -> None:
    fq = server.fq(ns, "ev")
    server.run(f"CREATE TABLE {fq} (id int, at {server.kind.timestamp}, code varchar(10))")
    start = dt.datetime(2024, 1, 1, tzinfo=UTC)
    server.insert(fq, ["id", "at", "code"],
                  [(g, start + dt.timedelta(days=g), f"c{g:03}") for g in range(1, 101)])
    src = server.source(table=f"{ns}.ev", cursor="at")
    assert read_all(src).num_rows == 100
    got = read_all(src, dt.datetime(2024, 3, 1, tzinfo=UTC))  # day 60
    assert sorted(got.column("id").to_pylist()) == list(range(61, 101))
    # an instant in another zone means the same instant
    aware = read_all(src, dt.datetime(2024, 3, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=2))))
    assert min(aware.column("id").to_pylist()) == 60  # 2024-02-29 23:00 UTC
    # a query source with a text cursor; a hostile value is only ever a value
    q = server.source(query=f"SELECT id, code FROM {fq} WHERE code LIKE 'c%' AND id % 2 = 0;",
                      cursor="code")
    assert read_all(q, "c090").column("id").to_pylist() == [92, 94, 96, 98, 100]
    assert read_all(q, "x'; DROP TABLE ev; --").num_rows == 0
    assert server.run(f"SELECT count(*) FROM {fq}") == [(100,)]
    ints = server.source(table=f"{ns}.ev", cursor="id")
    assert read_all(ints, 98).column("id").to_pylist() == [99, 100]


CURSOR_NOT_THERE = {"postgres": "the cursor column 'nope' is not in the result",
                    "mysql": "Unknown column 'nope'"}
TABLE_NOT_THERE = {"postgres": "does not exist", "mysql": "doesn't exist"}


def test_missing_tables_and_columns_are_clear_errors(server: Server, ns: str) -> None:
    with pytest.raises(ConnectorError) as info:
        read_all(server.source(table=f"{ns}.missing"))
    assert not info.value.transient
    assert TABLE_NOT_THERE[server.kind.name] in info.value.render()
    assert info.value.hint
    server.run(f"CREATE TABLE {server.fq(ns, 't')} (id int)")
    with pytest.raises(ConnectorError, match=CURSOR_NOT_THERE[server.kind.name]) as info:
        read_all(server.source(table=f"{ns}.t", cursor="nope"), since=1)
    assert not info.value.transient and "source 'src'" in info.value.render()


def test_identifiers_are_quoted_never_injected(server: Server, ns: str,
                                               engine: DuckDBEngine) -> None:
    odd = server.fq(ns, "x; drop table y")
    server.run(f"CREATE TABLE {odd} (id int)")
    server.run(f"INSERT INTO {odd} VALUES (1), (2)")
    server.run(f"CREATE TABLE {server.fq(ns, 'y')} (id int)")
    src = server.source(table=f"{ns}.{server.q('x; drop table y')}")
    assert sorted(read_all(src).column("id").to_pylist()) == [1, 2]
    assert src.data_fingerprint().startswith("content:2:")
    qc = server.kind.quote
    for hostile in (server.source(table=f"{ns}.y; DROP TABLE {ns}.y"),
                    server.source(table=f"{ns}.y", cursor=f"id{qc} > 0; DROP TABLE y; --")):
        with pytest.raises(ConnectorError):
            read_all(hostile, since=0)
    assert "y" in server.tables(ns)
    # the sink quotes its table the same way (and a % is no driver placeholder)
    name = "z%s; drop table y"
    server.sink(table=f"{ns}.{server.q(name)}").write(sink_input(engine, pa.table({"id": [7]})))
    assert server.run(f"SELECT id FROM {server.fq(ns, name)}") == [(7,)]
    assert "y" in server.tables(ns)


def test_fingerprint_is_a_change_marker(server: Server, ns: str) -> None:
    fq = server.fq(ns, "t")
    server.run(f"CREATE TABLE {fq} (id int, v varchar(5))")
    server.insert(fq, ["id", "v"], [(i, "v") for i in range(1, 11)])
    tab = server.source(table=f"{ns}.t")
    fp1 = tab.data_fingerprint()
    assert fp1 == tab.data_fingerprint() and fp1.startswith("content:10:")
    # an update that keeps the row count is seen at once, and undone is as before
    server.run(f"UPDATE {fq} SET v = 'w' WHERE id = 3")
    assert tab.data_fingerprint() != fp1
    server.run(f"UPDATE {fq} SET v = 'v' WHERE id = 3")
    assert tab.data_fingerprint() == fp1
    assert server.source(table=f"{ns}.t", cursor="id").data_fingerprint() == "cursor:10:10"
    q = server.source(query=f"SELECT * FROM {fq} WHERE id > 5")
    fq5 = q.data_fingerprint()
    assert fq5.startswith("content:5:")
    assert server.source(query=f"SELECT * FROM {fq} WHERE id > 6").data_fingerprint() != fq5
    server.run(f"UPDATE {fq} SET v = 'z' WHERE id = 7")  # behind the query, same count
    assert q.data_fingerprint() != fq5


# -- failures, secrets, retries -----------------------------------------------------------


def test_connection_failure_is_transient_and_hides_the_password(
    server: Server, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    tmp_path: Path
) -> None:
    monkeypatch.setenv("HW_TEST_SQL_SECRET", SECRET)
    caplog.set_level(logging.DEBUG)
    src = server.source(dsn=server.dsn_as(server.kind.user, "${HW_TEST_SQL_SECRET}", port=1),
                        table="t", tmp=tmp_path)
    with pytest.raises(ConnectorError) as info:
        with_retries(lambda: read_all(src), retries=1, delay=0)
    err = info.value
    assert err.transient
    text = err.render()
    assert "source 'src'" in text and "127.0.0.1:1/test" in text
    assert "connection refused" in text.lower()
    for form in (SECRET, "Sup3r"):
        assert form not in text
        assert form not in repr(err.__dict__)
        assert form not in caplog.text
    assert "retrying" in caplog.text  # with_retries logged the first failure
    with pytest.raises(ConnectorError) as info:
        src.data_fingerprint()
    assert SECRET not in info.value.render()
    # a user the real server refuses: not transient, the password still not shown
    bad = server.source(dsn=server.dsn_as("hw_nobody", "${HW_TEST_SQL_SECRET}", port=None),
                        table="t")
    with pytest.raises(ConnectorError) as info:
        bad.read()
    assert not info.value.transient and "Sup3r" not in info.value.render()


def test_missing_env_var_names_the_variable(server: Server,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HW_TEST_UNSET_PW", raising=False)
    src = server.source(dsn=server.dsn_as(server.kind.user, "${HW_TEST_UNSET_PW}"), table="t")
    with pytest.raises(ProjectError, match="HW_TEST_UNSET_PW is not set"):
        src.read()


@pytest.fixture(scope="module")
def big(server: Server) -> Iterator[tuple[str, int]]:
    """A table large enough that it cannot sit in socket buffers after the first batch."""
    n = 600_000
    with server.namespace("hw_test_big") as ns:
        pad = ("md5(g::text) || md5((g + 1)::text)" if server.kind.name == "postgres"
               else "CONCAT(MD5(g), MD5(g + 1))")
        server.run(f"CREATE TABLE {server.fq(ns, 'big')} AS SELECT g AS id, {pad} AS pad "
                   f"FROM ({server.numbers(n)}) AS s")
        yield f"{ns}.big", n


def test_connection_killed_mid_read_then_retry_loses_nothing(
    server: Server, big: tuple[str, int]
) -> None:
    table, n = big
    ns = table.split(".")[0]
    name = f"kill_{server.id}"
    src = server.source(name, table=table, chunk_rows=20_000)
    reader = src.read()
    assert reader.read_next_batch().num_rows == 20_000
    assert server.kill_readers(name, ns) == 1
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
                assert server.kill_readers(name, ns) == 1
        return ids

    ids = with_retries(consume, retries=2, delay=0)
    assert len(attempts) == 2
    assert len(ids) == n and len(set(ids)) == n and min(ids) == 1 and max(ids) == n


# -- sinks ----------------------------------------------------------------------------------


def test_replace_creates_then_swaps(server: Server, ns: str, engine: DuckDBEngine) -> None:
    out = server.sink(table=f"{ns}.report")
    assert out.write(sink_input(engine, pa.table({"id": [1, 2, 3], "v": ["a", "b", "c"]}))
                     ).rows == 3
    assert server.run(f"SELECT id, v FROM {server.fq(ns, 'report')} ORDER BY id") == [
        (1, "a"), (2, "b"), (3, "c")]
    # replace with new data and a new shape
    out.write(sink_input(engine, pa.table({"id": [10, 11], "extra": ["a", None]})))
    assert server.run(f"SELECT * FROM {server.fq(ns, 'report')} ORDER BY id") == [
        (10, "a"), (11, None)]
    assert server.tables(ns) == ["report"]  # no staging table left behind


# a node's table of most types; each server keeps what it can hold
TYPED = """SELECT i AS id, i::TINYINT AS tiny, i * 1.5 AS dbl,
    (i / 4)::DECIMAL(10,2) AS dec, 'n' || i AS name, DATE '2024-01-01' + i::INT AS day,
    TIMESTAMP '2024-01-01 10:00:00' AS ts, TIMESTAMPTZ '2024-01-01 10:00:00+00' AS tstz,
    i % 2 = 0 AS flag, '\\x01\\x02'::BLOB AS bin, i::UBIGINT AS ub{extra}
    FROM range(1, 6) r(i)"""
COMMON_ROW = (1, 1, Decimal("1.5"), Decimal("0.25"), "n1", dt.date(2024, 1, 2),
              dt.datetime(2024, 1, 1, 10))
ROUND_TRIP: dict[str, dict[str, Any]] = {
    "postgres": {
        "extra": ", i::HUGEINT AS huge",
        "stored": (*COMMON_ROW, dt.datetime(2024, 1, 1, 10, tzinfo=UTC), False, b"\x01\x02",
                   1, 1),
        "declared": {"tstz": "timestamp with time zone", "dec": "numeric", "ts":
                     "timestamp without time zone", "bin": "bytea", "flag": "boolean"},
        "read": {"tiny": pa.int16(), "dec": pa.decimal128(10, 2), "ts": pa.timestamp("us"),
                 "tstz": pa.timestamp("us", "UTC"), "flag": pa.bool_(), "bin": pa.binary(),
                 "ub": pa.decimal128(20, 0)},
    },
    "mysql": {
        "extra": ", [i, i] AS arr",
        "stored": (*COMMON_ROW, dt.datetime(2024, 1, 1, 10), 0, b"\x01\x02", 1, "[1, 1]"),
        "declared": {"tstz": "datetime", "dec": "decimal", "ts": "datetime",
                     "bin": "longblob", "flag": "tinyint"},
        "read": {"tiny": pa.int8(), "dec": pa.decimal128(10, 2), "ts": pa.timestamp("us"),
                 "tstz": pa.timestamp("us"), "flag": pa.int8(), "bin": pa.binary(),
                 "ub": pa.uint64()},
    },
}


def test_types_round_trip(server: Server, ns: str, engine: DuckDBEngine) -> None:
    expect = ROUND_TRIP[server.kind.name]
    typed = engine.native().sql(TYPED.format(extra=expect["extra"])).to_arrow_table()
    assert server.sink(table=f"{ns}.typed").write(sink_input(engine, typed)).rows == 5
    stored = server.run(f"SELECT * FROM {server.fq(ns, 'typed')} ORDER BY id")
    assert stored[0] == expect["stored"]
    declared = server.column_types(ns, "typed")
    assert {c: declared[c] for c in expect["declared"]} == expect["declared"]
    # and back through the source: the same values, in the types the server kept
    back = read_all(server.source(table=f"{ns}.typed")).sort_by("id")
    assert {c: back.schema.field(c).type for c in expect["read"]} == expect["read"]
    assert tuple(back.slice(0, 1).to_pylist()[0].values()) == expect["stored"]
    assert back.num_rows == 5


class FailingInput(SinkInput):
    """A node table whose stream breaks after the first batch."""

    def reader(self) -> pa.RecordBatchReader:
        schema = pa.schema([("id", pa.int64())])

        def batches() -> Iterator[pa.RecordBatch]:
            yield pa.record_batch([pa.array(range(1000))], schema=schema)
            raise OSError("disk went away mid-load")

        return pa.RecordBatchReader.from_batches(schema, batches())

    def partition_reader(self, column: str, value: str) -> pa.RecordBatchReader:
        return self.reader()


@pytest.mark.parametrize("mode", ["replace", "append", "upsert", "sync"])
def test_failure_mid_load_leaves_the_old_table(server: Server, ns: str, engine: DuckDBEngine,
                                               mode: str) -> None:
    fq = server.fq(ns, "keep")
    server.run(f"CREATE TABLE {fq} (id bigint PRIMARY KEY)")
    server.run(f"INSERT INTO {fq} VALUES (1), (2), (3)")
    engine.build_arrow("t", pa.table({"id": pa.array([5], pa.int64())}))
    data = FailingInput(engine, "t", "node", previous_partitions={"1": "x"})
    out = server.sink(table=f"{ns}.keep", mode=mode, key=["id"], partition_by="id")
    with pytest.raises(HeadwaterError) as info:
        out.write(data)
    assert "sink 'out'" in info.value.render()
    assert server.run(f"SELECT id FROM {fq} ORDER BY id") == [(1,), (2,), (3,)]
    assert server.tables(ns) == ["keep"]


def test_concurrent_readers_never_see_a_partial_table(server: Server, ns: str,
                                                      engine: DuckDBEngine) -> None:
    n = server.kind.concurrent_rows
    out = server.sink(table=f"{ns}.live")
    old = engine.native().sql(f"SELECT i AS id, 1 AS v FROM range({n}) r(i)").to_arrow_table()
    new = engine.native().sql(f"SELECT i AS id, 2 AS v FROM range({n}) r(i)").to_arrow_table()
    out.write(sink_input(engine, old))
    seen: set[tuple[Any, ...]] = set()
    errors: list[BaseException] = []
    stop = threading.Event()
    count = f"SELECT count(*), {server.int('sum(v)')} FROM {server.fq(ns, 'live')}"

    def watch() -> None:
        con = server.connect()
        try:
            while not stop.is_set():
                seen.update(server.run(count, con=con))
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


def test_replace_keeps_dependent_views_working(server: Server, ns: str,
                                               engine: DuckDBEngine) -> None:
    out = server.sink(table=f"{ns}.base")
    out.write(sink_input(engine, pa.table({"id": [1, 2]})))
    server.run(f"CREATE VIEW {server.fq(ns, 'v')} AS SELECT id FROM {server.fq(ns, 'base')}")
    out.write(sink_input(engine, pa.table({"id": [3, 4, 5]})))
    assert server.run(f"SELECT id FROM {server.fq(ns, 'v')} ORDER BY id") == [(3,), (4,), (5,)]


def test_append_creates_then_inserts_by_name(server: Server, ns: str,
                                             engine: DuckDBEngine) -> None:
    out = server.sink(table=f"{ns}.log", mode="append")
    data = pa.table({"id": [1, 2], "msg": ["a", "b%s"]})
    out.write(sink_input(engine, data))
    assert out.write(sink_input(engine, data)).rows == 2
    assert server.run(f"SELECT count(*) FROM {server.fq(ns, 'log')}") == [(4,)]
    # an existing table with its own column order, types and an extra column
    ext = server.fq(ns, "ext")
    server.run(f"CREATE TABLE {ext} (msg varchar(10), extra int DEFAULT 7, id integer)")
    server.sink(table=f"{ns}.ext", mode="append").write(sink_input(engine, data))
    assert server.run(f"SELECT id, msg, extra FROM {ext} ORDER BY id") == [
        (1, "a", 7), (2, "b%s", 7)]
    with pytest.raises(ConnectorError, match="has no column 'new'") as info:
        out.write(sink_input(engine, pa.table({"id": [3], "new": [1]})))
    assert info.value.message.startswith("sink 'out': ")
    assert server.run(f"SELECT count(*) FROM {server.fq(ns, 'log')}") == [(4,)]


NO_UNIQUE_KEY = {"postgres": ("no unique index", "CREATE UNIQUE INDEX"),
                 "mysql": ("no primary key or unique index", "ADD UNIQUE KEY")}


def test_upsert_by_key(server: Server, ns: str, engine: DuckDBEngine) -> None:
    out = server.sink(table=f"{ns}.health", mode="upsert", key=["device_id", "day"])
    first = pa.table({"device_id": ["a", "a", "b"], "day": ["d1", "d2", "d1"], "score": [1, 2, 3]})
    assert out.write(sink_input(engine, first)).rows == 3
    second = pa.table({"device_id": ["a", "c"], "day": ["d2", "d1"], "score": [20, 30]})
    out.write(sink_input(engine, second))
    health = server.fq(ns, "health")
    assert server.run(f"SELECT device_id, day, score FROM {health} ORDER BY 1, 2") == [
        ("a", "d1", 1), ("a", "d2", 20), ("b", "d1", 3), ("c", "d1", 30)]
    # only key columns: rows that exist stay, new ones arrive
    keys = server.sink(table=f"{ns}.health", mode="upsert", key=["device_id", "day"])
    keys.write(sink_input(engine, pa.table({"device_id": ["a", "d"], "day": ["d1", "d1"]}),
                          physical="k"))
    assert server.run(f"SELECT device_id, score FROM {health} WHERE day = 'd1' ORDER BY 1") == [
        ("a", 1), ("b", 3), ("c", 30), ("d", None)]
    dupes = pa.table({"device_id": ["z", "z"], "day": ["d", "d"], "score": [1, 2]})
    with pytest.raises(ConnectorError, match="more than one row"):
        out.write(sink_input(engine, dupes))
    server.run(f"CREATE TABLE {server.fq(ns, 'nokey')} (device_id varchar(9), day varchar(9),"
               " score int)")
    message, hint = NO_UNIQUE_KEY[server.kind.name]
    with pytest.raises(ConnectorError, match=message) as info:
        server.sink(table=f"{ns}.nokey", mode="upsert",
                    key=["device_id", "day"]).write(sink_input(engine, first))
    assert hint in (info.value.hint or "")
    assert server.run(f"SELECT count(*) FROM {server.fq(ns, 'nokey')}") == [(0,)]


def test_sync_rewrites_only_changed_partitions(server: Server, ns: str,
                                               engine: DuckDBEngine) -> None:
    out = server.sink(table=f"{ns}.daily", mode="sync", partition_by="day")
    daily = server.fq(ns, "daily")
    v1 = pa.table({"day": [dt.date(2024, 1, d) for d in (1, 1, 2, 3)], "v": [1, 2, 3, 4]})
    r1 = out.write(sink_input(engine, v1))
    assert r1.rows == 4 and r1.partitions is not None and len(r1.partitions) == 3
    # mark a row of the unchanged partition: a rewrite would undo the mark
    server.run(f"UPDATE {daily} SET v = 100 WHERE day = '2024-01-01' AND v = 1")
    # 2024-01-02 changes, 2024-01-03 vanishes, 2024-01-04 is new
    v2 = pa.table({"day": [dt.date(2024, 1, d) for d in (1, 1, 2, 4)], "v": [1, 2, 33, 5]})
    r2 = out.write(sink_input(engine, v2, previous=r1.partitions, physical="t2"))
    assert r2.rows == 2  # only 2024-01-02 and 2024-01-04 were written
    assert r2.partitions == SinkInput(engine, "t2", "n").partition_fingerprints("day")
    assert server.run(f"SELECT {server.text('day')}, v FROM {daily} ORDER BY 1, 2") == [
        ("2024-01-01", 2), ("2024-01-01", 100), ("2024-01-02", 33), ("2024-01-04", 5)]
    # nothing recorded (e.g. a new environment): the whole table is rewritten
    r3 = out.write(sink_input(engine, v2, physical="t3"))
    assert r3.rows == 4
    assert server.run(f"SELECT count(*), {server.int('sum(v)')} FROM {daily}") == [(4, 41)]
    with pytest.raises(ConnectorError, match="NULL"):
        out.write(sink_input(engine, pa.table({"day": [None, dt.date(2024, 1, 1)], "v": [1, 2]}),
                             physical="t4"))
    assert server.run(f"SELECT count(*) FROM {daily}") == [(4,)]


def test_sync_partitions_by_timestamp_and_text(server: Server, ns: str,
                                               engine: DuckDBEngine) -> None:
    # timestamps with a time zone are matched as the same instant
    out = server.sink(table=f"{ns}.hourly", mode="sync", partition_by="hour")
    hours = pa.array([dt.datetime(2024, 1, 1, h, tzinfo=UTC) for h in (1, 2)],
                     pa.timestamp("us", "UTC"))
    r1 = out.write(sink_input(engine, pa.table({"hour": hours, "v": [1, 2]})))
    r2 = out.write(sink_input(engine, pa.table({"hour": hours.slice(0, 1), "v": [5]}),
                              previous=r1.partitions, physical="t2"))
    assert r2.rows == 1
    assert server.run(f"SELECT v FROM {server.fq(ns, 'hourly')}") == [(5,)]
    out = server.sink(table=f"{ns}.bytext", mode="sync", partition_by="k")
    r1 = out.write(sink_input(engine, pa.table({"k": ["a'b", "c"], "v": [1, 2]}), physical="t5"))
    out.write(sink_input(engine, pa.table({"k": ["c"], "v": [3]}), previous=r1.partitions,
                         physical="t6"))
    assert server.run(f"SELECT k, v FROM {server.fq(ns, 'bytext')}") == [("c", 3)]


# -- a whole project -------------------------------------------------------------------------


def test_project_run_database_to_database(server: Server, ns: str, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A cursor source, a transform and a sync sink on the same server: the second run
    reads only the new rows and rewrites only the partition they changed."""
    from headwater import Project
    from headwater.testing import write_project

    orders = server.fq(ns, "orders")
    server.run(f"CREATE TABLE {orders} (id int, amount decimal(10,2), day date, "
               f"at {server.kind.timestamp})")
    start = dt.datetime(2024, 1, 1, 0, 0, 0, 500_000, tzinfo=UTC)

    def rows(ids: range, amount: Any = None, day: dt.date | None = None) -> list[tuple[Any, ...]]:
        return [(g, amount if amount is not None else Decimal(g) * Decimal("1.25"),
                 day or dt.date(2024, 1, 1) + dt.timedelta(days=g % 3),
                 start + dt.timedelta(minutes=g)) for g in ids]

    server.insert(orders, ["id", "amount", "day", "at"], rows(range(1, 1001)))
    monkeypatch.setenv("HW_TEST_SQL_DSN", server.dsn)
    keys = server.toml_keys("HW_TEST_SQL_DSN")
    root = write_project(tmp_path / "p", {
        "sources/orders.toml": keys + f'table = "{ns}.orders"\ncursor = "at"\n',
        "transforms/daily.sql": "SELECT day, count(*) AS n, sum(amount) AS total\n"
                                "FROM orders GROUP BY day\n",
        "sinks/daily_out.toml": keys + f'from = "daily"\ntable = "{ns}.daily"\n'
                                'mode = "sync"\npartition_by = "day"\n',
    })
    project = Project(root)
    result = project.run()
    assert result.ok, [(n.name, n.error) for n in result.nodes]
    total = f"SELECT {server.int('sum(n)')}, sum(total) FROM {server.fq(ns, 'daily')}"
    assert server.run(total) == [(1000, Decimal("625625.00"))]
    server.insert(orders, ["id", "amount", "day", "at"],
                  rows(range(1001, 1011), Decimal(1), dt.date(2024, 1, 5)))
    result = project.run()
    assert result.ok, [(n.name, n.error) for n in result.nodes]
    assert project.query("SELECT count(*) AS n, count(DISTINCT id) AS d FROM orders"
                         ).to_pylist() == [{"n": 1010, "d": 1010}]
    assert server.run(total) == [(1010, Decimal("625635.00"))]
