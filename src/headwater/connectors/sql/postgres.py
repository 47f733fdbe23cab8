"""PostgreSQL: a source that streams a table or query as Arrow, and a sink.

(Connections and errors: ``postgres_conn``; reading sessions: ``postgres_session``.)

Install with ``pip install 'headwater[postgres]'`` (the ADBC driver and psycopg).

Source, ``sources/orders.toml``::

    type = "postgres"
    dsn = "postgresql://etl:${PGPASSWORD}@db.internal:5432/shop"
    # or separate keys: host, port, user, password, database (they win over the dsn)
    table = "public.orders"      # or: query = "SELECT ... FROM ..." (exactly one)
    cursor = "updated_at"        # optional: later runs read only rows with cursor > last max
    chunk_rows = 100000          # rows per Arrow batch at most

Sink, ``sinks/device_health.toml``::

    type = "postgres"
    from = "device_health"
    dsn = "postgresql://etl:${PGPASSWORD}@db.internal:5432/analytics"
    table = "analytics.device_health"
    mode = "replace"             # replace | append | upsert | sync
    key = ["device_id", "day"]   # upsert: the conflict key
    partition_by = "day"         # sync: rewrite only the partitions that changed

Reading. The ADBC driver (``adbc_driver_postgresql``) runs the query through
``COPY ... TO STDOUT (FORMAT binary)`` and hands out Arrow batches as they
arrive: memory stays bounded whatever the table size. Without ADBC (or with
``driver = "psycopg"``) psycopg streams ``COPY ... (FORMAT csv)`` into
``pyarrow.csv`` with the column types taken from the query's description
(arrays, intervals, json and uuid then arrive as text). ``numeric(p, s)`` with
p <= 38 becomes ``decimal128(p, s)``; an unconstrained ``numeric`` becomes
``double`` (as DuckDB's own Postgres reader does).

Incremental reads. With ``cursor`` and a ``since`` value, only rows whose cursor
is greater are read. The value is bound as a parameter of
``set_config('headwater.since', $1, false)`` and the query compares with
``CAST(current_setting('headwater.since') AS <type>)``: the value never enters
the SQL text, and the query stays a plain SELECT that COPY can stream (a
parameterised query cannot be streamed by COPY). Rows committed later with a
cursor value at or below the last one seen are not picked up: use a cursor the
application only ever increases.

Change marker (``data_fingerprint``), chosen to be cheap, not exact:

- with a cursor: ``max(cursor)`` and ``count(*)``;
- a table without a cursor: ``count(*)`` plus the table's ``n_tup_ins``,
  ``n_tup_upd`` and ``n_tup_del`` from ``pg_stat_user_tables``. These counters
  move with every write but are published by the server with a small delay
  (about a second) and reset by ``pg_stat_reset()`` (which only costs one
  extra ingest). A view has no such counters: give it a cursor;
- a query without a cursor: an md5 of the query text plus ``count(*)``.

Writing. Every mode runs in one transaction, so readers see the old rows or
the new ones, never a mix:

- ``replace`` loads a staging table next to the target, then drops the old
  table and renames the staging table into place in the same transaction (if
  views depend on the table, it deletes and re-inserts its rows instead).
  The new table does not keep the old one's indexes or grants;
- ``append`` inserts; ``upsert`` loads a staging table, then
  ``INSERT ... ON CONFLICT (key) DO UPDATE``: the target needs a primary key or
  unique index on ``key`` (a table Headwater creates gets a primary key);
- ``sync`` rewrites only the partitions (values of ``partition_by``) whose
  content fingerprint changed since the last write (delete + insert, one
  transaction per partition) and deletes the partitions that disappeared.
  The first write, with nothing recorded, rewrites the whole table.

A missing target table is created with types mapped from Arrow. Connections
identify themselves as ``application_name = headwater:<source or sink name>``
(``application_name`` overrides it) and time out after ``connect_timeout``
seconds (default 10); ``driver = "adbc" | "psycopg"`` forces a driver. Connection
failures, dropped connections, serialization failures and deadlocks raise
``ConnectorError(transient=True)``, which the runner retries. Messages name
the source or sink and ``host:port/database``, never the password.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headwater.connectors.base import (
    SinkConnector,
    SinkInput,
    SinkResult,
    SourceConfig,
    SourceConnector,
)
from headwater.connectors.sql.common import (
    REDACTED,
    StreamGuard,
    base_select,
    check_no_null_partitions,
    check_unique_key,
    ident,
    redact,
    since_text,
    split_table,
    staging_name,
)
from headwater.connectors.sql.postgres_conn import (
    DIALECT,
    NAME_LIMIT,
    PgTarget,
    PostgresSinkConfig,
    PostgresSourceConfig,
    parse_dsn,
    pg_error,
    pg_target,
    sqlstate_of,
)
from headwater.connectors.sql.postgres_session import PgSession, open_session
from headwater.errors import ConnectorError, HeadwaterError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["PostgresSink", "PostgresSinkConfig", "PostgresSource", "PostgresSourceConfig",
           "parse_dsn"]

_CURSOR_CASTS = {
    "int2": "bigint", "int4": "bigint", "int8": "bigint", "oid": "bigint",
    "numeric": "numeric", "float4": "double precision", "float8": "double precision",
    "date": "date", "timestamp": "timestamp", "timestamptz": "timestamptz",
    "time": "time", "text": "text", "varchar": "text", "bpchar": "text", "name": "text",
    "uuid": "uuid",
}


class _PgConnector:
    config: PostgresSourceConfig | PostgresSinkConfig
    name: str
    config_path: Path
    kind: str

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name!r}"

    def target(self) -> PgTarget:
        return pg_target(self.config, self.label, self.config_path, self.name,
                         read_only=self.kind == "source")

    def connect(self, target: PgTarget) -> PgSession:
        try:
            return open_session(self.config.driver, target)
        except HeadwaterError:
            raise
        except Exception as exc:
            raise pg_error(exc, what=self.label, action="connecting to", target=target,
                           path=self.config_path) from None

    def describe(self) -> dict[str, object]:
        out = self.config.model_dump(exclude={"description", "tags"}, by_alias=True)
        if out.get("password"):
            out["password"] = REDACTED
        if out.get("dsn"):
            out["dsn"] = redact(str(out["dsn"]), [])
        return out


# -- source --------------------------------------------------------------------------


class PostgresSource(_PgConnector, SourceConnector):
    type = "postgres"
    Config = PostgresSourceConfig
    config: PostgresSourceConfig
    kind = "source"

    def __init__(self, name: str, config: SourceConfig, root: Path, config_path: Path) -> None:
        super().__init__(name, config, root, config_path)
        self.last_error: ConnectorError | None = None

    def _base(self) -> str:
        return base_select(DIALECT, table=self.config.table, query=self.config.query)

    def _fail(self, exc: BaseException, target: PgTarget, action: str) -> ConnectorError:
        err = pg_error(exc, what=self.label, action=action, target=target, path=self.config_path)
        self.last_error = err
        return err

    def read(self, since: Any | None = None) -> pa.RecordBatchReader:
        self.last_error = None  # only this read's failure counts
        target = self.target()
        session = self.connect(target)
        try:
            sql = self._base()
            cursor = self.config.cursor
            if cursor is not None and since is not None:
                cast = self._cursor_cast(session, sql, cursor)
                session.execute("SELECT set_config('headwater.since', \x00, false)",
                                [since_text(since)])
                sql = (f"{sql} WHERE {ident(cursor, DIALECT)} > "
                       f"CAST(current_setting('headwater.since') AS {cast})")
            schema, batches, convert = session.stream(sql)
        except HeadwaterError as exc:
            session.close()
            if isinstance(exc, ConnectorError):
                self.last_error = exc
            raise
        except Exception as exc:
            session.close()
            raise self._fail(exc, target, "reading from") from None

        guard = StreamGuard(
            schema, batches, chunk_rows=self.config.chunk_rows,
            translate=lambda e: self._fail(e, target, "reading from"),
            close=session.close, convert=convert,
        )
        return guard.reader()

    def _cursor_cast(self, session: PgSession, base: str, cursor: str) -> str:
        cols = {c.name: c for c in session.columns(base)}
        col = cols.get(cursor)
        if col is None:
            raise ConnectorError(
                f"{self.label}: the cursor column {cursor!r} is not in the result",
                path=self.config_path,
                hint="columns: " + ", ".join(cols),
            )
        cast = _CURSOR_CASTS.get(col.typname)
        if cast is None:
            raise ConnectorError(
                f"{self.label}: cannot use {cursor!r} ({col.typname}) as a cursor",
                path=self.config_path,
                hint="use a timestamp, date, integer, numeric or text column",
            )
        return cast

    def data_fingerprint(self) -> str:
        target = self.target()
        session = self.connect(target)
        try:
            base = self._base()
            cursor = self.config.cursor
            if cursor is not None:
                q = ident(cursor, DIALECT)
                row = session.execute(f"SELECT max({q})::text, count(*) FROM ({base}) AS _hw_f")
                return f"cursor:{row[0][0]}:{row[0][1]}"
            # the content itself, hashed by the server (an order-independent sum of row
            # hashes): row counts and pg_stat counters miss updates and lag behind
            found = session.execute(
                "SELECT count(*), coalesce(sum(('x' || left(md5(_hw_f::text), 15))::bit(60)"
                f"::bigint), 0)::text FROM ({base}) AS _hw_f")
            return f"content:{found[0][0]}:{found[0][1]}"
        except HeadwaterError:
            raise
        except Exception as exc:
            raise self._fail(exc, target, "fingerprinting") from None
        finally:
            session.close()


# -- sink ----------------------------------------------------------------------------


def pg_column_type(t: pa.DataType, column: str) -> str:
    """The Postgres type for an Arrow type (what a created table uses)."""
    import pyarrow as pa
    import pyarrow.types as pt

    if isinstance(t, pa.BaseExtensionType):
        if t.extension_name == "arrow.json":
            return "jsonb"
        if t.extension_name == "arrow.uuid":
            return "uuid"
        return pg_column_type(t.storage_type, column)
    if pt.is_dictionary(t):
        return pg_column_type(t.value_type, column)
    if pt.is_boolean(t):
        return "boolean"
    if pt.is_int8(t) or pt.is_int16(t) or pt.is_uint8(t):
        return "smallint"
    if pt.is_int32(t) or pt.is_uint16(t):
        return "integer"
    if pt.is_int64(t) or pt.is_uint32(t):
        return "bigint"
    if pt.is_uint64(t):
        return "numeric(20,0)"
    if pt.is_float16(t) or pt.is_float32(t):
        return "real"
    if pt.is_float64(t):
        return "double precision"
    if pt.is_decimal(t):
        return f"numeric({t.precision},{t.scale})"
    if pt.is_string(t) or pt.is_large_string(t) or pt.is_string_view(t) or pt.is_null(t):
        return "text"
    if (pt.is_binary(t) or pt.is_large_binary(t) or pt.is_fixed_size_binary(t)
            or pt.is_binary_view(t)):
        return "bytea"
    if pt.is_date(t):
        return "date"
    if pt.is_timestamp(t):
        return "timestamptz" if t.tz else "timestamp"
    if pt.is_time(t):
        return "time"
    if pt.is_duration(t) or pt.is_interval(t):
        return "interval"
    if pt.is_list(t) or pt.is_large_list(t) or pt.is_fixed_size_list(t):
        inner = pg_column_type(t.value_type, column)
        return inner if inner.endswith("[]") else inner + "[]"
    raise ConnectorError(
        f"column {column!r} has type {t}, which has no Postgres equivalent here",
        hint="turn it into JSON text in the transform (e.g. to_json(col))",
    )


def _ingest_type(t: pa.DataType) -> pa.DataType:
    """The Arrow type the ADBC driver writes in the Postgres type chosen above."""
    import pyarrow as pa
    import pyarrow.types as pt

    if isinstance(t, pa.BaseExtensionType):
        return _ingest_type(t.storage_type)
    if pt.is_dictionary(t):
        return _ingest_type(t.value_type)
    if pt.is_uint64(t):
        return pa.decimal128(20, 0)
    if pt.is_float16(t):
        return pa.float32()
    if pt.is_large_string(t) or pt.is_string_view(t) or pt.is_null(t):
        return pa.string()
    if pt.is_large_binary(t) or pt.is_fixed_size_binary(t) or pt.is_binary_view(t):
        return pa.binary()
    if pt.is_date64(t):
        return pa.date32()
    if pt.is_time32(t):
        return pa.time64("us")
    if pt.is_large_list(t) or pt.is_fixed_size_list(t):
        return pa.list_(_ingest_type(t.value_type))
    return t


class _Counted:
    """A reader with its types made writable, counting rows as they pass."""

    def __init__(self, reader: pa.RecordBatchReader) -> None:
        import pyarrow as pa

        for f in reader.schema:
            pg_column_type(f.type, f.name)  # unsupported types fail before any write
        self.rows = 0
        src = reader.schema
        self.schema = pa.schema([pa.field(f.name, _ingest_type(f.type)) for f in src])
        needs_cast = self.schema != pa.schema([pa.field(f.name, f.type) for f in src])

        def batches() -> Iterator[pa.RecordBatch]:
            for batch in reader:
                if needs_cast:
                    arrays = []
                    for col, f in zip(batch.columns, self.schema, strict=True):
                        if isinstance(col.type, pa.BaseExtensionType):
                            col = col.storage
                        arrays.append(col if col.type == f.type else col.cast(f.type))
                    batch = pa.RecordBatch.from_arrays(arrays, schema=self.schema)
                self.rows += batch.num_rows
                yield batch

        self.reader = pa.RecordBatchReader.from_batches(self.schema, batches())


class PostgresSink(_PgConnector, SinkConnector):
    type = "postgres"
    Config = PostgresSinkConfig
    config: PostgresSinkConfig
    kind = "sink"

    def write(self, data: SinkInput) -> SinkResult:
        target = self.target()
        session = self.connect(target)
        try:
            schema, table = self._resolve_table(session)
            result = getattr(self, f"_{self.config.mode}")(session, data, schema, table)
            session.commit()
            return result  # type: ignore[no-any-return]
        except BaseException as exc:
            with contextlib.suppress(Exception):
                session.rollback()
            if isinstance(exc, HeadwaterError):
                if isinstance(exc, ConnectorError) and not exc.message.startswith(self.label):
                    exc.message = f"{self.label}: {exc.message}"
                raise
            if not isinstance(exc, Exception):
                raise
            raise pg_error(exc, what=self.label, action="writing to", target=target,
                           path=self.config_path) from None
        finally:
            with contextlib.suppress(Exception):
                session.close()

    # -- helpers

    def _resolve_table(self, session: PgSession) -> tuple[str, str]:
        schema, table = split_table(self.config.table, DIALECT)
        if schema is None:
            found = session.execute(
                "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE c.oid = to_regclass(\x00)", [ident(table, DIALECT)])
            schema = found[0][0] if found else session.execute("SELECT current_schema()")[0][0]
            if schema is None:
                raise ConnectorError(f"{self.label}: no schema to create {table!r} in",
                                     hint='write table = "schema.name"')
        return str(schema), table

    @staticmethod
    def _fq(schema: str, table: str) -> str:
        return f"{ident(schema, DIALECT)}.{ident(table, DIALECT)}"

    def _existing_columns(self, session: PgSession, schema: str, table: str) -> dict[str, str]:
        rows = session.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a"
            " WHERE a.attrelid = to_regclass(\x00) AND a.attnum > 0 AND NOT a.attisdropped"
            " ORDER BY a.attnum", [self._fq(schema, table)])
        return {str(n): str(t) for n, t in rows}

    def _create(self, session: PgSession, schema: str, table: str, arrow: pa.Schema,
                *, primary_key: Sequence[str] = (), index: str | None = None) -> None:
        cols = [f"{ident(f.name, DIALECT)} {pg_column_type(f.type, f.name)}" for f in arrow]
        if primary_key:
            cols.append("PRIMARY KEY (" + ", ".join(ident(k, DIALECT) for k in primary_key)
                        + ")")
        session.execute(f"CREATE TABLE {self._fq(schema, table)} ({', '.join(cols)})")
        if index:
            name = staging_name(table, f"{index}_idx", NAME_LIMIT)
            session.execute(f"CREATE INDEX {ident(name, DIALECT)} ON "
                            f"{self._fq(schema, table)} ({ident(index, DIALECT)})")

    def _stage(self, session: PgSession, schema: str, reader: pa.RecordBatchReader,
               table: str) -> tuple[str, int, list[str]]:
        """Load ``reader`` into a new staging table in ``schema``: (name, rows, columns)."""
        counted = _Counted(reader)
        stage = staging_name(table, "stage_" + uuid.uuid4().hex[:8], NAME_LIMIT)
        self._create(session, schema, stage, counted.schema)
        session.ingest(schema, stage, counted.reader)
        return stage, counted.rows, counted.schema.names

    def _ensure_target(self, session: PgSession, schema: str, table: str, arrow: pa.Schema,
                       *, primary_key: Sequence[str] = (), index: str | None = None) -> bool:
        """Create the target if missing (True), else check it has every column."""
        existing = self._existing_columns(session, schema, table)
        if not existing:
            self._create(session, schema, table, arrow, primary_key=primary_key, index=index)
            return True
        missing = [n for n in arrow.names if n not in existing]
        if missing:
            raise ConnectorError(
                f"{self.label}: table {schema}.{table} has no column "
                + ", ".join(repr(m) for m in missing),
                path=self.config_path,
                hint='add the columns to the table, or use mode = "replace" to recreate it',
            )
        return False

    def _insert_from(self, session: PgSession, schema: str, table: str, stage: str,
                     columns: list[str], suffix: str = "") -> None:
        cols = ", ".join(ident(c, DIALECT) for c in columns)
        session.execute(f"INSERT INTO {self._fq(schema, table)} ({cols}) SELECT {cols} FROM "
                        f"{self._fq(schema, stage)}{suffix}")
        session.execute(f"DROP TABLE {self._fq(schema, stage)}")

    def _check_columns(self, arrow: pa.Schema, columns: Sequence[str], what: str) -> None:
        missing = [c for c in columns if c not in arrow.names]
        if missing:
            raise ConnectorError(
                f"{self.label}: {what} column " + ", ".join(repr(m) for m in missing)
                + f" is not in node {self.config.from_!r}",
                path=self.config_path, hint="columns: " + ", ".join(arrow.names))

    # -- modes

    def _replace(self, session: PgSession, data: SinkInput, schema: str,
                 table: str) -> SinkResult:
        stage, rows, columns = self._stage(session, schema, data.reader(), table)
        fq = self._fq(schema, table)
        if self._existing_columns(session, schema, table):
            # views or foreign keys of other tables that depend on it forbid a drop
            dependents = session.execute(
                "SELECT count(*) FROM pg_depend WHERE refobjid = to_regclass(\x00)"
                " AND deptype = 'n'", [fq])[0][0]
            if dependents:
                session.execute(f"DELETE FROM {fq}")
                self._insert_from(session, schema, table, stage, columns)
                return SinkResult(rows)
            session.execute(f"DROP TABLE {fq}")
        session.execute(f"ALTER TABLE {self._fq(schema, stage)} RENAME TO {ident(table, DIALECT)}")
        return SinkResult(rows)

    def _append(self, session: PgSession, data: SinkInput, schema: str, table: str) -> SinkResult:
        reader = data.reader()
        if self._ensure_target(session, schema, table, reader.schema):
            counted = _Counted(reader)
            session.ingest(schema, table, counted.reader)
            return SinkResult(counted.rows)
        stage, rows, columns = self._stage(session, schema, reader, table)
        self._insert_from(session, schema, table, stage, columns)
        return SinkResult(rows)

    def _upsert(self, session: PgSession, data: SinkInput, schema: str, table: str) -> SinkResult:
        reader = data.reader()
        key = self.config.key
        self._check_columns(reader.schema, key, "key")
        check_unique_key(data, key, self.label, self.config_path)
        self._ensure_target(session, schema, table, reader.schema, primary_key=key)
        stage, rows, columns = self._stage(session, schema, reader, table)
        others = [c for c in columns if c not in key]
        conflict = "(" + ", ".join(ident(k, DIALECT) for k in key) + ")"
        if others:
            sets = ", ".join(f"{ident(c, DIALECT)} = EXCLUDED.{ident(c, DIALECT)}"
                             for c in others)
            suffix = f" ON CONFLICT {conflict} DO UPDATE SET {sets}"
        else:
            suffix = f" ON CONFLICT {conflict} DO NOTHING"
        try:
            self._insert_from(session, schema, table, stage, columns, suffix)
        except Exception as exc:
            state = sqlstate_of(exc)
            if state == "42P10":
                raise ConnectorError(
                    f"{self.label}: table {schema}.{table} has no unique index on "
                    f"({', '.join(key)}), which upsert needs",
                    path=self.config_path,
                    hint=f"CREATE UNIQUE INDEX ON {self._fq(schema, table)} "
                    f"({', '.join(ident(k, DIALECT) for k in key)})",
                ) from None
            if state == "21000":
                raise ConnectorError(
                    f"{self.label}: node {self.config.from_!r} has several rows with the same "
                    f"key ({', '.join(key)})",
                    path=self.config_path,
                    hint="make the key unique in the transform, or change `key`",
                ) from None
            raise
        return SinkResult(rows)

    def _sync(self, session: PgSession, data: SinkInput, schema: str, table: str) -> SinkResult:
        column = self.config.partition_by
        assert column is not None
        arrow = data.schema
        self._check_columns(arrow, [column], "partition_by")
        check_no_null_partitions(data, column, self.label, self.config_path)
        new = data.partition_fingerprints(column)
        created = self._ensure_target(session, schema, table, arrow, index=column)
        previous = data.previous_partitions
        fq = self._fq(schema, table)
        if created or not previous:
            # nothing recorded: the table may hold anything, so rewrite it whole
            if not created:
                session.execute(f"DELETE FROM {fq}")
            stage, rows, columns = self._stage(session, schema, data.reader(), table)
            self._insert_from(session, schema, table, stage, columns)
            return SinkResult(rows, partitions=new)
        session.commit()
        coltype = self._existing_columns(session, schema, table)[column]
        match = f"{ident(column, DIALECT)} = CAST(\x00 AS {coltype})"
        rows = 0
        for value in sorted(new):
            if previous.get(value) == new[value]:
                continue
            stage, n, columns = self._stage(session, schema,
                                            data.partition_reader(column, value), table)
            session.execute(f"DELETE FROM {fq} WHERE {match}", [value])
            self._insert_from(session, schema, table, stage, columns)
            session.commit()
            rows += n
        for value in sorted(set(previous) - set(new)):
            session.execute(f"DELETE FROM {fq} WHERE {match}", [value])
            session.commit()
        return SinkResult(rows, partitions=new)

