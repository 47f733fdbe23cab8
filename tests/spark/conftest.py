"""One Spark session (local mode, small settings) shared by every Spark test.

Starting a JVM costs seconds; ``SparkEngine`` picks up the active session with
``getOrCreate``, so engines made by ``Project(...)`` in these tests reuse it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pyspark")
if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    pytest.skip("the Spark tests need Java (17)", allow_module_level=True)

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    from headwater.engines.spark.engine import make_session

    session = make_session(master="local[2]", conf={
        "spark.sql.shuffle.partitions": "2",
        "spark.default.parallelism": "2",
        "spark.driver.memory": "1g",
    })
    yield session
    session.stop()


@pytest.fixture(scope="session")
def demo_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example project (`headwater init --rows 5000`), never run: copy it to use it."""
    from headwater.scaffold import init_project

    root = tmp_path_factory.mktemp("demo") / "shop"
    init_project(root, rows=5000, seed=42, force=False)
    return root

