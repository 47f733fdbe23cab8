"""MySQL / MariaDB connections: the config keys, DSN parsing, the target a source or
sink talks to, which server errors are worth a retry, and the session the source and
sink templates use (see ``headwater.connectors.sql.mysql``)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from headwater.connectors.sql.common import PARAM, first_line, is_transient_message, redact
from headwater.connectors.sql.config import ConnectionKeys, SqlSinkConfig, SqlSourceConfig
from headwater.connectors.sql.connector import connection_params, server_failure
from headwater.errors import ConnectorError

DIALECT = "mysql"
NAME_LIMIT = 64


# -- config ------------------------------------------------------------------------


class MySQLConnectionKeys(ConnectionKeys):
    charset: str = "utf8mb4"


class MySQLSourceConfig(SqlSourceConfig, MySQLConnectionKeys):
    type: Literal["mysql"] = "mysql"
    dialect = DIALECT


class MySQLSinkConfig(SqlSinkConfig, MySQLConnectionKeys):
    type: Literal["mysql"] = "mysql"
    dialect = DIALECT


# -- connection --------------------------------------------------------------------


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
    params, literals = connection_params(cfg, what, path, parse_dsn)
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
    return server_failure(what, action, "mysql", target.where, msg, transient=transient,
                          path=path, hint=hint)


def render(sql: str, params: Sequence[Any]) -> str:
    """Our SQL for PyMySQL: ``%`` doubled when it formats parameters, markers -> ``%s``."""
    return sql.replace("%", "%%").replace(PARAM, "%s") if params else sql


# -- session -----------------------------------------------------------------------


class MySQLSession:
    """One PyMySQL connection, transactions not autocommitted; SQL marks bound
    parameters with ``PARAM``. A source's session streams one unbuffered result."""

    def __init__(self, con: Any) -> None:
        self.con = con
        self._streaming: Any = None  # the cursor of the result being streamed

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.con.cursor() as cur:
            cur.execute(render(sql, params), list(params) if params else None)
            return list(cur.fetchall())

    def column_names(self, sql: str) -> list[str]:
        """The names of the columns ``sql`` gives."""
        with self.con.cursor() as cur:
            cur.execute(sql)
            return [d[0] for d in cur.description]

    def stream(self, sql: str, params: Sequence[Any]) -> Any:
        """Start ``sql`` on an unbuffered cursor and give the cursor (rows not yet read)."""
        cur = self._streaming = self.con.cursor()
        cur.execute(render(sql, params), list(params) or None)
        return cur

    def commit(self) -> None:
        self.con.commit()

    def rollback(self) -> None:
        self.con.rollback()

    def close(self) -> None:
        """Close, without draining an unfinished unbuffered result (or touching a dead
        socket)."""
        cur, con = self._streaming, self.con
        if cur is None:
            con.close()
            return
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
