"""The runner on real DuckDB: builds, change awareness, failures, selection."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from headwater import Project
from headwater.errors import LockedError, SelectionError
from headwater.run.lock import ProjectLock
from headwater.testing import write_project

BASE = {
    "data/a.csv": "id,v\n1,10\n2,20\n3,30\n",
    "sources/raw.toml": 'type = "files"\npath = "data/*.csv"\n',
    "transforms/stg.sql": """
        -- Staging: doubled values.
        -- @tags: staging
        SELECT id, v * 2 AS v2 FROM raw
    """,
    "transforms/total.sql": "-- Sum.\nSELECT sum(v2) AS s FROM stg\n",
    "transforms/maxed.sql": "SELECT max(v2) AS m FROM stg\n",
    "transforms/report.sql": "SELECT s, m FROM total CROSS JOIN maxed\n",
}


def statuses(result) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {n.name: n.status for n in result.nodes}


def executed(result) -> set[str]:  # type: ignore[no-untyped-def]
    return {n.name for n in result.nodes if n.status == "executed"}


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(write_project(tmp_path / "p", BASE))


def edit(project: Project, rel: str, text: str) -> None:
    (project.root / rel).write_text(text)


def test_first_run_builds_everything_and_publishes(project: Project) -> None:
    result = project.run()
    assert result.ok
    assert executed(result) == {"raw", "stg", "total", "maxed", "report"}
    assert project.table("report").to_pylist() == [{"s": 120, "m": 60}]
    assert project.query("SELECT count(*) AS n FROM stg").to_pylist() == [{"n": 3}]


def test_noop_run_executes_nothing(project: Project) -> None:
    project.run()
    result = project.run()
    assert executed(result) == set()
    assert all(n.reason == "up to date" for n in result.nodes)


@pytest.mark.parametrize(
    "new_text",
    [
        "-- Staging: doubled values.\n-- @tags: staging\nselect   id,\n  v*2 as v2\nfrom raw\n",
        "-- A new description entirely.\n-- @tags: staging\nSELECT id, v * 2 AS v2 FROM raw -- c\n",
    ],
    ids=["whitespace-and-case", "comments"],
)
def test_formatting_and_comment_edits_execute_nothing(project: Project, new_text: str) -> None:
    project.run()
    edit(project, "transforms/stg.sql", new_text)
    result = project.run()
    assert executed(result) == set()


def test_edit_reruns_node_and_downstream_only(project: Project) -> None:
    project.run()
    edit(project, "transforms/maxed.sql", "SELECT max(v2) + 1 AS m FROM stg\n")
    plan = project.plan()
    reasons = {n.name: n.reason for n in plan.nodes if n.action == "run"}
    assert reasons == {"maxed": "code changed (transforms/maxed.sql)",
                       "report": "upstream maxed changed"}
    result = project.run()
    assert executed(result) == {"maxed", "report"}
    assert project.table("report").to_pylist() == [{"s": 120, "m": 61}]


def test_edit_with_identical_output_stops_at_that_node(project: Project) -> None:
    project.run()
    edit(project, "transforms/stg.sql", "SELECT id, v * 2 AS v2 FROM raw WHERE id IS NOT NULL\n")
    result = project.run()
    assert executed(result) == {"stg"}
    reasons = {n.name: n.reason for n in result.nodes}
    assert reasons["total"] == "upstream stg rebuilt, output unchanged"


def test_revert_reuses_the_old_build(project: Project) -> None:
    project.run()
    original = (project.root / "transforms/total.sql").read_text()
    edit(project, "transforms/total.sql", "SELECT sum(v2) * 10 AS s FROM stg\n")
    project.run()
    assert project.table("total").to_pylist() == [{"s": 1200}]
    edit(project, "transforms/total.sql", original)
    result = project.run()
    assert "total" not in executed(result)
    assert project.table("total").to_pylist() == [{"s": 120}]


def test_new_source_data_is_ingested(project: Project) -> None:
    project.run()
    time.sleep(0.01)
    (project.root / "data/b.csv").write_text("id,v\n4,40\n")
    plan = project.plan()
    assert {n.name: n.reason for n in plan.nodes}["raw"] == "new data in source raw"
    project.run()
    assert project.table("total").to_pylist() == [{"s": 200}]


def test_failure_skips_downstream_keeps_siblings_and_previous_version(project: Project) -> None:
    project.run()
    edit(project, "transforms/maxed.sql", "SELECT max(no_such_column) AS m FROM stg\n")
    edit(project, "transforms/total.sql", "SELECT sum(v2) + 1 AS s FROM stg\n")
    result = project.run()
    assert not result.ok
    st = {n.name: (n.status, n.reason) for n in result.nodes}
    assert st["maxed"][0] == "failed"
    assert st["report"] == ("skipped", "upstream maxed failed")
    assert st["total"][0] == "executed"
    error = next(n.error for n in result.nodes if n.name == "maxed")
    assert "transforms/maxed.sql" in (error or "") and "no_such_column" in (error or "")
    # the failed node's previous version stays live
    assert project.table("maxed").to_pylist() == [{"m": 60}]
    # fixing it resumes from the break: total is not rebuilt again
    edit(project, "transforms/maxed.sql", "SELECT max(v2) AS m FROM stg\n")
    again = project.run()
    assert again.ok
    assert executed(again) == {"report"} or executed(again) == set()
    assert project.table("report").to_pylist() == [{"s": 121, "m": 60}]


def test_full_refresh_rebuilds_selection(project: Project) -> None:
    project.run()
    result = project.run("stg+", full_refresh=True)
    assert "stg" in executed(result)
    assert {n.name for n in result.nodes} == {"stg", "total", "maxed", "report"}


def test_selection_syntax(project: Project) -> None:
    assert project.select("+total") == ["raw", "stg", "total"]
    assert project.select("stg+", exclude="report") == ["stg", "maxed", "total"]
    assert project.select("tag:staging, maxed") == ["stg", "maxed"]
    with pytest.raises(SelectionError, match="did you mean 'total'"):
        project.select("totl")


def test_selecting_a_node_whose_upstream_never_ran_says_what_to_do(project: Project) -> None:
    with pytest.raises(Exception, match=r"--select \+total"):
        project.run("total")


def test_python_transform_frame_types(tmp_path: Path) -> None:
    files = dict(BASE)
    files["transforms/as_polars.py"] = '''
        import polars as pl

        def as_polars(stg: pl.DataFrame) -> pl.DataFrame:
            return stg.with_columns((pl.col("v2") + 1).alias("v3"))
    '''
    files["transforms/as_pandas.py"] = '''
        import pandas as pd

        def as_pandas(as_polars: pd.DataFrame):
            as_polars["v4"] = as_polars["v3"] * 2
            return as_polars
    '''
    files["transforms/as_rel.py"] = '''
        import duckdb

        def as_rel(as_pandas: duckdb.DuckDBPyRelation):
            return as_pandas.aggregate("sum(v4) AS total_v4")
    '''
    project = Project(write_project(tmp_path / "p", files))
    result = project.run()
    assert result.ok, [n.error for n in result.nodes if n.error]
    assert project.table("as_rel").to_pylist() == [{"total_v4": 2 * (21 + 41 + 61)}]


def test_second_run_waits_or_fails_fast(project: Project) -> None:
    lock = ProjectLock(project.state_dir / "run.lock")
    lock.acquire()
    try:
        with pytest.raises(LockedError, match="another run is in progress"):
            project.run(wait=False)
        messages: list[str] = []
        done = threading.Event()

        def second() -> None:
            project.run(on_wait=messages.append)
            done.set()

        t = threading.Thread(target=second)
        t.start()
        time.sleep(0.5)
        assert not done.is_set() and messages
    finally:
        lock.release()
    t.join(timeout=30)
    assert done.is_set()


def test_sink_writes_file_after_node(tmp_path: Path) -> None:
    files = dict(BASE)
    files["sinks/export.toml"] = 'type = "files"\nfrom = "total"\npath = "out/total.parquet"\n'
    project = Project(write_project(tmp_path / "p", files))
    assert project.run().ok
    import pyarrow.parquet as pq

    assert pq.read_table(project.root / "out/total.parquet").to_pylist() == [{"s": 120}]
    assert "export" not in executed(project.run())


def test_dev_environment_shares_prod_tables_and_promotes(project: Project) -> None:
    project.run()
    prod_phys = {n: p.physical for n, p in project.state.published("prod").items()}
    edit(project, "transforms/maxed.sql", "SELECT max(v2) - 1 AS m FROM stg\n")
    result = project.run(env="dev")
    assert executed(result) == {"maxed", "report"}
    dev_phys = {n: p.physical for n, p in project.state.published("dev").items()}
    assert dev_phys["stg"] == prod_phys["stg"] and dev_phys["maxed"] != prod_phys["maxed"]
    assert project.query("SELECT m FROM dev.maxed").to_pylist() == [{"m": 59}]
    assert project.table("maxed").to_pylist() == [{"m": 60}]
    diffs = {d.node: d for d in project.diff("dev", "prod")}
    assert diffs["maxed"].status == "changed" and diffs["stg"].status == "same"
    moved = project.promote("dev")
    assert set(moved) == {"maxed", "report"}
    assert project.table("maxed").to_pylist() == [{"m": 59}]
    # prod now matches the code: nothing to do
    assert executed(project.run()) == set()


def test_gc_drops_unreferenced_versions(project: Project) -> None:
    project.run()
    for i in range(3):
        edit(project, "transforms/total.sql", f"SELECT sum(v2) + {i + 1} AS s FROM stg\n")
        project.run()
    versions = [p for p, i in project.state.all_physical().items() if i.node == "total"]
    assert len(versions) == 4
    dropped = project.gc(keep_versions=1)
    # the two oldest unused versions of total and of report (its downstream) go
    assert sorted(d.split("__")[0] for d in dropped) == ["report", "report", "total", "total"]
    assert project.table("total").to_pylist() == [{"s": 123}]
    assert len([i for i in project.state.all_physical().values() if i.node == "total"]) == 2


def test_touched_or_redelivered_identical_file_is_not_a_change(project: Project) -> None:
    project.run()
    data = project.root / "data/a.csv"
    content = data.read_bytes()
    time.sleep(0.01)
    data.write_bytes(content)  # new mtime, same bytes
    assert all(n.action == "skip" for n in project.plan().nodes)
    data.write_bytes(content.replace(b"3,30", b"3,31"))
    plan = {n.name: n for n in project.plan().nodes}
    assert plan["raw"].reason == "new data in source raw"


def test_source_outside_its_window_is_deferred(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    files = dict(BASE)
    files["sources/raw.toml"] = ('type = "files"\npath = "data/*.csv"\n'
                                 'window = "02:00-05:00"\nwindow_timezone = "UTC"\n')
    project = Project(write_project(tmp_path / "p", files))
    inside = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
    outside = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
    assert project.run(now=inside).ok
    (project.root / "data/b.csv").write_text("id,v\n4,40\n")
    plan = {n.name: n for n in project.plan(now=outside).nodes}
    assert plan["raw"].action == "defer"
    assert plan["raw"].reason == "deferred: source raw opens at 02:00 UTC (in 17h)"
    assert plan["report"].action == "defer"
    result = project.run(now=outside)
    assert result.ok and {n.status for n in result.nodes} == {"deferred"}
    assert project.table("total").to_pylist() == [{"s": 120}]  # previous data stays live
    project.run(now=inside.replace(day=27))
    assert project.table("total").to_pylist() == [{"s": 200}]


def test_downstream_reading_none_of_the_changed_columns_is_not_rerun(tmp_path: Path) -> None:
    files = {
        "data/a.csv": "id,v,w\n1,10,100\n2,20,200\n",
        "sources/raw.toml": 'type = "files"\npath = "data/*.csv"\n',
        "transforms/stg.sql": "SELECT id, v, w FROM raw\n",
        "transforms/only_v.sql": "SELECT id, v * 2 AS v2 FROM stg WHERE id > 0\n",
        "transforms/uses_w.sql": "SELECT sum(w) AS total_w FROM stg\n",
    }
    project = Project(write_project(tmp_path / "p", files))
    project.run()
    edit(project, "transforms/stg.sql", "SELECT id, v, w + 1 AS w FROM raw\n")
    result = project.run()
    st = {n.name: (n.status, n.reason) for n in result.nodes}
    assert st["stg"][0] == "executed"
    assert st["uses_w"][0] == "executed"
    assert st["only_v"] == ("skipped", "reads none of the changed columns of stg")
    assert project.table("only_v").to_pylist() == [{"id": 1, "v2": 20}, {"id": 2, "v2": 40}]
    # and it stays settled: the next run does nothing
    assert executed(project.run()) == set()
    # a change to a column it reads does re-run it
    edit(project, "transforms/stg.sql", "SELECT id, v + 1 AS v, w + 1 AS w FROM raw\n")
    assert "only_v" in executed(project.run())


def test_openlineage_events_from_config(tmp_path: Path) -> None:
    import json

    project = Project(write_project(tmp_path / "p", BASE,
                                    config='[openlineage]\nfile = "target/ol.ndjson"\n'))
    assert project.run().ok
    events = [json.loads(line) for line in
              (project.root / "target/ol.ndjson").read_text().splitlines()]
    kinds = {(e["job"]["name"], e["eventType"]) for e in events}
    assert any(kind == "COMPLETE" and name.endswith("report") for name, kind in kinds)
    assert any(kind == "START" for _, kind in kinds)
