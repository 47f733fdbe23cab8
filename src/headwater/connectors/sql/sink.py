"""The write flow every database sink shares (:class:`SqlSink`).

``write`` opens a session, finds the target (``schema.table``; a bare name goes where
the server would put it), runs the mode and commits; on any failure it rolls back,
so nothing is half-written, and says which sink failed (a driver error becomes a
``ConnectorError``, transient when a retry may pass; the runner retries those).

The modes:

- ``append`` creates the target if it is missing, else checks it has every
  column, and inserts by column name;
- ``upsert`` checks the node has one row per ``key`` first (on the engine), creates
  the target with a primary key on ``key`` if missing, and inserts with the
  dialect's upsert clause;
- ``sync`` writes only the partitions (values of ``partition_by``) whose content
  fingerprint changed since the last write: delete + insert, one transaction per
  partition; vanished partitions are deleted; with nothing recorded the whole
  table is rewritten;
- ``replace`` is the dialect's own: where an atomic swap is possible differs most
  between servers.

A dialect supplies the parts that differ: ``_resolve_table``, ``_existing_columns``,
the DDL of a new table (``_column_def``, ``_create_sql``), how rows reach the server
(``_prepare_insert``: Postgres copies them into a staging table and inserts from it,
MySQL sends batched ``INSERT ... VALUES``), ``_replace``, the upsert clause (``ON
CONFLICT`` / ``ON DUPLICATE KEY``) with its checks, and how one partition is matched.
"""

from __future__ import annotations

import contextlib
from abc import abstractmethod
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol

from headwater.connectors.base import SinkConnector, SinkInput, SinkResult
from headwater.connectors.sql.common import ident
from headwater.connectors.sql.config import SqlSinkConfig
from headwater.connectors.sql.connector import SessionT, SqlConnector, TargetT
from headwater.errors import ConnectorError, HeadwaterError

if TYPE_CHECKING:
    import pyarrow as pa
    from sqlglot import exp


class Insert(Protocol):
    """Rows made ready for one target: calling it inserts them (``suffix`` ends the
    INSERT, e.g. an upsert clause) and gives how many there were."""

    def __call__(self, suffix: str = "") -> int: ...


class SqlSink(SqlConnector[SessionT, TargetT], SinkConnector, Generic[SessionT, TargetT]):
    """Writes a node's table into a database table; all or nothing."""

    kind = "sink"
    config: SqlSinkConfig

    def write(self, data: SinkInput) -> SinkResult:
        target = self.target()
        session = self.connect(target)
        try:
            schema, table = self._resolve_table(session)
            result: SinkResult = getattr(self, f"_{self.config.mode}")(session, data, schema,
                                                                        table)
            session.commit()
            return result
        except BaseException as exc:
            with contextlib.suppress(Exception):
                session.rollback()
            if isinstance(exc, HeadwaterError):
                if isinstance(exc, ConnectorError) and not exc.message.startswith(self.label):
                    exc.message = f"{self.label}: {exc.message}"
                raise
            if not isinstance(exc, Exception):
                raise
            raise self._error(exc, "writing to", target) from None
        finally:
            with contextlib.suppress(Exception):
                session.close()

    # -- the dialect's part

    @abstractmethod
    def _resolve_table(self, session: SessionT) -> tuple[str, str]:
        """(schema, table) of the configured table, a bare name placed as the server would."""

    @abstractmethod
    def _existing_columns(self, session: SessionT, schema: str, table: str) -> Collection[str]:
        """The target's column names; none when it does not exist."""

    @abstractmethod
    def _column_def(self, field: pa.Field, *, key: bool, indexed: bool) -> str:
        """``"name" type`` of a new table's column (``key``: in the primary key)."""

    @abstractmethod
    def _create_sql(self, schema: str, table: str, columns: list[str],
                    index: str | None) -> list[str]:
        """The statements that create a table of ``columns`` with an index on ``index``."""

    @abstractmethod
    def _prepare_insert(self, session: SessionT, schema: str, table: str,
                        reader: pa.RecordBatchReader, *, fresh: bool = False) -> Insert:
        """Get ``reader``'s rows ready to go into ``schema.table`` (``fresh``: just created,
        still empty); unsupported column types fail here, before anything is written."""

    @abstractmethod
    def _replace(self, session: SessionT, data: SinkInput, schema: str,
                 table: str) -> SinkResult:
        """Put the node's rows in place of the table's, atomically for readers."""

    @abstractmethod
    def _upsert_clause(self, key: list[str], others: list[str]) -> str:
        """What ends an INSERT so rows whose key exists update the other columns."""

    def _require_unique_key(self, session: SessionT, schema: str, table: str,
                            key: list[str]) -> None:
        """Refuse, clearly, an existing table the upsert clause cannot work on."""

    def _upsert_error(self, exc: Exception, schema: str, table: str,
                      key: list[str]) -> ConnectorError | None:
        """A clear error for a server's refusal of the upsert, if it is one we know."""
        return None

    @abstractmethod
    def _partition_match(self, session: SessionT, schema: str, table: str, column: str,
                         arrow_type: pa.DataType) -> tuple[str, Callable[[str], Any]]:
        """``column = <PARAM>`` as the server compares it, and the parameter of a
        partition's text (as the engine renders it)."""

    # -- helpers

    def _fq(self, schema: str, table: str) -> str:
        return f"{ident(schema, self.dialect)}.{ident(table, self.dialect)}"

    def _create(self, session: SessionT, schema: str, table: str, arrow: pa.Schema, *,
                primary_key: Sequence[str] = (), index: str | None = None) -> None:
        """A new table typed from ``arrow``, with a primary key and an index if asked."""
        indexed = set(primary_key) | ({index} if index else set())
        columns = [self._column_def(f, key=f.name in primary_key, indexed=f.name in indexed)
                   for f in arrow]
        if primary_key:
            columns.append("PRIMARY KEY ("
                           + ", ".join(ident(k, self.dialect) for k in primary_key) + ")")
        for sql in self._create_sql(schema, table, columns, index):
            session.execute(sql)

    def _ensure_target(self, session: SessionT, schema: str, table: str, arrow: pa.Schema, *,
                       primary_key: Sequence[str] = (), index: str | None = None) -> bool:
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

    def _check_columns(self, arrow: pa.Schema, columns: Sequence[str], what: str) -> None:
        missing = [c for c in columns if c not in arrow.names]
        if missing:
            raise ConnectorError(
                f"{self.label}: {what} column " + ", ".join(repr(m) for m in missing)
                + f" is not in node {self.config.from_!r}",
                path=self.config_path, hint="columns: " + ", ".join(arrow.names))

    # -- modes

    def _append(self, session: SessionT, data: SinkInput, schema: str,
                table: str) -> SinkResult:
        reader = data.reader()
        created = self._ensure_target(session, schema, table, reader.schema)
        return SinkResult(self._prepare_insert(session, schema, table, reader, fresh=created)())

    def _upsert(self, session: SessionT, data: SinkInput, schema: str,
                table: str) -> SinkResult:
        reader = data.reader()
        key = self.config.key
        self._check_columns(reader.schema, key, "key")
        check_unique_key(data, key, self.label, self.config_path)
        if not self._ensure_target(session, schema, table, reader.schema, primary_key=key):
            self._require_unique_key(session, schema, table, key)
        insert = self._prepare_insert(session, schema, table, reader)
        others = [c for c in reader.schema.names if c not in key]
        try:
            return SinkResult(insert(self._upsert_clause(key, others)))
        except Exception as exc:
            clear = self._upsert_error(exc, schema, table, key)
            if clear is None:
                raise
            raise clear from None

    def _sync(self, session: SessionT, data: SinkInput, schema: str, table: str) -> SinkResult:
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
            rows = self._prepare_insert(session, schema, table, data.reader())()
            return SinkResult(rows, partitions=new)
        session.commit()
        match, param = self._partition_match(session, schema, table, column,
                                             arrow.field(column).type)
        delete = f"DELETE FROM {fq} WHERE {match}"
        rows = 0
        for value in sorted(new):
            if previous.get(value) == new[value]:
                continue
            insert = self._prepare_insert(session, schema, table,
                                          data.partition_reader(column, value))
            session.execute(delete, [param(value)])
            rows += insert()
            session.commit()
        for value in sorted(set(previous) - set(new)):
            session.execute(delete, [param(value)])
            session.commit()
        return SinkResult(rows, partitions=new)


# -- checks run on the engine before anything is written ---------------------------------


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
