"""Executing a plan: in parallel where the DAG allows, publishing atomically.

Workers build physical tables; the coordinating thread records every result
in the state store and swaps public views, so a node becomes visible only
after its build succeeded. A failed node's downstream is skipped; its
siblings go on.
"""

from __future__ import annotations

import os
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from headwater.build import BuildOutcome, build_node
from headwater.engines.base import Engine
from headwater.errors import HeadwaterError
from headwater.fingerprint import combine, physical_name
from headwater.plan import NodePlan, Plan
from headwater.project.loader import LoadedProject
from headwater.state import StateStore, now


@dataclass
class NodeResult:
    name: str
    kind: str
    status: str  # executed | skipped | failed
    reason: str
    rows: int | None = None
    seconds: float = 0.0
    error: str | None = None
    blocked: bool = False  # skipped because an upstream failed

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("blocked")
        d["seconds"] = round(self.seconds, 3)
        return d


@dataclass
class RunResult:
    run_id: str
    env: str
    status: str
    seconds: float
    nodes: list[NodeResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "success"

    def counts(self) -> dict[str, int]:
        out = {"executed": 0, "skipped": 0, "failed": 0}
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
        }


class Reporter(Protocol):
    def on_start(self, plan: Plan) -> None: ...

    def on_node_start(self, name: str) -> None: ...

    def on_node_end(self, result: NodeResult) -> None: ...


class NullReporter:
    def on_start(self, plan: Plan) -> None:
        pass

    def on_node_start(self, name: str) -> None:
        pass

    def on_node_end(self, result: NodeResult) -> None:
        pass


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
        published = self.state.published(self.env)
        self.physical_of = {n: p.physical for n, p in published.items() if p.physical}
        self.identities = dict(plan.identities)
        results: dict[str, NodeResult] = {}
        status = "failed"
        try:
            self._execute(plan, results)
            status = "success" if all(
                r.status != "failed" and not r.blocked for r in results.values()
            ) else "failed"
        finally:
            self.state.finish_run(run_id, status)
        ordered = [results[n.name] for n in plan.nodes if n.name in results]
        return RunResult(run_id, self.env, status, time.perf_counter() - t0, ordered)

    # -- scheduling -------------------------------------------------------

    def _execute(self, plan: Plan, results: dict[str, NodeResult]) -> None:
        todo = {n.name: n for n in plan.nodes}
        deps = {n: [u for u in self.project.graph.upstream[n] if u in todo] for n in todo}
        self._results = results
        running: dict[Future[BuildOutcome], tuple[NodePlan, float, str]] = {}
        with ThreadPoolExecutor(self.threads, thread_name_prefix="hw-build") as pool:
            while todo or running:
                for name in [n for n in todo if all(u in results for u in deps[n])]:
                    np = todo.pop(name)
                    bad = [u for u in deps[name] if results[u].status == "failed"
                           or results[u].blocked]
                    if bad:
                        self._finish(np, NodeResult(name, np.kind, "skipped",
                                                    f"upstream {bad[0]} failed", blocked=True))
                        continue
                    self._settle(np)
                    if np.action == "skip":
                        self._finish(np, NodeResult(name, np.kind, "skipped", np.reason))
                        continue
                    if np.action == "publish":
                        self._publish(np, None)
                        self._finish(np, NodeResult(name, np.kind, "skipped", np.reason))
                        continue
                    self.reporter.on_node_start(name)
                    fut = pool.submit(self._build, np)
                    running[fut] = (np, time.perf_counter(), now())
                if not running:
                    continue
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    np, started, started_at = running.pop(fut)
                    self._complete(np, fut, started, started_at)

    def _settle(self, np: NodePlan) -> None:
        """Fix the fingerprint of a node whose upstreams were built in this run."""
        if not np.pending:
            return
        node = self.project.nodes[np.name]
        ups = self.project.graph.upstream[np.name]
        upstream = {u: self.identities.get(u, "") for u in ups}
        fp = combine(node.kind, node.code_fp, upstream, np.data_fp or "")
        np.fingerprint, np.upstream, np.pending = fp, upstream, False
        np.physical = None if node.kind == "sink" else physical_name(np.name, fp)
        pub = self.state.published(self.env).get(np.name)
        changed = [u for u in ups if pub is None or pub.upstream.get(u) != upstream[u]]
        rebuilt = [u for u in ups if self._results.get(u) and self._results[u].status == "executed"]
        if pub is not None and pub.fingerprint == fp:
            np.action = "skip"
            np.reason = f"upstream {rebuilt[0]} rebuilt, output unchanged" if rebuilt else "up to date"
        elif np.physical and self.state.physical(np.physical) is not None:
            np.action = "publish"
            np.reason = "reusing an earlier build (same code and inputs)"
        elif changed:
            np.reason = f"upstream {changed[0]} changed"

    def _build(self, np: NodePlan) -> BuildOutcome:
        node = self.project.nodes[np.name]
        ups = {u: self.physical_of[u] for u in self.project.graph.upstream[np.name]}
        return build_node(
            node,
            self.engine,
            physical=np.physical,
            upstream_physical=ups,
            root=self.project.root,
            dialect=self.project.config.dialect,
        )

    def _complete(self, np: NodePlan, fut: Future[BuildOutcome], started: float, at: str) -> None:
        node = self.project.nodes[np.name]
        try:
            outcome = fut.result()
        except HeadwaterError as exc:
            self._finish(np, NodeResult(np.name, np.kind, "failed", "error",
                                        seconds=time.perf_counter() - started,
                                        error=exc.render()), at)
            return
        except Exception as exc:  # an engine bug or driver error: report, do not crash the run
            self._finish(np, NodeResult(np.name, np.kind, "failed", "error",
                                        seconds=time.perf_counter() - started,
                                        error=f"{node.path}: {type(exc).__name__}: {exc}"), at)
            return
        if np.physical is not None and outcome.stats is not None:
            self.state.record_physical(
                physical=np.physical, node=np.name, kind=np.kind,
                fingerprint=np.fingerprint or "", content_fp=outcome.stats.content_fp,
                rows=outcome.stats.rows, columns=outcome.stats.columns, seconds=outcome.seconds,
            )
        self._publish(np, outcome)
        self._finish(np, NodeResult(np.name, np.kind, "executed", np.reason,
                                    rows=outcome.rows, seconds=outcome.seconds), at)

    def _publish(self, np: NodePlan, outcome: BuildOutcome | None) -> None:
        node = self.project.nodes[np.name]
        if np.physical is not None:
            self.engine.publish(self.env, np.name, np.physical)
            self.physical_of[np.name] = np.physical
            info = self.state.physical(np.physical)
            content = info.content_fp if info else None
            self.identities[np.name] = content or np.fingerprint or ""
        else:
            self.identities[np.name] = np.fingerprint or ""
        self.state.publish(
            self.env, node=np.name, kind=np.kind, fingerprint=np.fingerprint or "",
            physical=np.physical, code_fp=node.code_fp, data_fp=np.data_fp,
            upstream=np.upstream,
        )

    def _finish(self, np: NodePlan, result: NodeResult, started_at: str | None = None) -> None:
        if np.action == "skip" or (np.action == "publish" and result.status == "skipped"):
            info = self.state.physical(np.physical) if np.physical else None
            result.rows = info.rows if info else None
            if np.name in self.physical_of or np.physical is None:
                self.identities.setdefault(np.name, np.fingerprint or "")
            if info is not None:
                self.identities[np.name] = info.content_fp or np.fingerprint or ""
        self._results[np.name] = result
        self.state.record_node(
            self.run_id, node=np.name, kind=np.kind, status=result.status,
            reason=result.reason, rows=result.rows, seconds=result.seconds,
            started_at=started_at, error=result.error,
        )
        self.reporter.on_node_end(result)
