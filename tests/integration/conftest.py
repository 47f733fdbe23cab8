"""Fixtures for tests that need a database server.

``pg_dsn`` / ``mysql_dsn`` give the server's DSN, or skip the test with the
reason when the driver is missing or the server does not answer (in CI a skip
counts as a failure, see tests/conftest.py). Point them elsewhere with
HEADWATER_TEST_PG_DSN / HEADWATER_TEST_MYSQL_DSN.
"""

from __future__ import annotations

import os

import pytest

PG_DSN = os.environ.get("HEADWATER_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
MYSQL_DSN = os.environ.get("HEADWATER_TEST_MYSQL_DSN", "mysql://root@127.0.0.1:3306/test")


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    try:
        import psycopg
    except ImportError:
        pytest.skip("psycopg is not installed: pip install -e '.[dev]'")
    try:
        psycopg.connect(PG_DSN, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL is not reachable at {PG_DSN}: {str(exc).strip()}")
    return PG_DSN


@pytest.fixture(scope="session")
def mysql_dsn() -> str:
    try:
        import pymysql
    except ImportError:
        pytest.skip("PyMySQL is not installed: pip install -e '.[dev]'")
    from headwater.connectors.sql.mysql import parse_dsn

    p = parse_dsn(MYSQL_DSN)
    try:
        pymysql.connect(host=p.get("host", "127.0.0.1"), port=int(p.get("port", "3306")),
                        user=p.get("user", "root"), password=p.get("password", ""),
                        database=p.get("database"), connect_timeout=3).close()
    except pymysql.err.OperationalError as exc:
        pytest.skip(f"MySQL/MariaDB is not reachable at {MYSQL_DSN}: {exc}")
    return MYSQL_DSN
