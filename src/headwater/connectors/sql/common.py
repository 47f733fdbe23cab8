"""What the database connectors (``postgres``, ``mysql``) share.

- identifier quoting through sqlglot (a config value never reaches SQL unquoted);
- secrets: the resolved password is scrubbed from every message we raise;
- a guarded Arrow stream: batches read ahead by a worker thread and sliced to
  ``chunk_rows``, driver errors turned into
  :class:`~headwater.errors.ConnectorError` (transient or not), the connection
  closed when the stream ends, fails or is dropped;
- the config keys both connectors accept and their validation;
- checks a sink runs on the engine before writing (NULL partitions, duplicate keys).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import re
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError
from pydantic_core.core_schema import ValidationInfo

from headwater.core.config import StrictModel
from headwater.errors import ConnectorError

if TYPE_CHECKING:
    from pathlib import Path

    import pyarrow as pa
    from sqlglot import exp

    from headwater.connectors.base import SinkInput

REDACTED = "***"


# -- config ---------------------------------------------------------------------


class ConnectionKeys(StrictModel):
    """Where the server is: a ``dsn`` and/or separate keys (keys win over the dsn).

    Every value may contain ``${ENV_VAR}`` references, resolved only when
    connecting; the password should always come from one.
    """

    dsn: str | None = None
    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    user: str | None = None
    password: str | None = None
    database: str | None = None
    connect_timeout: int = Field(default=10, ge=1)

    @field_validator("password")
    @classmethod
    def _password_from_env(cls, v: str | None) -> str | None:
        if v and not _WHOLE_ENV_REF.fullmatch(v):
            raise PydanticCustomError(
                "secret", 'the password must name an environment variable, not hold the secret:'
                ' write password = "${DB_PASSWORD}" and export DB_PASSWORD; secrets never go in'
                " project files")
        return v

    @field_validator("dsn")
    @classmethod
    def _dsn_password_from_env(cls, v: str | None) -> str | None:
        pw = _dsn_password(v or "")
        if pw and not _WHOLE_ENV_REF.fullmatch(pw):
            raise PydanticCustomError(
                "secret", "the dsn holds a password: write it as ${VAR} (dsn ="
                ' "scheme://user:${DB_PASSWORD}@host/db") and export DB_PASSWORD; secrets never'
                " go in project files")
        return v


_WHOLE_ENV_REF = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")


def _dsn_password(dsn: str) -> str | None:
    """The password written in a dsn (URL user-info or ``password=``), as written."""
    m = re.match(r"\s*[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:([^@\s]*)@", dsn)
    if m:
        return m.group(1)
    m = re.search(r"(?:^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", dsn, re.IGNORECASE)
    return m.group(1).strip("'") if m else None


def check_table_name(value: str | None, dialect: str) -> str | None:
    if value is None:
        return None
    if not value.strip():
        raise ValueError("the table name is empty")
    try:
        table_ref(value, dialect)
    except Exception:
        q = "`" if dialect == "mysql" else '"'
        raise ValueError(
            f"cannot read {value!r} as a table name; write schema.table and quote parts "
            f"that hold dots or quotes with {q} (e.g. {q}my.table{q})"
        ) from None
    return value


class SourceKeys(StrictModel):
    """``table`` or ``query`` (exactly one), optional ``cursor``, ``chunk_rows``."""

    table: str | None = None
    query: str | None = Field(default=None, validate_default=True)
    cursor: str | None = None
    chunk_rows: int = Field(default=100_000, ge=1)

    @field_validator("query")
    @classmethod
    def _one_of_table_or_query(cls, v: str | None, info: ValidationInfo) -> str | None:
        table = info.data.get("table")
        if v is not None and table is not None:
            raise ValueError("set either `table` or `query`, not both")
        if v is None and table is None and "table" in info.data:
            raise ValueError('set `table = "schema.name"` or `query = "SELECT ..."`')
        if v is not None and not v.strip().rstrip(";").strip():
            raise ValueError("the query is empty")
        return v


class SinkKeys(StrictModel):
    """``table``, ``mode``, ``key`` (upsert), ``partition_by`` (sync)."""

    table: str
    mode: Literal["replace", "append", "upsert", "sync"] = "replace"
    key: list[str] = Field(default=[], validate_default=True)
    partition_by: str | None = Field(default=None, validate_default=True)

    @field_validator("key", mode="before")
    @classmethod
    def _key_list(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("key")
    @classmethod
    def _key_for_upsert(cls, v: list[str], info: ValidationInfo) -> list[str]:
        if info.data.get("mode") == "upsert" and not v:
            raise ValueError('mode = "upsert" needs the key columns: key = ["id"]')
        if len(set(v)) != len(v):
            raise ValueError("a key column is listed twice")
        return v

    @field_validator("partition_by")
    @classmethod
    def _partition_for_sync(cls, v: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("mode") == "sync" and not v:
            raise ValueError('mode = "sync" needs the partition column: partition_by = "day"')
        return v


# -- identifiers -----------------------------------------------------------------


def table_ref(name: str, dialect: str) -> exp.Table:
    """``schema.table`` from config as a sqlglot table with every part quoted.

    A name is taken literally (case-sensitive); parts holding dots or quotes must be
    quoted in the config. Anything else, ``x; drop table y`` included, is one name.
    """
    from sqlglot import exp

    table = exp.to_table(name, dialect=dialect)
    for part in table.parts:
        part.set("quoted", True)
    return table


def ident(name: str, dialect: str) -> str:
    """One quoted identifier in ``dialect``."""
    from sqlglot import exp

    return exp.to_identifier(name, quoted=True).sql(dialect=dialect)


def split_table(name: str, dialect: str) -> tuple[str | None, str]:
    """(schema or None, table) of a config table name, unquoted."""
    t = table_ref(name, dialect)
    return (t.db or None), t.name


def base_select(
    dialect: str, *, table: str | None, query: str | None, columns: list[str] | None = None
) -> str:
    """``SELECT * FROM <quoted table>`` or the query wrapped as a subquery."""
    from sqlglot import exp

    cols: list[str | exp.Expression] = (
        [exp.column(c, quoted=True) for c in columns] if columns else ["*"]
    )
    if table is not None:
        return exp.select(*cols).from_(table_ref(table, dialect)).sql(dialect=dialect)
    assert query is not None
    body = query.strip().rstrip(";").rstrip()
    sel = ", ".join(c.sql(dialect=dialect) if not isinstance(c, str) else c for c in cols)
    return f"SELECT {sel} FROM ({body}\n) AS {ident('_hw_q', dialect)}"


def staging_name(table: str, tag: str, limit: int) -> str:
    """A name for a helper table next to ``table`` that fits the server's limit."""
    name = f"{table}__hw_{tag}"
    if len(name.encode()) <= limit:
        return name
    digest = hashlib.sha1(table.encode()).hexdigest()[:10]
    return f"_hw_{tag}_{digest}"


# -- values ------------------------------------------------------------------------


def since_text(value: Any) -> str:
    """A cursor value as text the server can cast to the cursor column's type."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if hasattr(value, "isoformat"):  # pandas / numpy timestamps
        return str(value.isoformat())
    if isinstance(value, bytes):
        return value.decode()
    return str(value)  # int, float, Decimal, str, uuid ...


# -- secrets and errors ------------------------------------------------------------


_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")
_KV_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every secret (and any password-looking DSN part) replaced; secrets too
    short to mask in free text are masked only where they are structurally a password."""
    from urllib.parse import quote

    from headwater.core import secrets as registry

    for secret in secrets:
        if secret and len(secret) >= registry.MIN_LENGTH:
            for form in {secret, quote(secret, safe=""), quote(secret)}:
                text = text.replace(form, REDACTED)
    text = registry.redact(text)
    text = _URL_PASSWORD.sub(rf"\1{REDACTED}@", text)
    return _KV_PASSWORD.sub(rf"\1{REDACTED}", text)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return type(exc).__name__
    # libpq puts the useful part after "connection to server ... failed:"
    return " ".join(lines[:2]) if len(lines[0]) < 40 and len(lines) > 1 else lines[0]


# -- streams -------------------------------------------------------------------------


class _Failed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_DONE = object()


class StreamGuard:
    """Turns a driver's batch iterator into a safe ``RecordBatchReader``.

    ``translate`` maps any exception to a ConnectorError; ``close`` is called
    exactly once when the stream is exhausted, fails or is garbage collected.
    The last error is kept on ``error`` because an engine consuming the stream
    (DuckDB) re-raises it as its own exception type, losing ``transient``.

    With ``prefetch`` > 0 a worker thread reads (and converts) up to that many
    batches ahead, so fetching and decoding overlap with the consumer writing
    the previous batch; the driver is only ever used by that one thread, and
    the connection is closed after the thread has stopped.
    """

    def __init__(
        self,
        schema: pa.Schema,
        batches: Iterator[pa.RecordBatch],
        *,
        chunk_rows: int,
        translate: Callable[[BaseException], ConnectorError],
        close: Callable[[], None],
        convert: Callable[[pa.RecordBatch], pa.RecordBatch] | None = None,
        prefetch: int = 2,
    ) -> None:
        self.schema = schema
        self._batches = batches
        self._chunk_rows = chunk_rows
        self._translate = translate
        self._close = close
        self._convert = convert
        self._prefetch = prefetch
        self._closed = False
        self.error: ConnectorError | None = None

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            # closing a dead connection must not mask the real error
            with contextlib.suppress(Exception):
                self._close()

    def _produce(self) -> Generator[pa.RecordBatch, None, None]:
        for batch in self._batches:
            yield self._convert(batch) if self._convert is not None else batch

    def _prefetched(self) -> Iterator[pa.RecordBatch]:
        if self._prefetch <= 0:
            yield from self._produce()
            return
        import queue
        import threading

        q: queue.Queue[object] = queue.Queue(maxsize=self._prefetch)
        stop = threading.Event()

        def put(item: object) -> bool:
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def work() -> None:
            produced = self._produce()
            try:
                for batch in produced:
                    if not put(batch):
                        return
                put(_DONE)
            except BaseException as exc:
                put(_Failed(exc))
            finally:
                with contextlib.suppress(Exception):
                    produced.close()  # runs the driver iterator's own clean-up here

        worker = threading.Thread(target=work, name="headwater-prefetch", daemon=True)
        worker.start()
        try:
            while True:
                item = q.get()
                if item is _DONE:
                    return
                if isinstance(item, _Failed):
                    raise item.exc
                yield item
        finally:
            stop.set()
            worker.join()

    def _iter(self) -> Iterator[pa.RecordBatch]:
        try:
            for batch in self._prefetched():
                n = batch.num_rows
                if n <= self._chunk_rows:
                    if n:
                        yield batch
                    continue
                for start in range(0, n, self._chunk_rows):
                    yield batch.slice(start, self._chunk_rows)
        except ConnectorError as exc:
            self.error = exc
            raise
        except Exception as exc:
            self.error = self._translate(exc)
            raise self.error from None
        finally:
            self.close()

    def reader(self) -> pa.RecordBatchReader:
        import pyarrow as pa

        return pa.RecordBatchReader.from_batches(self.schema, self._iter())


def is_transient_message(text: str, transient: Iterable[str], permanent: Iterable[str]) -> bool:
    low = text.lower()
    if any(p in low for p in permanent):
        return False
    return any(p in low for p in transient)


# -- sink checks run on the engine before anything is written ---------------------------


def _engine_count(data: SinkInput, build: Callable[[exp.Table], exp.Select]) -> int:
    engine = data.engine
    sql = build(engine.physical_ref(data.physical)).sql(dialect=engine.dialect)
    value = engine.query(sql).column(0)[0].as_py()
    return int(value or 0)


def check_no_null_partitions(data: SinkInput, column: str, label: str, path: Path) -> None:
    """Sync compares partitions by their text; NULL has none, so refuse it clearly."""
    from sqlglot import exp

    nulls = _engine_count(
        data,
        lambda t: exp.select(exp.func("count", exp.Star()))
        .from_(t)
        .where(exp.column(column, quoted=True).is_(exp.null())),
    )
    if nulls:
        raise ConnectorError(
            f"{label}: partition column {column!r} has {nulls} NULL value(s); sync needs a "
            "value in every row",
            path=path,
            hint=f"fill it in the transform (coalesce({column}, ...)) or use another mode",
        )


def check_unique_key(data: SinkInput, key: list[str], label: str, path: Path) -> None:
    """Upsert needs one row per key: say so before writing rather than mid-way."""
    from sqlglot import exp

    cols = [exp.column(k, quoted=True) for k in key]
    dupes = _engine_count(
        data,
        lambda t: exp.select(exp.func("count", exp.Star())).from_(
            exp.select(*cols).from_(t).group_by(*cols)
            .having(exp.GT(this=exp.func("count", exp.Star()), expression=exp.Literal.number(1)))
            .subquery("d")
        ),
    )
    if dupes:
        raise ConnectorError(
            f"{label}: {dupes} key value(s) occur in more than one row of the node "
            f"(key = {', '.join(key)})",
            path=path,
            hint="make the key unique in the transform, or change `key`",
        )
