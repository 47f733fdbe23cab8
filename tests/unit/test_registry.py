"""Third-party connectors register through the ``headwater.connectors`` entry point group."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from headwater.connectors import registry


@pytest.fixture
def plugin_on_path(tmp_path: Path):  # type: ignore[no-untyped-def]
    site = tmp_path / "site"
    dist = site / "hw_fake_plugin-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: hw-fake-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[headwater.connectors]\nfake = hw_fake_plugin:FakeSource\n")
    (site / "hw_fake_plugin.py").write_text(textwrap.dedent('''
        from typing import Any, Literal

        import pyarrow as pa

        from headwater.connectors.base import SourceConfig, SourceConnector


        class FakeConfig(SourceConfig):
            type: Literal["fake"] = "fake"
            rows: int = 3


        class FakeSource(SourceConnector):
            type = "fake"
            Config = FakeConfig

            def data_fingerprint(self) -> str:
                return str(self.config.rows)

            def read(self, since: Any = None) -> pa.RecordBatchReader:
                t = pa.table({"n": list(range(self.config.rows))})
                return pa.RecordBatchReader.from_batches(t.schema, t.to_batches())
    '''))
    sys.path.insert(0, str(site))
    registry._loaded_entry_points = False
    yield
    sys.path.remove(str(site))
    sys.modules.pop("hw_fake_plugin", None)
    registry._SOURCES.pop("fake", None)
    registry._loaded_entry_points = False


def test_entry_point_connector_is_found_and_runs(plugin_on_path: None, tmp_path: Path) -> None:
    assert "fake" in registry.source_types()
    from headwater import Project
    from headwater.testing import write_project

    root = write_project(tmp_path / "p", {
        "sources/numbers.toml": 'type = "fake"\nrows = 4\n',
        "transforms/total.sql": "SELECT sum(n) AS s FROM numbers\n",
    })
    project = Project(root)
    assert project.run().ok
    assert project.table("total").to_pylist() == [{"s": 6}]


def test_builtin_types_are_registered() -> None:
    assert {"files", "http", "postgres", "mysql"} <= set(registry.source_types())
    assert {"files", "postgres", "mysql"} <= set(registry.sink_types())
