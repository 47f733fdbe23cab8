"""The demo project and the end-to-end fixture projects: the same results on Spark as on
DuckDB, no-op reruns, edits re-running only what they affect."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from spark_helpers import copy_project, project_checksums, project_differences

from headwater import Project

FIXTURES = Path(__file__).parent.parent / "fixtures" / "good"


def run_ok(project: Project, **kw: Any) -> Any:
    result = project.run(**kw)
    failed = [(n.name, n.error) for n in result.nodes if n.status == "failed"]
    assert result.ok, failed
    return result


def executed(result: Any) -> set[str]:
    return {n.name for n in result.nodes if n.status == "executed"}


@pytest.fixture(scope="module")
def pair(spark: Any, demo_source: Path, tmp_path_factory: pytest.TempPathFactory
         ) -> tuple[Project, Project]:
    base = tmp_path_factory.mktemp("pair")
    duck = Project(copy_project(demo_source, base / "duck"))
    on_spark = Project(copy_project(demo_source, base / "spark", engine="spark"))
    run_ok(duck)
    first = run_ok(on_spark)
    assert executed(first) == set(on_spark.loaded.nodes)
    return duck, on_spark


def test_demo_gives_identical_tables(pair: tuple[Project, Project]) -> None:
    duck, on_spark = pair
    expected = project_checksums(duck)
    assert len(expected) >= 10
    assert set(project_checksums(on_spark)) == set(expected)
    assert project_differences(duck, on_spark) == {}


def test_warehouse_is_parquet_and_a_catalog(pair: tuple[Project, Project]) -> None:
    _, on_spark = pair
    warehouse = on_spark.root / ".headwater/spark-warehouse"
    assert (warehouse / "_hw_catalog.json").is_file()
    assert list((warehouse / "_hw").glob("*/*/*.parquet"))
    assert not (on_spark.root / ".headwater/warehouse.duckdb").exists()


def test_rerun_executes_nothing(pair: tuple[Project, Project]) -> None:
    _, on_spark = pair
    result = run_ok(on_spark)
    assert executed(result) == set()


def test_edit_reruns_only_what_it_affects(pair: tuple[Project, Project]) -> None:
    duck, on_spark = pair
    target = on_spark.root / "transforms/device_health_daily.sql"
    original = target.read_text()
    # an edit that changes the output of device_health_daily (and so its readers)
    target.write_text(original.replace("ROUND(uptime_share, 4)", "ROUND(uptime_share, 3)"))
    try:
        result = run_ok(on_spark)
        ran = executed(result)
        assert "device_health_daily" in ran
        assert not ran & {"telemetry", "stg_telemetry", "stg_transactions", "devices",
                          "merchant_loyalty_stats", "customer_points_balance"}
    finally:
        target.write_text(original)
    # reverting is instant: the earlier builds are published again, only the sink rewrites
    result = run_ok(on_spark)
    assert executed(result) <= {"device_health_export"}
    assert project_differences(duck, on_spark) == {}


def test_dev_environment_shares_tables(pair: tuple[Project, Project]) -> None:
    _, on_spark = pair
    result = run_ok(on_spark, env="dev")
    assert executed(result) == set()
    assert on_spark.table("merchant_scorecard", env="dev").num_rows == \
        on_spark.table("merchant_scorecard").num_rows


@pytest.mark.parametrize("fixture", sorted(p.name for p in FIXTURES.iterdir() if p.is_dir()))
def test_fixture_projects_identical(spark: Any, tmp_path: Path, fixture: str) -> None:
    duck = Project(copy_project(FIXTURES / fixture, tmp_path / "duck"))
    on_spark = Project(copy_project(FIXTURES / fixture, tmp_path / "spark", engine="spark"))
    run_ok(duck)
    run_ok(on_spark)
    assert project_differences(duck, on_spark) == {}
