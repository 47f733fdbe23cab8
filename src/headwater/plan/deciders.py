"""The planner's rules: an ordered list of small deciders, each testable alone.

Every decider looks at one node (a :class:`Context`: the node, what its environment
publishes, which physical tables exist, what was decided for its upstreams) and either
returns that node's :class:`~headwater.plan.model.NodePlan` or ``None`` to let the next one
decide, in the manner of sqlglot's ``optimizer.RULES``::

    deferred -> upstreams_built -> dev_sink -> incremental -> pending -> appendable -> default

The last one always decides. None of them changes anything: they return new records.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from headwater.core.fingerprint import combine, physical_name
from headwater.core.nodes import Node, SourceNode
from headwater.engines.base import DEFAULT_ENV
from headwater.errors import ProjectError
from headwater.plan.model import Action, NodePlan
from headwater.state.store import PhysicalInfo, Published

UNREACHABLE = "unreachable:"  # data fingerprint of a source that could not be reached


@dataclass
class Context:
    """What the deciders know of one selected node while planning."""

    node: Node
    env: str
    pub: Published | None
    physical: Mapping[str, PhysicalInfo]
    upstreams: tuple[str, ...]
    chosen: frozenset[str]
    # content identity of every node planned so far (None: known only after this run)
    ident: Mapping[str, str | None]
    struct_fp: str  # code-only fingerprint: what incremental tables are keyed by
    root: Path
    forced: bool = False
    deferred: str | None = None  # why the node waits for its source's window
    backfill: tuple[str, str] | None = None
    shared_data_fps: Mapping[str, str] = field(default_factory=dict)
    # the source's data fingerprint, read when a decider first asks for it
    read_data_fp: Callable[[], str | None] = lambda: None
    partitioned: bool = False  # a source updated per file (its connector's partitions)

    @property
    def name(self) -> str:
        return self.node.name

    @cached_property
    def data_fp(self) -> str | None:
        return self.read_data_fp() if isinstance(self.node, SourceNode) else None

    @cached_property
    def pending_up(self) -> list[str]:
        """Upstreams this run builds: their content is known only once they are built."""
        return [u for u in self.upstreams if u in self.chosen and self.ident.get(u) is None]

    @property
    def upstream_identities(self) -> dict[str, str]:
        return {u: self.ident.get(u) or "" for u in self.upstreams}


Decider = Callable[[Context], NodePlan | None]


def deferred(ctx: Context) -> NodePlan | None:
    """Its source is outside its availability window: keep what is published."""
    if ctx.deferred is None:
        return None
    return NodePlan(ctx.name, ctx.node.kind, "defer", ctx.deferred)


def upstreams_built(ctx: Context) -> NodePlan | None:
    """A node outside the selection that was never built cannot be read: say so."""
    missing = [u for u in ctx.upstreams if u not in ctx.chosen and ctx.ident.get(u) is None]
    if missing:
        raise ProjectError(
            f"{ctx.name} needs {missing[0]}, which has never been built in env {ctx.env!r}",
            path=ctx.node.path,
            hint=f"select it too: --select +{ctx.name}",
        )
    return None


def dev_sink(ctx: Context) -> NodePlan | None:
    """A dev environment must never overwrite production destinations."""
    if ctx.node.kind == "sink" and ctx.env != DEFAULT_ENV:
        return NodePlan(ctx.name, ctx.node.kind, "skip", f"sinks write only from {DEFAULT_ENV}")
    return None


def incremental(ctx: Context) -> NodePlan | None:
    """An incremental transform keeps one table per code version and updates it in place
    (each change a new version: see ``headwater.engines.versioning``)."""
    node = ctx.node
    if node.incremental is None:
        return None
    fp, pub, physical = ctx.struct_fp, ctx.pub, ctx.physical
    phys = current_base(node.name, fp, pub, physical)
    upstream = {u: ctx.ident.get(u) or "" for u in dict.fromkeys(r.name for r in node.refs)}
    pending_up = ctx.pending_up

    def plan(action: Action, reason: str, **kw: Any) -> NodePlan:
        # pending: the upstream identities recorded after the run are known only then
        return NodePlan(node.name, node.kind, action, reason, fingerprint=fp, physical=phys,
                        upstream=upstream, incremental=True,
                        pending=bool(pending_up) and action == "run", **kw)

    if ctx.forced:
        phys = new_base(node.name, fp, physical)
        return plan("run", "forced (rebuilt from scratch)", rebuild=True, forced=True)
    if ctx.backfill is not None:
        start, end = ctx.backfill
        return plan("run", f"backfill {start} .. {end}", backfill=(start, end))
    if phys not in physical:
        return plan("run", why(node, pub, upstream, None, ctx.root) + " (full build)")
    if pending_up:
        return plan("run", f"upstream {pending_up[0]} changed (incremental)")
    if (pub is not None and pub.fingerprint == fp and pub.upstream == upstream
            and pub.physical in physical):
        return plan("skip", "up to date").but(physical=pub.physical)
    shared = shared_snapshot(node.name, fp, physical, "inputs", upstream)
    if shared is not None:
        return plan("publish", reuse_reason(physical[shared], "same code and inputs")
                    ).but(physical=shared)
    changed = [u for u in upstream if pub is None or pub.upstream.get(u) != upstream[u]]
    what = f"upstream {changed[0]} changed" if changed else "new environment"
    return plan("run", f"{what} (incremental)")


def pending(ctx: Context) -> NodePlan | None:
    """An upstream is built in this run: the node's fingerprint is settled by the runner
    once that upstream's content is known."""
    if not ctx.pending_up:
        return None
    return NodePlan(ctx.name, ctx.node.kind, "run",
                    "forced" if ctx.forced else f"upstream {ctx.pending_up[0]} changed",
                    pending=True, data_fp=ctx.data_fp, forced=ctx.forced)


def appendable(ctx: Context) -> NodePlan | None:
    """An incremental source keeps one physical table per config and appends to it (each
    load a new version: see ``headwater.engines.versioning``)."""
    node = ctx.node
    if not isinstance(node, SourceNode) or not is_appendable(node, ctx.partitioned):
        return None
    pub, physical, data_fp = ctx.pub, ctx.physical, ctx.data_fp
    fp = combine(node.kind, node.code_fp, {}, "appendable")
    phys = current_base(node.name, fp, pub, physical)

    def plan(action: Action, reason: str, rebuild: bool = False) -> NodePlan:
        return unreachable(NodePlan(node.name, node.kind, action, reason, fingerprint=fp,
                                    physical=phys, data_fp=data_fp, rebuild=rebuild,
                                    forced=ctx.forced))

    if ctx.forced:
        phys = new_base(node.name, fp, physical)
        return plan("run", "forced (reloaded from scratch)", rebuild=True)
    built = phys in physical
    if (built and pub is not None and pub.fingerprint == fp and pub.data_fp == data_fp
            and pub.physical in physical):
        return plan("skip", "up to date").but(physical=pub.physical)
    shared = shared_snapshot(node.name, fp, physical, "data_fp", data_fp) if data_fp else None
    if shared is not None:
        return plan("publish", reuse_reason(physical[shared], "same data")).but(physical=shared)
    if built and pub is None and ctx.shared_data_fps.get(phys) == data_fp:
        # a table an older Headwater loaded (no versions): shared as it is
        return plan("publish", "sharing the table another environment loaded (same data)")
    if built:
        how = " (append past the cursor)" if node.config.cursor_column else ""
        return plan("run", f"new data in source {node.name}{how}")
    return plan("run", why(node, pub, {}, data_fp, ctx.root))


def default(ctx: Context) -> NodePlan:
    """A node whose fingerprint is known now: skip it, publish a table built before, or
    run it."""
    node, pub, physical, data_fp = ctx.node, ctx.pub, ctx.physical, ctx.data_fp
    upstream = ctx.upstream_identities
    fp = combine(node.kind, node.code_fp, upstream, data_fp or "")
    phys = None if node.kind == "sink" else physical_name(node.name, fp)

    def plan(action: Action, reason: str, **kw: Any) -> NodePlan:
        return unreachable(NodePlan(node.name, node.kind, action, reason, fingerprint=fp,
                                    physical=phys, data_fp=data_fp, upstream=upstream, **kw))

    if ctx.forced:
        return plan("run", "forced", forced=True)
    if pub is not None and pub.fingerprint == fp and (
            phys is None or (pub.physical or phys) in physical):
        # pub.physical may differ from the name fp gives: a node kept its table because
        # it reads none of the columns that changed upstream
        return plan("skip", "up to date").but(physical=pub.physical or phys)
    if phys is not None and phys in physical:
        when = physical[phys].created_at[:19].replace("T", " ")
        return plan("publish", f"reusing the build of {when} (same code and inputs)")
    return plan("run", why(node, pub, upstream, data_fp, ctx.root))


DECIDERS: tuple[Decider, ...] = (deferred, upstreams_built, dev_sink, incremental, pending,
                                 appendable, default)


def decide(ctx: Context, deciders: tuple[Decider, ...] = DECIDERS) -> NodePlan:
    """The first answer of ``deciders`` for one node."""
    for decider in deciders:
        plan = decider(ctx)
        if plan is not None:
            return plan
    raise AssertionError(f"no decider decided {ctx.name}")  # pragma: no cover - default does


# -- what the deciders share (the runner settles pending nodes with them too) -------------


def unreachable(plan: NodePlan) -> NodePlan:
    """A source that could not be read while planning runs anyway, and says why."""
    if plan.data_fp is not None and plan.data_fp.startswith(UNREACHABLE) and \
            plan.action == "run":
        return plan.but(reason=f"source {plan.name} could not be read while planning;"
                        " reading it anyway (its error is below)")
    return plan


def is_appendable(node: SourceNode, partitioned: bool) -> bool:
    """Sources updated in place: by cursor (databases, APIs) or by partition (files)."""
    return bool(node.config.cursor_column) or partitioned


def snapshot_base(physical: str) -> str:
    """The in-place table a snapshot shows (a table that is no snapshot: itself)."""
    from headwater.engines.versioning import parse_snapshot

    parsed = parse_snapshot(physical)
    return parsed[0] if parsed else physical


def current_base(
    name: str, fp: str, pub: Published | None, physical: Mapping[str, PhysicalInfo]
) -> str:
    """The in-place table an environment goes on from: the one it publishes a version of,
    else the newest one of the same code, else the first of that code."""
    if pub is not None and pub.fingerprint == fp and pub.physical:
        return snapshot_base(pub.physical)
    bases = [i for i in physical.values() if i.node == name and i.fingerprint == fp
             and i.meta.get("role") == "base"]
    if bases:
        return max(bases, key=lambda i: i.created_at).physical
    return physical_name(name, fp)


def new_base(name: str, fp: str, physical: Mapping[str, PhysicalInfo]) -> str:
    """A name for a new in-place table of the same code (a rebuild from scratch): the
    versions other environments publish of the current one stay as they are."""
    first = physical_name(name, fp)
    if first not in physical:
        return first
    n = 1
    while (candidate := physical_name(name, combine("generation", fp, {}, str(n)))) in physical:
        n += 1
    return candidate


def shared_snapshot(
    name: str, fp: str, physical: Mapping[str, PhysicalInfo], key: str, value: object
) -> str | None:
    """The newest recorded version of an in-place table of this code whose ``key`` (the
    data it holds, the inputs it was built from) is ``value``: publishing it is free."""
    found = [i for i in physical.values() if i.node == name and i.fingerprint == fp
             and i.meta.get("base") and i.meta.get(key) == value]
    return max(found, key=lambda i: i.created_at).physical if found else None


def reuse_reason(info: PhysicalInfo, what: str) -> str:
    when = info.created_at[:19].replace("T", " ")
    return f"reusing the build of {when} ({what})"


def why(
    node: Node, pub: Published | None, upstream: dict[str, str], data_fp: str | None, root: Path
) -> str:
    if pub is None:
        return "never built" if node.kind != "sink" else "never written"
    if pub.code_fp != node.code_fp:
        rel = node.path.relative_to(root) if node.path.is_relative_to(root) else node.path
        what = "code" if node.kind in ("sql", "python") else "config"
        return f"{what} changed ({rel})"
    if node.kind == "source" and data_fp != pub.data_fp:
        return f"new data in source {node.name}"
    for u in sorted(upstream):
        if pub.upstream.get(u) != upstream[u]:
            return f"upstream {u} changed"
    return "previous build missing"
