"""Spark Connect: a server started from pyspark's own distribution, the same results."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from spark_helpers import copy_project, project_differences

from headwater import Project

pytest.importorskip("grpc", reason="Spark Connect needs pip install 'pyspark[connect]'")

FIXTURES = Path(__file__).parent.parent / "fixtures" / "good"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def connect_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import pyspark

    home = Path(pyspark.__file__).parent
    script = home / "sbin" / "start-connect-server.sh"
    if not script.exists():
        pytest.skip("this pyspark has no sbin/start-connect-server.sh")
    logs = tmp_path_factory.mktemp("connect")
    port = free_port()
    env = {**os.environ, "SPARK_HOME": str(home), "SPARK_LOG_DIR": str(logs),
           "SPARK_PID_DIR": str(logs), "SPARK_LOCAL_IP": "127.0.0.1"}
    server = subprocess.Popen(
        ["bash", str(script), "--wait", "--master", "local[2]",
         "--conf", f"spark.connect.grpc.binding.port={port}",
         "--conf", "spark.ui.enabled=false", "--conf", "spark.sql.shuffle.partitions=2"],
        env=env, stdout=(logs / "server.log").open("w"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the Spark Connect server did not start:\n"
                            + (logs / "server.log").read_text()[-3000:])
            time.sleep(1)
        yield f"sc://127.0.0.1:{port}"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        shutil.rmtree(logs, ignore_errors=True)


def hw(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # a process of its own: a Connect session cannot share one with the classic session
    # the other Spark tests use
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"}
    return subprocess.run([sys.executable, "-m", "headwater.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_spark_connect_gives_identical_results(connect_url: str, tmp_path: Path) -> None:
    src = FIXTURES / "cte_name_not_a_node"
    duck = Project(copy_project(src, tmp_path / "duck"))
    remote = copy_project(src, tmp_path / "remote", engine="spark")
    with (remote / "headwater.toml").open("a") as toml:
        toml.write(f'\n[spark]\nremote = "{connect_url}"\n')
    assert duck.run().ok
    first = hw("run", "--json", cwd=remote)
    assert first.returncode == 0, first.stdout + first.stderr
    assert json.loads(first.stdout)["counts"]["executed"] == 3
    again = hw("run", "--json", cwd=remote)
    assert json.loads(again.stdout)["counts"]["executed"] == 0
    # tables are Parquet in the warehouse: read here without any Spark session
    assert project_differences(duck, Project(remote)) == {}
