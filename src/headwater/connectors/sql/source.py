"""The read flow every database source shares (:class:`SqlSource`).

``read(since)`` opens a streaming, read-only session, selects the table or the
query (``SELECT * FROM (query) AS _hw_q``), adds ``WHERE cursor > <since>`` for an
incremental read and hands the driver's batches to a
:class:`~headwater.connectors.sql.common.StreamGuard`: sliced to ``chunk_rows``,
read ahead by a worker thread, driver errors turned into ``ConnectorError`` (the
last one kept on ``last_error``), the session closed however the stream ends.

``data_fingerprint()`` asks the server for a change marker: ``max(cursor)`` and
``count(*)`` with a cursor, else the row count and an order-independent sum of
row hashes.

A dialect supplies how the ``since`` value reaches the server (``_since``), how a
query is streamed as Arrow (``_stream``) and the SQL of the markers
(``_cursor_marker_sql``, ``_content_marker``).
"""

from __future__ import annotations

import contextlib
from abc import abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic

from headwater.connectors.base import SourceConfig, SourceConnector
from headwater.connectors.sql.common import StreamGuard, base_select, ident
from headwater.connectors.sql.config import SqlSourceConfig
from headwater.connectors.sql.connector import SessionT, SqlConnector, TargetT
from headwater.errors import ConnectorError, HeadwaterError

if TYPE_CHECKING:
    import pyarrow as pa

# what ``_stream`` gives: the schema, the batches, and an optional per-batch conversion
# (run on the read-ahead thread)
Stream = tuple["pa.Schema", Iterator["pa.RecordBatch"],
               Callable[["pa.RecordBatch"], "pa.RecordBatch"] | None]


class SqlSource(SqlConnector[SessionT, TargetT], SourceConnector, Generic[SessionT, TargetT]):
    """A table or query of a database server as a stream of Arrow batches."""

    kind = "source"
    config: SqlSourceConfig

    def __init__(self, name: str, config: SourceConfig, root: Path, config_path: Path) -> None:
        super().__init__(name, config, root, config_path)
        self.last_error: ConnectorError | None = None

    def _base(self) -> str:
        return base_select(self.dialect, table=self.config.table, query=self.config.query)

    def _fail(self, exc: BaseException, target: TargetT, action: str) -> ConnectorError:
        err = self._error(exc, action, target)
        self.last_error = err
        return err

    # -- the dialect's part

    @abstractmethod
    def _since(self, session: SessionT, sql: str, cursor: str,
               since: Any) -> tuple[str, list[Any]]:
        """SQL for the value the cursor must exceed in ``sql``, and its parameters."""

    @abstractmethod
    def _stream(self, session: SessionT, sql: str, params: list[Any]) -> Stream:
        """Start ``sql`` and give its schema and batches as they arrive."""

    @abstractmethod
    def _cursor_marker_sql(self, cursor: str, base: str) -> str:
        """``SELECT <max(cursor) as text>, count(*) FROM (base) AS _hw_f`` (``cursor``
        quoted)."""

    @abstractmethod
    def _content_marker(self, session: SessionT, base: str) -> tuple[Any, Any]:
        """(row count, a sum of row hashes) of ``base``, computed by the server."""

    # -- the flow

    def read(self, since: Any | None = None) -> pa.RecordBatchReader:
        self.last_error = None  # only this read's failure counts
        target = self.target()
        session = self.connect(target, streaming=True)
        try:
            sql = self._base()
            params: list[Any] = []
            cursor = self.config.cursor
            if cursor is not None and since is not None:
                value, params = self._since(session, sql, cursor, since)
                sql = f"{sql} WHERE {ident(cursor, self.dialect)} > {value}"
            schema, batches, convert = self._stream(session, sql, params)
        except HeadwaterError as exc:
            with contextlib.suppress(Exception):
                session.close()
            if isinstance(exc, ConnectorError):
                self.last_error = exc
            raise
        except Exception as exc:
            with contextlib.suppress(Exception):
                session.close()
            raise self._fail(exc, target, "reading from") from None

        guard = StreamGuard(
            schema, batches, chunk_rows=self.config.chunk_rows,
            translate=lambda e: self._fail(e, target, "reading from"),
            close=session.close, convert=convert,
        )
        return guard.reader()

    def data_fingerprint(self) -> str:
        target = self.target()
        session = self.connect(target)
        try:
            base = self._base()
            cursor = self.config.cursor
            if cursor is not None:
                sql = self._cursor_marker_sql(ident(cursor, self.dialect), base)
                top, count = session.execute(sql)[0]
                return f"cursor:{top}:{count}"
            # the content itself, hashed by the server (an order-independent sum of row
            # hashes): row counts, table statistics and update times miss updates or lag
            count, total = self._content_marker(session, base)
            return f"content:{count}:{total}"
        except HeadwaterError:
            raise
        except Exception as exc:
            raise self._fail(exc, target, "fingerprinting") from None
        finally:
            with contextlib.suppress(Exception):
                session.close()
