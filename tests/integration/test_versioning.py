"""Versioned in-place tables (headwater.engines.versioning): environments publish
immutable snapshots, so no run changes what another environment (or an unselected
view) shows; append and merge nodes rebuild when what they consumed changed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from headwater import Project
from headwater.testing import write_project

FILES = {
    "sources/events.toml": 'type = "files"\npath = "data/*.csv"\n'
                           'columns = { id = "BIGINT", ts = "TIMESTAMP", v = "BIGINT" }\n',
    "transforms/stg.sql": "-- @materialized: view\nSELECT id, ts, v FROM events\n",
    "transforms/total.sql": "SELECT count(*) AS n, sum(v) AS s FROM stg\n",
    "transforms/appended.sql": "-- @incremental: append by id\n"
                               "SELECT id, v * 10 AS v10 FROM events\n",
    "transforms/merged.sql": "-- @incremental: merge id by ts\nSELECT id, ts, v FROM events\n",
    "transforms/daily.sql": "-- @incremental: by day day from ts\n"
                            "SELECT CAST(ts AS DATE) AS day, sum(v) AS s FROM events"
                            " GROUP BY ALL\n",
}
TABLES = ("events", "stg", "total", "appended", "merged", "daily")


def write(root: Path, name: str, rows: list[tuple[int, str, int]]) -> None:
    (root / "data").mkdir(exist_ok=True)
    text = "id,ts,v\n" + "".join(f"{i},{ts},{v}\n" for i, ts, v in rows)
    (root / "data" / name).write_text(text)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    root = tmp_path / "p"
    write_project(root, FILES)
    write(root, "a.csv", [(1, "2026-11-01 10:00:00", 5), (2, "2026-11-01 11:00:00", 7)])
    write(root, "b.csv", [(3, "2026-11-02 10:00:00", 1)])
    return Project(root)


def tables(project: Project, env: str = "prod") -> dict[str, list[tuple[object, ...]]]:
    schema = "main" if env == "prod" else env
    return {t: sorted(tuple(r.values()) for r in project.query(
        f"SELECT * FROM {schema}.{t}").to_pylist()) for t in TABLES}


def clean(project: Project, tmp: Path) -> dict[str, list[tuple[object, ...]]]:
    ref = tmp / "clean"
    shutil.rmtree(ref, ignore_errors=True)
    shutil.copytree(project.root, ref, ignore=shutil.ignore_patterns(".headwater"))
    other = Project(ref)
    assert other.run().ok
    return tables(other)


def test_dev_load_leaves_prod_as_it_was(project: Project, tmp_path: Path) -> None:
    assert project.run().ok
    before = tables(project)
    write(project.root, "c.csv", [(4, "2026-11-03 09:00:00", 2)])
    write(project.root, "a.csv", [(1, "2026-11-01 10:00:00", 6), (2, "2026-11-01 11:00:00", 7)])
    assert project.run(env="dev").ok
    assert tables(project) == before  # prod: not a row moved
    assert tables(project, "dev") == clean(project, tmp_path)
    assert project.run().ok
    assert tables(project) == clean(project, tmp_path)
    # both environments now show the same data: prod reused what dev loaded
    prod, dev = project.state.published("prod"), project.state.published("dev")
    assert prod["events"].physical == dev["events"].physical


def test_selected_load_leaves_the_view_downstream_as_it_was(project: Project) -> None:
    assert project.run().ok
    before = tables(project)
    write(project.root, "c.csv", [(4, "2026-11-03 09:00:00", 2)])
    assert project.run("events").ok
    after = tables(project)
    assert after["stg"] == before["stg"] and after["events"] != before["events"]


def test_append_and_merge_rebuild_when_consumed_rows_change(project: Project,
                                                            tmp_path: Path) -> None:
    assert project.run().ok
    write(project.root, "c.csv", [(4, "2026-11-03 09:00:00", 2)])
    result = project.run()
    reasons = {n.name: n.reason for n in result.nodes}
    assert "appended rows past" in reasons["appended"]
    assert tables(project) == clean(project, tmp_path)
    (project.root / "data/b.csv").unlink()  # a row at or before the cursor goes
    result = project.run()
    reasons = {n.name: n.reason for n in result.nodes}
    assert "rebuilt from scratch: rows of events at or before the cursor changed" in (
        reasons["appended"])
    assert "rebuilt from scratch" in reasons["merged"]
    assert tables(project) == clean(project, tmp_path)


def test_old_versions_survive_until_gc_and_revert_is_free(project: Project) -> None:
    assert project.run().ok
    first = project.state.published("prod")["events"].physical
    write(project.root, "b.csv", [(3, "2026-11-02 10:00:00", 9)])
    assert project.run().ok
    assert project.state.published("prod")["events"].physical != first
    write(project.root, "b.csv", [(3, "2026-11-02 10:00:00", 1)])  # back as it was
    result = project.run()
    assert project.state.published("prod")["events"].physical == first
    assert {n.name: n.status for n in result.nodes}["total"] == "skipped"
    project.gc(keep_versions=0)
    assert tables(project)["total"] == [(3, 13)]


def test_selected_run_says_what_is_behind(project: Project) -> None:
    assert project.run().ok
    write(project.root, "c.csv", [(4, "2026-11-03 09:00:00", 2)])
    result = project.run("events")
    assert set(result.behind) == {"stg", "total", "appended", "merged", "daily"}
    assert project.run().behind == []
