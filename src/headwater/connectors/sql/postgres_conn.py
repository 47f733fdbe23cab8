"""PostgreSQL connections: the config keys, DSN parsing, the target a source or sink
talks to, and which server errors are worth a retry (see ``headwater.connectors.sql.postgres``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from headwater.connectors.sql.common import first_line, is_transient_message, redact
from headwater.connectors.sql.config import ConnectionKeys, SqlSinkConfig, SqlSourceConfig
from headwater.connectors.sql.connector import connection_params, server_failure
from headwater.errors import ConnectorError

DIALECT = "postgres"
NAME_LIMIT = 63  # NAMEDATALEN - 1


# -- config ------------------------------------------------------------------------


class PostgresConnectionKeys(ConnectionKeys):
    driver: Literal["auto", "adbc", "psycopg"] = "auto"
    application_name: str | None = None


class PostgresSourceConfig(SqlSourceConfig, PostgresConnectionKeys):
    type: Literal["postgres"] = "postgres"
    dialect = DIALECT


class PostgresSinkConfig(SqlSinkConfig, PostgresConnectionKeys):
    type: Literal["postgres"] = "postgres"
    dialect = DIALECT


# -- connection parameters ------------------------------------------------------------


@dataclass
class PgTarget:
    conninfo: str  # libpq key=value string, secrets resolved: never show it
    where: str  # host:port/database, safe to show
    secrets: list[str]


_KV = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*('(?:[^'\\]|\\.)*'|[^\s']*)")


def parse_dsn(dsn: str) -> dict[str, str]:
    """libpq keywords from a ``postgresql://`` URI or a ``key=value`` string.

    ``${VAR}`` references are left in place (resolved later, part by part, so a
    password holding ``@`` or ``/`` needs no escaping).
    """
    from urllib.parse import parse_qsl, unquote

    dsn = dsn.strip()
    out: dict[str, str] = {}
    m = re.match(r"^postgres(?:ql)?://", dsn)
    if m is None:
        pos = 0
        while pos < len(dsn):
            kv = _KV.match(dsn, pos)
            if kv is None:
                raise ValueError("expected key=value pairs or a postgresql:// URI")
            value = kv.group(2)
            if value.startswith("'"):
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            out[kv.group(1)] = value
            pos = kv.end()
            while pos < len(dsn) and dsn[pos].isspace():
                pos += 1
        return out
    rest = dsn[m.end() :]
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    if "@" in netloc:
        userinfo, _, netloc = netloc.rpartition("@")
        user, sep, password = userinfo.partition(":")
        if user:
            out["user"] = unquote(user)
        if sep:
            out["password"] = unquote(password)
    hosts, ports = [], []
    for hp in netloc.split(",") if netloc else []:
        if hp.startswith("["):
            host, _, port = hp[1:].partition("]")
            port = port.lstrip(":")
        else:
            host, _, port = hp.partition(":")
        hosts.append(unquote(host))
        ports.append(port)
    if any(hosts):
        out["host"] = ",".join(hosts)
    if any(ports):
        out["port"] = ",".join(ports)
    if path:
        out["dbname"] = unquote(path)
    for k, v in parse_qsl(query, keep_blank_values=True):
        out[k] = v
    return out


def _conninfo(params: dict[str, str]) -> str:
    def q(v: str) -> str:
        return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"

    return " ".join(f"{k}={q(v)}" for k, v in params.items())


def pg_target(cfg: PostgresConnectionKeys, what: str, path: Path, name: str,
              *, read_only: bool = False) -> PgTarget:
    """Where to connect. ``read_only`` (sources): every transaction of the session is
    read-only on the server, so a source's ``query`` can never change the database."""
    # passwords in the dsn are secrets even when written literally
    params, literal_secrets = connection_params(
        cfg, what, path, parse_dsn, database_key="dbname",
        hint='write dsn = "postgresql://user:${PGPASSWORD}@host:5432/database"')
    params.setdefault("connect_timeout", str(cfg.connect_timeout))
    if read_only:
        params["options"] = (params.get("options", "") + " -c default_transaction_read_only=on"
                             ).strip()
    params.setdefault("application_name", (cfg.application_name or f"headwater:{name}")[:63])
    host = params.get("host", "").split(",")[0] or "localhost"
    port = params.get("port", "").split(",")[0] or "5432"
    db = params.get("dbname") or params.get("user") or "postgres"
    secrets = [s for s in (params.get("password"), *literal_secrets) if s]
    where = redact(f"{host}:{port}/{db}", secrets)
    return PgTarget(_conninfo(params), where, secrets)


# -- errors -------------------------------------------------------------------------

_TRANSIENT_STATES = {"40001", "40P01", "57P01", "57P02", "57P03", "53300", "53400", "55P03",
                     "57014"}
_TRANSIENT_TEXT = (
    "connection refused", "server closed the connection", "could not connect",
    "connection reset", "terminating connection", "timeout expired", "timed out",
    "no connection to the server", "could not receive data", "could not send data",
    "broken pipe", "the database system is starting up", "the database system is shutting down",
    "the database system is in recovery mode", "ssl syscall error", "eof detected",
    "pqgetcopydata", "consuming input failed", "connection is closed", "connection is lost",
    "could not translate host name", "failed to connect", "connection to server",
    "bad connection", "too many clients", "lost synchronization",
)
_PERMANENT_TEXT = (
    "password authentication failed", "does not exist", "permission denied",
    "no pg_hba.conf entry", "authentication failed", "syntax error", "invalid input",
    "no password supplied", "role ", "certificate",
    # a malformed DSN or option fails the same way every time
    "invalid ", "unrecognized ", 'missing "="', "unsupported ",
)


def sqlstate_of(exc: BaseException) -> str | None:
    state = getattr(exc, "sqlstate", None)
    if isinstance(state, str) and len(state) == 5:
        return state
    diag = getattr(exc, "diag", None)
    state = getattr(diag, "sqlstate", None)
    if isinstance(state, str) and len(state) == 5:
        return state
    m = re.search(r"SQLSTATE: ([0-9A-Z]{5})", str(exc))
    return m.group(1) if m else None


def pg_is_transient(exc: BaseException) -> bool:
    state = sqlstate_of(exc)
    if state is not None:
        return state.startswith("08") or state in _TRANSIENT_STATES
    return is_transient_message(str(exc), _TRANSIENT_TEXT, _PERMANENT_TEXT)


def pg_error(
    exc: BaseException, *, what: str, action: str, target: PgTarget, path: Path
) -> ConnectorError:
    if isinstance(exc, ConnectorError):
        return exc
    transient = pg_is_transient(exc)
    msg = redact(first_line(exc), target.secrets)
    msg = re.sub(r"^(IO|INTERNAL|INVALID_ARGUMENT|UNKNOWN|NOT_FOUND): ", "", msg)
    msg = re.sub(r"^\[libpq\] ", "", msg)
    hint = None
    low = msg.lower()
    if "connection refused" in low or "could not translate host" in low:
        hint = "is the server running and reachable there? check host and port"
    elif "password authentication failed" in low or "no password supplied" in low:
        hint = "check the user and the password (set it as ${VAR} in the environment)"
    elif "does not exist" in low and ("database" in low or "role" in low):
        hint = "check the database and user names"
    elif "does not exist" in low:
        hint = "check the table/column names (they are case-sensitive, as in the catalog)"
    return server_failure(what, action, "postgres", target.where, msg, transient=transient,
                          path=path, hint=hint)
