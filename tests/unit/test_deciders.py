"""The planner's rules one at a time, and the planner over a small graph, without a
project on disk, a warehouse or a state store: nodes, published records and physical
tables are plain records."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest

from headwater.core.config import ProjectConfig, SinkConfig, SourceConfig
from headwater.core.fingerprint import combine, physical_name
from headwater.core.incremental import parse_incremental
from headwater.core.nodes import Ref, SinkNode, SourceNode, SqlNode
from headwater.errors import ProjectError
from headwater.graph.dag import Graph
from headwater.load.loader import LoadedProject
from headwater.plan import deciders
from headwater.plan.deciders import DECIDERS, Context, decide
from headwater.plan.model import NodePlan, Plan
from headwater.plan.planner import build_plan
from headwater.state.store import PhysicalInfo, Published

ROOT = Path("/p")
AT = "2026-12-01T10:00:00"


def sql(name: str, *ups: str, code: str = "c1", **kw: object) -> SqlNode:
    return SqlNode(name=name, kind="sql", path=ROOT / f"transforms/{name}.sql",
                   refs=tuple(Ref(u) for u in ups), code_fp=code, sql="SELECT 1", **kw)


class CursorConfig(SourceConfig):
    cursor: str | None = None


def source(name: str, cursor: str | None = None) -> SourceNode:
    config = CursorConfig(type="test", cursor=cursor)
    return SourceNode(name=name, kind="source", path=ROOT / f"sources/{name}.toml",
                      code_fp="s1", config=config)


def sink(name: str, of: str) -> SinkNode:
    return SinkNode(name=name, kind="sink", path=ROOT / f"sinks/{name}.toml",
                    refs=(Ref(of),), code_fp="k1",
                    config=SinkConfig.model_validate({"type": "test", "from": of}))


def ctx(node: object, **kw: object) -> Context:
    base: dict[str, object] = dict(env="prod", pub=None, physical={}, upstreams=(),
                                   chosen=frozenset({node.name}),  # type: ignore[attr-defined]
                                   ident={}, struct_fp="struct", root=ROOT)
    base.update(kw)
    return Context(node=node, **base)  # type: ignore[arg-type]


def published(node: str, fp: str, physical: str | None, code: str = "c1", **kw: object
              ) -> Published:
    return Published(node, "sql", fp, physical, code, kw.get("data_fp"),  # type: ignore[arg-type]
                     dict(kw.get("upstream", {})), AT)  # type: ignore[call-overload]


def info(physical: str, node: str, fp: str, content: str | None = "content", **meta: object
         ) -> PhysicalInfo:
    return PhysicalInfo(physical, node, fp, content, 1, [("a", "INTEGER")], AT, dict(meta))


# -- each decider alone ----------------------------------------------------------------


def test_deferred_keeps_what_is_published_and_says_why() -> None:
    plan = deciders.deferred(ctx(sql("a"), deferred="source s is read only 02:00-05:00"))
    assert plan == NodePlan("a", "sql", "defer", "source s is read only 02:00-05:00")
    assert deciders.deferred(ctx(sql("a"))) is None


def test_an_unselected_never_built_upstream_is_an_error_naming_the_fix() -> None:
    with pytest.raises(ProjectError, match="needs u, which has never been built") as err:
        deciders.upstreams_built(ctx(sql("a", "u"), upstreams=("u",)))
    assert "--select +a" in err.value.render()
    # built before (it has an identity) or selected too: fine
    assert deciders.upstreams_built(ctx(sql("a", "u"), upstreams=("u",), ident={"u": "x"})) \
        is None
    assert deciders.upstreams_built(ctx(sql("a", "u"), upstreams=("u",),
                                        chosen=frozenset({"a", "u"}))) is None


def test_sinks_write_only_from_prod() -> None:
    assert deciders.dev_sink(ctx(sink("out", "a"), env="dev")) == NodePlan(
        "out", "sink", "skip", "sinks write only from prod")
    assert deciders.dev_sink(ctx(sink("out", "a"))) is None


def test_pending_when_an_upstream_is_built_in_this_run() -> None:
    c = ctx(sql("b", "a"), upstreams=("a",), chosen=frozenset({"a", "b"}), ident={"a": None})
    plan = deciders.pending(c)
    assert plan is not None and (plan.action, plan.pending, plan.reason) == (
        "run", True, "upstream a changed")
    assert deciders.pending(ctx(sql("b", "a"), upstreams=("a",), ident={"a": "x"})) is None


def test_default_skips_publishes_or_runs_by_fingerprint() -> None:
    node = sql("a")
    fp = combine("sql", "c1", {}, "")
    phys = physical_name("a", fp)
    assert deciders.default(ctx(node)).reason == "never built"
    pub = published("a", fp, phys)
    skip = deciders.default(ctx(node, pub=pub, physical={phys: info(phys, "a", fp)}))
    assert (skip.action, skip.reason, skip.physical) == ("skip", "up to date", phys)
    # the same code built earlier (another environment, a revert): published for free
    again = deciders.default(ctx(node, physical={phys: info(phys, "a", fp)}))
    assert again.action == "publish" and again.reason.startswith("reusing the build of")
    edited = deciders.default(ctx(sql("a", code="c2"), pub=pub, physical={phys: info(
        phys, "a", fp)}))
    assert (edited.action, edited.reason) == ("run", "code changed (transforms/a.sql)")
    forced = deciders.default(ctx(node, pub=pub, physical={phys: info(phys, "a", fp)},
                                  forced=True))
    assert (forced.action, forced.forced) == ("run", True)


def test_default_says_a_source_could_not_be_read() -> None:
    plan = deciders.default(ctx(source("s"), read_data_fp=lambda: "unreachable:x"))
    assert plan.action == "run" and "could not be read while planning" in plan.reason


def test_appendable_sources_keep_one_table_and_append() -> None:
    node = source("s", cursor="updated_at")
    assert deciders.appendable(ctx(source("s"))) is None  # no cursor, not partitioned
    first = deciders.appendable(ctx(node, read_data_fp=lambda: "d1"))
    assert first is not None and (first.action, first.reason) == ("run", "never built")
    fp = first.fingerprint or ""
    base = first.physical or ""
    physical = {base: info(base, "s", fp)}
    pub = Published("s", "source", fp, base, "s1", "d1", {}, AT)
    same = deciders.appendable(ctx(node, pub=pub, physical=physical, read_data_fp=lambda: "d1"))
    assert same is not None and same.action == "skip"
    new = deciders.appendable(ctx(node, pub=pub, physical=physical, read_data_fp=lambda: "d2"))
    assert new is not None and new.reason == "new data in source s (append past the cursor)"
    # partitioned (files) sources are appendable without a cursor
    assert deciders.appendable(ctx(source("f"), partitioned=True,
                                   read_data_fp=lambda: "d")) is not None


def test_incremental_transforms_full_build_then_in_place() -> None:
    node = sql("daily", "events", incremental=parse_incremental("by day day from ts"))
    assert deciders.incremental(ctx(sql("plain"))) is None
    first = deciders.incremental(ctx(node, upstreams=("events",), ident={"events": "e1"}))
    assert first is not None and first.incremental and first.reason == "never built (full build)"
    base = first.physical or ""
    physical = {base: info(base, "daily", "struct", role="base")}
    later = deciders.incremental(ctx(node, upstreams=("events",), ident={"events": "e2"},
                                     physical=physical))
    assert later is not None and (later.action, later.reason) == (
        "run", "upstream events changed (incremental)")
    back = deciders.incremental(ctx(node, upstreams=("events",), ident={"events": "e1"},
                                    physical=physical, backfill=("2026-11-01", "2026-11-03")))
    assert back is not None and back.backfill == ("2026-11-01", "2026-11-03")
    assert back.reason == "backfill 2026-11-01 .. 2026-11-03"


def test_the_rules_are_tried_in_order() -> None:
    assert [d.__name__ for d in DECIDERS] == [
        "deferred", "upstreams_built", "dev_sink", "incremental", "pending", "appendable",
        "default"]
    seen: list[str] = []

    def note(name: str, answer: NodePlan | None = None):  # type: ignore[no-untyped-def]
        def rule(c: Context) -> NodePlan | None:
            seen.append(name)
            return answer
        return rule

    stop = NodePlan("a", "sql", "skip", "decided")
    assert decide(ctx(sql("a")), (note("one"), note("two", stop), note("three"))) is stop
    assert seen == ["one", "two"]


# -- the planner over a graph ----------------------------------------------------------


def project(*nodes: object) -> LoadedProject:
    by_name = {n.name: n for n in nodes}  # type: ignore[attr-defined]
    graph = Graph({n: [r.name for r in by_name[n].refs] for n in by_name})
    return LoadedProject(ROOT, ProjectConfig(name="t"), ROOT / "headwater.toml",
                         by_name, graph)  # type: ignore[arg-type]


def test_a_plan_is_frozen_and_ordered_topologically() -> None:
    p = project(sql("b", "a"), sql("a"))
    plan = build_plan(p, env="prod", selected=["a", "b"], published={}, physical={})
    assert isinstance(plan, Plan) and [n.name for n in plan.nodes] == ["a", "b"]
    assert [(n.action, n.reason) for n in plan.nodes] == [
        ("run", "never built"), ("run", "upstream a changed")]
    assert plan.node("b").pending
    with pytest.raises(FrozenInstanceError):
        plan.nodes[0].action = "skip"  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        plan.env = "dev"  # type: ignore[misc]


def test_an_unchanged_graph_plans_nothing_and_knows_every_identity() -> None:
    p = project(sql("a"), sql("b", "a"))
    fa = combine("sql", "c1", {}, "")
    pa = physical_name("a", fa)
    fb = combine("sql", "c1", {"a": "content-a"}, "")
    pb = physical_name("b", fb)
    plan = build_plan(
        p, env="prod", selected=["a", "b"],
        published={"a": published("a", fa, pa), "b": published("b", fb, pb,
                                                                upstream={"a": "content-a"})},
        physical={pa: info(pa, "a", fa, "content-a"), pb: info(pb, "b", fb, "content-b")})
    assert [n.action for n in plan.nodes] == ["skip", "skip"]
    assert plan.identities == {"a": "content-a", "b": "content-b"}
    assert plan.to_run == []


def test_custom_deciders_replace_the_rules() -> None:
    p = project(sql("a"))

    def everything_skips(c: Context) -> NodePlan:
        return NodePlan(c.name, c.node.kind, "skip", "told so")

    plan = build_plan(p, env="prod", selected=["a"], published={}, physical={},
                      deciders=(everything_skips,))
    assert plan.nodes[0].reason == "told so"
