"""``pg_dsn``: the test PostgreSQL server (HEADWATER_TEST_PG_DSN), or a skip saying why it
is not there (in CI a skip counts as a failure, see tests/conftest.py)."""

from __future__ import annotations

import pytest

from reliability.helpers import PG_DSN, pg_reachable


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    problem = pg_reachable(PG_DSN)
    if problem:
        pytest.skip(f"the oracle needs PostgreSQL; not reachable at {PG_DSN}: {problem}")
    return PG_DSN
