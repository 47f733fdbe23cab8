"""Planning: for every selected node, skip / publish / run, and why.

The plan compares what each node *would* be now (its fingerprint) with what
the environment publishes and what physical tables exist, one node at a time in
topological order, by the ordered rules of :mod:`headwater.plan.deciders`. A node whose
upstream will be rebuilt cannot know its fingerprint until that upstream's
content is known, so it is planned as ``run`` with ``pending = True``; the
runner settles it once the upstream finished (and may then skip it because
the upstream's output did not change). The plan itself is frozen
(:mod:`headwater.plan.model`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from functools import partial
from typing import TYPE_CHECKING

from headwater.core.fingerprint import combine
from headwater.core.nodes import SourceNode
from headwater.errors import ConnectorError
from headwater.load.loader import LoadedProject
from headwater.plan.deciders import DECIDERS, UNREACHABLE, Context, Decider, decide
from headwater.plan.model import NodePlan, Plan
from headwater.state.store import PhysicalInfo, Published

if TYPE_CHECKING:
    from headwater.connectors.filecache import FileDigests

__all__ = ["NodePlan", "Plan", "build_plan", "identity_of", "source_data_fps"]


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
    file_digests: FileDigests | None = None,
    source_errors: Mapping[str, str] | None = None,
    deciders: tuple[Decider, ...] = DECIDERS,
) -> Plan:
    """Decide what to do with each selected node, in topological order, by the first
    answer of ``deciders``; pure but for reading source data fingerprints."""
    chosen = frozenset(selected)
    forced = set(force)
    ident: dict[str, str | None] = {}
    struct: dict[str, str] = {}  # code-only fingerprints: what incremental tables are keyed by
    out: list[NodePlan] = []
    for name in project.graph.order():
        node = project.nodes[name]
        pub = published.get(name)
        ups = project.graph.upstream[name]
        struct[name] = combine(node.kind, node.code_fp, {u: struct[u] for u in ups})
        if name not in chosen:
            ident[name] = identity_of(pub, physical)
            continue
        ctx = Context(
            node=node, env=env, pub=pub, physical=physical, upstreams=tuple(ups),
            chosen=chosen, ident=ident, struct_fp=struct[name], root=project.root,
            forced=name in forced, deferred=(deferred or {}).get(name),
            backfill=(backfill or {}).get(name), shared_data_fps=shared_data_fps or {},
            read_data_fp=partial(_data_fp, project, name, data_fps or {}),
            partitioned=isinstance(node, SourceNode) and project.partitioned(name),
        )
        plan = decide(ctx, deciders)
        out.append(plan)
        ident[name] = identity_of(pub, physical) if plan.action == "defer" else \
            _identity(plan, physical)
    known = {n: i for n, i in ident.items() if i is not None}
    return Plan(env, tuple(out), known, file_digests=file_digests,
                source_errors=dict(source_errors or {}))


def _data_fp(project: LoadedProject, name: str, known: Mapping[str, str]) -> str:
    return known.get(name) or source_data_fps(project, [name])[name]


def _identity(plan: NodePlan, physical: Mapping[str, PhysicalInfo]) -> str | None:
    """The content identity a planned node will show (None: known only after this run)."""
    if plan.action == "run":
        return None
    info = physical.get(plan.physical or "")
    return (info.content_fp if info else None) or plan.fingerprint


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
            connector = project.source_connector(name)
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

