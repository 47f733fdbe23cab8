"""Fixtures of the reliability suite.

``pg_dsn`` gives the test PostgreSQL server's dsn, or skips with the reason when it does
not answer (in CI a skip counts as a failure, see tests/conftest.py). Point it elsewhere
with HEADWATER_TEST_PG_DSN.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .helpers import PG_DSN, pg_reachable, reap


@pytest.fixture(autouse=True)
def reap_processes() -> Iterator[None]:
    """Background processes a test started never outlive it."""
    yield
    reap()


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    problem = pg_reachable(PG_DSN)
    if problem:
        pytest.skip(f"PostgreSQL is not reachable at {PG_DSN}: {problem}")
    return PG_DSN
