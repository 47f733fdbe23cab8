"""The database servers the SQL connector suite runs every test against.

As dlt's ``tests/load/utils.py`` describes each destination once, a :class:`Kind`
describes a connector type (its classes, quoting, the bits of SQL that differ
between servers) and a :class:`Server` one server to test it on: an autocommit
admin connection, fresh namespaces (a Postgres schema, a MySQL database) and
connector factories. Postgres runs twice, once per driver (ADBC, psycopg).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from headwater.connectors.base import SinkConnector, SourceConnector
from headwater.connectors.sql.mysql import (
    MySQLSink,
    MySQLSinkConfig,
    MySQLSource,
    MySQLSourceConfig,
    parse_dsn,
)
from headwater.connectors.sql.postgres import (
    PostgresSink,
    PostgresSinkConfig,
    PostgresSource,
    PostgresSourceConfig,
)


@dataclass(frozen=True)
class Kind:
    """A connector type and what differs in the SQL a test writes for it."""

    name: str  # the connector's ``type``
    source_cls: type[SourceConnector]
    sink_cls: type[SinkConnector]
    source_config: Any
    sink_config: Any
    quote: str  # identifier quote
    scheme: str  # of a dsn
    user: str  # the test server's user
    timestamp: str  # a column type for instants (what a cursor usually is)
    text_cast: str  # CAST(x AS <this>) gives text
    int_cast: str  # CAST(x AS <this>) gives a Python int
    concurrent_rows: int  # rows of the table swapped under a reader


KINDS = {
    "postgres": Kind("postgres", PostgresSource, PostgresSink, PostgresSourceConfig,
                     PostgresSinkConfig, '"', "postgresql", "postgres", "timestamptz", "text",
                     "bigint", 200_000),
    "mysql": Kind("mysql", MySQLSource, MySQLSink, MySQLSourceConfig, MySQLSinkConfig, "`",
                  "mysql", "root", "DATETIME(6)", "CHAR", "SIGNED", 20_000),
}

# server id -> (kind, driver); every id runs every test of the suite
SERVERS = {
    "postgres-adbc": ("postgres", "adbc"),
    "postgres-psycopg": ("postgres", "psycopg"),
    "mysql": ("mysql", None),
}


@dataclass
class Server:
    id: str
    kind: Kind
    dsn: str
    driver: str | None = None
    admin: Any = field(default=None, repr=False)

    # -- connections

    def connect(self) -> Any:
        """A new autocommit connection of the test's own (not the connector's)."""
        if self.kind.name == "postgres":
            import psycopg

            return psycopg.connect(self.dsn, autocommit=True, connect_timeout=3)
        import pymysql

        p = parse_dsn(self.dsn)
        return pymysql.connect(host=p.get("host", "127.0.0.1"), port=int(p.get("port", 3306)),
                               user=p.get("user", "root"), password=p.get("password", ""),
                               database=p.get("database"), autocommit=True, connect_timeout=3)

    def run(self, sql: str, params: Sequence[Any] | None = None, *, con: Any = None
            ) -> list[tuple[Any, ...]]:
        """One statement on the admin connection (``%s`` parameters), its rows."""
        con = con or self.admin
        if self.kind.name == "mysql":
            params = None if params is None else [_mysql_value(v) for v in params]
        with con.cursor() as cur:
            cur.execute(sql, params)
            return [tuple(r) for r in cur.fetchall()] if cur.description else []

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        marks = ", ".join(["%s"] * len(columns))
        sql = f"INSERT INTO {table} ({', '.join(self.q(c) for c in columns)}) VALUES ({marks})"
        with self.admin.cursor() as cur:
            if self.kind.name == "mysql":
                rows = [[_mysql_value(v) for v in row] for row in rows]
            cur.executemany(sql, rows)

    # -- names

    def q(self, name: str) -> str:
        qc = self.kind.quote
        return qc + name.replace(qc, qc * 2) + qc

    def fq(self, ns: str, table: str) -> str:
        return f"{self.q(ns)}.{self.q(table)}"

    @contextmanager
    def namespace(self, prefix: str = "hw_test") -> Iterator[str]:
        """A schema (Postgres) or database (MySQL) of its own, dropped afterwards."""
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        self.run(f"CREATE {'SCHEMA' if self.kind.name == 'postgres' else 'DATABASE'} "
                 f"{self.q(name)}")
        try:
            yield name
        finally:
            cascade = " CASCADE" if self.kind.name == "postgres" else ""
            self.run(f"DROP {'SCHEMA' if self.kind.name == 'postgres' else 'DATABASE'} "
                     f"{self.q(name)}{cascade}")

    def tables(self, ns: str) -> list[str]:
        """Base tables in ``ns`` (helper tables a write left behind would show here)."""
        return sorted(str(r[0]) for r in self.run(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s"
            " AND table_type = 'BASE TABLE'", [ns]))

    def column_types(self, ns: str, table: str) -> dict[str, str]:
        return {str(n): str(t) for n, t in self.run(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = %s AND table_name = %s", [ns, table])}

    def text(self, expr: str) -> str:
        return f"CAST({expr} AS {self.kind.text_cast})"

    def int(self, expr: str) -> str:
        return f"CAST({expr} AS {self.kind.int_cast})"

    def numbers(self, n: int, start: int = 1) -> str:
        """``SELECT`` of ``n`` rows with one column ``g`` = start .. start + n - 1."""
        if self.kind.name == "postgres":
            return f"SELECT g FROM generate_series({start}, {start + n - 1}) g"
        return f"SELECT seq AS g FROM seq_{start}_to_{start + n - 1}"

    # -- connectors

    def dsn_as(self, user: str, password: str | None = None, port: int | None = None,
               host: str = "127.0.0.1") -> str:
        """A dsn for another user / password / port of this server's database."""
        auth = user + (f":{password}" if password is not None else "")
        return f"{self.kind.scheme}://{auth}@{host}{f':{port}' if port else ''}/test"

    def source(self, name: str = "src", tmp: Path = Path("."), **cfg: Any) -> Any:
        cfg.setdefault("dsn", self.dsn)
        if self.driver:
            cfg.setdefault("driver", self.driver)
        config = self.kind.source_config.model_validate({"type": self.kind.name, **cfg})
        return self.kind.source_cls(name, config, tmp, tmp / "sources" / f"{name}.toml")

    def sink(self, name: str = "out", tmp: Path = Path("."), **cfg: Any) -> Any:
        cfg.setdefault("dsn", self.dsn)
        cfg.setdefault("from", "node")
        if self.driver:
            cfg.setdefault("driver", self.driver)
        config = self.kind.sink_config.model_validate({"type": self.kind.name, **cfg})
        return self.kind.sink_cls(name, config, tmp, tmp / "sinks" / f"{name}.toml")

    def toml_keys(self, dsn_var: str) -> str:
        """The connection lines of a source or sink TOML for this server."""
        lines = f'type = "{self.kind.name}"\ndsn = "${{{dsn_var}}}"\n'
        return lines + (f'driver = "{self.driver}"\n' if self.driver else "")

    def kill_readers(self, name: str, ns: str) -> int:
        """End the server sessions of connector ``name`` reading from ``ns``."""
        if self.kind.name == "postgres":
            return len(self.run("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE"
                                " application_name = %s AND pid <> pg_backend_pid()",
                                [f"headwater:{name}"]))
        ids = self.run("SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE %s"
                       " AND ID <> CONNECTION_ID()", [f"%{ns}%"])
        for (pid,) in ids:
            self.run(f"KILL CONNECTION {int(pid)}")
        return len(ids)


def _mysql_value(v: Any) -> Any:
    """Instants as the UTC wall time a DATETIME holds."""
    if isinstance(v, dt.datetime) and v.tzinfo is not None:
        return v.astimezone(dt.UTC).replace(tzinfo=None)
    return v


def read_all(src: Any, since: Any = None) -> pa.Table:
    reader = src.read(since)
    return pa.Table.from_batches(list(reader), reader.schema)
