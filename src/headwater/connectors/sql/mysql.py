"""MySQL / MariaDB: a source that streams a table or query as Arrow, and a sink.

Install with ``pip install 'headwater[mysql]'`` (PyMySQL, pure Python).

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

Change marker (``data_fingerprint``), cheap rather than exact:

- with a cursor: ``max(cursor)`` and ``count(*)``;
- a table without a cursor: ``count(*)`` plus the table's ``UPDATE_TIME``
  from ``information_schema.tables`` (one-second resolution; InnoDB forgets
  it on restart, which only costs one extra ingest);
- a query without a cursor: an md5 of the query text plus ``count(*)``.

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
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import field_validator

from headwater.connectors.base import (
    SinkConfig,
    SinkConnector,
    SinkInput,
    SinkResult,
    SourceConfig,
    SourceConnector,
)
from headwater.connectors.sql.common import (
    REDACTED,
    ConnectionKeys,
    SinkKeys,
    SourceKeys,
    StreamGuard,
    base_select,
    check_no_null_partitions,
    check_table_name,
    check_unique_key,
    first_line,
    ident,
    is_transient_message,
    redact,
    since_text,
    split_table,
    staging_name,
)
from headwater.core.config import resolve_env
from headwater.errors import ConnectorError, HeadwaterError

if TYPE_CHECKING:
    import pyarrow as pa

DIALECT = "mysql"
_NAME_LIMIT = 64
_PARAM = "\x00"  # marks a bound parameter in our SQL; MySQL identifiers cannot hold NUL


class MySQLConnectionKeys(ConnectionKeys):
    charset: str = "utf8mb4"


class MySQLSourceConfig(SourceConfig, MySQLConnectionKeys, SourceKeys):
    type: Literal["mysql"] = "mysql"

    @field_validator("table")
    @classmethod
    def _table_name(cls, v: str | None) -> str | None:
        return check_table_name(v, DIALECT)


class MySQLSinkConfig(SinkConfig, MySQLConnectionKeys, SinkKeys):
    type: Literal["mysql"] = "mysql"

    @field_validator("table")
    @classmethod
    def _table_name(cls, v: str) -> str:
        check_table_name(v, DIALECT)
        return v


# -- connection ------------------------------------------------------------------------


@dataclass
class MySQLTarget:
    kwargs: dict[str, Any]  # for pymysql.connect, secrets resolved: never show it
    where: str
    secrets: list[str]
    read_only: bool = False  # a source's session: SET SESSION TRANSACTION READ ONLY


_URL = re.compile(r"^(?:mysql|mariadb)(?:\+\w+)?://(?P<rest>.*)$", re.DOTALL)


def parse_dsn(dsn: str) -> dict[str, str]:
    """user, password, host, port, database (+ query options) of a ``mysql://`` URL."""
    from urllib.parse import parse_qsl, unquote

    m = _URL.match(dsn.strip())
    if m is None:
        raise ValueError("expected mysql://user:password@host:3306/database")
    rest, _, query = m.group("rest").partition("?")
    netloc, _, path = rest.partition("/")
    out: dict[str, str] = {}
    if "@" in netloc:
        userinfo, _, netloc = netloc.rpartition("@")
        user, sep, password = userinfo.partition(":")
        if user:
            out["user"] = unquote(user)
        if sep:
            out["password"] = unquote(password)
    if netloc.startswith("["):
        host, _, port = netloc[1:].partition("]")
        port = port.lstrip(":")
    else:
        host, _, port = netloc.partition(":")
    if host:
        out["host"] = unquote(host)
    if port:
        out["port"] = port
    if path:
        out["database"] = unquote(path)
    out.update(parse_qsl(query))
    return out


_ALLOWED_OPTIONS = {"charset", "unix_socket", "ssl_ca", "ssl_cert", "ssl_key", "ssl_verify_cert",
                    "ssl_verify_identity", "read_timeout", "write_timeout"}


def mysql_target(cfg: MySQLConnectionKeys, what: str, path: Path, *,
                 read_only: bool = False) -> MySQLTarget:
    """Where to connect; ``read_only`` (sources): the session's transactions are read-only,
    so a source's ``query`` can never change the database."""
    dsn = cfg.dsn or ""
    whole = re.fullmatch(r"\s*\$\{[A-Za-z_][A-Za-z0-9_]*\}\s*", dsn) is not None
    if whole:  # the whole dsn comes from the environment
        dsn = resolve_env(dsn, path=path, key="dsn")
    try:
        params = parse_dsn(dsn) if dsn else {}
    except ValueError as exc:
        raise ConnectorError(f"{what}: cannot read the dsn: {exc}", path=path) from None
    literals = [params.get("password"), cfg.password]
    if not whole:
        params = {k: resolve_env(v, path=path, key=f"dsn ({k})") for k, v in params.items()}
    for key in ("host", "user", "password", "database"):
        value = getattr(cfg, key)
        if value is not None:
            params[key] = resolve_env(value, path=path, key=key)
    if cfg.port is not None:
        params["port"] = str(cfg.port)
    unknown = set(params) - {"host", "port", "user", "password", "database"} - _ALLOWED_OPTIONS
    if unknown:
        raise ConnectorError(
            f"{what}: unknown dsn option(s): {', '.join(sorted(unknown))}", path=path,
            hint="allowed: " + ", ".join(sorted(_ALLOWED_OPTIONS)))
    kwargs: dict[str, Any] = {
        "host": params.get("host", "localhost"),
        "port": int(params.get("port", "3306")),
        "user": params.get("user"),
        "password": params.get("password", ""),
        "database": params.get("database"),
        "charset": params.get("charset", cfg.charset),
        "connect_timeout": cfg.connect_timeout,
        "autocommit": False,
        "init_command": "SET time_zone = '+00:00'",
    }
    for k in _ALLOWED_OPTIONS - {"charset"}:
        if k in params:
            option: Any = params[k]
            if k.endswith("_timeout"):
                option = int(option)
            elif k.startswith("ssl_verify"):
                option = option.lower() in ("1", "true", "yes")
            kwargs[k] = option
    secrets = [s for s in (kwargs["password"], *literals) if s]
    where = redact(f"{kwargs['host']}:{kwargs['port']}/{kwargs['database'] or ''}", secrets)
    return MySQLTarget(kwargs, where, secrets, read_only)


# -- errors ----------------------------------------------------------------------------

_TRANSIENT_CODES = {1040, 1053, 1158, 1159, 1160, 1161, 1205, 1213, 1317, 1927, 2002, 2003,
                    2005, 2006, 2013, 2014, 2055, 4031}
_PERMANENT_CODES = {1044, 1045, 1049, 1054, 1064, 1142, 1146, 1698}
_TRANSIENT_TEXT = ("lost connection", "gone away", "can't connect", "connection refused",
                   "timed out", "broken pipe", "connection reset", "deadlock")


def mysql_is_transient(exc: BaseException) -> bool:
    import pymysql

    if isinstance(exc, pymysql.err.InterfaceError):
        return True  # the connection is closed or unusable
    args = getattr(exc, "args", ())
    code = args[0] if args and isinstance(args[0], int) else None
    if code in _TRANSIENT_CODES:
        return True
    if code in _PERMANENT_CODES:
        return False
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    return is_transient_message(str(exc), _TRANSIENT_TEXT, ("access denied",))


def mysql_error(exc: BaseException, *, what: str, action: str, target: MySQLTarget,
                path: Path) -> ConnectorError:
    if isinstance(exc, ConnectorError):
        return exc
    try:
        transient = mysql_is_transient(exc)
    except ImportError:  # pragma: no cover
        transient = False
    args: tuple[Any, ...] = tuple(getattr(exc, "args", ()))
    if len(args) == 2 and isinstance(args[0], int):
        text = f"({args[0]}) {args[1]}"
    else:
        text = first_line(exc)
    msg = redact(text, target.secrets)
    hint = None
    low = msg.lower()
    if "can't connect" in low or "connection refused" in low:
        hint = "is the server running and reachable there? check host and port"
    elif "access denied" in low:
        hint = "check the user and the password (set it as ${VAR} in the environment)"
    elif "doesn't exist" in low or "unknown column" in low or "unknown database" in low:
        hint = "check the database, table and column names"
    return ConnectorError(
        f"{what}: {action} mysql at {target.where} failed: {msg}"
        + (" (transient, may pass on a retry)" if transient else ""),
        transient=transient, path=path, hint=hint,
    )


def _render(sql: str, params: Sequence[Any]) -> str:
    """Our SQL for PyMySQL: ``%`` doubled when it formats parameters, markers -> ``%s``."""
    return sql.replace("%", "%%").replace(_PARAM, "%s") if params else sql


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


class MySQLConnector:
    config: MySQLSourceConfig | MySQLSinkConfig
    name: str
    config_path: Path
    kind: str

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name!r}"

    def target(self) -> MySQLTarget:
        return mysql_target(self.config, self.label, self.config_path,
                            read_only=self.kind == "source")

    def connect(self, target: MySQLTarget, *, streaming: bool = False) -> Any:
        try:
            import pymysql
            import pymysql.cursors
        except ImportError:
            raise ConnectorError(
                "the MySQL driver (PyMySQL) is not installed",
                hint="pip install 'headwater[mysql]'",
            ) from None
        kwargs = dict(target.kwargs)
        if streaming:
            kwargs["cursorclass"] = pymysql.cursors.SSCursor
        try:
            con = pymysql.connect(**kwargs)
            if target.read_only:  # a source's query can never change the database
                with con.cursor() as cur:
                    cur.execute("SET SESSION TRANSACTION READ ONLY")
            return con
        except Exception as exc:
            raise mysql_error(exc, what=self.label, action="connecting to", target=target,
                              path=self.config_path) from None

    def describe(self) -> dict[str, object]:
        out = self.config.model_dump(exclude={"description", "tags"}, by_alias=True)
        if out.get("password"):
            out["password"] = REDACTED
        if out.get("dsn"):
            out["dsn"] = redact(str(out["dsn"]), [])
        return out


def _drop_connection(con: Any, cur: Any) -> None:
    """Close without draining an unfinished unbuffered result (or touching a dead socket)."""
    result = getattr(cur, "_result", None)
    if result is not None and getattr(result, "unbuffered_active", False):
        result.unbuffered_active = False
        con._result = None
        con._force_close()
        return
    try:
        cur.close()
    finally:
        con.close()


class MySQLSource(MySQLConnector, SourceConnector):
    type = "mysql"
    Config = MySQLSourceConfig
    config: MySQLSourceConfig
    kind = "source"

    def __init__(self, name: str, config: SourceConfig, root: Path, config_path: Path) -> None:
        super().__init__(name, config, root, config_path)
        self.last_error: ConnectorError | None = None

    def _base(self) -> str:
        return base_select(DIALECT, table=self.config.table, query=self.config.query)

    def _fail(self, exc: BaseException, target: MySQLTarget, action: str) -> ConnectorError:
        err = mysql_error(exc, what=self.label, action=action, target=target,
                          path=self.config_path)
        self.last_error = err
        return err

    def read(self, since: Any | None = None) -> pa.RecordBatchReader:
        import pyarrow as pa

        self.last_error = None  # only this read's failure counts
        target = self.target()
        con = self.connect(target, streaming=True)
        cur = con.cursor()
        try:
            sql, params = self._base(), []
            if self.config.cursor is not None and since is not None:
                sql += f" WHERE {ident(self.config.cursor, DIALECT)} > {_PARAM}"
                if isinstance(since, dt.datetime) and since.tzinfo is not None:
                    since = since.astimezone(dt.UTC).replace(tzinfo=None)  # session is UTC
                params.append(since if not isinstance(since, str) else since_text(since))
            cur.execute(_render(sql, params), params or None)
            fields = cur._result.fields
            kinds = [_field_arrow(f) for f in fields]
            names = [d[0] for d in cur.description]
            schema = pa.schema([pa.field(n, t) for n, (t, _) in zip(names, kinds, strict=True)])
        except Exception as exc:
            with contextlib.suppress(Exception):
                _drop_connection(con, cur)
            raise self._fail(exc, target, "reading from") from None

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

        guard = StreamGuard(
            schema, batches(), chunk_rows=chunk,
            translate=lambda e: self._fail(e, target, "reading from"),
            close=lambda: _drop_connection(con, cur),
        )
        return guard.reader()

    def data_fingerprint(self) -> str:
        target = self.target()
        con = self.connect(target)
        try:
            with con.cursor() as cur:
                base = self._base()
                if self.config.cursor is not None:
                    q = ident(self.config.cursor, DIALECT)
                    cur.execute(_render(f"SELECT CAST(max({q}) AS CHAR), count(*) FROM ({base})"
                                        " AS _hw_f", []))
                    mx, n = cur.fetchone()
                    return f"cursor:{mx}:{n}"
                # the content itself, hashed by the server (an order-independent sum of
                # row hashes): UPDATE_TIME has a resolution of a second and is lost on a
                # restart, a row count misses updates
                cur.execute(f"SELECT * FROM ({base}) AS _hw_f LIMIT 0")
                cols = ", ".join(f"_hw_f.{ident(d[0], DIALECT)}" for d in cur.description)
                cur.execute("SELECT count(*), CAST(COALESCE(SUM(CAST(CONV(LEFT(MD5("
                            f"JSON_ARRAY({cols})), 15), 16, 10) AS UNSIGNED)), 0) AS CHAR)"
                            f" FROM ({base}) AS _hw_f")
                count, total = cur.fetchone()
                return f"content:{count}:{total}"
        except HeadwaterError:
            raise
        except Exception as exc:
            raise self._fail(exc, target, "fingerprinting") from None
        finally:
            with contextlib.suppress(Exception):
                con.close()


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


class MySQLSink(MySQLConnector, SinkConnector):
    type = "mysql"
    Config = MySQLSinkConfig
    config: MySQLSinkConfig
    kind = "sink"

    def write(self, data: SinkInput) -> SinkResult:
        target = self.target()
        con = self.connect(target)
        try:
            schema, table = split_table(self.config.table, DIALECT)
            if schema is None:
                with con.cursor() as cur:
                    cur.execute("SELECT DATABASE()")
                    schema = cur.fetchone()[0]
                if schema is None:
                    raise ConnectorError(f"{self.label}: no database to write {table!r} into",
                                         path=self.config_path,
                                         hint='write table = "database.name" or set database')
            result: SinkResult = getattr(self, f"_{self.config.mode}")(con, data, schema, table)
            con.commit()
            return result
        except BaseException as exc:
            with contextlib.suppress(Exception):
                con.rollback()
            if isinstance(exc, HeadwaterError):
                if isinstance(exc, ConnectorError) and not exc.message.startswith(self.label):
                    exc.message = f"{self.label}: {exc.message}"
                raise
            if not isinstance(exc, Exception):
                raise
            raise mysql_error(exc, what=self.label, action="writing to", target=target,
                              path=self.config_path) from None
        finally:
            with contextlib.suppress(Exception):
                con.close()

    # -- helpers

    @staticmethod
    def _fq(schema: str, table: str) -> str:
        return f"{ident(schema, DIALECT)}.{ident(table, DIALECT)}"

    @staticmethod
    def _exec(con: Any, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with con.cursor() as cur:
            cur.execute(_render(sql, params), list(params) if params else None)
            return list(cur.fetchall())

    def _columns(self, con: Any, schema: str, table: str) -> list[str]:
        rows = self._exec(
            con, "SELECT COLUMN_NAME FROM information_schema.columns WHERE TABLE_SCHEMA = \x00"
            " AND TABLE_NAME = \x00 ORDER BY ORDINAL_POSITION", [schema, table])
        return [str(r[0]) for r in rows]

    def _create(self, con: Any, schema: str, table: str, arrow: pa.Schema, *,
                primary_key: Sequence[str] = (), index: str | None = None) -> None:
        indexed = set(primary_key) | ({index} if index else set())
        cols = [f"{ident(f.name, DIALECT)} "
                f"{mysql_column_type(f.type, f.name, indexed=f.name in indexed)}"
                + (" NOT NULL" if f.name in primary_key else "")
                for f in arrow]
        if primary_key:
            cols.append("PRIMARY KEY (" + ", ".join(ident(k, DIALECT) for k in primary_key)
                        + ")")
        if index:
            cols.append(f"KEY ({ident(index, DIALECT)})")
        self._exec(con, f"CREATE TABLE {self._fq(schema, table)} ({', '.join(cols)})"
                   " DEFAULT CHARSET=utf8mb4")

    def _ensure_target(self, con: Any, schema: str, table: str, arrow: pa.Schema, *,
                       primary_key: Sequence[str] = (), index: str | None = None) -> bool:
        existing = self._columns(con, schema, table)
        if not existing:
            self._create(con, schema, table, arrow, primary_key=primary_key, index=index)
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

    def _insert(self, con: Any, schema: str, table: str, reader: pa.RecordBatchReader,
                suffix: str = "") -> int:
        names = reader.schema.names
        for f in reader.schema:
            mysql_column_type(f.type, f.name)
        cols = ", ".join(ident(c, DIALECT) for c in names)
        marks = ", ".join([_PARAM] * len(names))
        sql = _render(f"INSERT INTO {self._fq(schema, table)} ({cols}) VALUES ({marks}){suffix}",
                      [1])
        rows = 0
        with con.cursor() as cur:
            for batch in reader:
                if batch.num_rows:
                    cur.executemany(sql, _python_rows(batch))
                    rows += batch.num_rows
        return rows

    def _check_columns(self, arrow: pa.Schema, columns: Sequence[str], what: str) -> None:
        missing = [c for c in columns if c not in arrow.names]
        if missing:
            raise ConnectorError(
                f"{self.label}: {what} column " + ", ".join(repr(m) for m in missing)
                + f" is not in node {self.config.from_!r}",
                path=self.config_path, hint="columns: " + ", ".join(arrow.names))

    # -- modes

    def _replace(self, con: Any, data: SinkInput, schema: str, table: str) -> SinkResult:
        new = staging_name(table, "new", _NAME_LIMIT)
        old = staging_name(table, "old", _NAME_LIMIT)
        reader = data.reader()
        self._exec(con, f"DROP TABLE IF EXISTS {self._fq(schema, new)}, {self._fq(schema, old)}")
        self._create(con, schema, new, reader.schema)
        try:
            rows = self._insert(con, schema, new, reader)
            con.commit()
            if self._columns(con, schema, table):
                self._exec(con, f"RENAME TABLE {self._fq(schema, table)} TO "
                                f"{self._fq(schema, old)}, {self._fq(schema, new)} TO "
                                f"{self._fq(schema, table)}")
                self._exec(con, f"DROP TABLE {self._fq(schema, old)}")
            else:
                self._exec(con, f"RENAME TABLE {self._fq(schema, new)} TO "
                                f"{self._fq(schema, table)}")
        except BaseException:
            with contextlib.suppress(Exception):
                con.rollback()
                self._exec(con, f"DROP TABLE IF EXISTS {self._fq(schema, new)}")
            raise
        return SinkResult(rows)

    def _append(self, con: Any, data: SinkInput, schema: str, table: str) -> SinkResult:
        reader = data.reader()
        self._ensure_target(con, schema, table, reader.schema)
        return SinkResult(self._insert(con, schema, table, reader))

    def _upsert(self, con: Any, data: SinkInput, schema: str, table: str) -> SinkResult:
        reader = data.reader()
        key = self.config.key
        self._check_columns(reader.schema, key, "key")
        check_unique_key(data, key, self.label, self.config_path)
        if not self._ensure_target(con, schema, table, reader.schema, primary_key=key):
            self._check_unique_index(con, schema, table, key)
        others = [c for c in reader.schema.names if c not in key]
        if others:
            sets = ", ".join(f"{ident(c, DIALECT)} = VALUES({ident(c, DIALECT)})" for c in others)
        else:
            k = ident(key[0], DIALECT)
            sets = f"{k} = {k}"
        return SinkResult(self._insert(con, schema, table, reader,
                                       f" ON DUPLICATE KEY UPDATE {sets}"))

    def _check_unique_index(self, con: Any, schema: str, table: str, key: list[str]) -> None:
        rows = self._exec(
            con, "SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.statistics"
            " WHERE TABLE_SCHEMA = \x00 AND TABLE_NAME = \x00 AND NON_UNIQUE = 0", [schema, table])
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

    def _sync(self, con: Any, data: SinkInput, schema: str, table: str) -> SinkResult:
        column = self.config.partition_by
        assert column is not None
        arrow = data.schema
        self._check_columns(arrow, [column], "partition_by")
        check_no_null_partitions(data, column, self.label, self.config_path)
        new = data.partition_fingerprints(column)
        created = self._ensure_target(con, schema, table, arrow, index=column)
        previous = data.previous_partitions
        fq = self._fq(schema, table)
        if created or not previous:
            # nothing recorded: the table may hold anything, so rewrite it whole
            if not created:
                self._exec(con, f"DELETE FROM {fq}")
            return SinkResult(self._insert(con, schema, table, data.reader()), partitions=new)
        con.commit()
        ctype = arrow.field(column).type
        where = f"DELETE FROM {fq} WHERE {ident(column, DIALECT)} = {_PARAM}"
        rows = 0
        for value in sorted(new):
            if previous.get(value) == new[value]:
                continue
            self._exec(con, where, [_partition_value(value, ctype)])
            rows += self._insert(con, schema, table, data.partition_reader(column, value))
            con.commit()
        for value in sorted(set(previous) - set(new)):
            self._exec(con, where, [_partition_value(value, ctype)])
            con.commit()
        return SinkResult(rows, partitions=new)
