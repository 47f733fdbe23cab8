"""The runner on its own: a frozen plan in, outcomes recorded beside it (never in it),
on an embedded DuckDB and a state store in a temporary folder, without ``Project``."""

from __future__ import annotations

from pathlib import Path

import pytest

from headwater.core.config import ProjectConfig
from headwater.core.nodes import Ref, SqlNode
from headwater.engines.duckdb import DuckDBEngine
from headwater.graph.dag import Graph
from headwater.load.loader import LoadedProject
from headwater.plan.planner import build_plan
from headwater.run.runner import Runner
from headwater.state.store import StateStore


def node(root: Path, name: str, select: str, *ups: str, code: str | None = None) -> SqlNode:
    return SqlNode(name=name, kind="sql", path=root / f"transforms/{name}.sql",
                   refs=tuple(Ref(u) for u in ups), code_fp=code or select, sql=select)


def loaded(root: Path, *nodes: SqlNode) -> LoadedProject:
    by_name = {n.name: n for n in nodes}
    graph = Graph({n.name: [r.name for r in n.refs] for n in nodes})
    return LoadedProject(root, ProjectConfig(name="t"), root / "headwater.toml",
                         dict(by_name), graph)


@pytest.fixture
def engine(tmp_path: Path):  # type: ignore[no-untyped-def]
    e = DuckDBEngine(tmp_path / "w.duckdb")
    e.open()
    yield e
    e.close()


def run(project: LoadedProject, engine: DuckDBEngine, state: StateStore):  # type: ignore[no-untyped-def]
    plan = build_plan(project, env="prod", selected=list(project.nodes),
                      published=state.published("prod"), physical=state.all_physical())
    before = plan.to_json()
    runner = Runner(project, engine, state, env="prod", threads=2)
    result = runner.run(plan)
    assert plan.to_json() == before, "the runner changed the plan"
    return plan, runner, result


def test_a_run_builds_publishes_and_records_settled_nodes_beside_the_plan(
        tmp_path: Path, engine: DuckDBEngine) -> None:
    state = StateStore(tmp_path / "state.db")
    a = node(tmp_path, "a", "SELECT 1 AS x UNION ALL SELECT 2")
    b = node(tmp_path, "b", "SELECT sum(x) AS total FROM a", "a")
    plan, runner, result = run(loaded(tmp_path, a, b), engine, state)
    assert result.ok and [(n.name, n.status) for n in result.nodes] == [
        ("a", "executed"), ("b", "executed")]
    assert plan.node("b").pending and plan.node("b").fingerprint is None
    settled = runner.settled["b"]
    assert not settled.pending and settled.fingerprint and settled.upstream["a"]
    assert engine.query("SELECT total FROM b").to_pylist() == [{"total": 3}]
    assert set(state.published("prod")) == {"a", "b"}


def test_an_upstream_rebuilt_to_the_same_output_skips_its_downstream(
        tmp_path: Path, engine: DuckDBEngine) -> None:
    state = StateStore(tmp_path / "state.db")
    b = node(tmp_path, "b", "SELECT sum(x) AS total FROM a", "a")
    run(loaded(tmp_path, node(tmp_path, "a", "SELECT 1 AS x"), b), engine, state)
    # new code, same rows: a runs, b is settled as unchanged
    plan, runner, result = run(loaded(tmp_path, node(tmp_path, "a", "SELECT 1 AS x",
                                                     code="edited"), b), engine, state)
    assert [(n.name, n.status, n.reason) for n in result.nodes] == [
        ("a", "executed", "code changed (transforms/a.sql)"),
        ("b", "skipped", "upstream a rebuilt, output unchanged")]
    assert plan.node("b").action == "run" and runner.settled["b"].action == "skip"


def test_a_failed_node_skips_its_downstream_and_publishes_nothing(
        tmp_path: Path, engine: DuckDBEngine) -> None:
    state = StateStore(tmp_path / "state.db")
    a = node(tmp_path, "a", "SELECT x FROM no_such_table")
    b = node(tmp_path, "b", "SELECT * FROM a", "a")
    c = node(tmp_path, "c", "SELECT 1 AS y")
    _, _, result = run(loaded(tmp_path, a, b, c), engine, state)
    by = {n.name: n for n in result.nodes}
    assert not result.ok
    assert (by["a"].status, by["b"].status, by["b"].reason, by["c"].status) == (
        "failed", "skipped", "upstream a failed", "executed")
    assert set(state.published("prod")) == {"c"}
