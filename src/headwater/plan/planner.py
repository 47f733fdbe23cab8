"""Planning: for every selected node, skip / publish / run, and why.

The plan compares what each node *would* be now (its fingerprint) with what
the environment publishes and what physical tables exist. A node whose
upstream will be rebuilt cannot know its fingerprint until that upstream's
content is known, so it is planned as ``run`` with ``pending = True``; the
runner settles it once the upstream finished (and may then skip it because
the upstream's output did not change).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from headwater.core.fingerprint import combine, physical_name
from headwater.core.nodes import Node, SourceNode
from headwater.engines.base import DEFAULT_ENV
from headwater.errors import ConnectorError, ProjectError
from headwater.load.loader import LoadedProject
from headwater.state.store import PhysicalInfo, Published

if TYPE_CHECKING:
    from headwater.connectors.filecache import FileDigests

Action = Literal["skip", "publish", "run", "defer"]


@dataclass
class NodePlan:
    name: str
    kind: str
    action: Action
    reason: str
    fingerprint: str | None = None
    physical: str | None = None
    pending: bool = False  # fingerprint depends on upstreams built in this run
    rebuild: bool = False  # drop an appendable table and load it from scratch
    forced: bool = False  # --full-refresh: built whatever the fingerprints say
    incremental: bool = False  # updated in place; runs when upstream content changed
    backfill: tuple[str, str] | None = None  # window labels [start, end) to recompute
    data_fp: str | None = None
    upstream: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("upstream")
        d.pop("backfill")
        return d


@dataclass
class Plan:
    env: str
    nodes: list[NodePlan]
    identities: dict[str, str]  # content identity of every node known before the run
    # the file digests planning computed: the run's loads reuse them (not serialised)
    file_digests: FileDigests | None = field(default=None, repr=False, compare=False)
    # sources that could not be read while planning: name -> the error a user can act on
    source_errors: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"env": self.env, "nodes": [n.to_json() for n in self.nodes]}
        if self.source_errors:
            out["source_errors"] = dict(self.source_errors)
        return out

    @property
    def to_run(self) -> list[NodePlan]:
        return [n for n in self.nodes if n.action not in ("skip", "defer")]


def identity_of(pub: Published | None, physical: Mapping[str, PhysicalInfo]) -> str | None:
    """A published node's content identity: its content fingerprint, else its fingerprint."""
    if pub is None:
        return None
    if pub.physical and pub.physical in physical:
        return physical[pub.physical].content_fp or pub.fingerprint
    return pub.fingerprint if pub.physical is None else None


def build_plan(
    project: LoadedProject,
    *,
    env: str,
    selected: Iterable[str],
    published: Mapping[str, Published],
    physical: Mapping[str, PhysicalInfo],
    force: Iterable[str] = (),
    data_fps: Mapping[str, str] | None = None,
    deferred: Mapping[str, str] | None = None,
    shared_data_fps: Mapping[str, str] | None = None,
    backfill: Mapping[str, tuple[str, str]] | None = None,
) -> Plan:
    """Decide what to do with each selected node; pure but for source data fingerprints."""
    chosen = set(selected)
    forced = set(force)
    ident: dict[str, str | None] = {}
    struct: dict[str, str] = {}  # code-only fingerprints: what incremental tables are keyed by
    out: list[NodePlan] = []
    for name in project.graph.order():
        node = project.nodes[name]
        pub = published.get(name)
        struct[name] = combine(node.kind, node.code_fp,
                               {u: struct[u] for u in project.graph.upstream[name]})
        if name not in chosen:
            ident[name] = identity_of(pub, physical)
            continue
        ups = project.graph.upstream[name]
        if deferred and name in deferred:
            # its source is outside its availability window: keep what is published
            out.append(NodePlan(name, node.kind, "defer", deferred[name]))
            ident[name] = identity_of(pub, physical)
            continue
        missing = [u for u in ups if u not in chosen and ident.get(u) is None]
        if missing:
            raise ProjectError(
                f"{name} needs {missing[0]}, which has never been built in env {env!r}",
                path=node.path,
                hint=f"select it too: --select +{name}",
            )
        if node.kind == "sink" and env != DEFAULT_ENV:
            # a dev environment must never overwrite production destinations
            out.append(NodePlan(name, node.kind, "skip", f"sinks write only from {DEFAULT_ENV}"))
            ident[name] = None
            continue
        data_fp = None
        if isinstance(node, SourceNode):
            data_fp = (data_fps or {}).get(name) or source_data_fps(project, [name])[name]
        pending_up = [u for u in ups if u in chosen and ident.get(u) is None]
        if getattr(node, "incremental", None) is not None:
            plan = decide_incremental(node, struct[name], pub, physical, ident, pending_up,
                                      forced=name in forced, root=project.root)
            if backfill and name in backfill and not plan.rebuild:
                start, end = backfill[name]
                plan.action, plan.backfill = "run", (start, end)
                plan.physical = current_base(name, plan.fingerprint or "", pub, physical)
                plan.pending = bool(pending_up)
                plan.reason = f"backfill {start} .. {end}"
            out.append(plan)
            info = physical.get(plan.physical or "")
            ident[name] = None if plan.action == "run" else (
                (info.content_fp if info else None) or plan.fingerprint)
            continue
        if pending_up:
            out.append(NodePlan(name, node.kind, "run",
                                "forced" if name in forced else f"upstream {pending_up[0]} changed",
                                pending=True, data_fp=data_fp, forced=name in forced))
            ident[name] = None
            continue
        upstream = {u: ident[u] or "" for u in ups}
        if isinstance(node, SourceNode) and appendable(node):
            plan = _unreachable(decide_appendable(node, pub, physical, forced=name in forced,
                                                  data_fp=data_fp, root=project.root,
                                                  shared_data_fps=shared_data_fps or {}),
                                data_fp)
            out.append(plan)
            info = physical.get(plan.physical or "")
            ident[name] = None if plan.action == "run" else (
                (info.content_fp if info else None) or plan.fingerprint)
            continue
        fp = combine(node.kind, node.code_fp, upstream, data_fp or "")
        plan = _unreachable(decide(node, fp, pub, physical, forced=name in forced,
                                   data_fp=data_fp, upstream=upstream, root=project.root),
                            data_fp)
        out.append(plan)
        if plan.action == "run":
            ident[name] = None
        elif node.kind == "sink":
            ident[name] = fp
        else:
            info = physical.get(plan.physical or "")
            ident[name] = (info.content_fp if info else None) or fp
    known = {n: i for n, i in ident.items() if i is not None}
    return Plan(env, out, known)


def decide(
    node: Node,
    fp: str,
    pub: Published | None,
    physical: Mapping[str, PhysicalInfo],
    *,
    forced: bool,
    data_fp: str | None,
    upstream: dict[str, str],
    root: Path,
) -> NodePlan:
    """The action for one node whose fingerprint is known."""
    phys = None if node.kind == "sink" else physical_name(node.name, fp)

    def plan(action: Action, reason: str) -> NodePlan:
        return NodePlan(node.name, node.kind, action, reason, fingerprint=fp, physical=phys,
                        data_fp=data_fp, upstream=upstream)

    if forced:
        forced_plan = plan("run", "forced")
        forced_plan.forced = True
        return forced_plan
    if pub is not None and pub.fingerprint == fp and (
            phys is None or (pub.physical or phys) in physical):
        # pub.physical may differ from the name fp gives: a node kept its table because
        # it reads none of the columns that changed upstream
        if pub.physical:
            return NodePlan(node.name, node.kind, "skip", "up to date", fingerprint=fp,
                            physical=pub.physical, data_fp=data_fp, upstream=upstream)
        return plan("skip", "up to date")
    if phys is not None and phys in physical:
        when = physical[phys].created_at[:19].replace("T", " ")
        return plan("publish", f"reusing the build of {when} (same code and inputs)")
    return plan("run", why(node, pub, upstream, data_fp, root))


def decide_incremental(
    node: Node,
    fp: str,
    pub: Published | None,
    physical: Mapping[str, PhysicalInfo],
    ident: Mapping[str, str | None],
    pending_up: list[str],
    *,
    forced: bool,
    root: Path,
) -> NodePlan:
    """An incremental transform keeps one table per code version and updates it in place
    (each change a new version: see ``headwater.engines.versioning``)."""
    phys = current_base(node.name, fp, pub, physical)
    ups = [r.name for r in node.refs]
    upstream = {u: ident.get(u) or "" for u in dict.fromkeys(ups)}

    def plan(action: Action, reason: str, **kw: Any) -> NodePlan:
        # pending: the upstream identities recorded after the run are known only then
        return NodePlan(node.name, node.kind, action, reason, fingerprint=fp, physical=phys,
                        upstream=upstream, incremental=True,
                        pending=bool(pending_up) and action == "run", **kw)

    if forced:
        phys = new_base(node.name, fp, physical)
        return plan("run", "forced (rebuilt from scratch)", rebuild=True, forced=True)
    if phys not in physical:
        return plan("run", why(node, pub, upstream, None, root) + " (full build)")
    if pending_up:
        return plan("run", f"upstream {pending_up[0]} changed (incremental)")
    if (pub is not None and pub.fingerprint == fp and pub.upstream == upstream
            and pub.physical in physical):
        return _at(plan("skip", "up to date"), pub.physical)
    shared = shared_snapshot(node.name, fp, physical, "inputs", upstream)
    if shared is not None:
        return _at(plan("publish", reuse_reason(physical[shared], "same code and inputs")),
                   shared)
    changed = [u for u in upstream if pub is None or pub.upstream.get(u) != upstream[u]]
    what = f"upstream {changed[0]} changed" if changed else "new environment"
    return plan("run", f"{what} (incremental)")


def _at(plan: NodePlan, physical: str | None) -> NodePlan:
    """``plan`` showing ``physical`` (a version of its in-place table) rather than the base."""
    plan.physical = physical
    return plan


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


def appendable(node: SourceNode) -> bool:
    """Sources updated in place: by cursor (databases, APIs) or by partition (files)."""
    connector = node.meta.get("connector")
    return bool(getattr(node.config, "cursor", None)) or bool(
        getattr(connector, "partitioned", False))


def decide_appendable(
    node: SourceNode,
    pub: Published | None,
    physical: Mapping[str, PhysicalInfo],
    *,
    forced: bool,
    data_fp: str | None,
    root: Path,
    shared_data_fps: Mapping[str, str] | None = None,
) -> NodePlan:
    """An incremental source keeps one physical table per config and appends to it (each
    load a new version: see ``headwater.engines.versioning``)."""
    fp = combine(node.kind, node.code_fp, {}, "appendable")
    phys = current_base(node.name, fp, pub, physical)

    def plan(action: Action, reason: str, rebuild: bool = False) -> NodePlan:
        return NodePlan(node.name, node.kind, action, reason, fingerprint=fp, physical=phys,
                        data_fp=data_fp, rebuild=rebuild, forced=forced)

    if forced:
        phys = new_base(node.name, fp, physical)
        return plan("run", "forced (reloaded from scratch)", rebuild=True)
    built = phys in physical
    if (built and pub is not None and pub.fingerprint == fp and pub.data_fp == data_fp
            and pub.physical in physical):
        return _at(plan("skip", "up to date"), pub.physical)
    shared = shared_snapshot(node.name, fp, physical, "data_fp", data_fp) if data_fp else None
    if shared is not None:
        return _at(plan("publish", reuse_reason(physical[shared], "same data")), shared)
    if built and pub is None and (shared_data_fps or {}).get(phys) == data_fp:
        # a table an older Headwater loaded (no versions): shared as it is
        return plan("publish", "sharing the table another environment loaded (same data)")
    if built:
        how = " (append past the cursor)" if getattr(node.config, "cursor", None) else ""
        return plan("run", f"new data in source {node.name}{how}")
    return plan("run", why(node, pub, {}, data_fp, root))


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


def source_data_fps(
    project: LoadedProject,
    names: Iterable[str],
    hash_cache: FileDigests | None = None,
    errors: dict[str, str] | None = None,
) -> dict[str, str]:
    """Data fingerprints of the named sources (cheap change markers).

    A source that cannot be read gets a fingerprint that never matches, so it is planned
    to run (its read reports the error); its error goes to ``errors`` when given.
    """
    from headwater.core.retry import with_retries
    from headwater.core.workers import call_with_timeout

    out: dict[str, str] = {}
    for name in names:
        node = project.nodes[name]
        if isinstance(node, SourceNode):
            connector = node.meta["connector"](node.name, node.config, project.root, node.path)
            connector.hash_cache = hash_cache
            # a database briefly unreachable while planning is retried like a read
            limit = node.timeout if node.timeout is not None else project.config.node_timeout
            try:
                out[name] = str(call_with_timeout(partial(
                    with_retries, connector.data_fingerprint, retries=node.config.retries,
                    delay=node.config.retry_delay), limit))
            except TimeoutError as exc:  # its read will be stopped as well
                out[name] = UNREACHABLE + uuid.uuid4().hex
                if errors is not None:
                    errors[name] = ConnectorError(
                        f"source {name!r}: looking for new data {exc}", path=node.path,
                        hint="raise its node_timeout, or make the source cheaper to check"
                    ).render()
            except ConnectorError as exc:
                # unreachable, or a permanent error (a missing table, a wrong password):
                # plan the source to run, so that only its read (which reports the error)
                # and what depends on it fail, not the whole project
                out[name] = UNREACHABLE + uuid.uuid4().hex
                if errors is not None:
                    errors[name] = exc.render()
    return out


UNREACHABLE = "unreachable:"  # data fingerprint of a source that could not be reached


def _unreachable(plan: NodePlan, data_fp: str | None) -> NodePlan:
    if data_fp is not None and data_fp.startswith(UNREACHABLE) and plan.action == "run":
        plan.reason = (f"source {plan.name} could not be read while planning; reading it"
                       " anyway (its error is below)")
    return plan
