"""PostgreSQL: a source that streams a table or query as Arrow, and a sink.

The read and write flows are the shared templates (``source.SqlSource``,
``sink.SqlSink``); this module is Postgres's part of them. Connections and errors:
``postgres_conn``; sessions on the two drivers: ``postgres_session``.

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

Change marker (``data_fingerprint``): with a cursor, ``max(cursor)`` and
``count(*)``; without one, ``count(*)`` and an order-independent sum of the rows'
md5 hashes, computed by the server (an update that keeps the row count is seen at
once, as table statistics would not be).

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

import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from headwater.connectors.base import SinkResult
from headwater.connectors.sql.common import PARAM, ident, since_text, split_table, staging_name
from headwater.connectors.sql.connector import SqlConnector
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
from headwater.connectors.sql.sink import Insert, SqlSink
from headwater.connectors.sql.source import SqlSource, Stream
from headwater.errors import ConnectorError

if TYPE_CHECKING:
    import pyarrow as pa

    from headwater.connectors.base import SinkInput

__all__ = ["PostgresSink", "PostgresSinkConfig", "PostgresSource", "PostgresSourceConfig",
           "parse_dsn"]

_CURSOR_CASTS = {
    "int2": "bigint", "int4": "bigint", "int8": "bigint", "oid": "bigint",
    "numeric": "numeric", "float4": "double precision", "float8": "double precision",
    "date": "date", "timestamp": "timestamp", "timestamptz": "timestamptz",
    "time": "time", "text": "text", "varchar": "text", "bpchar": "text", "name": "text",
    "uuid": "uuid",
}


class _PgConnector(SqlConnector[PgSession, PgTarget]):
    config: PostgresSourceConfig | PostgresSinkConfig
    dialect = DIALECT

    def target(self) -> PgTarget:
        return pg_target(self.config, self.label, self.config_path, self.name,
                         read_only=self.kind == "source")

    def _open(self, target: PgTarget, *, streaming: bool) -> PgSession:
        # both drivers stream query results through COPY anyway
        return open_session(self.config.driver, target)

    def _error(self, exc: BaseException, action: str, target: PgTarget) -> ConnectorError:
        return pg_error(exc, what=self.label, action=action, target=target,
                        path=self.config_path)


# -- source --------------------------------------------------------------------------


class PostgresSource(_PgConnector, SqlSource[PgSession, PgTarget]):
    type = "postgres"
    Config = PostgresSourceConfig
    config: PostgresSourceConfig

    def _since(self, session: PgSession, sql: str, cursor: str,
               since: Any) -> tuple[str, list[Any]]:
        # a bound setting, not a parameter of the query: COPY cannot stream a
        # parameterised query
        cast = self._cursor_cast(session, sql, cursor)
        session.execute(f"SELECT set_config('headwater.since', {PARAM}, false)",
                        [since_text(since)])
        return f"CAST(current_setting('headwater.since') AS {cast})", []

    def _stream(self, session: PgSession, sql: str, params: list[Any]) -> Stream:
        return session.stream(sql)

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

    def _cursor_marker_sql(self, cursor: str, base: str) -> str:
        return f"SELECT max({cursor})::text, count(*) FROM ({base}) AS _hw_f"

    def _content_marker(self, session: PgSession, base: str) -> tuple[Any, Any]:
        found = session.execute(
            "SELECT count(*), coalesce(sum(('x' || left(md5(_hw_f::text), 15))::bit(60)"
            f"::bigint), 0)::text FROM ({base}) AS _hw_f")
        return found[0][0], found[0][1]


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


class PostgresSink(_PgConnector, SqlSink[PgSession, PgTarget]):
    """Postgres's part of the write flow: every mode in one transaction (DDL included),
    rows copied (ADBC or psycopg COPY) into a staging table and inserted from there."""

    type = "postgres"
    Config = PostgresSinkConfig
    config: PostgresSinkConfig

    def _resolve_table(self, session: PgSession) -> tuple[str, str]:
        schema, table = split_table(self.config.table, DIALECT)
        if schema is None:
            found = session.execute(
                "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                f" WHERE c.oid = to_regclass({PARAM})", [ident(table, DIALECT)])
            schema = found[0][0] if found else session.execute("SELECT current_schema()")[0][0]
            if schema is None:
                raise ConnectorError(f"{self.label}: no schema to create {table!r} in",
                                     hint='write table = "schema.name"')
        return str(schema), table

    def _existing_columns(self, session: PgSession, schema: str, table: str) -> dict[str, str]:
        """Column name -> type (as ``format_type`` writes it)."""
        rows = session.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a"
            f" WHERE a.attrelid = to_regclass({PARAM}) AND a.attnum > 0 AND NOT a.attisdropped"
            " ORDER BY a.attnum", [self._fq(schema, table)])
        return {str(n): str(t) for n, t in rows}

    def _column_def(self, field: pa.Field, *, key: bool, indexed: bool) -> str:
        return f"{ident(field.name, DIALECT)} {pg_column_type(field.type, field.name)}"

    def _create_sql(self, schema: str, table: str, columns: list[str],
                    index: str | None) -> list[str]:
        fq = self._fq(schema, table)
        out = [f"CREATE TABLE {fq} ({', '.join(columns)})"]
        if index:
            name = staging_name(table, f"{index}_idx", NAME_LIMIT)
            out.append(f"CREATE INDEX {ident(name, DIALECT)} ON {fq} ({ident(index, DIALECT)})")
        return out

    def _stage(self, session: PgSession, schema: str, reader: pa.RecordBatchReader,
               table: str) -> tuple[str, int, list[str]]:
        """Load ``reader`` into a new staging table in ``schema``: (name, rows, columns)."""
        counted = _Counted(reader)
        stage = staging_name(table, "stage_" + uuid.uuid4().hex[:8], NAME_LIMIT)
        self._create(session, schema, stage, counted.schema)
        session.ingest(schema, stage, counted.reader)
        return stage, counted.rows, counted.schema.names

    def _insert_from(self, session: PgSession, schema: str, table: str, stage: str,
                     columns: list[str], suffix: str = "") -> None:
        cols = ", ".join(ident(c, DIALECT) for c in columns)
        session.execute(f"INSERT INTO {self._fq(schema, table)} ({cols}) SELECT {cols} FROM "
                        f"{self._fq(schema, stage)}{suffix}")
        session.execute(f"DROP TABLE {self._fq(schema, stage)}")

    def _prepare_insert(self, session: PgSession, schema: str, table: str,
                        reader: pa.RecordBatchReader, *, fresh: bool = False) -> Insert:
        if fresh:  # a new, empty table: copy straight into it
            counted = _Counted(reader)

            def ingest(suffix: str = "") -> int:
                session.ingest(schema, table, counted.reader)
                return counted.rows

            return ingest
        stage, rows, columns = self._stage(session, schema, reader, table)

        def insert(suffix: str = "") -> int:
            self._insert_from(session, schema, table, stage, columns, suffix)
            return rows

        return insert

    def _replace(self, session: PgSession, data: SinkInput, schema: str,
                 table: str) -> SinkResult:
        """Load a staging table, drop the old table and rename the new one into place,
        all in the write's transaction (tables that others depend on keep their rows'
        place: deleted and re-inserted)."""
        stage, rows, columns = self._stage(session, schema, data.reader(), table)
        fq = self._fq(schema, table)
        if self._existing_columns(session, schema, table):
            # views or foreign keys of other tables that depend on it forbid a drop
            dependents = session.execute(
                f"SELECT count(*) FROM pg_depend WHERE refobjid = to_regclass({PARAM})"
                " AND deptype = 'n'", [fq])[0][0]
            if dependents:
                session.execute(f"DELETE FROM {fq}")
                self._insert_from(session, schema, table, stage, columns)
                return SinkResult(rows)
            session.execute(f"DROP TABLE {fq}")
        session.execute(f"ALTER TABLE {self._fq(schema, stage)} RENAME TO {ident(table, DIALECT)}")
        return SinkResult(rows)

    def _upsert_clause(self, key: list[str], others: list[str]) -> str:
        conflict = "(" + ", ".join(ident(k, DIALECT) for k in key) + ")"
        if others:
            sets = ", ".join(f"{ident(c, DIALECT)} = EXCLUDED.{ident(c, DIALECT)}"
                             for c in others)
            return f" ON CONFLICT {conflict} DO UPDATE SET {sets}"
        return f" ON CONFLICT {conflict} DO NOTHING"

    def _upsert_error(self, exc: Exception, schema: str, table: str,
                      key: list[str]) -> ConnectorError | None:
        state = sqlstate_of(exc)
        if state == "42P10":
            return ConnectorError(
                f"{self.label}: table {schema}.{table} has no unique index on "
                f"({', '.join(key)}), which upsert needs",
                path=self.config_path,
                hint=f"CREATE UNIQUE INDEX ON {self._fq(schema, table)} "
                f"({', '.join(ident(k, DIALECT) for k in key)})",
            )
        if state == "21000":
            return ConnectorError(
                f"{self.label}: node {self.config.from_!r} has several rows with the same "
                f"key ({', '.join(key)})",
                path=self.config_path,
                hint="make the key unique in the transform, or change `key`",
            )
        return None

    def _partition_match(self, session: PgSession, schema: str, table: str, column: str,
                         arrow_type: pa.DataType) -> tuple[str, Callable[[str], Any]]:
        # the partition's text cast to the column's type, as the table has it
        coltype = self._existing_columns(session, schema, table)[column]
        return f"{ident(column, DIALECT)} = CAST({PARAM} AS {coltype})", str
