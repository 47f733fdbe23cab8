"""The embedded default engine: one DuckDB file under ``.headwater/``."""

from __future__ import annotations

import contextlib
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headwater.core.quoting import quote_ident as _q
from headwater.engines import versioning
from headwater.engines.base import (
    HIDDEN_PREFIX,
    INTERNAL_SCHEMA,
    META_SCHEMA,
    NULL_PARTITION,
    Capabilities,
    Engine,
    TableStats,
    public_schema,
)
from headwater.errors import HeadwaterError, ProjectError


class WarehouseBusyError(HeadwaterError):
    """The DuckDB file is held by another process (a run in progress, or readers)."""

    exit_code = 3

    def __init__(self, message: str, *, holder_pid: int | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.holder_pid = holder_pid




if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa
    from sqlglot import exp


def duckdb_column_equals(column: str, value: str) -> Any:
    """``CAST(column AS VARCHAR) = value`` as a DuckDB expression, the value bound safely."""
    import duckdb

    return duckdb.SQLExpression(f"CAST({_q(column)} AS VARCHAR)") == duckdb.ConstantExpression(
        value
    )


def _warm_statements() -> None:
    """Import the statement builders (and DuckDB's SQL generator) in a thread."""
    if "headwater.engines.statements" not in sys.modules:
        threading.Thread(target=_import_statements, name="hw-warm-statements",
                         daemon=True).start()


def _import_statements() -> None:
    with contextlib.suppress(Exception):  # the import proper raises where it is needed
        from headwater.engines import statements as st

        st.table("warm").sql(dialect="duckdb")


class DuckDBEngine(Engine):
    name = "duckdb"
    dialect = "duckdb"
    capabilities = Capabilities(versioned_rows=True, window_stats=True, interrupt=True,
                                frame="duckdb")
    path: Path  # the warehouse file

    def __init__(
        self, path: Path, *, memory_limit: str | None = None, threads: int | None = None
    ) -> None:
        self.path = path
        self.memory_limit = memory_limit
        self.threads = threads
        self._con: duckdb.DuckDBPyConnection | None = None
        self._local = threading.local()
        self._hidden: dict[str, list[str]] = {}
        self._schemas: set[str] = set()
        # every cursor with the thread that made it: to interrupt() them
        self._cursors: list[tuple[int, duckdb.DuckDBPyConnection]] = []
        # the parent connection takes one call at a time (cursor(), close())
        self._parent = threading.Lock()

    # -- connections ------------------------------------------------------

    def warm_up(self) -> None:
        # builds write their bookkeeping as sqlglot trees: importing sqlglot (~70 ms) goes
        # on in a thread while the first node builds (DuckDB releases the GIL), instead of
        # delaying it; a run that only publishes earlier builds (a revert) never pays it
        _warm_statements()

    def open(self, *, read_only: bool = False) -> None:
        import duckdb

        self.path.parent.mkdir(parents=True, exist_ok=True)
        config: dict[str, Any] = {}
        if self.memory_limit:
            config["memory_limit"] = self.memory_limit
        if self.threads:
            config["threads"] = self.threads
        if read_only:
            # whatever SQL a reader runs reaches this file's tables and nothing else: no
            # file system, no extensions, no settings (see headwater.engines.query_guard)
            config.update(enable_external_access=False, autoload_known_extensions=False,
                          autoinstall_known_extensions=False,
                          allow_community_extensions=False, lock_configuration=True)
        self._local = threading.local()  # no cursor of an earlier connection is reused
        try:
            self._con = duckdb.connect(str(self.path), read_only=read_only, config=config)
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                m = re.search(r"\(PID (\d+)\)", str(exc))
                pid = int(m.group(1)) if m else None
                who = f" (pid {pid})" if pid else ""
                raise WarehouseBusyError(
                    f"the warehouse is busy: another process{who} is writing to it"
                    if read_only else
                    f"the warehouse is open in another process{who}",
                    path=self.path,
                    hint="wait for the current run to finish and try again" if read_only
                    else "wait for it to close the warehouse and try again",
                    holder_pid=pid,
                ) from None
            raise
        except (duckdb.ParserException, duckdb.InvalidInputException) as exc:
            # a [duckdb] setting DuckDB refuses (memory_limit = "lots")
            default = self.path.parent.name == ".headwater"  # else the root is unknown here
            raise ProjectError(
                f"DuckDB refuses the [duckdb] settings of headwater.toml: {str(exc).strip()}",
                path=self.path.parent.parent / "headwater.toml" if default else None,
                hint='fix memory_limit or threads in [duckdb] (e.g. memory_limit = "8GB")',
            ) from None
        if not read_only:
            self._con.execute(f"CREATE SCHEMA IF NOT EXISTS {_q(INTERNAL_SCHEMA)}")
            self._con.execute(f"CREATE SCHEMA IF NOT EXISTS {_q(META_SCHEMA)}")
            self._con.execute(
                f"CREATE TABLE IF NOT EXISTS {_q(META_SCHEMA)}.windows"
                " (physical VARCHAR, label VARCHAR, fp VARCHAR)"
            )
            self._con.execute(
                f"CREATE TABLE IF NOT EXISTS {_q(META_SCHEMA)}.partitions"
                " (physical VARCHAR, part VARCHAR, digest VARCHAR)"
            )
            self._con.execute(
                f"CREATE TABLE IF NOT EXISTS {_q(META_SCHEMA)}.part_columns"
                " (physical VARCHAR, part VARCHAR, cols VARCHAR)"
            )
            self._con.execute(  # headwater.engines.window_stats
                f"CREATE TABLE IF NOT EXISTS {_q(META_SCHEMA)}.window_stats (physical VARCHAR,"
                " key VARCHAR, part VARCHAR, label VARCHAR, rows BIGINT, total HUGEINT)")
            self._con.execute(  # headwater.engines.versioning
                f"CREATE TABLE IF NOT EXISTS {_q(META_SCHEMA)}.versions (base VARCHAR,"
                " version BIGINT, snapshot VARCHAR, made_at TIMESTAMP DEFAULT now(),"
                " left_out VARCHAR)")
            self.capabilities = type(self).capabilities
        else:  # a warehouse made by an older Headwater may not have the table yet
            kept = bool(self._con.execute(
                "SELECT 1 FROM information_schema.tables WHERE table_schema = ?"
                " AND table_name = 'window_stats'", [META_SCHEMA]).fetchall())
            self.capabilities = replace(type(self).capabilities, window_stats=kept)

    def interrupt(self) -> None:
        """Stop the queries in progress on this engine's connections (another thread)."""
        for _, cur in list(self._cursors):
            with contextlib.suppress(Exception):  # a closed cursor has nothing to stop
                cur.interrupt()

    def interrupt_thread(self, ident: int) -> None:
        for owner, cur in list(self._cursors):
            if owner == ident:
                with contextlib.suppress(Exception):
                    cur.interrupt()

    def release_thread(self) -> None:
        me = threading.get_ident()
        with self._parent:
            mine = [c for c in self._cursors if c[0] == me]
            self._cursors = [c for c in self._cursors if c[0] != me]
            for _, cur in mine:
                with contextlib.suppress(Exception):  # closing rolls back what it left open
                    cur.close()
        self._local.cur = None

    def close(self) -> None:
        import duckdb

        with self._parent:
            if self._con is None:
                return
            for attempt in range(50):  # a query a timeout interrupted may take a moment
                try:
                    self._con.close()
                    break
                except duckdb.ResourceInUseException:
                    if attempt == 49:
                        raise
                    time.sleep(0.1)
            self._con = None
            self._cursors = []

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """A cursor for the calling thread (DuckDB cursors are not shared across threads)."""
        if self._con is None:
            raise RuntimeError("engine is not open")
        cur: duckdb.DuckDBPyConnection | None = getattr(self._local, "cur", None)
        if cur is None:
            with self._parent:
                cur = self._con.cursor()
                self._cursors.append((threading.get_ident(), cur))
            self._local.cur = cur
        return cur

    def native(self) -> Any:
        return self.con

    def frame(self, physical: str) -> duckdb.DuckDBPyRelation:
        return self.relation(physical)

    # -- physical tables --------------------------------------------------

    def physical_tables(self) -> set[str]:
        rows = self.con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ?",
            [INTERNAL_SCHEMA],
        ).fetchall()
        return {r[0] for r in rows}

    def physical_ref(self, physical: str) -> exp.Expr:
        """How transforms read a physical table: hidden bookkeeping columns left out."""
        from sqlglot import exp

        hidden = self.hidden_columns(physical)
        if not hidden:
            return exp.table_(physical, db=INTERNAL_SCHEMA, quoted=True)
        import sqlglot

        return exp.Subquery(this=sqlglot.parse_one(self._select_visible(physical),
                                                   dialect="duckdb"))

    def physical_ref_sql(self, physical: str) -> str:
        if not self.hidden_columns(physical):
            return self._fq(physical)
        return f"({self._select_visible(physical)})"

    def hidden_columns(self, physical: str) -> list[str]:
        """Bookkeeping columns (``_hw_*``) of a physical table, e.g. the source file."""
        cached = self._hidden.get(physical)
        if cached is None:
            cached = [c for c, _ in self.columns(physical) if c.startswith(HIDDEN_PREFIX)]
            self._hidden[physical] = cached
        return cached

    def _select_visible(self, physical: str) -> str:
        hidden = self.hidden_columns(physical)
        cols = f"* EXCLUDE ({', '.join(_q(c) for c in hidden)})" if hidden else "*"
        return f"SELECT {cols} FROM {self._fq(physical)}"

    def _fq(self, physical: str) -> str:
        return f"{_q(INTERNAL_SCHEMA)}.{_q(physical)}"

    def build_sql(self, physical: str, select_sql: str, *, view: bool = False) -> None:
        kind = "VIEW" if view else "TABLE"
        # CREATE ... AS is atomic in DuckDB: a crash leaves no partial table.
        self.con.execute(f"CREATE OR REPLACE {kind} {self._fq(physical)} AS {select_sql}")

    def build_arrow(self, physical: str, data: pa.RecordBatchReader | pa.Table) -> None:
        cur = self.con
        view = f"__hw_arrow_{threading.get_ident()}"
        cur.register(view, data)
        try:
            cur.execute(f"CREATE OR REPLACE TABLE {self._fq(physical)} AS SELECT * FROM {_q(view)}")
        finally:
            cur.unregister(view)

    def load_arrow(
        self,
        physical: str,
        data: pa.RecordBatchReader,
        projection: list[tuple[str, str | None, str]],
        *,
        append: bool,
        stage_hook: Callable[[str], None] | None = None,
        before: Callable[[], None] | None = None,
        after: Callable[[], None] | None = None,
        version: int | None = None,
    ) -> None:
        cur = self.con
        view = f"__hw_arrow_{threading.get_ident()}"
        select = ", ".join(
            f"CAST({_q(src) if src else 'NULL'} AS {typ}) AS {_q(col)}"
            for col, src, typ in projection
        )
        if version is not None:
            select += f", {int(version)}::BIGINT AS {_q(versioning.VERSION_FROM)}"
        source = f"SELECT {select} FROM {_q(view)}"
        cur.register(view, data)
        try:
            with self.transaction():
                if before is not None:
                    before()
                if stage_hook is not None:
                    # checks look at (and may quarantine from) the incoming rows first
                    stage = _q(f"__hw_stage_{threading.get_ident()}")
                    cur.execute(f"CREATE OR REPLACE TEMP TABLE {stage} AS {source}")
                    stage_hook(stage)
                    source = f"SELECT * FROM {stage}"
                if append:
                    have = {c for c, _ in self.columns(physical)}
                    for col, _src, typ in projection:
                        if col not in have:
                            cur.execute(
                                f"ALTER TABLE {self._fq(physical)} ADD COLUMN {_q(col)} {typ}"
                            )
                    cur.execute(f"INSERT INTO {self._fq(physical)} BY NAME {source}")
                else:
                    cur.execute(f"CREATE OR REPLACE TABLE {self._fq(physical)} AS {source}")
                if stage_hook is not None:
                    cur.execute(f"DROP TABLE {stage}")
                if after is not None:
                    after()
        finally:
            cur.unregister(view)

    def execute(self, sql: str, params: list[Any] | None = None) -> None:
        self.con.execute(sql, params or [])

    def fetch(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        return self.con.execute(sql, params or []).fetchall()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        cur = self.con
        cur.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")

    def exists(self, physical: str) -> bool:
        return bool(self.con.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
            [INTERNAL_SCHEMA, physical],
        ).fetchall())

    def columns(self, physical: str) -> list[tuple[str, str]]:
        return [(str(c[0]), str(c[1]))
                for c in self.con.execute(f"DESCRIBE {self._fq(physical)}").fetchall()]

    def arrow_columns(self, schema: pa.Schema) -> list[tuple[str, str]]:
        # an empty reader, not schema.empty_table(): that one imports pandas (0.2 s)
        import pyarrow as pa

        rel = self.con.from_arrow(pa.RecordBatchReader.from_batches(schema, []))
        return [(str(n), str(t)) for n, t in zip(rel.columns, rel.types, strict=True)]

    def max_value(self, physical: str, column: str) -> Any:
        sql = f"SELECT max({_q(column)}) FROM {self._fq(physical)}"
        return self.con.execute(sql).fetchall()[0][0]

    def stats(self, physical: str) -> TableStats:
        fq = self._fq(physical)
        cols = self.con.execute(f"DESCRIBE {fq}").fetchall()
        columns = [(str(c[0]), str(c[1])) for c in cols
                   if not str(c[0]).startswith(HIDDEN_PREFIX)]
        # publishing right after needs them: no second DESCRIBE
        self._hidden[physical] = [str(c[0]) for c in cols if str(c[0]).startswith(HIDDEN_PREFIX)]
        # fetchall, not fetchone: DuckDB refuses new work on a cursor with an undrained result
        rows, total = self.con.execute(
            f"SELECT count(*), coalesce(sum(hash(t)::HUGEINT), 0)::VARCHAR FROM {fq} AS t"
        ).fetchall()[0]
        schema_sig = ",".join(f"{n}:{t}" for n, t in columns)
        return TableStats(int(rows), f"{rows}:{total}:{schema_sig}", columns)

    def read(self, physical: str) -> pa.Table:
        return self.con.sql(self._select_visible(physical)).to_arrow_table()

    def reader(
        self, physical: str, where: tuple[str, str] | None = None
    ) -> pa.RecordBatchReader:
        # a cursor of its own: the reader may be consumed while this thread does other work
        if self._con is None:
            cur = self.con
        else:
            with self._parent:
                cur = self._con.cursor()
                self._cursors.append((threading.get_ident(), cur))
        if where is None:
            return cur.sql(self._select_visible(physical)).to_arrow_reader(100_000)
        column, value = where
        rel = cur.sql(self._select_visible(physical))
        if value == NULL_PARTITION:
            rel = rel.filter(f"{_q(column)} IS NULL")
        else:
            rel = rel.filter(duckdb_column_equals(column, value))
        return rel.to_arrow_reader(100_000)

    def partition_fingerprints(self, physical: str, column: str) -> dict[str, str]:
        rows = self.con.execute(
            f"SELECT {_q(column)}::VARCHAR AS p, count(*),"
            f" coalesce(sum(hash(t)::HUGEINT), 0)::VARCHAR"
            f" FROM {self._fq(physical)} AS t GROUP BY p"
        ).fetchall()
        return {NULL_PARTITION if p is None else str(p): f"{n}:{h}" for p, n, h in rows}

    def relation(self, physical: str) -> duckdb.DuckDBPyRelation:
        return self.con.sql(self._select_visible(physical))

    def publish(self, env: str, name: str, physical: str) -> None:
        schema = public_schema(env)
        cur = self.con
        if schema not in self._schemas:  # one catalog write per run, not per node
            cur.execute(f"CREATE SCHEMA IF NOT EXISTS {_q(schema)}")
            self._schemas.add(schema)
        target = f"{_q(schema)}.{_q(name)}"
        cur.execute(f"CREATE OR REPLACE VIEW {target} AS {self._select_visible(physical)}")

    def shown(self, env: str) -> dict[str, str] | None:
        out: dict[str, str] = {}
        for name, sql in self.con.execute(
                "SELECT view_name, sql FROM duckdb_views() WHERE schema_name = ?",
                [public_schema(env)]).fetchall():
            m = re.search(r'FROM\s+"?_hw"?\.(?:"((?:[^"]|"")+)"|(\w+))', sql or "")
            if m is not None:
                out[str(name)] = (m.group(1) or "").replace('""', '"') or m.group(2)
        return out

    def unpublish(self, env: str, name: str) -> None:
        self.con.execute(f"DROP VIEW IF EXISTS {_q(public_schema(env))}.{_q(name)}")

    def swap_in(self, staging: str, physical: str) -> None:
        kinds = dict(self.con.execute(
            "SELECT table_name, table_type FROM information_schema.tables"
            " WHERE table_schema = ? AND table_name IN (?, ?)",
            [INTERNAL_SCHEMA, staging, physical]).fetchall())
        old = "VIEW" if kinds.get(physical) == "VIEW" else "TABLE"
        new = "VIEW" if kinds.get(staging) == "VIEW" else "TABLE"
        with self.transaction():
            self.con.execute(f"DROP {old} IF EXISTS {self._fq(physical)}")
            self.con.execute(f"ALTER {new} {self._fq(staging)} RENAME TO {_q(physical)}")
            self._forget_stats(physical)
        self._hidden.pop(physical, None)

    def drop_physical(self, physical: str) -> None:
        self._hidden.pop(physical, None)
        fq = self._fq(physical)
        row = self.con.execute(
            "SELECT table_type FROM information_schema.tables"
            " WHERE table_schema = ? AND table_name = ?",
            [INTERNAL_SCHEMA, physical],
        ).fetchall()
        if row:
            kind = "VIEW" if row[0][0] == "VIEW" else "TABLE"
            self._forget_stats(physical)  # a cache: losing it only costs a recount
            self.con.execute(f"DROP {kind} IF EXISTS {fq}")

    def _forget_stats(self, physical: str) -> None:
        """What ``_hw_meta.window_stats`` counted of a table that is replaced or dropped."""
        if self.capabilities.window_stats:
            self.forget_window_sums(physical)

    def query(self, sql: str, limit: int | None = None) -> pa.Table:
        import pyarrow as pa

        result = self.con.sql(sql)
        if result is None:
            return pa.table({})
        if limit is None:
            return result.to_arrow_table()
        reader = result.to_arrow_reader(max(limit, 1))
        batches: list[pa.RecordBatch] = []
        remaining = limit
        for batch in reader:
            batches.append(batch.slice(0, remaining))
            remaining -= batches[-1].num_rows
            if remaining <= 0:
                break
        return pa.Table.from_batches(batches, schema=reader.schema)
