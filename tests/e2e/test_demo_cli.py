"""The demo project end to end through the real CLI, in subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest


def hw(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "headwater.cli", *args],
        capture_output=True, text=True, cwd=cwd, timeout=300,
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("e2e") / "shop"
    r = hw("init", str(root), "--rows", "20000")
    assert r.returncode == 0, r.stderr
    r = hw("run", "--project", str(root), "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    summary = json.loads(r.stdout)
    assert summary["status"] == "success"
    assert summary["counts"]["failed"] == 0
    return root


def test_demo_layout(demo: Path) -> None:
    assert (demo / "headwater.toml").is_file()
    assert len(list((demo / "transforms").glob("*.sql"))) >= 6
    assert len(list((demo / "transforms").glob("*.py"))) >= 1
    assert list((demo / "sinks").glob("*.toml"))
    assert list((demo / "data/telemetry").glob("*.ndjson"))


def test_sink_written(demo: Path) -> None:
    out = demo / "output/device_health_daily.parquet"
    assert pq.read_table(out).num_rows > 0


def test_second_run_executes_nothing_and_json_shape(demo: Path) -> None:
    r = hw("run", "--json", cwd=demo)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["counts"]["executed"] == 0
    node = summary["nodes"][0]
    assert {"name", "kind", "status", "reason", "rows", "seconds"} <= set(node)
    assert all(n["status"] == "skipped" for n in summary["nodes"])


def test_human_summary(demo: Path) -> None:
    r = hw("run", "--project", str(demo))
    assert r.returncode == 0
    assert "0 executed" in r.stdout and "skipped" in r.stdout


def test_plan_json_after_edit(demo: Path, tmp_path: Path) -> None:
    target = demo / "transforms/device_health_daily.sql"
    original = target.read_text()
    target.write_text(original.replace("SELECT", "SELECT 1 AS edited,", 1))
    try:
        r = hw("plan", "--json", "--project", str(demo))
        assert r.returncode == 0, r.stderr
        plan = {n["name"]: n for n in json.loads(r.stdout)["nodes"]}
        assert plan["device_health_daily"]["action"] == "run"
        assert plan["device_health_daily"]["reason"].startswith("code changed")
        assert plan["stg_telemetry"]["action"] == "skip"
        r = hw("plan", "--project", str(demo))
        assert "code changed" in r.stdout
    finally:
        target.write_text(original)


@pytest.mark.parametrize("fmt,needle", [("text", "device_health_daily <- stg_telemetry"),
                                        ("mermaid", "flowchart LR"),
                                        ("dot", "digraph headwater"),
                                        ("json", '"upstream"')])
def test_dag_formats(demo: Path, fmt: str, needle: str) -> None:
    r = hw("dag", "--format", fmt, "--project", str(demo))
    assert r.returncode == 0, r.stderr
    assert needle in r.stdout


def test_show_and_query(demo: Path) -> None:
    r = hw("show", "device_health_daily", "--limit", "3", "--project", str(demo))
    assert r.returncode == 0, r.stderr
    assert "3 rows" in r.stdout
    r = hw("query", "SELECT count(*) AS n FROM customer_segments", "--format", "json",
           "--project", str(demo))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)[0]["n"] > 0
    r = hw("query", "SELECT 1 AS a, 'x' AS b", "--format", "csv", "--project", str(demo))
    assert r.stdout.splitlines() == ['"a","b"', '1,"x"']


def test_query_is_read_only(demo: Path) -> None:
    r = hw("query", "DROP VIEW main.customer_segments", "--project", str(demo))
    assert r.returncode != 0
    assert "only queries are allowed" in r.stderr.lower()
    assert "Traceback" not in r.stderr


def test_select_and_exclude(demo: Path) -> None:
    r = hw("run", "--select", "+device_health_daily", "--exclude", "telemetry",
           "--full-refresh", "--json", "--project", str(demo))
    assert r.returncode == 0, r.stderr
    names = {n["name"] for n in json.loads(r.stdout)["nodes"]}
    assert names == {"stg_telemetry", "device_health_daily"}


def test_show_unknown_node_suggests(demo: Path) -> None:
    r = hw("show", "device_health_dialy", "--project", str(demo))
    assert r.returncode != 0
    assert "did you mean 'device_health_daily'" in r.stderr


def test_python_api(demo: Path) -> None:
    import headwater

    project = headwater.Project(demo)
    table = project.table("merchant_loyalty_stats")
    assert table.num_rows > 0
    assert all(n.action == "skip" for n in project.plan().nodes)
