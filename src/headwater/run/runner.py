"""Executing a plan: in parallel where the DAG allows, publishing atomically.

Workers build physical tables; the coordinating thread records every result
in the state store and swaps public views, so a node becomes visible only
after its build succeeded. A failed node's downstream is skipped; its
siblings go on.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from headwater.core.fingerprint import combine, physical_name
from headwater.core.nodes import SourceNode, SqlNode
from headwater.core.workers import Workers
from headwater.engines.base import Engine
from headwater.engines.base import quote_ident as _q
from headwater.engines.versioning import parse_snapshot, rows_versioned, same_projection
from headwater.errors import HeadwaterError, display_path
from headwater.load.loader import LoadedProject
from headwater.plan.deciders import is_appendable, reuse_reason, shared_snapshot
from headwater.plan.model import NodePlan, Plan
from headwater.state.store import PhysicalInfo, Published, StateStore, now

if TYPE_CHECKING:
    from headwater.connectors.filecache import FileDigests
    from headwater.run.build import BuildOutcome


log = logging.getLogger(__name__)


@dataclass
class NodeResult:
    name: str
    kind: str
    status: str  # executed | skipped | failed
    reason: str
    rows: int | None = None
    seconds: float = 0.0
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    blocked: bool = False  # skipped because an upstream failed

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "kind": self.kind, "status": self.status, "reason": self.reason,
            "rows": self.rows, "seconds": round(self.seconds, 3), "error": self.error,
            "warnings": self.warnings, "checks": self.checks,
        }


@dataclass
class RunResult:
    run_id: str
    env: str
    status: str
    seconds: float
    nodes: list[NodeResult] = field(default_factory=list)
    # nodes outside the selection downstream of what this run changed: they now show
    # older data than their upstreams (the next run that includes them catches up)
    behind: list[str] = field(default_factory=list)
    # nodes no longer in the project that this run stopped publishing
    removed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "success"

    def counts(self) -> dict[str, int]:
        out = {"executed": 0, "skipped": 0, "failed": 0, "deferred": 0}
        for n in self.nodes:
            out[n.status] = out.get(n.status, 0) + 1
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "env": self.env,
            "status": self.status,
            "seconds": round(self.seconds, 3),
            "counts": self.counts(),
            "nodes": [n.to_json() for n in self.nodes],
            "behind": self.behind,
            "removed": self.removed,
        }


class Reporter(Protocol):
    def on_start(self, plan: Plan) -> None: ...

    def on_node_start(self, name: str) -> None: ...

    def on_node_end(self, result: NodeResult) -> None: ...


class FanOut:
    """Several reporters as one (progress bars plus OpenLineage, say)."""

    def __init__(self, *reporters: Reporter | None) -> None:
        self.reporters = [r for r in reporters if r is not None]

    def on_start(self, plan: Plan) -> None:
        for r in self.reporters:
            r.on_start(plan)

    def on_node_start(self, name: str) -> None:
        for r in self.reporters:
            r.on_node_start(name)

    def on_node_end(self, result: NodeResult) -> None:
        for r in self.reporters:
            r.on_node_end(result)


class NullReporter:
    def on_start(self, plan: Plan) -> None:
        pass

    def on_node_start(self, name: str) -> None:
        pass

    def on_node_end(self, result: NodeResult) -> None:
        pass


def _selects_star(node: SqlNode, dialect: str) -> bool:
    """Whether a SQL node's output lists ``*`` (or ``t.*``): its columns follow its inputs'."""
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(node.sql, dialect=dialect)
    except sqlglot.errors.ParseError:
        return True
    for select in tree.find_all(exp.Select):
        for e in select.expressions:
            if isinstance(e, exp.Star) or (isinstance(e, exp.Column)
                                           and isinstance(e.this, exp.Star)):
                return True
    return False


class Runner:
    def __init__(
        self,
        project: LoadedProject,
        engine: Engine,
        state: StateStore,
        *,
        env: str,
        threads: int,
        reporter: Reporter | None = None,
    ) -> None:
        self.project = project
        self.engine = engine
        self.state = state
        self.env = env
        self.threads = max(1, threads)
        self.reporter = reporter or NullReporter()

    def run(self, plan: Plan, selection: str | None = None) -> RunResult:
        run_id = self.run_id = uuid.uuid4().hex[:12]
        t0 = time.perf_counter()
        self.state.start_run(run_id, self.env, selection, os.getpid())
        self.reporter.on_start(plan)
        self.published = self.state.published(self.env)
        self.published_at_start = dict(self.published)
        self._lineage: Any = None
        self._fp_cache: dict[tuple[str, tuple[str, ...]], str | None] = {}
        self.physical_info = self.state.all_physical()
        self.physical_of = {n: p.physical for n, p in self.published.items() if p.physical}
        # file digests as planning left them: a source's load hashes only new files
        self._hashes = plan.file_digests or (self.state.file_hashes() if any(
            n.kind == "source" and n.action == "run" for n in plan.nodes) else None)
        self._records: list[dict[str, Any]] = []
        self.identities = dict(plan.identities)
        # what the runner decided beyond the plan: pending nodes settled once their
        # upstreams were built, versions written (the plan itself never changes)
        self.settled: dict[str, NodePlan] = {}
        results: dict[str, NodeResult] = {}
        status = "failed"
        # a --select'ed run changes only what it selected; a full run also stops
        # publishing what the project no longer has
        removed = self._remove_gone() if selection is None else []
        try:
            self._execute(plan, results)
            status = "success" if all(
                r.status != "failed" and not r.blocked for r in results.values()
            ) else "failed"
        finally:
            self._flush()
            self.state.finish_run(run_id, status)
        ordered = [results[n.name] for n in plan.nodes if n.name in results]
        return RunResult(run_id, self.env, status, time.perf_counter() - t0, ordered,
                         self._behind(plan), removed)

    def _remove_gone(self) -> list[str]:
        """Stop publishing nodes the project no longer has (a clean build has none)."""
        gone = sorted(n for n in self.published if n not in self.project.nodes)
        for name in gone:
            for view in (name, f"{name}__rejected", f"{name}__quarantine"):
                self.engine.unpublish(self.env, view)
            self.state.unpublish(self.env, name)
            del self.published[name]
        return gone

    def _behind(self, plan: Plan) -> list[str]:
        planned = {n.name for n in plan.nodes}
        def shown(pubs: dict[str, Published], name: str) -> str | None:
            pub = pubs.get(name)
            return pub.physical if pub else None

        changed = {n.name for n in plan.nodes
                   if shown(self.published_at_start, n.name) != shown(self.published, n.name)}
        out: set[str] = set()
        for name in changed:
            out |= self.project.graph.descendants(name)
        return sorted(n for n in out - planned if n in self.published_at_start)

    # -- scheduling -------------------------------------------------------

    def _execute(self, plan: Plan, results: dict[str, NodeResult]) -> None:
        todo = {n.name: n for n in plan.nodes}
        deps = {n: [u for u in self.project.graph.upstream[n] if u in todo] for n in todo}
        waiting_on = {n: len(d) for n, d in deps.items()}
        children: dict[str, list[str]] = {n: [] for n in todo}
        for n, d in deps.items():
            for u in d:
                children[u].append(n)
        # plan order is topological, so a FIFO of ready nodes keeps builds in a stable order
        ready = deque(n.name for n in plan.nodes if waiting_on[n.name] == 0)
        self._results = results
        running: dict[Future[BuildOutcome], tuple[NodePlan, float, str]] = {}

        def finished(name: str) -> None:
            for child in children[name]:
                waiting_on[child] -= 1
                if waiting_on[child] == 0:
                    ready.append(child)

        if any(n.action == "run" for n in plan.nodes):
            self.engine.warm_up()
        pool = Workers(self.threads, "hw-build", on_retire=self.engine.release_thread)
        try:
            while ready or running:
                while ready:
                    name = ready.popleft()
                    np = todo[name]
                    bad = [u for u in deps[name] if results[u].status == "failed"
                           or results[u].blocked]
                    if bad:
                        self._finish(np, NodeResult(name, np.kind, "skipped",
                                                    f"upstream {bad[0]} failed", blocked=True))
                        finished(name)
                        continue
                    if np.action == "defer":
                        self._finish(np, NodeResult(name, np.kind, "deferred", np.reason))
                        finished(name)
                        continue
                    if len(running) >= self.threads:  # built when a thread is free: its
                        ready.appendleft(name)        # timeout counts from its start
                        break
                    np = self._settle(np)
                    if np.action in ("skip", "publish"):
                        if np.action == "publish":
                            self._publish(np, None)
                        self._finish(np, NodeResult(name, np.kind, "skipped", np.reason))
                        finished(name)
                        continue
                    self.reporter.on_node_start(name)
                    fut = pool.submit(partial(self._build, np))
                    running[fut] = (np, time.perf_counter(), now())
                if not running:
                    continue
                done, _ = wait(running, timeout=self._next_deadline(running),
                               return_when=FIRST_COMPLETED)
                for fut in done:
                    np, started, started_at = running.pop(fut)
                    self._complete(np, fut, started, started_at)
                    finished(np.name)
                for fut in self._overdue(running):
                    np, started, started_at = running.pop(fut)
                    self._time_out(pool, fut, np, started, started_at)
                    finished(np.name)
        finally:
            pool.shutdown()

    def _timeout(self, name: str) -> float | None:
        """Seconds the node may build: its own @timeout / node_timeout, else the project's."""
        own = self.project.nodes[name].timeout
        return own if own is not None else self.project.config.node_timeout

    def _next_deadline(self, running: dict[Future[BuildOutcome], tuple[NodePlan, float, str]]
                       ) -> float | None:
        """Seconds until the first running node is due (None: no node has a timeout)."""
        due = [started + t for np, started, _ in running.values()
               if (t := self._timeout(np.name)) is not None]
        return max(0.0, min(due) - time.perf_counter()) if due else None

    def _overdue(self, running: dict[Future[BuildOutcome], tuple[NodePlan, float, str]]
                 ) -> list[Future[BuildOutcome]]:
        at = time.perf_counter()
        return [f for f, (np, started, _) in running.items() if not f.done()
                and (t := self._timeout(np.name)) is not None and at - started >= t]

    def _time_out(self, pool: Workers, fut: Future[BuildOutcome], np: NodePlan,
                  started: float, at: str) -> None:
        """Fail a node past its timeout: interrupt its queries, stop its Python code, never
        publish what it built; the run goes on and its downstream is skipped."""
        limit = self._timeout(np.name) or 0.0
        pool.stop(fut, on_stop=self.engine.interrupt_thread)
        node = self.project.nodes[np.name]
        where = "headwater.toml node_timeout" if node.timeout is None else (
            f"{node.path.name}: " + ("node_timeout" if node.kind in ("source", "sink")
                                     else "@timeout"))
        self._finish(np, NodeResult(
            np.name, np.kind, "failed", "timed out",
            seconds=time.perf_counter() - started,
            error=f"{display_path(node.path)}: {np.name} timed out after {_duration(limit)}"
                  f" ({where});"
                  " nothing of it was published\nhint: make it faster, or raise the timeout"),
            at)

    def _settle(self, np: NodePlan) -> NodePlan:
        """The decision for a node whose upstreams were built in this run, now that their
        content is known (a new record, kept in :attr:`settled`; the plan stays as made)."""
        if not np.pending:
            return np
        settled = self._settled(np)
        self.settled[np.name] = settled
        return settled

    def _settled(self, np: NodePlan) -> NodePlan:
        node = self.project.nodes[np.name]
        ups = self.project.graph.upstream[np.name]
        upstream = {u: self.identities.get(u, "") for u in ups}
        rebuilt = [u for u in ups if self._results.get(u) and self._results[u].status == "executed"]
        if np.incremental:
            pub = self.published.get(np.name)
            np = np.but(upstream=upstream, pending=False)
            if np.rebuild or np.backfill:
                return np
            if (pub is not None and pub.fingerprint == np.fingerprint
                    and pub.upstream == upstream and pub.physical in self.physical_info):
                return np.but(action="skip", physical=pub.physical, reason=(
                    f"upstream {rebuilt[0]} rebuilt, output unchanged" if rebuilt
                    else "up to date"))
            shared = shared_snapshot(np.name, np.fingerprint or "", self.physical_info,
                                     "inputs", upstream)
            if shared is not None:
                return np.but(action="publish", physical=shared, reason=reuse_reason(
                    self.physical_info[shared], "same code and inputs"))
            return np
        fp = combine(node.kind, node.code_fp, upstream, np.data_fp or "")
        np = np.but(fingerprint=fp, upstream=upstream, pending=False,
                    physical=None if node.kind == "sink" else physical_name(np.name, fp))
        if np.forced:
            return np  # --full-refresh: built whatever the fingerprints say
        pub = self.published.get(np.name)
        changed = [u for u in ups if pub is None or pub.upstream.get(u) != upstream[u]]
        if pub is not None and pub.fingerprint == fp:
            return np.but(action="skip", reason=(
                f"upstream {rebuilt[0]} rebuilt, output unchanged" if rebuilt else "up to date"))
        if np.physical and np.physical in self.physical_info:
            return np.but(action="publish",
                          reason="reusing an earlier build (same code and inputs)")
        if pub is not None and changed and self._reads_nothing_changed(np.name, pub, changed):
            # the upstream changed only in columns this node does not read: its current
            # table stays, now under the new fingerprint
            return np.but(action="publish", physical=pub.physical,
                          reason=f"reads none of the changed columns of {', '.join(changed)}")
        if changed:
            return np.but(reason=f"upstream {changed[0]} changed")
        return np

    def _reads_nothing_changed(self, name: str, pub: Published, changed: list[str]) -> bool:
        """Whether ``name`` reads the same values as before from every changed upstream.

        Uses column lineage (which upstream columns the node reads, as values or to
        choose rows) and compares the old and new upstream tables projected on those
        columns inside the engine. Any doubt means False: the node runs.
        """
        node = self.project.nodes[name]
        if (not isinstance(node, SqlNode) or not pub.physical
                or pub.physical not in self.physical_info):
            return False
        if pub.code_fp != node.code_fp:
            return False  # its own code changed: what it published was made by other code
        olds: dict[str, tuple[str, str]] = {}
        for u in changed:  # cheap refusals first: lineage costs an import and a load
            # the upstream's table this node was built from (found by the identity it
            # recorded), not merely the one published when this run started
            old, new = self._consumed(u, pub.upstream.get(u)), self.physical_of.get(u)
            # the state store knows which physical tables exist: no catalog queries
            if not old or not new or old == new:
                return False
            olds[u] = (old, new)
        try:
            from headwater.lineage.columns import ProjectLineage, consumed_columns

            if self._lineage is None:
                self._lineage = ProjectLineage.from_state(
                    self.project, self.state, self.env,
                    cache_dir=self.project.root / ".headwater")
            for u, (old, new) in olds.items():
                cols = consumed_columns(self._lineage, name, u)
                if not cols:
                    return False
                have = {c for c, _ in self.physical_info[new].columns}
                if set(cols) >= have:
                    return False  # it reads every column, and the content changed
                had = {c for c, _ in self.physical_info[old].columns}
                if had != have and _selects_star(node, self.project.config.dialect):
                    return False  # a * takes every column the upstream has now
                # the old table must still hold what this node read: a snapshot of a
                # versioned table never changes (engines.versioning), an in-place table
                # made by an older Headwater, or a view over one, may have
                if not self._immutable(old):
                    return False
                was, now_ = parse_snapshot(old), parse_snapshot(new)
                if (was and now_ and was[0] == now_[0] and was[1] < now_[1]
                        and rows_versioned(self.engine)):
                    # two versions of one table: compare what changed between them only
                    if not same_projection(self.engine, was[0], was[1], now_[1], cols):
                        return False
                elif self._projection_fp(old, cols) != self._projection_fp(new, cols):
                    return False
            return True
        except Exception:  # lineage is an optimisation: never let it fail a run
            log.debug("change impact for %s failed", name, exc_info=True)
            return False

    def _immutable(self, physical: str, depth: int = 0) -> bool:
        """Whether a recorded table's rows can never change: a snapshot, a table built
        whole, or a view over such tables only (as its record says)."""
        if parse_snapshot(physical) is not None:
            return True
        info = self.physical_info.get(physical)
        node = self.project.nodes.get(info.node) if info else None
        if info is None or node is None or info.meta.get("role") == "base" or depth > 50:
            return False
        if node.incremental is not None or (
                isinstance(node, SourceNode)
                and is_appendable(node, self.project.partitioned(node.name))):
            return False  # an in-place table an older Headwater published itself
        if node.materialized == "view":
            reads = info.meta.get("reads")
            return reads is not None and all(self._immutable(r, depth + 1) for r in reads)
        return True

    def _consumed(self, upstream: str, identity: str | None) -> str | None:
        """A recorded table of ``upstream`` whose content identity is ``identity``."""
        if not identity:
            return None
        before = self.published_at_start.get(upstream)

        def ident(info: PhysicalInfo) -> str:
            return info.content_fp or info.fingerprint

        start = self.physical_info.get(before.physical or "") if before else None
        if start is not None and ident(start) == identity:
            return start.physical
        found = [i for i in self.physical_info.values()
                 if i.node == upstream and i.meta.get("role") != "base" and ident(i) == identity]
        return max(found, key=lambda i: i.created_at).physical if found else None

    def _content(self, physical: str) -> str:
        key = (physical, ("*",))
        if key not in self._fp_cache:
            self._fp_cache[key] = self.engine.stats(physical).content_fp
        return self._fp_cache[key] or ""

    def _projection_fp(self, physical: str, columns: list[str]) -> str | None:
        """Fingerprint of a table projected on some columns; once per run per table."""
        from headwater.engines.base import INTERNAL_SCHEMA

        key = (physical, tuple(columns))
        if key in self._fp_cache:
            return self._fp_cache[key]
        info = self.physical_info.get(physical)
        have = {c for c, _ in info.columns} if info else set()
        if not set(columns) <= have:
            return None
        cols = ", ".join(_q(c) for c in columns)
        rows = self.engine.fetch(
            f"SELECT count(*), coalesce(sum(hash(t)::HUGEINT), 0)::VARCHAR FROM"
            f' (SELECT {cols} FROM "{INTERNAL_SCHEMA}".{_q(physical)}) AS t')
        self._fp_cache[key] = f"{rows[0][0]}:{rows[0][1]}"
        return self._fp_cache[key]

    def _file_hashes(self) -> FileDigests | None:
        """File digests planning computed (or the stored ones), a copy each."""
        return self._hashes.copy() if self._hashes is not None else None

    def _build(self, np: NodePlan) -> BuildOutcome:
        from headwater.run.build import build_node

        node = self.project.nodes[np.name]
        ups = {u: self.physical_of[u] for u in self.project.graph.upstream[np.name]}
        previous = self.published.get(np.name)
        info = self.physical_info.get(previous.physical or "") if previous else None
        return build_node(
            node,
            self.engine,
            physical=np.physical,
            upstream_physical=ups,
            root=self.project.root,
            dialect=self.project.config.dialect,
            previous_columns=info.columns if info else None,
            previous_partitions=(
                self.state.sink_partitions(self.env, np.name) if node.kind == "sink" else None
            ),
            rebuild=np.rebuild,
            # only a recorded table can be published (by any environment): one that is not
            # is at most a leftover of a killed run and may be replaced in place
            may_exist=np.physical is not None and np.physical in self.physical_info,
            hash_cache=self._file_hashes() if node.kind == "source" else None,
            upstream_identity={u: self.identities.get(u, "") for u in ups},
            resolve=self._resolve,
            backfill=np.backfill,
        )

    def _resolve(self, name: str) -> str:
        """A node's current physical table, quoted, for checks that look at other nodes."""
        from headwater.engines.base import INTERNAL_SCHEMA

        physical = self.physical_of.get(name)
        if physical is None:
            raise HeadwaterError(
                f"{name} has not been built", hint=f"run `headwater run -s +{name}`"
            )
        return f'"{INTERNAL_SCHEMA}".{_q(physical)}'


    def _complete(self, np: NodePlan, fut: Future[BuildOutcome], started: float, at: str) -> None:
        node = self.project.nodes[np.name]
        try:
            outcome = fut.result()
        except HeadwaterError as exc:
            checks = [r.to_json() for r in getattr(exc, "results", [])]
            if checks:
                self.state.record_checks(self.run_id, self.env, checks)
            reason = "check failed" if checks else "error"
            self._finish(np, NodeResult(np.name, np.kind, "failed", reason,
                                        seconds=time.perf_counter() - started,
                                        error=exc.render(), checks=checks), at)
            return
        except BaseException as exc:  # an engine bug, a driver error, a SystemExit from user
            # code that got past it: the node fails, the run goes on and ends properly
            if isinstance(exc, KeyboardInterrupt):
                raise
            self._finish(np, NodeResult(np.name, np.kind, "failed", "error",
                                        seconds=time.perf_counter() - started,
                                        error=f"{node.path}: {type(exc).__name__}: {exc}"), at)
            return
        if outcome.snapshot is not None and outcome.snapshot != np.physical:
            self._record_base(np, outcome)
            np = np.but(physical=outcome.snapshot)  # environments publish versions, never
            self.settled[np.name] = np              # the base
        if np.physical is not None and outcome.stats is not None:
            meta = self._meta(np, outcome)
            at = self.state.record_physical(
                physical=np.physical, node=np.name, kind=np.kind,
                fingerprint=np.fingerprint or "", content_fp=outcome.stats.content_fp,
                rows=outcome.stats.rows, columns=outcome.stats.columns, seconds=outcome.seconds,
                meta=meta,
            )
            self.physical_info[np.physical] = PhysicalInfo(
                np.physical, np.name, np.fingerprint or "", outcome.stats.content_fp,
                outcome.stats.rows, outcome.stats.columns, at, meta)
        if outcome.partitions is not None:
            self.state.set_sink_partitions(self.env, np.name, outcome.partitions)
        try:
            self._publish(np, outcome)
        except Exception as exc:  # noqa: BLE001 - the view could not be swapped: the node
            # fails (what was published before stays), the run goes on
            from headwater.errors import disk_full

            full = disk_full(exc)
            text = full.render() if full is not None else (
                exc.render() if isinstance(exc, HeadwaterError)
                else f"{node.path}: publishing {np.name} failed: {type(exc).__name__}: {exc}")
            self._finish(np, NodeResult(np.name, np.kind, "failed", "error",
                                        seconds=time.perf_counter() - started, error=text), at)
            return
        reason = f"{np.reason}: {outcome.detail}" if outcome.detail else np.reason
        checks = [r.to_json() for r in outcome.checks]
        if checks:
            self.state.record_checks(self.run_id, self.env, checks)
        warnings = outcome.warnings + [
            f"{np.name}: check {c['check']} failed ({c['failing_rows']} rows), severity warn"
            for c in checks if c["status"] == "warn"
        ]
        self._finish(np, NodeResult(np.name, np.kind, "executed", reason,
                                    rows=outcome.rows, seconds=outcome.seconds,
                                    warnings=warnings, checks=checks), at)

    def _record_base(self, np: NodePlan, outcome: BuildOutcome) -> None:
        """Record the in-place table a new version was written to (once: its creation time
        tells the newest base of a code version)."""
        base = np.physical
        known = self.physical_info.get(base or "")
        if base is None or (known is not None and known.meta.get("role") == "base"
                            and not np.rebuild):
            return
        at = self.state.record_physical(
            physical=base, node=np.name, kind=np.kind, fingerprint=np.fingerprint or "",
            content_fp=None, rows=None, columns=[], seconds=outcome.seconds,
            meta={"role": "base"})
        self.physical_info[base] = PhysicalInfo(base, np.name, np.fingerprint or "", None,
                                                None, [], at, {"role": "base"})

    def _meta(self, np: NodePlan, outcome: BuildOutcome) -> dict[str, Any]:
        """What a new physical table was made from (see ``PhysicalInfo.meta``)."""
        node = self.project.nodes[np.name]
        meta: dict[str, Any] = {}
        parsed = parse_snapshot(np.physical or "") if outcome.snapshot else None
        if parsed is not None:
            meta.update(base=parsed[0], version=parsed[1])
            if node.kind == "source":
                meta["data_fp"] = np.data_fp
            else:
                meta["inputs"] = dict(np.upstream)
        if node.materialized == "view":
            meta["reads"] = sorted({self.physical_of[u] for u in self.project.graph.upstream[
                np.name] if u in self.physical_of})
        return meta

    def _publish(self, np: NodePlan, outcome: BuildOutcome | None) -> None:
        node = self.project.nodes[np.name]
        record: dict[str, Any] = {
            "node": np.name, "kind": np.kind, "fingerprint": np.fingerprint or "",
            "physical": np.physical, "code_fp": node.code_fp, "data_fp": np.data_fp,
            "upstream": dict(np.upstream)}
        if np.physical is not None:
            # noted first: a kill after the view swap leaves a note the next writer
            # completes (environments.reconcile_views), never a view the record disowns
            self.state.publish(self.env, **record, staged=True)
            self.engine.publish(self.env, np.name, np.physical)
            if node.kind == "source":
                from headwater.run.ingest import quarantine_table, rejected_table

                for suffix, table in (("__rejected", rejected_table(np.physical)),
                                      ("__quarantine", quarantine_table(np.physical))):
                    if self.engine.exists(table):
                        self.engine.publish(self.env, f"{np.name}{suffix}", table)
            self.physical_of[np.name] = np.physical
            info = self.physical_info.get(np.physical)
            content = info.content_fp if info else None
            self.identities[np.name] = content or np.fingerprint or ""
        else:
            self.identities[np.name] = np.fingerprint or ""
        self.published[np.name] = Published(
            np.name, np.kind, np.fingerprint or "", np.physical, node.code_fp, np.data_fp,
            dict(np.upstream), now())
        self.state.publish(self.env, **record)

    def _finish(self, np: NodePlan, result: NodeResult, started_at: str | None = None) -> None:
        if np.action == "skip" or (np.action == "publish" and result.status == "skipped"):
            info = self.physical_info.get(np.physical) if np.physical else None
            result.rows = info.rows if info else None
            if np.name in self.physical_of or np.physical is None:
                self.identities.setdefault(np.name, np.fingerprint or "")
            if info is not None:
                self.identities[np.name] = info.content_fp or np.fingerprint or ""
        self._results[np.name] = result
        self._records.append({
            "node": np.name, "kind": np.kind, "status": result.status, "reason": result.reason,
            "rows": result.rows, "seconds": result.seconds, "started_at": started_at,
            "ended_at": now(), "error": result.error,
        })
        if result.status != "skipped":
            self._flush()  # history of real work is visible to other processes at once
        self.reporter.on_node_end(result)

    def _flush(self) -> None:
        if self._records:
            self.state.record_nodes(self.run_id, self._records)
            self._records = []


def _duration(seconds: float) -> str:
    """``5s``, ``90s``, ``30m``, ``1h30m``: how a timeout is written."""
    if seconds < 120 or seconds % 60:
        return f"{seconds:g}s"
    minutes = int(seconds // 60)
    hours, minutes = divmod(minutes, 60)
    return (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
