"""Helpers the database connectors (``postgres``, ``mysql``) share.

- identifier quoting through sqlglot (a config value never reaches SQL unquoted) and
  ``PARAM``, the marker of a bound parameter in the SQL we build;
- secrets: the resolved password is scrubbed from every message we raise;
- a guarded Arrow stream: batches read ahead by a worker thread and sliced to
  ``chunk_rows``, driver errors turned into
  :class:`~headwater.errors.ConnectorError` (transient or not), the connection
  closed when the stream ends, fails or is dropped.

The config keys are in ``config``; the source and sink templates in ``source`` and
``sink``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import re
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from headwater.errors import ConnectorError

if TYPE_CHECKING:
    import pyarrow as pa
    from sqlglot import exp

REDACTED = "***"
# marks a bound parameter in our SQL (each session renders it in its driver's style);
# neither Postgres text nor MySQL identifiers can hold NUL
PARAM = "\x00"


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
