"""What every database source and sink is: a name in messages, a target, a session.

A dialect (``postgres``, ``mysql``) subclasses :class:`SqlConnector` with three
small parts: ``target()`` (where to connect, secrets resolved), ``_open()`` (a
:class:`SqlSession` on the driver) and ``_error()`` (a driver exception as a
:class:`~headwater.errors.ConnectorError`, transient or not, the password
scrubbed). The read flow is :class:`~headwater.connectors.sql.source.SqlSource`,
the write flow :class:`~headwater.connectors.sql.sink.SqlSink`.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from headwater.connectors.sql.common import REDACTED, redact
from headwater.core.config import resolve_env
from headwater.errors import ConnectorError, HeadwaterError

if TYPE_CHECKING:
    from headwater.connectors.sql.config import ConnectionKeys, SqlSinkConfig, SqlSourceConfig


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


# -- targets and failures, for each dialect's connection module ------------------------------


def connection_params(cfg: ConnectionKeys, what: str, path: Path,
                      parse: Callable[[str], dict[str, str]], *, database_key: str = "database",
                      hint: str | None = None) -> tuple[dict[str, str], list[str | None]]:
    """The driver's connection keywords from ``dsn`` (parsed by ``parse``) and the separate
    keys, which win; every ``${VAR}`` resolved. Also the passwords as written in the
    project: secrets to scrub from messages even when they were not references."""
    dsn = cfg.dsn or ""
    whole = re.fullmatch(r"\s*\$\{[A-Za-z_][A-Za-z0-9_]*\}\s*", dsn) is not None
    if whole:  # the whole dsn comes from the environment
        dsn = resolve_env(dsn, path=path, key="dsn")
    try:
        params = parse(dsn) if dsn else {}
    except ValueError as exc:
        raise ConnectorError(f"{what}: cannot read the dsn: {exc}", path=path,
                             hint=hint) from None
    literals = [params.get("password"), cfg.password]
    if not whole:  # resolved part by part: a password holding @ or / needs no escaping
        params = {k: resolve_env(v, path=path, key=f"dsn ({k})") for k, v in params.items()}
    for key, param in (("host", "host"), ("user", "user"), ("password", "password"),
                       ("database", database_key)):
        value = getattr(cfg, key)
        if value is not None:
            params[param] = resolve_env(value, path=path, key=key)
    if cfg.port is not None:
        params["port"] = str(cfg.port)
    return params, literals


def server_failure(what: str, action: str, server: str, where: str, message: str, *,
                   transient: bool, path: Path, hint: str | None) -> ConnectorError:
    """``<what>: <action> <server> at <where> failed: <message>``, saying when a retry
    may pass."""
    return ConnectorError(
        f"{what}: {action} {server} at {where} failed: {message}"
        + (" (transient, may pass on a retry)" if transient else ""),
        transient=transient, path=path, hint=hint,
    )
