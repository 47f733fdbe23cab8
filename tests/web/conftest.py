"""Fixtures for the web UI: a built demo project, the ASGI app, a real uvicorn server."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="pip install 'headwater[web]'")

from fastapi.testclient import TestClient  # noqa: E402

from headwater import Project  # noqa: E402
from headwater.web.app import create_app  # noqa: E402
from headwater.web.server import Background  # noqa: E402

SLOW_PY = '''"""Waits, so that a run lasts long enough to be looked at while it goes on."""
import os
import time

import pyarrow as pa


def slow_merchants(stg_merchants: pa.Table) -> pa.Table:
    time.sleep(float(os.environ.get("HW_TEST_SLOW", "0")))
    return stg_merchants
'''


@pytest.fixture(scope="session")
def built_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo project, run once, plus a Python transform that can be made slow."""
    from headwater.scaffold import init_project

    root = tmp_path_factory.mktemp("web-demo") / "shop"
    init_project(root, rows=1000)
    (root / "transforms" / "slow_merchants.py").write_text(SLOW_PY)
    sql = root / "transforms" / "stg_merchants.sql"
    checks = "-- @check: not_null(merchant_id)\n-- @check: unique(merchant_id)\n"
    sql.write_text(sql.read_text().replace("-- @tags:", checks + "-- @tags:", 1))
    assert Project(root).run().ok
    return root


@pytest.fixture
def demo(built_demo: Path, tmp_path: Path) -> Path:
    """A private copy of the built demo, to change and run at will."""
    root = tmp_path / "shop"
    shutil.copytree(built_demo, root)
    return root


def _client(root: Path, **kwargs: Any) -> TestClient:
    app = create_app(Project(root), **kwargs)
    return TestClient(app, raise_server_exceptions=True)


@pytest.fixture
def make_client() -> Iterator[Callable[..., TestClient]]:
    """``make_client(root, token=..., trusted_hosts=...)``; every run it started is waited for."""
    made: list[TestClient] = []

    def make(root: Path, **kwargs: Any) -> TestClient:
        made.append(_client(root, **kwargs))
        return made[-1]

    yield make
    for c in made:
        assert c.app.state.web.manager.join(60)  # type: ignore[attr-defined]


@pytest.fixture
def client(demo: Path) -> Iterator[TestClient]:
    with _client(demo) as c:
        yield c
        assert c.app.state.web.manager.join(60)  # type: ignore[attr-defined]


def _wait_idle(client: TestClient, timeout: float = 60) -> dict[str, Any]:
    manager = client.app.state.web.manager  # type: ignore[attr-defined]
    assert manager.join(timeout), "the run did not finish in time"
    job = manager.current()
    assert job is not None
    return dict(job.to_json())


@pytest.fixture
def wait_idle() -> Callable[..., dict[str, Any]]:
    """``wait_idle(client)``: wait for the server's run to end; the last run it did."""
    return _wait_idle


@pytest.fixture
def live_server(demo: Path) -> Iterator[Background]:
    """uvicorn in a thread on an ephemeral loopback port, as `headwater serve` runs it."""
    with Background(Project(demo)) as live:
        yield live
