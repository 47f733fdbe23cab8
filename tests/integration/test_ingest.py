"""Source ingestion through the runner: cursor appends, schema drift, quarantine, retries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pytest

from headwater import Project
from headwater.connectors import registry
from headwater.connectors.base import SourceConfig, SourceConnector
from headwater.errors import ConnectorError
from headwater.testing import write_project


class RowsConfig(SourceConfig):
    type: Literal["jsonrows"] = "jsonrows"
    path: str
    cursor: str | None = None
    fail_times: int = 0


class JsonRowsSource(SourceConnector):
    """A tiny cursor-capable source over a JSON list in a file (for runner tests)."""

    type = "jsonrows"
    Config = RowsConfig
    config: RowsConfig
    calls: dict[str, int] = {}
    reads: list[Any] = []

    def _rows(self) -> list[dict[str, Any]]:
        return json.loads((self.root / self.config.path).read_text())  # type: ignore[no-any-return]

    def data_fingerprint(self) -> str:
        return str(hash((self.root / self.config.path).read_text()))

    def read(self, since: Any | None = None) -> pa.RecordBatchReader:
        key = str(self.root)
        JsonRowsSource.calls[key] = JsonRowsSource.calls.get(key, 0) + 1
        if JsonRowsSource.calls[key] <= self.config.fail_times:
            raise ConnectorError("connection reset by peer", transient=True)
        JsonRowsSource.reads.append(since)
        rows = self._rows()
        if since is not None and self.config.cursor:
            rows = [r for r in rows if r[self.config.cursor] > since]
        table = pa.Table.from_pylist(rows)
        return pa.RecordBatchReader.from_batches(table.schema, table.to_batches())


@pytest.fixture(autouse=True)
def _register() -> None:
    registry.source_types()
    registry.register(JsonRowsSource)


def make(tmp_path: Path, rows: list[dict[str, Any]], extra: str = "") -> Project:
    root = write_project(tmp_path / "p", {
        "data/rows.json": json.dumps(rows),
        "sources/events.toml": f'type = "jsonrows"\npath = "data/rows.json"\n{extra}',
        "transforms/total.sql": "SELECT count(*) AS n, sum(v) AS s FROM events\n",
    })
    return Project(root)


def set_rows(project: Project, rows: list[dict[str, Any]]) -> None:
    (project.root / "data/rows.json").write_text(json.dumps(rows))


def test_cursor_source_appends_only_new_rows(tmp_path: Path) -> None:
    rows = [{"id": i, "v": i * 10} for i in range(1, 4)]
    project = make(tmp_path, rows, 'cursor = "id"\n')
    JsonRowsSource.reads.clear()
    assert project.run().ok
    assert project.table("total").to_pylist() == [{"n": 3, "s": 60}]
    set_rows(project, rows + [{"id": 4, "v": 40}, {"id": 5, "v": 50}])
    plan = {n.name: n for n in project.plan().nodes}
    assert plan["events"].reason.startswith("new data in source events")
    result = project.run()
    assert result.ok
    assert JsonRowsSource.reads == [None, 3]
    assert project.table("total").to_pylist() == [{"n": 5, "s": 150}]
    assert {n.name: n.status for n in result.nodes}["total"] == "executed"
    # nothing new: nothing runs
    assert all(n.status == "skipped" for n in project.run().nodes)


def test_full_refresh_reloads_appendable_source(tmp_path: Path) -> None:
    rows = [{"id": i, "v": 1} for i in range(1, 4)]
    project = make(tmp_path, rows, 'cursor = "id"\n')
    project.run()
    set_rows(project, [{"id": 1, "v": 5}])  # history rewritten upstream
    project.run("events+", full_refresh=True)
    assert project.table("total").to_pylist() == [{"n": 1, "s": 5}]


def test_transient_failures_are_retried(tmp_path: Path) -> None:
    project = make(tmp_path, [{"id": 1, "v": 1}], "fail_times = 2\nretry_delay = 0.01\n")
    JsonRowsSource.calls.clear()
    result = project.run()
    assert result.ok
    assert JsonRowsSource.calls[str(project.root)] == 3


def test_transient_failure_after_retries_publishes_nothing(tmp_path: Path) -> None:
    extra = "fail_times = 9\nretries = 1\nretry_delay = 0.01\n"
    project = make(tmp_path, [{"id": 1, "v": 1}], extra)
    JsonRowsSource.calls.clear()
    result = project.run()
    st = {n.name: n for n in result.nodes}
    assert st["events"].status == "failed"
    assert "gave up after 2 attempts" in (st["events"].error or "")
    assert st["total"].reason == "upstream events failed"
    assert "events" not in project.state.published("prod")


@pytest.mark.parametrize("mode", ["evolve", "ignore", "fail"])
def test_schema_drift_on_append(tmp_path: Path, mode: str) -> None:
    rows = [{"id": 1, "v": 1, "old": "a"}]
    project = make(tmp_path, rows, f'cursor = "id"\non_schema_change = "{mode}"\n')
    project.run()
    set_rows(project, rows + [{"id": 2, "v": 2, "new": 1.5}])
    result = project.run()
    events = {n.name: n for n in result.nodes}["events"]
    if mode == "fail":
        assert events.status == "failed"
        assert "new column(s) new" in (events.error or "")
        assert "missing column(s) old" in (events.error or "")
        assert project.query("SELECT count(*) AS n FROM events").to_pylist() == [{"n": 1}]
        return
    assert events.status == "executed"
    data = project.query("SELECT * FROM events ORDER BY id").to_pylist()
    assert data[1]["old"] is None  # dropped column kept as NULL
    assert any("missing from the new data" in w for w in events.warnings)
    if mode == "evolve":
        assert data[1]["new"] == 1.5 and data[0]["new"] is None
    else:
        assert "new" not in data[1]


def test_incompatible_type_change_names_column_and_types(tmp_path: Path) -> None:
    rows = [{"id": 1, "v": 1}]
    project = make(tmp_path, rows, 'cursor = "id"\n')
    project.run()
    set_rows(project, rows + [{"id": 2, "v": "not a number"}])
    result = project.run()
    events = {n.name: n for n in result.nodes}["events"]
    assert events.status == "failed"
    assert "column 'v' changed type from BIGINT to VARCHAR" in (events.error or "")


def test_quarantined_csv_rows_land_in_rejected_table(tmp_path: Path) -> None:
    root = write_project(tmp_path / "q", {
        "data/a.csv": "id,amount\n1,10\n2,oops\n3,30\n",
        "sources/sales.toml": 'type = "files"\npath = "data/a.csv"\non_bad_rows = "quarantine"\n'
                              'columns = { id = "INTEGER", amount = "INTEGER" }\n',
        "transforms/total.sql": "SELECT sum(amount) AS s, count(*) AS n FROM sales\n",
    })
    project = Project(root)
    result = project.run()
    if not result.ok:
        pytest.fail(str([n.error for n in result.nodes]))
    assert project.table("total").to_pylist() == [{"s": 40, "n": 2}]
    rejected = project.query("SELECT * FROM sales__rejected").to_pylist()
    assert len(rejected) == 1 and "oops" in rejected[0]["raw"]
