"""The postgres source and sink against a real PostgreSQL server (no mocks).

Every test works in its own schema, dropped afterwards. Without a reachable
server the tests skip with the reason (in CI a skip counts as a failure).
Set HEADWATER_TEST_PG_DSN to point them at another server.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from headwater.connectors.base import SinkInput
from headwater.connectors.sql.postgres import (
    PostgresSink,
    PostgresSinkConfig,
    PostgresSource,
    PostgresSourceConfig,
    parse_dsn,
)
from headwater.engines.duckdb import DuckDBEngine
from headwater.errors import ConnectorError, HeadwaterError, ProjectError
from headwater.run.build import with_retries

psycopg = pytest.importorskip("psycopg", reason="psycopg is missing: pip install -e '.[dev]'")

DSN = os.environ.get("HEADWATER_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
# the server check (skip with the reason when unreachable) is tests/integration/conftest.py
SECRET = "Sup3r$ecret-pw/@:x"


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


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[DuckDBEngine]:
    eng = DuckDBEngine(tmp_path / "w.duckdb")
    eng.open()
    yield eng
    eng.close()


def source(name: str = "src", tmp: Path = Path("."), **cfg: Any) -> PostgresSource:
    cfg.setdefault("dsn", DSN)
    config = PostgresSourceConfig.model_validate({"type": "postgres", **cfg})
    return PostgresSource(name, config, tmp, tmp / "sources" / f"{name}.toml")


def sink(name: str = "out", tmp: Path = Path("."), **cfg: Any) -> PostgresSink:
    cfg.setdefault("dsn", DSN)
    cfg.setdefault("from", "node")
    config = PostgresSinkConfig.model_validate({"type": "postgres", **cfg})
    return PostgresSink(name, config, tmp, tmp / "sinks" / f"{name}.toml")


def read_all(src: PostgresSource, since: Any = None) -> pa.Table:
    reader = src.read(since)
    return pa.Table.from_batches(list(reader), reader.schema)


def rows(admin: Any, sql: str) -> list[tuple[Any, ...]]:
    return list(admin.execute(sql).fetchall())


def sink_input(engine: DuckDBEngine, table: pa.Table, previous: dict[str, str] | None = None,
               physical: str = "t") -> SinkInput:
    engine.build_arrow(physical, table)
    return SinkInput(engine, physical, "node", previous_partitions=previous or {})


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


def test_incremental_read_binds_since(admin: Any, schema: str, driver: str) -> None:
    admin.execute(f"""
        CREATE TABLE "{schema}".ev (id int, at timestamptz, code text);
        INSERT INTO "{schema}".ev SELECT g, '2024-01-01'::timestamptz + g * interval '1 day',
            'c' || lpad(g::text, 3, '0') FROM generate_series(1, 100) g""")
    src = source(table=f"{schema}.ev", cursor="at", driver=driver)
    assert read_all(src).num_rows == 100
    since = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)  # day 60
    got = read_all(src, since)
    assert sorted(got.column("id").to_pylist()) == list(range(61, 101))
    # a query source with a text cursor; a hostile value is only ever a value
    q = source(query=f'SELECT id, code FROM "{schema}".ev WHERE id % 2 = 0;', cursor="code",
               driver=driver)
    assert read_all(q, "c090").column("id").to_pylist() == [92, 94, 96, 98, 100]
    assert read_all(q, "x'; DROP TABLE ev; --").num_rows == 0
    assert rows(admin, f'SELECT count(*) FROM "{schema}".ev') == [(100,)]
    ints = source(table=f"{schema}.ev", cursor="id", driver=driver)
    assert read_all(ints, 98).column("id").to_pylist() == [99, 100]


def test_bad_cursor_column_is_a_clear_error(admin: Any, schema: str) -> None:
    admin.execute(f'CREATE TABLE "{schema}".t (id int)')
    src = source(table=f"{schema}.t", cursor="nope")
    with pytest.raises(ConnectorError, match="cursor column 'nope' is not in the result"):
        src.read(since=1)


def test_identifiers_are_quoted_never_injected(admin: Any, schema: str, driver: str) -> None:
    admin.execute(f"""
        CREATE TABLE "{schema}"."x; drop table y" (id int);
        INSERT INTO "{schema}"."x; drop table y" VALUES (1), (2);
        CREATE TABLE "{schema}".y (id int)""")
    odd = source(table=f'{schema}."x; drop table y"', driver=driver)
    assert sorted(read_all(odd).column("id").to_pylist()) == [1, 2]
    assert odd.data_fingerprint().startswith("content:2:")
    hostile = [
        source(table=f"{schema}.y; DROP TABLE {schema}.y", driver=driver),
        source(table=f"{schema}.y", cursor='id" > 0; DROP TABLE y; --', driver=driver),
    ]
    for src in hostile:
        with pytest.raises(ConnectorError):
            read_all(src, since=0)
    assert rows(admin, f"SELECT to_regclass('\"{schema}\".y') IS NOT NULL") == [(True,)]
    # the sink quotes its table the same way
    eng = DuckDBEngine(Path(f"/tmp/hw-{uuid.uuid4().hex}.duckdb"))
    eng.open()
    try:
        out = sink(table=f'{schema}."z; drop table y"', driver=driver)
        out.write(sink_input(eng, pa.table({"id": [7]})))
    finally:
        eng.close()
        eng.path.unlink()
    assert rows(admin, f'SELECT id FROM "{schema}"."z; drop table y"') == [(7,)]
    assert rows(admin, f"SELECT to_regclass('\"{schema}\".y') IS NOT NULL") == [(True,)]


def test_config_needs_exactly_one_of_table_or_query() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="either `table` or `query`"):
        PostgresSourceConfig.model_validate({"type": "postgres", "table": "a", "query": "b"})
    with pytest.raises(ValidationError, match="set `table"):
        PostgresSourceConfig.model_validate({"type": "postgres"})
    with pytest.raises(ValidationError, match="needs the key columns"):
        PostgresSinkConfig.model_validate({"type": "postgres", "from": "n", "table": "t",
                                           "mode": "upsert"})
    with pytest.raises(ValidationError, match="needs the partition column"):
        PostgresSinkConfig.model_validate({"type": "postgres", "from": "n", "table": "t",
                                           "mode": "sync"})


def test_loader_reports_config_errors_with_the_file(tmp_path: Path) -> None:
    from headwater.load.loader import load_project
    from headwater.testing import write_project

    root = write_project(tmp_path / "p", {
        "sources/orders.toml": 'type = "postgres"\ndsn = "postgresql://h/db"\n'
                               'table = "t"\nquery = "SELECT 1"\n',
    })
    with pytest.raises(ProjectError) as info:
        load_project(root)
    assert "orders.toml" in info.value.render()
    assert "either `table` or `query`" in info.value.render()


def test_dsn_forms() -> None:
    assert parse_dsn("postgresql://u:p%40ss@h1:5433/db?sslmode=require") == {
        "user": "u", "password": "p@ss", "host": "h1", "port": "5433", "dbname": "db",
        "sslmode": "require"}
    assert parse_dsn("host=h port=1 password='a b\\'c'") == {
        "host": "h", "port": "1", "password": "a b'c"}
    assert parse_dsn("postgres://u:${PW}@[::1]:5432/d")["password"] == "${PW}"


# -- fingerprints ------------------------------------------------------------------------


def _eventually_different(src: PostgresSource, before: str) -> str:
    deadline = time.monotonic() + 10  # table statistics are published within about a second
    while True:
        fp = src.data_fingerprint()
        if fp != before or time.monotonic() > deadline:
            return fp
        time.sleep(0.2)


def test_fingerprint_is_a_change_marker(admin: Any, schema: str) -> None:
    admin.execute(f"""CREATE TABLE "{schema}".t (id int, v text, at timestamptz);
        INSERT INTO "{schema}".t SELECT g, 'v', now() FROM generate_series(1, 10) g""")
    tab = source(table=f"{schema}.t")
    fp1 = _eventually_different(tab, "")
    time.sleep(1.2)
    assert tab.data_fingerprint() == tab.data_fingerprint()
    fp1 = tab.data_fingerprint()
    admin.execute(f"""UPDATE "{schema}".t SET v = 'w' WHERE id = 3""")  # same count
    fp2 = _eventually_different(tab, fp1)
    assert fp2 != fp1
    admin.execute(f"""INSERT INTO "{schema}".t VALUES (11, 'v', now())""")
    assert _eventually_different(tab, fp2) != fp2

    cur = source(table=f"{schema}.t", cursor="id")
    assert cur.data_fingerprint() == "cursor:11:11"
    q = source(query=f'SELECT * FROM "{schema}".t WHERE id > 5')
    fq = q.data_fingerprint()
    assert fq.startswith("content:6:")
    assert source(query=f'SELECT * FROM "{schema}".t WHERE id > 6').data_fingerprint() != fq
    # an update behind a query, with the row count unchanged, is seen at once
    admin.execute(f"""UPDATE "{schema}".t SET v = 'z' WHERE id = 7""")
    assert q.data_fingerprint() != fq


# -- failures, secrets, retries -----------------------------------------------------------


def test_connection_failure_is_transient_and_hides_the_password(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path,
    driver: str
) -> None:
    monkeypatch.setenv("HW_TEST_PG_SECRET", SECRET)
    caplog.set_level(logging.DEBUG)
    src = source(dsn="postgresql://postgres:${HW_TEST_PG_SECRET}@127.0.0.1:1/test",
                 table="t", driver=driver, tmp=tmp_path)
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
    # a password written in the project, in the dsn or as `password`, is refused
    with pytest.raises(ValueError, match="the dsn holds a password") as refused:
        source(dsn=f"postgresql://postgres:{SECRET.replace('/', '%2F').replace('@', '%40')}"
               "@127.0.0.1:1/test", table="t")
    assert "Sup3r" not in str(refused.value).split("input_value")[0]
    with pytest.raises(ValueError, match="must name an environment variable"):
        source(table="t", password="plain-pw")


def test_missing_env_var_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HW_TEST_UNSET_PW", raising=False)
    src = source(dsn="postgresql://postgres:${HW_TEST_UNSET_PW}@127.0.0.1:5432/test", table="t")
    with pytest.raises(ProjectError, match="HW_TEST_UNSET_PW is not set"):
        src.read()


def test_server_errors_are_not_transient(admin: Any, schema: str, driver: str) -> None:
    src = source(table=f"{schema}.missing", driver=driver)
    with pytest.raises(ConnectorError) as info:
        read_all(src)
    assert not info.value.transient
    assert "does not exist" in info.value.render()


def _kill(admin: Any, app: str) -> int:
    return len(rows(admin, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           f"WHERE application_name = '{app}' AND pid <> pg_backend_pid()"))


@pytest.fixture(scope="module")
def big(admin: Any) -> Iterator[tuple[str, int]]:
    """A table large enough that it cannot sit in socket buffers after the first batch."""
    name = f"hw_test_big_{uuid.uuid4().hex[:8]}"
    n = 600_000
    admin.execute(f"""CREATE SCHEMA "{name}";
        CREATE TABLE "{name}".big AS SELECT g AS id, md5(g::text) || md5((g + 1)::text) AS pad
        FROM generate_series(1, {n}) g""")
    yield f"{name}.big", n
    admin.execute(f'DROP SCHEMA "{name}" CASCADE')


def test_connection_killed_mid_read_then_retry_loses_nothing(
    admin: Any, big: tuple[str, int], driver: str
) -> None:
    table, n = big
    name = f"kill_{uuid.uuid4().hex[:8]}"
    app = f"headwater:{name}"
    src = source(name, table=table, chunk_rows=20_000, driver=driver)

    reader = src.read()
    first = reader.read_next_batch()
    assert first.num_rows == 20_000
    assert _kill(admin, app) == 1
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
                assert _kill(admin, app) == 1
        return ids

    ids = with_retries(consume, retries=2, delay=0)
    assert len(attempts) == 2
    assert len(ids) == n and len(set(ids)) == n and min(ids) == 1 and max(ids) == n


# -- sinks ----------------------------------------------------------------------------------


def test_replace_creates_then_swaps(admin: Any, schema: str, engine: DuckDBEngine,
                                    driver: str) -> None:
    con = engine.native()
    typed = con.sql("""SELECT i AS id, i::TINYINT AS tiny, i * 1.5 AS dbl,
        (i / 4)::DECIMAL(10,2) AS dec, 'n' || i AS name, DATE '2024-01-01' + i::INT AS day,
        TIMESTAMP '2024-01-01 10:00:00' AS ts, TIMESTAMPTZ '2024-01-01 10:00:00+00' AS tstz,
        i % 2 = 0 AS flag, '\\x01\\x02'::BLOB AS bin, i::UBIGINT AS ub, i::HUGEINT AS huge
        FROM range(1, 6) r(i)""").to_arrow_table()
    if driver == "psycopg":
        typed = typed.drop_columns([])  # the CSV path handles every scalar type above
    out = sink(table=f"{schema}.report", driver=driver)
    assert out.write(sink_input(engine, typed)).rows == 5
    got = rows(admin, f'SELECT id, tiny, dbl, dec, name, day, ts, tstz, flag, bin, ub, huge '
                      f'FROM "{schema}".report ORDER BY id')
    assert got[0] == (1, 1, 1.5, Decimal("0.25"), "n1", dt.date(2024, 1, 2),
                      dt.datetime(2024, 1, 1, 10), dt.datetime(2024, 1, 1, 10, tzinfo=dt.UTC),
                      False, b"\x01\x02", 1, 1)
    types = dict(rows(admin, f"""SELECT column_name, data_type FROM information_schema.columns
        WHERE table_schema = '{schema}' AND table_name = 'report'"""))
    assert types["tstz"] == "timestamp with time zone" and types["dec"] == "numeric"
    # replace with new data and a new shape
    out.write(sink_input(engine, pa.table({"id": [10, 11], "extra": ["a", None]})))
    assert rows(admin, f'SELECT * FROM "{schema}".report ORDER BY id') == [(10, "a"), (11, None)]
    leftovers = rows(admin, f"SELECT count(*) FROM pg_tables WHERE schemaname = '{schema}'")
    assert leftovers == [(1,)]


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
def test_failure_mid_load_leaves_the_old_table(admin: Any, schema: str, engine: DuckDBEngine,
                                               driver: str, mode: str) -> None:
    admin.execute(f"""CREATE TABLE "{schema}".keep (id bigint PRIMARY KEY);
                      INSERT INTO "{schema}".keep VALUES (1), (2), (3)""")
    engine.build_arrow("t", pa.table({"id": pa.array([5], pa.int64())}))
    data = FailingInput(engine, "t", "node", previous_partitions={"1": "x"})
    out = sink(table=f"{schema}.keep", driver=driver, mode=mode, key=["id"], partition_by="id")
    with pytest.raises(HeadwaterError):
        out.write(data)
    assert rows(admin, f'SELECT id FROM "{schema}".keep ORDER BY id') == [(1,), (2,), (3,)]
    assert rows(admin, f"SELECT count(*) FROM pg_tables WHERE schemaname = '{schema}'") == [(1,)]


def test_concurrent_readers_never_see_a_partial_table(admin: Any, schema: str,
                                                      engine: DuckDBEngine) -> None:
    n = 200_000
    out = sink(table=f"{schema}.live")
    old = engine.native().sql(f"SELECT i AS id, 1 AS v FROM range({n}) r(i)").to_arrow_table()
    new = engine.native().sql(f"SELECT i AS id, 2 AS v FROM range({n}) r(i)").to_arrow_table()
    out.write(sink_input(engine, old))
    seen: set[tuple[Any, ...]] = set()
    errors: list[BaseException] = []
    stop = threading.Event()

    def watch() -> None:
        con = psycopg.connect(DSN, autocommit=True)
        try:
            while not stop.is_set():
                seen.add(tuple(con.execute(
                    f'SELECT count(*), sum(v) FROM "{schema}".live').fetchone() or ()))
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
    assert not errors
    assert seen <= {(n, n), (n, 2 * n)}
    assert (n, 2 * n) in seen


def test_replace_keeps_dependent_views_working(admin: Any, schema: str,
                                               engine: DuckDBEngine) -> None:
    out = sink(table=f"{schema}.base")
    out.write(sink_input(engine, pa.table({"id": [1, 2]})))
    admin.execute(f'CREATE VIEW "{schema}".v AS SELECT id FROM "{schema}".base')
    out.write(sink_input(engine, pa.table({"id": [3, 4, 5]})))
    assert rows(admin, f'SELECT id FROM "{schema}".v ORDER BY id') == [(3,), (4,), (5,)]


def test_append_creates_then_inserts_by_name(admin: Any, schema: str, engine: DuckDBEngine,
                                             driver: str) -> None:
    out = sink(table=f"{schema}.log", mode="append", driver=driver)
    data = pa.table({"id": [1, 2], "msg": ["a", "b"]})
    out.write(sink_input(engine, data))
    assert out.write(sink_input(engine, data)).rows == 2
    assert rows(admin, f'SELECT count(*) FROM "{schema}".log') == [(4,)]
    # an existing table with its own column order, types and an extra column
    admin.execute(f'''CREATE TABLE "{schema}".ext (msg varchar(10), extra int DEFAULT 7,
                      id integer)''')
    sink(table=f"{schema}.ext", mode="append", driver=driver).write(sink_input(engine, data))
    assert rows(admin, f'SELECT id, msg, extra FROM "{schema}".ext ORDER BY id') == [
        (1, "a", 7), (2, "b", 7)]
    with pytest.raises(ConnectorError, match="has no column 'new'"):
        out.write(sink_input(engine, pa.table({"id": [3], "new": [1]})))


def test_upsert_by_key(admin: Any, schema: str, engine: DuckDBEngine, driver: str) -> None:
    out = sink(table=f"{schema}.health", mode="upsert", key=["device_id", "day"], driver=driver)
    first = pa.table({"device_id": ["a", "a", "b"], "day": ["d1", "d2", "d1"], "score": [1, 2, 3]})
    assert out.write(sink_input(engine, first)).rows == 3
    second = pa.table({"device_id": ["a", "c"], "day": ["d2", "d1"], "score": [20, 30]})
    out.write(sink_input(engine, second))
    assert rows(admin, f'SELECT device_id, day, score FROM "{schema}".health ORDER BY 1, 2') == [
        ("a", "d1", 1), ("a", "d2", 20), ("b", "d1", 3), ("c", "d1", 30)]
    dupes = pa.table({"device_id": ["z", "z"], "day": ["d", "d"], "score": [1, 2]})
    with pytest.raises(ConnectorError, match="more than one row"):
        out.write(sink_input(engine, dupes))
    admin.execute(f'CREATE TABLE "{schema}".nokey (device_id text, day text, score int)')
    with pytest.raises(ConnectorError, match="no unique index") as info:
        sink(table=f"{schema}.nokey", mode="upsert", key=["device_id", "day"],
             driver=driver).write(sink_input(engine, first))
    assert "CREATE UNIQUE INDEX" in (info.value.hint or "")


def test_sync_rewrites_only_changed_partitions(admin: Any, schema: str, engine: DuckDBEngine,
                                               driver: str) -> None:
    out = sink(table=f"{schema}.daily", mode="sync", partition_by="day", driver=driver)
    day = [dt.date(2024, 1, d) for d in (1, 1, 2, 3)]
    v1 = pa.table({"day": day, "v": [1, 2, 3, 4]})
    r1 = out.write(sink_input(engine, v1))
    assert r1.rows == 4 and r1.partitions is not None and len(r1.partitions) == 3
    # mark a row of the unchanged partition: a rewrite would undo the mark
    admin.execute(f'UPDATE "{schema}".daily SET v = 100 WHERE day = \'2024-01-01\' AND v = 1')
    # 2024-01-02 changes, 2024-01-03 vanishes, 2024-01-04 is new
    v2 = pa.table({"day": [dt.date(2024, 1, d) for d in (1, 1, 2, 4)], "v": [1, 2, 33, 5]})
    r2 = out.write(sink_input(engine, v2, previous=r1.partitions, physical="t2"))
    assert r2.rows == 2  # only 2024-01-02 and 2024-01-04 were written
    assert r2.partitions == SinkInput(engine, "t2", "n").partition_fingerprints("day")
    assert rows(admin, f'SELECT day::text, v FROM "{schema}".daily ORDER BY 1, 2') == [
        ("2024-01-01", 2), ("2024-01-01", 100), ("2024-01-02", 33), ("2024-01-04", 5)]
    # nothing recorded (e.g. a new environment): the whole table is rewritten
    r3 = out.write(sink_input(engine, v2, physical="t3"))
    assert r3.rows == 4
    assert rows(admin, f'SELECT count(*), sum(v) FROM "{schema}".daily') == [(4, 41)]
    with pytest.raises(ConnectorError, match="NULL"):
        out.write(sink_input(engine, pa.table({"day": [None, dt.date(2024, 1, 1)], "v": [1, 2]}),
                             physical="t4"))


def test_sync_partitions_by_timestamp_and_text(admin: Any, schema: str,
                                               engine: DuckDBEngine) -> None:
    out = sink(table=f"{schema}.hourly", mode="sync", partition_by="hour")
    hours = pa.array([dt.datetime(2024, 1, 1, h, tzinfo=dt.UTC) for h in (1, 2)],
                     pa.timestamp("us", "UTC"))
    r1 = out.write(sink_input(engine, pa.table({"hour": hours, "v": [1, 2]})))
    r2 = out.write(sink_input(engine, pa.table({"hour": hours.slice(0, 1), "v": [5]}),
                              previous=r1.partitions, physical="t2"))
    assert r2.rows == 1
    assert rows(admin, f'SELECT v FROM "{schema}".hourly') == [(5,)]
    out = sink(table=f"{schema}.bytext", mode="sync", partition_by="k")
    r1 = out.write(sink_input(engine, pa.table({"k": ["a'b", "c"], "v": [1, 2]}), physical="t5"))
    out.write(sink_input(engine, pa.table({"k": ["c"], "v": [3]}), previous=r1.partitions,
                         physical="t6"))
    assert rows(admin, f'SELECT k, v FROM "{schema}".bytext') == [("c", 3)]


# -- wiring ----------------------------------------------------------------------------------


def test_registry_does_not_import_drivers() -> None:
    code = ("import sys; from headwater.connectors.registry import source_types, sink_types; "
            "s = source_types(); k = sink_types(); "
            "assert 'postgres' in s and 'mysql' in s and 'postgres' in k and 'mysql' in k; "
            "bad = [m for m in ('adbc_driver_postgresql', 'psycopg', 'pymysql') "
            "if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_project_run_postgres_to_postgres(admin: Any, schema: str, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from headwater import Project
    from headwater.testing import write_project

    admin.execute(f"""CREATE TABLE "{schema}".orders (id int, amount numeric(10,2), day date,
            at timestamptz);
        INSERT INTO "{schema}".orders SELECT g, g * 1.25, '2024-01-01'::date + g % 3,
            '2024-01-01 00:00:00.5+00'::timestamptz + g * interval '1 minute'
        FROM generate_series(1, 1000) g""")
    monkeypatch.setenv("HW_TEST_PG_DSN", DSN)
    root = write_project(tmp_path / "p", {
        "sources/orders.toml": f'type = "postgres"\ndsn = "${{HW_TEST_PG_DSN}}"\n'
                               f'table = "{schema}.orders"\ncursor = "at"\n',
        "transforms/daily.sql": "SELECT day, count(*) AS n, sum(amount) AS total\n"
                                "FROM orders GROUP BY day\n",
        "sinks/daily_out.toml": f'type = "postgres"\nfrom = "daily"\ndsn = "${{HW_TEST_PG_DSN}}"\n'
                                f'table = "{schema}.daily"\nmode = "sync"\n'
                                'partition_by = "day"\n',
    })
    project = Project(root)
    result = project.run()
    assert result.ok, [(n.name, n.error) for n in result.nodes]
    assert rows(admin, f'SELECT sum(n)::int, sum(total) FROM "{schema}".daily') == [
        (1000, Decimal("625625.00"))]
    # new rows: the next run reads only those (cursor > the last max) and syncs the sink
    admin.execute(f"""INSERT INTO "{schema}".orders SELECT g, 1, '2024-01-05',
        '2024-01-01 00:00:00.5+00'::timestamptz + g * interval '1 minute'
        FROM generate_series(1001, 1010) g""")
    result = project.run()
    assert result.ok, [(n.name, n.error) for n in result.nodes]
    assert project.query("SELECT count(*) AS n, count(DISTINCT id) AS d FROM orders"
                         ).to_pylist() == [{"n": 1010, "d": 1010}]
    assert rows(admin, f'SELECT sum(n)::int, sum(total) FROM "{schema}".daily') == [
        (1010, Decimal("625635.00"))]


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
    hashing = [q for q in seen if "hash(" in q]
    assert hashing and all("CASE WHEN" in q and '"at" >' in q for q in hashing), hashing
    ref = tmp_path / "ref"
    shutil.copytree(root, ref, ignore=shutil.ignore_patterns(".headwater"))
    other = Project(ref)
    assert other.run().ok
    check = "SELECT count(*) AS n, sum(hash(t)::HUGEINT)::VARCHAR AS h FROM daily AS t"
    assert project.query(check).to_pylist() == other.query(check).to_pylist()
