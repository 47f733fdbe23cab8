"""MySQL / MariaDB: a source that streams a table or query as Arrow, and a sink.

Install with ``pip install 'headwater[mysql]'`` (PyMySQL, pure Python).

The read and write flows are the shared templates (``source.SqlSource``,
``sink.SqlSink``); this module is MySQL's part of them. Connections, errors and the
session: ``mysql_conn``.

Source, ``sources/customers.toml``::

    type = "mysql"
    dsn = "mysql://etl:${MYSQL_PASSWORD}@db.internal:3306/shop"
    # or separate keys: host, port, user, password, database (they win over the dsn)
    table = "shop.customers"     # or: query = "SELECT ... FROM ..." (exactly one)
    cursor = "updated_at"        # optional: later runs read only rows with cursor > last max
    chunk_rows = 100000          # rows per Arrow batch at most

Sink, ``sinks/scores.toml``::

    type = "mysql"
    from = "customer_scores"
    dsn = "mysql://etl:${MYSQL_PASSWORD}@db.internal:3306/analytics"
    table = "analytics.customer_scores"
    mode = "upsert"              # replace | append | upsert | sync
    key = ["customer_id"]        # upsert: needs a primary key or unique index on it
    partition_by = "day"         # sync: rewrite only the partitions that changed

Reading uses an unbuffered server-side cursor (PyMySQL ``SSCursor``): rows are
fetched ``chunk_rows`` at a time and turned into Arrow batches with types taken
from the result's column descriptions (``DECIMAL(p, s)`` -> ``decimal128``
for p <= 38, text otherwise; ``DATETIME`` -> ``timestamp``; ``TIMESTAMP`` ->
``timestamp`` in UTC, the session running with ``time_zone = '+00:00'``;
``TIME`` -> ``duration``; ``BIT`` -> integer; binary strings -> ``binary``).
Zero dates (``0000-00-00``) become NULL. With ``cursor`` and ``since``, the
value is passed as a query parameter (``WHERE cursor > %s``).

Change marker (``data_fingerprint``): with a cursor, ``max(cursor)`` and
``count(*)``; without one, ``count(*)`` and an order-independent sum of the rows'
MD5 hashes (over ``JSON_ARRAY`` of the columns), computed by the server (an update
is seen at once, as ``UPDATE_TIME`` with its one-second resolution would not).

Writing. ``replace`` loads ``<table>__hw_new`` and swaps it in with one atomic
``RENAME TABLE`` (readers see the old table or the new one; leftovers of a
crash are dropped by the next write). ``append`` inserts in one transaction;
``upsert`` runs ``INSERT ... ON DUPLICATE KEY UPDATE`` (the target must have a
primary key or unique index on exactly ``key``; a table Headwater creates gets
a primary key); ``sync`` deletes and re-inserts only the partitions whose
fingerprint changed, one transaction each, and deletes vanished partitions.
Key and partition text columns of a created table are ``VARCHAR(255)``.

Lost connections, deadlocks and lock wait timeouts raise
``ConnectorError(transient=True)``; messages never contain the password.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from headwater.connectors.base import SinkResult
from headwater.connectors.sql.common import PARAM, ident, since_text, split_table, staging_name
from headwater.connectors.sql.connector import SqlConnector
from headwater.connectors.sql.mysql_conn import (
    DIALECT,
    NAME_LIMIT,
    MySQLSession,
    MySQLSinkConfig,
    MySQLSourceConfig,
    MySQLTarget,
    mysql_error,
    mysql_target,
    parse_dsn,
    render,
)
from headwater.connectors.sql.sink import Insert, SqlSink
from headwater.connectors.sql.source import SqlSource, Stream
from headwater.errors import ConnectorError

if TYPE_CHECKING:
    import pyarrow as pa

    from headwater.connectors.base import SinkInput

__all__ = ["MySQLSink", "MySQLSinkConfig", "MySQLSource", "MySQLSourceConfig", "parse_dsn"]


class MySQLConnector(SqlConnector[MySQLSession, MySQLTarget]):
    config: MySQLSourceConfig | MySQLSinkConfig
    dialect = DIALECT

    def target(self) -> MySQLTarget:
        return mysql_target(self.config, self.label, self.config_path,
                            read_only=self.kind == "source")

    def _open(self, target: MySQLTarget, *, streaming: bool) -> MySQLSession:
        try:
            import pymysql
            import pymysql.cursors
        except ImportError:
            raise ConnectorError(
                "the MySQL driver (PyMySQL) is not installed",
                hint="pip install 'headwater[mysql]'",
            ) from None
        kwargs = dict(target.kwargs)
        if streaming:  # unbuffered: rows are fetched as the stream is read
            kwargs["cursorclass"] = pymysql.cursors.SSCursor
        con = pymysql.connect(**kwargs)
        if target.read_only:  # a source's query can never change the database
            with con.cursor() as cur:
                cur.execute("SET SESSION TRANSACTION READ ONLY")
        return MySQLSession(con)

    def _error(self, exc: BaseException, action: str, target: MySQLTarget) -> ConnectorError:
        return mysql_error(exc, what=self.label, action=action, target=target,
                           path=self.config_path)


# -- reading ---------------------------------------------------------------------------


def _field_arrow(f: Any) -> tuple[pa.DataType, str | None]:
    """The Arrow type of a PyMySQL result field and an optional value fix-up."""
    import pyarrow as pa
    from pymysql.constants import FIELD_TYPE as T

    unsigned = bool(f.flags & 32)
    code = f.type_code
    ints = {T.TINY: (pa.int8(), pa.uint8()), T.SHORT: (pa.int16(), pa.uint16()),
            T.INT24: (pa.int32(), pa.uint32()), T.LONG: (pa.int32(), pa.uint32()),
            T.LONGLONG: (pa.int64(), pa.uint64())}
    if code in ints:
        return ints[code][unsigned], None
    if code == T.YEAR:
        return pa.int16(), None
    if code == T.FLOAT:
        return pa.float32(), None
    if code == T.DOUBLE:
        return pa.float64(), None
    if code in (T.DECIMAL, T.NEWDECIMAL):
        scale = f.scale
        precision = f.length - (1 if scale > 0 else 0) - (0 if unsigned else 1)
        if 0 < precision <= 38:
            return pa.decimal128(precision, scale), None
        return pa.string(), "str"
    if code in (T.DATE, T.NEWDATE):
        return pa.date32(), "date"
    if code == T.DATETIME:
        return pa.timestamp("us"), "date"
    if code == T.TIMESTAMP:
        return pa.timestamp("us", "UTC"), "date"
    if code == T.TIME:
        return pa.duration("us"), None
    if code == T.BIT:
        return pa.int64(), "bit"
    if code == T.NULL:
        return pa.null(), None
    if code == T.GEOMETRY:
        return pa.binary(), None
    if code == T.JSON or code in (T.ENUM, T.SET):
        return pa.string(), None
    # strings and blobs: binary collation (63) means bytes
    return (pa.binary(), None) if f.charsetnr == 63 else (pa.string(), None)


def _fix(values: Sequence[Any], how: str | None) -> Sequence[Any]:
    if how == "str":
        return [None if v is None else str(v) for v in values]
    if how == "bit":
        return [None if v is None else int.from_bytes(v, "big") for v in values]
    if how == "date" and any(isinstance(v, str) for v in values):  # zero dates arrive as text
        return [None if isinstance(v, str) else v for v in values]
    return values


class MySQLSource(MySQLConnector, SqlSource[MySQLSession, MySQLTarget]):
    type = "mysql"
    Config = MySQLSourceConfig
    config: MySQLSourceConfig

    def _since(self, session: MySQLSession, sql: str, cursor: str,
               since: Any) -> tuple[str, list[Any]]:
        if isinstance(since, dt.datetime) and since.tzinfo is not None:
            since = since.astimezone(dt.UTC).replace(tzinfo=None)  # session is UTC
        return PARAM, [since if not isinstance(since, str) else since_text(since)]

    def _stream(self, session: MySQLSession, sql: str, params: list[Any]) -> Stream:
        import pyarrow as pa

        cur = session.stream(sql, params)
        fields = cur._result.fields
        kinds = [_field_arrow(f) for f in fields]
        names = [d[0] for d in cur.description]
        schema = pa.schema([pa.field(n, t) for n, (t, _) in zip(names, kinds, strict=True)])

        chunk = self.config.chunk_rows

        def batches() -> Iterator[pa.RecordBatch]:
            while True:
                rows = cur.fetchmany(chunk)
                if not rows:
                    return
                columns = list(zip(*rows, strict=True))
                arrays = []
                for values, (typ, how), name in zip(columns, kinds, names, strict=True):
                    try:
                        arrays.append(pa.array(_fix(values, how), type=typ))
                    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
                        raise ConnectorError(
                            f"{self.label}: column {name!r}: cannot convert a value to {typ}: "
                            f"{exc}", path=self.config_path,
                            hint="cast the column in a query source",
                        ) from None
                yield pa.RecordBatch.from_arrays(arrays, schema=schema)

        return schema, batches(), None

    def _cursor_marker_sql(self, cursor: str, base: str) -> str:
        return f"SELECT CAST(max({cursor}) AS CHAR), count(*) FROM ({base}) AS _hw_f"

    def _content_marker(self, session: MySQLSession, base: str) -> tuple[Any, Any]:
        names = session.column_names(f"SELECT * FROM ({base}) AS _hw_f LIMIT 0")
        cols = ", ".join(f"_hw_f.{ident(n, DIALECT)}" for n in names)
        found = session.execute(
            "SELECT count(*), CAST(COALESCE(SUM(CAST(CONV(LEFT(MD5("
            f"JSON_ARRAY({cols})), 15), 16, 10) AS UNSIGNED)), 0) AS CHAR)"
            f" FROM ({base}) AS _hw_f")
        return found[0][0], found[0][1]


# -- writing ---------------------------------------------------------------------------


def mysql_column_type(t: pa.DataType, column: str, *, indexed: bool = False) -> str:
    import pyarrow as pa
    import pyarrow.types as pt

    if isinstance(t, pa.BaseExtensionType):
        if t.extension_name == "arrow.json":
            return "JSON"
        return mysql_column_type(t.storage_type, column, indexed=indexed)
    if pt.is_dictionary(t):
        return mysql_column_type(t.value_type, column, indexed=indexed)
    if pt.is_boolean(t):
        return "BOOLEAN"
    if pt.is_integer(t):
        base = {8: "TINYINT", 16: "SMALLINT", 32: "INT", 64: "BIGINT"}[t.bit_width]
        return base + (" UNSIGNED" if pt.is_unsigned_integer(t) else "")
    if pt.is_float16(t) or pt.is_float32(t):
        return "FLOAT"
    if pt.is_float64(t):
        return "DOUBLE"
    if pt.is_decimal(t) and t.precision <= 65:
        return f"DECIMAL({t.precision},{t.scale})"
    if pt.is_string(t) or pt.is_large_string(t) or pt.is_string_view(t) or pt.is_null(t):
        return "VARCHAR(255)" if indexed else "LONGTEXT"
    if (pt.is_binary(t) or pt.is_large_binary(t) or pt.is_fixed_size_binary(t)
            or pt.is_binary_view(t)):
        return "VARBINARY(255)" if indexed else "LONGBLOB"
    if pt.is_date(t):
        return "DATE"
    if pt.is_timestamp(t):
        return "DATETIME(6)"  # tz-aware values are written in UTC
    if pt.is_time(t) or pt.is_duration(t):
        return "TIME(6)"
    if pt.is_nested(t):
        return "JSON"
    raise ConnectorError(
        f"column {column!r} has type {t}, which has no MySQL equivalent here",
        hint="cast it to text in the transform",
    )


def _python_rows(batch: pa.RecordBatch) -> list[tuple[Any, ...]]:
    """A batch as PyMySQL-ready tuples: UTC-naive datetimes, JSON for nested values."""
    import pyarrow as pa
    import pyarrow.types as pt

    columns = []
    for col in batch.columns:
        t = col.type
        if isinstance(t, pa.BaseExtensionType):
            col = col.storage
            t = col.type
        if pt.is_dictionary(t):
            col = col.cast(t.value_type)
            t = col.type
        if pt.is_timestamp(t) and t.tz:
            col = col.cast(pa.timestamp(t.unit))
        values = col.to_pylist()
        if pt.is_nested(t):
            values = [None if v is None else json.dumps(v, default=str) for v in values]
        columns.append(values)
    return list(zip(*columns, strict=True))


def _partition_value(text: str, t: pa.DataType) -> Any:
    """A partition's text (as the engine renders it) as a value MySQL compares right."""
    import pyarrow as pa
    import pyarrow.types as pt

    if isinstance(t, pa.BaseExtensionType):
        t = t.storage_type
    if pt.is_timestamp(t) and t.tz:
        try:
            value = dt.datetime.fromisoformat(text)
        except ValueError:
            return text
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value
    if pt.is_decimal(t):
        return Decimal(text)
    return text


class MySQLSink(MySQLConnector, SqlSink[MySQLSession, MySQLTarget]):
    """MySQL's part of the write flow: rows sent as batched ``INSERT ... VALUES``,
    ``replace`` swapped in by one ``RENAME TABLE`` (MySQL's DDL commits)."""

    type = "mysql"
    Config = MySQLSinkConfig
    config: MySQLSinkConfig

    def _resolve_table(self, session: MySQLSession) -> tuple[str, str]:
        schema, table = split_table(self.config.table, DIALECT)
        if schema is None:
            schema = session.execute("SELECT DATABASE()")[0][0]
            if schema is None:
                raise ConnectorError(f"{self.label}: no database to write {table!r} into",
                                     path=self.config_path,
                                     hint='write table = "database.name" or set database')
        return str(schema), table

    def _existing_columns(self, session: MySQLSession, schema: str, table: str) -> list[str]:
        rows = session.execute(
            "SELECT COLUMN_NAME FROM information_schema.columns WHERE TABLE_SCHEMA = "
            f"{PARAM} AND TABLE_NAME = {PARAM} ORDER BY ORDINAL_POSITION", [schema, table])
        return [str(r[0]) for r in rows]

    def _column_def(self, field: pa.Field, *, key: bool, indexed: bool) -> str:
        return (f"{ident(field.name, DIALECT)} "
                f"{mysql_column_type(field.type, field.name, indexed=indexed)}"
                + (" NOT NULL" if key else ""))

    def _create_sql(self, schema: str, table: str, columns: list[str],
                    index: str | None) -> list[str]:
        if index:
            columns = [*columns, f"KEY ({ident(index, DIALECT)})"]
        return [f"CREATE TABLE {self._fq(schema, table)} ({', '.join(columns)})"
                " DEFAULT CHARSET=utf8mb4"]

    def _prepare_insert(self, session: MySQLSession, schema: str, table: str,
                        reader: pa.RecordBatchReader, *, fresh: bool = False) -> Insert:
        names = reader.schema.names
        for f in reader.schema:
            mysql_column_type(f.type, f.name)
        cols = ", ".join(ident(c, DIALECT) for c in names)
        marks = ", ".join([PARAM] * len(names))

        def insert(suffix: str = "") -> int:
            sql = render(f"INSERT INTO {self._fq(schema, table)} ({cols}) VALUES ({marks})"
                         f"{suffix}", [1])
            rows = 0
            with session.con.cursor() as cur:
                for batch in reader:
                    if batch.num_rows:
                        cur.executemany(sql, _python_rows(batch))
                        rows += batch.num_rows
            return rows

        return insert

    def _replace(self, session: MySQLSession, data: SinkInput, schema: str,
                 table: str) -> SinkResult:
        """Load ``<table>__hw_new``, then swap it in with one atomic ``RENAME TABLE``
        (leftovers of a crash are dropped first; a failed load drops the new table)."""
        new = staging_name(table, "new", NAME_LIMIT)
        old = staging_name(table, "old", NAME_LIMIT)
        reader = data.reader()
        session.execute(f"DROP TABLE IF EXISTS {self._fq(schema, new)}, {self._fq(schema, old)}")
        self._create(session, schema, new, reader.schema)
        try:
            rows = self._prepare_insert(session, schema, new, reader)()
            session.commit()
            if self._existing_columns(session, schema, table):
                session.execute(f"RENAME TABLE {self._fq(schema, table)} TO "
                                f"{self._fq(schema, old)}, {self._fq(schema, new)} TO "
                                f"{self._fq(schema, table)}")
                session.execute(f"DROP TABLE {self._fq(schema, old)}")
            else:
                session.execute(f"RENAME TABLE {self._fq(schema, new)} TO "
                                f"{self._fq(schema, table)}")
        except BaseException:
            with contextlib.suppress(Exception):
                session.rollback()
                session.execute(f"DROP TABLE IF EXISTS {self._fq(schema, new)}")
            raise
        return SinkResult(rows)

    def _upsert_clause(self, key: list[str], others: list[str]) -> str:
        if others:
            sets = ", ".join(f"{ident(c, DIALECT)} = VALUES({ident(c, DIALECT)})" for c in others)
        else:
            k = ident(key[0], DIALECT)
            sets = f"{k} = {k}"
        return f" ON DUPLICATE KEY UPDATE {sets}"

    def _require_unique_key(self, session: MySQLSession, schema: str, table: str,
                            key: list[str]) -> None:
        rows = session.execute(
            "SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.statistics"
            f" WHERE TABLE_SCHEMA = {PARAM} AND TABLE_NAME = {PARAM} AND NON_UNIQUE = 0",
            [schema, table])
        indexes: dict[str, set[str]] = {}
        for name, column in rows:
            indexes.setdefault(str(name), set()).add(str(column))
        if set(key) not in indexes.values():
            raise ConnectorError(
                f"{self.label}: table {schema}.{table} has no primary key or unique index on "
                f"exactly ({', '.join(key)}), which upsert needs",
                path=self.config_path,
                hint=f"ALTER TABLE {self._fq(schema, table)} ADD UNIQUE KEY "
                f"({', '.join(ident(k, DIALECT) for k in key)})",
            )

    def _partition_match(self, session: MySQLSession, schema: str, table: str, column: str,
                         arrow_type: pa.DataType) -> tuple[str, Callable[[str], Any]]:
        return (f"{ident(column, DIALECT)} = {PARAM}",
                lambda value: _partition_value(value, arrow_type))
