"""Runs started from the UI: executed in the server's own process, one at a time.

DuckDB allows one writing process per warehouse, so the server runs what it is
asked to run itself, in a background thread, through the public API
(``Project.run(wait=False)``). A reporter turns the run's progress into events
for every open page. Previews read the warehouse through :class:`WarehouseGate`:
while a run holds it they say the warehouse is busy instead of waiting.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headwater.errors import HeadwaterError, LockedError
from headwater.run.lock import ProjectLock
from headwater.state.store import now

if TYPE_CHECKING:
    from headwater.plan.planner import Plan
    from headwater.run.runner import NodeResult, RunResult
    from headwater.web.events import Broadcaster

log = logging.getLogger(__name__)

START_WAIT = 10.0  # seconds a POST waits for the run to get past planning


class WarehouseBusy(HeadwaterError):
    """The warehouse is held by a run; previews are refused rather than left waiting."""

    def __init__(self) -> None:
        super().__init__("the warehouse is busy: a run is in progress",
                         hint="the preview is available again when the run finishes")


class RunInProgress(HeadwaterError):
    """A run was asked for while another one goes on."""


class WarehouseGate:
    """Readers share the warehouse; a run has it alone (DuckDB, one process: not both)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False

    @property
    def busy(self) -> bool:
        return self._writing

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._cond:
            if self._writing:
                raise WarehouseBusy()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        with self._cond:
            self._writing = True  # new readers are turned away from now on
            while self._readers:
                self._cond.wait()
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


@dataclass
class Job:
    """One run the server started, as pages see it."""

    select: str | None
    exclude: str | None
    full_refresh: bool
    env: str
    requested_at: str = field(default_factory=now)
    run_id: str | None = None
    status: str = "planning"  # planning | running | success | failed | error
    error: str | None = None
    hint: str | None = None
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    started: threading.Event = field(default_factory=threading.Event)  # past planning, or over
    done: threading.Event = field(default_factory=threading.Event)
    failure: HeadwaterError | None = None

    @property
    def active(self) -> bool:
        return not self.done.is_set()

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "env": self.env, "status": self.status,
            "select": self.select, "exclude": self.exclude, "full_refresh": self.full_refresh,
            "requested_at": self.requested_at, "error": self.error, "hint": self.hint,
            "nodes": [dict(v, name=k) for k, v in self.nodes.items()],
        }


class JobReporter:
    """The runner's :class:`~headwater.run.runner.Reporter`: updates the job, publishes events."""

    def __init__(self, job: Job, manager: RunManager) -> None:
        self.job = job
        self.manager = manager

    def on_start(self, plan: Plan) -> None:
        job = self.job
        with self.manager.lock:
            job.run_id = self.manager.newest_run_id()
            job.status = "running"
            job.nodes = {
                n.name: {"kind": n.kind, "action": n.action, "reason": n.reason,
                         "state": "queued" if n.action == "run" else "pending",
                         "started_at": None, "ended_at": None, "rows": None, "seconds": None,
                         "error": None}
                for n in plan.nodes
            }
        job.started.set()
        self.manager.publish("run_started", job.to_json())

    def on_node_start(self, name: str) -> None:
        with self.manager.lock:
            node = self.job.nodes.setdefault(name, {})
            node.update(state="running", started_at=now())
        self.manager.publish("node_started", {"run_id": self.job.run_id, "name": name,
                                              "started_at": node["started_at"]})

    def on_node_end(self, result: NodeResult) -> None:
        state = {"executed": "done", "failed": "failed"}.get(result.status, "skipped")
        with self.manager.lock:
            node = self.job.nodes.setdefault(result.name, {})
            node.update(state=state, ended_at=now(), rows=result.rows,
                        seconds=round(result.seconds, 3), reason=result.reason,
                        error=result.error)
        payload = dict(node, name=result.name, run_id=self.job.run_id, status=result.status)
        self.manager.publish("node_finished", payload)


class RunManager:
    """Starts runs in a background thread, one at a time, and tells subscribers."""

    def __init__(
        self,
        root: Path,
        env: str,
        broadcaster: Broadcaster,
        gate: WarehouseGate,
        *,
        on_finish: Callable[[], None] | None = None,
    ) -> None:
        self.root = root
        self.env = env
        self.events = broadcaster
        self.gate = gate
        self.lock = threading.RLock()
        self.job: Job | None = None
        self._thread: threading.Thread | None = None
        self.on_finish = on_finish  # called when a run ends, before run_finished is sent
        self._state: Any = None

    # -- asking ---------------------------------------------------------------

    def current(self) -> Job | None:
        """The job in progress, or the last one this server ran."""
        with self.lock:
            return self.job

    def start(
        self,
        select: str | None = None,
        *,
        exclude: str | None = None,
        full_refresh: bool = False,
        wait: float = START_WAIT,
    ) -> Job:
        """Start a run; raise at once when one is going on or it cannot start."""
        with self.lock:
            if self.job is not None and self.job.active:
                raise RunInProgress(
                    "a run is already in progress"
                    + (f" ({self.job.run_id})" if self.job.run_id else ""),
                    hint="wait for it to finish; its progress is on the runs page",
                )
            self._probe_lock()
            job = Job(select, exclude, full_refresh, self.env)
            self.job = job
            self._thread = threading.Thread(target=self._work, args=(job,),
                                            name="headwater-web-run", daemon=False)
            self._thread.start()
        self.publish("run_requested", job.to_json())
        job.started.wait(wait)
        if job.failure is not None and job.run_id is None:
            raise job.failure  # it never started: say why, with the right status code
        return job

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the run in progress, if any; True when none is left running."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def publish(self, event: str, data: dict[str, Any]) -> None:
        self.events.publish(event, data)

    def newest_run_id(self) -> str | None:
        """The run the runner just recorded (it holds the project lock: nobody else can)."""
        runs = self._state_store().runs(limit=1)
        return str(runs[0]["run_id"]) if runs else None

    # -- doing ------------------------------------------------------------------

    def _probe_lock(self) -> None:
        """Fail fast when another process (a CLI run, the scheduler) holds the project."""
        lock = ProjectLock(self.root / ".headwater" / "run.lock")
        lock.acquire(wait=False)  # raises LockedError
        lock.release()

    def _make_project(self) -> Any:
        from headwater.api import Project

        return Project(self.root, env=self.env)

    def _state_store(self) -> Any:
        if self._state is None:
            from headwater.state.store import StateStore

            self._state = StateStore(self.root / ".headwater" / "state.db")
        return self._state

    def _work(self, job: Job) -> None:
        t0 = time.perf_counter()
        result: RunResult | None = None
        project = None
        try:
            with self.gate.writing():
                project = self._make_project()
                result = project.run(job.select, exclude=job.exclude,
                                     full_refresh=job.full_refresh,
                                     reporter=JobReporter(job, self), wait=False)
        except HeadwaterError as exc:
            job.failure = exc
            self._fail(job, exc.message, exc.hint)
        except BaseException as exc:  # a bug, or a SystemExit: the page hears of it, and the
            # job ends (a job left "running" would refuse every later run with 409)
            log.exception("run failed")
            job.failure = HeadwaterError(f"internal error: {type(exc).__name__}: {exc}")
            self._fail(job, job.failure.message, None)
        finally:
            if project is not None and "state" in project.__dict__:
                project.state.close()
            try:
                if self.on_finish is not None:
                    self.on_finish()
                if result is not None:
                    with self.lock:
                        job.run_id = result.run_id
                        job.status = result.status
                    payload = result.to_json()
                    payload["wall_seconds"] = round(time.perf_counter() - t0, 3)
                    self.publish("run_finished", payload)
            finally:
                with self.lock:
                    job.done.set()
                    job.started.set()

    def _fail(self, job: Job, message: str, hint: str | None) -> None:
        with self.lock:
            job.status = "error"
            job.error, job.hint = message, hint
        self.publish("run_error", job.to_json())


__all__ = ["Job", "LockedError", "RunInProgress", "RunManager", "WarehouseBusy",
           "WarehouseGate"]
