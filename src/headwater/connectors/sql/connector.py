"""What every database source and sink is: a name in messages, a target, a session.

A dialect (``postgres``, ``mysql``) subclasses :class:`SqlConnector` with three
small parts: ``target()`` (where to connect, secrets resolved), ``_open()`` (a
:class:`SqlSession` on the driver) and ``_error()`` (a driver exception as a
:class:`~headwater.errors.ConnectorError`, transient or not, the password
scrubbed). The read flow is :class:`~headwater.connectors.sql.source.SqlSource`,
the write flow :class:`~headwater.connectors.sql.sink.SqlSink`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from headwater.connectors.sql.common import REDACTED, redact
from headwater.errors import ConnectorError, HeadwaterError

if TYPE_CHECKING:
    from headwater.connectors.sql.config import SqlSinkConfig, SqlSourceConfig


class SqlSession(Protocol):
    """One connection in a transaction. SQL marks bound parameters with ``PARAM``."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement; its rows (none for a statement without a result)."""
        ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...

    def close(self) -> None: ...


class SqlTarget(Protocol):
    """Where a connector connects; ``where`` (host:port/database) is safe to show."""

    @property
    def where(self) -> str: ...

    @property
    def secrets(self) -> list[str]: ...


SessionT = TypeVar("SessionT", bound=SqlSession)
TargetT = TypeVar("TargetT", bound=SqlTarget)


class SqlConnector(ABC, Generic[SessionT, TargetT]):
    """The part a database source and sink share: label, connection, ``describe``."""

    kind: ClassVar[str]  # "source" or "sink", as messages name it
    dialect: ClassVar[str]  # sqlglot's name for the server's SQL
    config: SqlSourceConfig | SqlSinkConfig
    name: str
    config_path: Path

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name!r}"

    @abstractmethod
    def target(self) -> TargetT:
        """Where to connect, ``${VAR}`` resolved; a source's session is read-only."""

    @abstractmethod
    def _open(self, target: TargetT, *, streaming: bool) -> SessionT:
        """A session on the driver; ``streaming``: results are fetched as they are read."""

    @abstractmethod
    def _error(self, exc: BaseException, action: str, target: TargetT) -> ConnectorError:
        """``exc`` as a ConnectorError saying what failed (``action`` the server) where."""

    def connect(self, target: TargetT, *, streaming: bool = False) -> SessionT:
        try:
            return self._open(target, streaming=streaming)
        except HeadwaterError:
            raise
        except Exception as exc:
            raise self._error(exc, "connecting to", target) from None

    def describe(self) -> dict[str, object]:
        out = self.config.model_dump(exclude={"description", "tags"}, by_alias=True)
        if out.get("password"):
            out["password"] = REDACTED
        if out.get("dsn"):
            out["dsn"] = redact(str(out["dsn"]), [])
        return out
