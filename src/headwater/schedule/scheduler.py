"""``headwater schedule``: the long-running scheduler.

It fires runs at cron times, defers what needs a source outside its
availability window (and runs it when the window opens), polls ``new_data``
sources, retries failed nodes with exponential backoff and POSTs a webhook
when a failure outlives its retries. The TOML it reads is documented in
:mod:`headwater.schedule`.

Guarantees:

* **One run at a time per project.** Runs are sequential inside the scheduler,
  and the project lock keeps it from running alongside ``headwater run`` or the
  web UI: a job that finds the project busy waits (polling through the clock)
  or, with ``on_overlap = "skip"``, is skipped with a log line. A cron tick that
  passes while the scheduler's own run goes on is run once afterwards, or
  skipped with ``on_overlap = "skip"``.
* **Catch up once.** When each schedule last fired is remembered in
  ``.headwater/schedule.json``; after downtime a schedule that missed ticks runs
  once, not once per missed tick, and says how many it missed.
* **Clean stop.** SIGTERM or Ctrl-C sets a stop flag. ``Project.run`` has no
  cancellation, so the run in progress finishes (it is bounded: every node in
  it builds, checks and publishes, or fails and keeps its previous version) and
  then the scheduler exits with status 0. Retries still pending are dropped;
  they are not needed for consistency, only for freshness. A second Ctrl-C
  interrupts at once, which is safe too: publishing is atomic.

Every time-dependent decision goes through a :class:`~headwater.core.clock.Clock`,
so tests drive a :class:`Scheduler` with a ``FakeClock`` step by step::

    scheduler = Scheduler(project, FakeClock(start))
    scheduler.tick()          # run whatever is due now
    clock.advance(3600)
    scheduler.tick()
"""

from __future__ import annotations

import signal
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import FrameType
from typing import TYPE_CHECKING, Any, Literal, TextIO

from headwater.core.clock import Clock, SystemClock
from headwater.core.config import ScheduleConfig
from headwater.core.cron import Cron
from headwater.core.nodes import SourceNode
from headwater.core.timeutil import format_duration, utc, zone
from headwater.core.windows import window_status
from headwater.errors import HeadwaterError, LockedError, ProjectError, did_you_mean
from headwater.plan.deferral import (
    closed_sources,
    deferral_reason,
    deferred_nodes,
    source_window,
)
from headwater.run.lock import ProjectLock
from headwater.schedule.events import EventLog, LogFormat, LogReporter, first_line
from headwater.schedule.ledger import Ledger
from headwater.schedule.notify import Notification, Notifier
from headwater.schedule.redact import Redactor, redact_url

if TYPE_CHECKING:
    from headwater.api import Project
    from headwater.load.loader import LoadedProject
    from headwater.run.runner import RunResult

JobKind = Literal["schedule", "retry", "window", "sensor"]
Selection = str | list[str] | None


class SchedulerError(HeadwaterError):
    """The scheduler cannot start (another scheduler holds the project, nothing to do ...)."""

    exit_code = 2


@dataclass
class Schedule:
    """One ``[[schedules]]`` entry with its cron evaluated in its zone."""

    key: str
    name: str
    cron: Cron
    config: ScheduleConfig

    @classmethod
    def from_config(cls, cfg: ScheduleConfig, index: int, default_tz: str) -> Schedule:
        tz = cfg.timezone or default_tz
        key = cfg.name or f"{cfg.cron}|{tz}|{cfg.select}|{cfg.exclude}"
        return cls(key, cfg.name or f"#{index + 1} ({cfg.cron})", Cron(cfg.cron, tz), cfg)


@dataclass
class Job:
    """Something the scheduler runs: a cron fire, a retry, a window opening, new data."""

    kind: JobKind
    due: datetime
    label: str
    select: Selection = None
    exclude: Selection = None
    nodes: frozenset[str] | None = None  # an exact node set (retries, windows, sensors)
    schedule: Schedule | None = None
    attempts: dict[str, int] = field(default_factory=dict)  # retries made so far per node
    origin: frozenset[str] | None = None  # the selection a retry belongs to
    full_refresh: bool = False
    on_overlap: Literal["wait", "skip"] = "wait"
    source: str | None = None  # window and sensor jobs
    fingerprint: str | None = None  # sensor jobs: the data they were started for


@dataclass
class PendingWindow:
    """Nodes deferred by a closed source, to run when its window opens."""

    source: str
    nodes: set[str]
    opens_at: datetime


class Scheduler:
    """Drives a :class:`~headwater.api.Project` by its schedules, windows and sensors.

    ``tick()`` (alias ``run_pending()``) does whatever is due at ``clock.now()``
    and returns the runs it made; ``serve_forever()`` ticks and sleeps until
    stopped. Nothing sleeps but through ``clock``.
    """

    def __init__(
        self,
        project: Project,
        clock: Clock | None = None,
        *,
        env: str | None = None,
        threads: int | None = None,
        log: EventLog | None = None,
        log_format: LogFormat = "text",
        stream: TextIO | None = None,
        notifier: Notifier | None = None,
        remember: bool = True,
        lock_poll: float = 1.0,
        max_sleep: float = 60.0,
        check_env: bool = True,
    ) -> None:
        self.project = project
        self.clock: Clock = clock or SystemClock()
        self.env = env or project.env
        self.threads = threads
        self.redactor = Redactor.for_project(project.root)
        if log is not None:  # one redactor for the log and the notifier: it learns as it goes
            log.redact.extend(self.redactor)
            self.redactor = log.redact
        self.log = log or EventLog(self.clock, stream, fmt=log_format, redactor=self.redactor)
        self.lock_poll = lock_poll
        self.max_sleep = max_sleep
        loaded = project.reload()
        self.config = loaded.config
        self.schedules = [
            Schedule.from_config(cfg, i, self.config.timezone)
            for i, cfg in enumerate(self.config.schedules)
        ]
        self.sensors = [n for n, node in loaded.nodes.items() if isinstance(node, SourceNode)
                        and node.config.trigger == "new_data"]
        self.ledger = Ledger.load(project.state_dir / "schedule.json" if remember else None)
        self.notifier = notifier if notifier is not None else self._make_notifier()
        self.retries: list[Job] = []
        self.deferred: dict[str, PendingWindow] = {}
        self.next_poll: dict[str, datetime] = {}
        self.results: list[RunResult] = []
        self.last_run_span: tuple[datetime, datetime] | None = None
        self._stopping = False  # a plain flag: set from signal handlers
        self._stop_reason: str | None = None
        self._stop_told = False
        self._started = False
        self._interrupted = False
        self.problems: list[str] = []  # what a dry run should warn about
        self.validate(loaded, check_env=check_env)

    # -- setup ---------------------------------------------------------------

    def _make_notifier(self) -> Notifier | None:
        cfg = self.config.notify
        if cfg is None:
            return None
        return Notifier(cfg.url, clock=self.clock, log=self.log, redactor=self.redactor,
                        timeout=cfg.timeout, retries=cfg.retries, events=tuple(cfg.on))

    def validate(self, loaded: LoadedProject, *, check_env: bool = True) -> None:
        """Fail at start, not at 3 a.m.: selections, node names, the webhook's variables.

        With ``check_env=False`` (a dry run) a missing variable is noted in
        ``problems`` instead of raised.
        """
        path = loaded.config_path
        for s in self.schedules:
            try:
                self.project.select(s.config.select, s.config.exclude)
            except HeadwaterError as exc:
                raise ProjectError(f"schedule {s.name}: {exc.message}", path=path,
                                   hint=exc.hint) from None
        for name in self.config.node_retries:
            if name not in loaded.nodes:
                raise ProjectError(
                    f"[node_retries.{name}] names no node of the project", path=path,
                    hint=did_you_mean(name, loaded.nodes) or "run `headwater dag` to list nodes",
                )
        if self.config.notify is not None:
            from headwater.core.config import resolve_env

            url = self.config.notify.url
            try:
                resolved = resolve_env(url, path=path, key="notify.url")
            except HeadwaterError as exc:
                if check_env:
                    raise
                self.problems.append(f"{exc.message}: notifications would fail")
                return
            if not resolved.startswith(("http://", "https://")):
                raise ProjectError(f"notify.url must be an http(s) URL, got {redact_url(url)!r}",
                                   path=path)
            self.redactor.add(resolved)

    # -- stopping ------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        return self._stopping

    def stop(self, reason: str = "stop requested") -> None:
        """Ask the scheduler to stop after the run in progress (safe from a signal handler)."""
        self._stop_reason = reason
        self._stopping = True
        wake = getattr(self.clock, "wake", None)
        if callable(wake):
            wake()

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT stop cleanly; a second SIGINT interrupts at once."""

        def handler(signum: int, frame: FrameType | None) -> None:
            name = signal.Signals(signum).name
            if self.stopping and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self.stop(f"received {name}")

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def _announce_stop(self) -> None:
        # called at safe points, never from the signal handler (which may interrupt a write)
        if self.stopping and not self._stop_told:
            self._stop_told = True
            self.log.emit("scheduler.stopping",
                          f"stopping ({self._stop_reason}): the run in progress finishes "
                          "its nodes, then the scheduler exits", reason=self._stop_reason)

    # -- the loop ------------------------------------------------------------

    def serve_forever(self, until: datetime | None = None) -> None:
        """Tick and sleep until stopped (or until the clock reaches ``until``)."""
        lock = ProjectLock(self.project.state_dir / "scheduler.lock")
        try:
            lock.acquire(wait=False)
        except LockedError:
            raise SchedulerError(
                f"another `headwater schedule` is running on this project ({lock.holder()})",
                path=self.project.root, hint="stop it first; one scheduler per project",
            ) from None
        try:
            while not self.stopping:
                self.tick()
                now = self.clock.now()
                if self.stopping or (until is not None and now >= until):
                    break
                wake = self.next_wakeup(now)
                if until is not None:
                    wake = min(wake, utc(until))
                seconds = (wake - now).total_seconds()
                self.clock.sleep(min(max(seconds, 0.5), self.max_sleep))
        finally:
            self._announce_stop()
            dropped = sum(len(j.nodes or ()) for j in self.retries)
            self.ledger.save()
            self.log.emit("scheduler.stop", "scheduler stopped"
                          + (f"; {dropped} pending node retries dropped" if dropped else ""),
                          reason=self._stop_reason)
            lock.release()

    def tick(self) -> list[RunResult]:
        """Run everything due now: cron fires, retries, opened windows, new data."""
        if not self._started:
            self._start()
        made: list[RunResult] = []
        for phase in (self._due_schedules, self._due_retries, self._due_windows,
                      self._due_sensors):
            for job in phase(self.clock.now()):
                self._announce_stop()
                if self.stopping:
                    return made
                result = self.execute(job)
                if result is not None:
                    made.append(result)
        self._announce_stop()
        return made

    run_pending = tick

    def _start(self) -> None:
        self._started = True
        now = self.clock.now()
        for s in self.schedules:
            if s.key not in self.ledger.last_fire:
                # a schedule seen for the first time starts from now: no run for the past
                self.ledger.last_fire[s.key] = now
        self.ledger.save()
        parts = [f"{len(self.schedules)} schedule{'s' if len(self.schedules) != 1 else ''}"]
        if self.sensors:
            parts.append(f"sensors on {', '.join(self.sensors)}")
        nxt = self.next_fire(now)
        if nxt is not None:
            parts.append(f"next run {nxt[1]:%Y-%m-%d %H:%M %Z} ({nxt[0].name}, "
                         f"in {format_duration(nxt[1] - now)})")
        self.log.emit("scheduler.start", f"scheduler started for {self.config.name} "
                      f"(env {self.env}): " + "; ".join(parts), project=self.config.name,
                      env=self.env)

    def next_fire(self, now: datetime) -> tuple[Schedule, datetime] | None:
        fires = [(s, f) for s in self.schedules if (f := s.cron.next_after(now)) is not None]
        return min(fires, key=lambda x: utc(x[1])) if fires else None

    def next_wakeup(self, now: datetime) -> datetime:
        """The next instant something may be due."""
        times = [utc(f) for s in self.schedules if (f := s.cron.next_after(now)) is not None]
        times += [j.due for j in self.retries]
        times += [utc(p.opens_at) for p in self.deferred.values()]
        times += [self.next_poll.get(s, now) for s in self.sensors]
        return min(times, default=now + timedelta(seconds=self.max_sleep))

    # -- what is due -----------------------------------------------------------

    def _due_schedules(self, now: datetime) -> list[Job]:
        jobs = []
        for s in self.schedules:
            last = self.ledger.last_fire.get(s.key, now)
            missed, latest = s.cron.missed(last, now)
            if latest is None:
                continue
            span = self.last_run_span
            if s.config.on_overlap == "skip" and span and span[0] < utc(latest) <= span[1]:
                self.ledger.last_fire[s.key] = utc(latest)
                self.ledger.save()
                self.log.emit("schedule.skip",
                              f"schedule {s.name}: tick at {latest:%H:%M %Z} skipped, a run "
                              "was in progress (on_overlap = \"skip\")",
                              schedule=s.name, fire=latest.isoformat())
                continue
            if missed > 1:
                many = f"{missed}" if missed <= 1000 else "over 1000"
                self.log.emit("schedule.catch_up",
                              f"schedule {s.name}: {many} ticks missed since "
                              f"{utc(last):%Y-%m-%d %H:%M}Z; running once to catch up",
                              schedule=s.name, missed=missed, since=utc(last).isoformat())
            jobs.append(Job("schedule", utc(latest), f"schedule {s.name}",
                            select=s.config.select, exclude=s.config.exclude, schedule=s,
                            full_refresh=s.config.full_refresh,
                            on_overlap=s.config.on_overlap))
        return jobs

    def _due_retries(self, now: datetime) -> list[Job]:
        due = sorted((j for j in self.retries if j.due <= now), key=lambda j: j.due)
        self.retries = [j for j in self.retries if j.due > now]
        return due

    def _due_windows(self, now: datetime) -> list[Job]:
        jobs = []
        loaded = self.project.loaded
        for source, pending in list(self.deferred.items()):
            w = source_window(loaded, source)
            status = window_status(w[0], w[1], now) if w is not None else None
            if status is not None and not status.open:
                pending.opens_at = status.opens_at or pending.opens_at
                continue
            del self.deferred[source]
            opened = f"window of {source} is open" if w else f"{source} has no window any more"
            self.log.emit("window.open", f"{opened}: running the {len(pending.nodes)} deferred "
                          "nodes", source=source, nodes=sorted(pending.nodes))
            jobs.append(Job("window", now, f"window of {source}", source=source,
                            nodes=frozenset(pending.nodes)))
        return jobs

    def _due_sensors(self, now: datetime) -> list[Job]:
        jobs = []
        for source in self.sensors:
            if self.next_poll.get(source, now) > now:
                continue
            job = self._poll(source, now)
            if job is not None:
                jobs.append(job)
        return jobs

    def _poll(self, source: str, now: datetime) -> Job | None:
        from headwater.plan.planner import source_data_fps

        loaded = self.project.loaded
        node = loaded.nodes.get(source)
        if node is None:
            return None
        interval = node.config.poll_interval if isinstance(node, SourceNode) else 60.0
        self.next_poll[source] = now + timedelta(seconds=interval)
        w = source_window(loaded, source)
        if w is not None:
            status = window_status(w[0], w[1], now)
            if not status.open:  # outside its window a source is not touched, not even listed
                assert status.opens_at is not None
                self.next_poll[source] = max(self.next_poll[source], utc(status.opens_at))
                return None
        state = self.project.state
        before = state.file_hashes()
        cache = before.copy()
        try:
            fp = source_data_fps(loaded, [source], cache)[source]
        except Exception as exc:  # a network hiccup must not stop the scheduler: poll again
            text = first_line(exc.render() if isinstance(exc, HeadwaterError)
                              else f"{type(exc).__name__}: {exc}")
            self.log.emit("sensor.error", f"sensor {source}: {text}", source=source, error=text)
            return None
        state.save_file_hashes(cache, before)
        published = state.published(self.env).get(source)
        if fp == self.ledger.sensor_seen.get(source) or (published and published.data_fp == fp):
            if self.ledger.sensor_seen.get(source) != fp:
                self.ledger.sensor_seen[source] = fp
                self.ledger.save()
            return None
        nodes = frozenset({source} | loaded.graph.descendants(source))
        self.log.emit("sensor.new_data", f"new data in source {source}: running it and its "
                      f"{len(nodes) - 1} downstream nodes", source=source)
        return Job("sensor", now, f"new data in {source}", nodes=nodes, source=source,
                   fingerprint=fp)

    # -- running ---------------------------------------------------------------

    def execute(self, job: Job) -> RunResult | None:
        """Run one job now: defer what waits on a closed window, run the rest, handle failure.

        The job is marked done in the ledger only once it ran (or failed to):
        a scheduler stopped while waiting, or killed mid-run, does it again
        after a restart.
        """
        self._interrupted = False
        result = self._execute(job)
        if not self._interrupted:
            if job.schedule is not None and job.kind == "schedule":
                self.ledger.last_fire[job.schedule.key] = job.due
            if job.kind == "sensor" and job.source and job.fingerprint:
                self.ledger.sensor_seen[job.source] = job.fingerprint
            self.ledger.save()
        return result

    def _execute(self, job: Job) -> RunResult | None:
        try:
            loaded = self.project.reload()
            chosen = self._chosen(job, loaded)
        except HeadwaterError as exc:
            self._run_error(job, exc)
            return None
        now = self.clock.now()
        closed = closed_sources(loaded, chosen, now)
        held = deferred_nodes(loaded, closed, chosen)
        for source, status in closed.items():
            waiting = sorted(n for n, s in held.items() if s == source and n != source)
            more = f"; waiting with it: {', '.join(waiting)}" if waiting else ""
            self.log.emit("run.deferred", f"{job.label}: {deferral_reason(source, status)}{more}",
                          source=source, nodes=waiting, opens_at=(
                              status.opens_at.isoformat() if status.opens_at else None))
            pending = self.deferred.get(source)
            assert status.opens_at is not None
            if pending is None:
                self.deferred[source] = PendingWindow(
                    source, {n for n, s in held.items() if s == source}, status.opens_at)
            else:
                pending.nodes |= {n for n, s in held.items() if s == source}
        to_run = [n for n in loaded.graph.order() if n in chosen and n not in held]
        if not to_run:
            self.log.emit("run.nothing", f"{job.label}: nothing to run now", job=job.kind)
            return None
        if job.nodes is None and not closed:
            select, exclude = job.select, job.exclude
        elif job.nodes is None:
            select = job.select
            exclude = _as_list(job.exclude) + [f"{s}+" for s in closed]
        else:
            select, exclude = to_run, None
        context: dict[str, Any] = {"job": job.kind}
        if job.schedule is not None:
            context["schedule"] = job.schedule.name
        reporter = LogReporter(self.log, context=context, before=self._announce_stop)
        what = _describe_selection(select, exclude)
        self.log.emit("run.start", f"{job.label}: run started ({what})",
                      select=_text(select), exclude=_text(exclude), **context)
        started = self.clock.now()
        result = self._run_locked(job, select, exclude, reporter)
        self.last_run_span = (started, self.clock.now())
        if result is None:
            return None
        self.results.append(result)
        for source in [s for s in self.deferred if s in to_run]:
            del self.deferred[source]  # it ran inside its window: nothing left to wait for
        counts = result.counts()
        summary = ", ".join(f"{v} {k}" for k, v in counts.items() if v) or "nothing to do"
        if held:
            summary += f", {len(held)} deferred"
        self.log.emit("run.end", f"{job.label}: run {result.run_id} {result.status} in "
                      f"{result.seconds:.1f}s ({summary})", run_id=result.run_id,
                      status=result.status, seconds=round(result.seconds, 3), counts=counts,
                      deferred=sorted(held) or None, **context)
        self._after_run(job, result, frozenset(chosen))
        return result

    def _chosen(self, job: Job, loaded: LoadedProject) -> set[str]:
        if job.nodes is not None:
            return {n for n in job.nodes if n in loaded.nodes}
        return set(self.project.select(job.select, job.exclude))

    def _run_locked(
        self, job: Job, select: Selection, exclude: Selection, reporter: LogReporter
    ) -> RunResult | None:
        """``Project.run`` without blocking in the lock: waiting goes through the clock."""
        told = False
        while True:
            try:
                return self.project.run(
                    select, exclude=exclude, full_refresh=job.full_refresh, env=self.env,
                    threads=self.threads, reporter=reporter, wait=False,
                    now=self.clock.now(),
                )
            except LockedError as exc:
                if job.on_overlap == "skip":
                    self.log.emit("schedule.skip", f"{job.label}: skipped, {exc.message} "
                                  "(on_overlap = \"skip\")", job=job.kind)
                    return None
                if not told:
                    told = True
                    self.log.emit("run.waiting", f"{job.label}: waiting, {exc.message}",
                                  job=job.kind)
                self._announce_stop()
                if self.stopping:
                    self._interrupted = True
                    return None
                self.clock.sleep(self.lock_poll)
            except HeadwaterError as exc:
                self._run_error(job, exc)
                return None

    def _run_error(self, job: Job, exc: HeadwaterError) -> None:
        """The run could not even start (a broken project file, a bad selection ...)."""
        text = first_line(exc.render())
        self.log.emit("run.error", f"{job.label}: could not run: {text}", error=text,
                      job=job.kind)
        if self.notifier is not None and self.notifier.wants("failure"):
            self.notifier.send(Notification(
                f"headwater {self.config.name}: {job.label} could not run (env {self.env}): "
                f"{text}",
                {"project": self.config.name, "env": self.env, "status": "error",
                 "job": job.label, "error": text},
            ))

    # -- after a run: retries and notifications ---------------------------------

    def policy(self, node: str, schedule: Schedule | None) -> tuple[int, float]:
        """``(retries, retry_delay)`` for ``node``: its own, else its schedule's, else global."""
        retries, delay = self.config.retries, self.config.retry_delay
        if schedule is not None:
            if schedule.config.retries is not None:
                retries = schedule.config.retries
            if schedule.config.retry_delay is not None:
                delay = schedule.config.retry_delay
        own = self.config.node_retries.get(node)
        if own is not None:
            retries = own.retries if own.retries is not None else retries
            delay = own.retry_delay if own.retry_delay is not None else delay
        return retries, delay

    def _after_run(self, job: Job, result: RunResult, chosen: frozenset[str]) -> None:
        ok = {n.name for n in result.nodes if n.status != "failed" and not n.blocked}
        for pending in self.retries:  # a later run that built them makes retries moot
            if pending.nodes is not None and pending.attempts and set(pending.attempts) <= ok:
                self.log.emit("retry.dropped", f"{pending.label}: no longer needed, "
                              f"{', '.join(sorted(pending.attempts))} succeeded since")
                pending.nodes = None
        self.retries = [j for j in self.retries if j.nodes is not None]

        failed = [n for n in result.nodes if n.status == "failed"]
        blocked = [n.name for n in result.nodes if n.blocked]
        now = self.clock.now()
        origin = job.origin or chosen
        graph = self.project.graph
        exhausted: list[tuple[str, int, str]] = []
        for n in failed:
            attempt = job.attempts.get(n.name, 0)
            retries, delay = self.policy(n.name, job.schedule)
            if attempt >= retries:
                exhausted.append((n.name, attempt + 1, first_line(n.error)))
                continue
            wait = delay * 2 ** attempt
            due = now + timedelta(seconds=wait)
            nodes = {n.name} | (graph.descendants(n.name) & origin)
            self._queue_retry(job, due, n.name, attempt + 1, nodes, origin)
            self.log.emit("retry.scheduled",
                          f"{n.name} failed; retry {attempt + 1} of {retries} in "
                          f"{format_duration(wait)} (at {due:%H:%M:%S}Z)",
                          node=n.name, attempt=attempt + 1, retries=retries,
                          delay=wait, due=due.isoformat())
        if exhausted:
            for name, attempts, error in exhausted:
                self.log.emit("retry.exhausted", f"{name} failed after {attempts} attempt"
                              f"{'s' if attempts != 1 else ''}: {error}", node=name,
                              attempts=attempts, error=error)
            self._notify_failure(job, result, exhausted, blocked)
        elif result.ok and self.notifier is not None and self.notifier.wants("success"):
            self.notifier.send(Notification(
                f"headwater {self.config.name}: {job.label} succeeded (env {self.env}, "
                f"run {result.run_id})",
                {"project": self.config.name, "env": self.env, "run_id": result.run_id,
                 "status": result.status, "counts": result.counts()},
            ))

    def _queue_retry(self, job: Job, due: datetime, node: str, attempt: int, nodes: set[str],
                     origin: frozenset[str]) -> None:
        for pending in self.retries:
            if pending.due == due and pending.schedule is job.schedule and pending.nodes:
                pending.nodes = pending.nodes | nodes
                pending.attempts[node] = attempt
                pending.label = f"retry of {', '.join(sorted(pending.attempts))}"
                return
        self.retries.append(Job(
            "retry", due, f"retry {attempt} of {node}", nodes=frozenset(nodes),
            schedule=job.schedule, attempts={node: attempt}, origin=origin,
        ))

    def _notify_failure(self, job: Job, result: RunResult,
                        exhausted: list[tuple[str, int, str]], blocked: list[str]) -> None:
        if self.notifier is None or not self.notifier.wants("failure"):
            return
        k = len(exhausted)
        where = [job.label] if job.kind != "retry" or job.schedule is None \
            else [f"schedule {job.schedule.name}", job.label]
        lines = [f"headwater {self.config.name}: {k} node{'s' if k != 1 else ''} failed "
                 f"({', '.join(where)}, env {self.env}, run {result.run_id})"]
        lines += [f"- {name} ({attempts} attempt{'s' if attempts != 1 else ''}): {error}"
                  for name, attempts, error in exhausted]
        if blocked:
            lines.append(f"- {len(blocked)} downstream node{'s' if len(blocked) != 1 else ''} "
                         f"skipped, previous data still published: {', '.join(blocked[:20])}")
        self.notifier.send(Notification("\n".join(lines), {
            "project": self.config.name, "env": self.env, "run_id": result.run_id,
            "status": result.status, "job": job.label,
            "schedule": job.schedule.name if job.schedule else None,
            "failed": [{"node": n, "attempts": a, "error": e} for n, a, e in exhausted],
            "skipped": blocked,
        }))

    # -- dry run -----------------------------------------------------------------

    def dry_run(self, count: int = 3) -> dict[str, Any]:
        """What ``headwater schedule --dry-run`` shows: next fires, windows, sensors."""
        return describe(self.project.loaded, self.clock.now(), count=count,
                        last_fire=self.ledger.last_fire, notify_url=(
                            self.redactor.url(self.config.notify.url)
                            if self.config.notify else None), problems=self.problems)


def describe(
    loaded: LoadedProject,
    now: datetime,
    *,
    count: int = 3,
    last_fire: dict[str, datetime] | None = None,
    notify_url: str | None = None,
    problems: list[str] | None = None,
) -> dict[str, Any]:
    """The schedule of a project at ``now``, as data (pure but for reading the config)."""
    cfg = loaded.config
    schedules = []
    for i, sc in enumerate(cfg.schedules):
        s = Schedule.from_config(sc, i, cfg.timezone)
        last = (last_fire or {}).get(s.key)
        schedules.append({
            "name": s.name, "cron": sc.cron, "timezone": s.cron.tz,
            "select": _text(sc.select), "exclude": _text(sc.exclude),
            "on_overlap": sc.on_overlap,
            "last_fire": last.isoformat() if last else None,
            "next": [f.isoformat() for f in s.cron.upcoming(now, count)],
        })
    windows = []
    sensors = []
    for name, node in loaded.nodes.items():
        w = source_window(loaded, name)
        if w is not None:
            windows.append({"source": name, **window_status(w[0], w[1], now).to_json()})
        if isinstance(node, SourceNode) and node.config.trigger == "new_data":
            sensors.append({"source": name, "poll_interval": node.config.poll_interval,
                            "window": w[0] if w else None})
    return {
        "project": cfg.name, "now": utc(now).isoformat(), "schedules": schedules,
        "windows": windows, "sensors": sensors,
        "retries": {"retries": cfg.retries, "retry_delay": cfg.retry_delay,
                    "node_retries": {k: v.model_dump(exclude_none=True)
                                     for k, v in cfg.node_retries.items()}},
        "notify": {"url": notify_url, "on": list(cfg.notify.on)} if cfg.notify else None,
        "problems": list(problems or []),
    }


def format_dry_run(info: dict[str, Any]) -> str:
    """``describe()`` as the text ``headwater schedule --dry-run`` prints."""
    now = datetime.fromisoformat(info["now"])
    out = [f"{info['project']}: schedule at {now:%Y-%m-%d %H:%M}Z"]
    if not info["schedules"] and not info["sensors"]:
        out.append("  no schedules and no new_data sensors: nothing would run "
                   "(add [[schedules]] to headwater.toml)")
    for s in info["schedules"]:
        sel = f"  select {s['select']}" if s["select"] else "  (whole project)"
        if s["exclude"]:
            sel += f" exclude {s['exclude']}"
        out.append(f"schedule {s['name']}: {s['cron']} {s['timezone']}{sel}")
        for f in s["next"]:
            at = datetime.fromisoformat(f).astimezone(zone(s["timezone"]))
            out.append(f"  next {at:%Y-%m-%d %H:%M %Z} (in {format_duration(at - now)})")
    for w in info["windows"]:
        state = "open" if w["open"] else "closed"
        out.append(f"window {w['source']}: {w['window']} {w['timezone']}, {state}, "
                   f"{w['description']}")
    for s in info["sensors"]:
        where = f", inside its window {s['window']}" if s["window"] else ""
        out.append(f"sensor {s['source']}: new data polled every "
                   f"{format_duration(s['poll_interval'])}{where}")
    r = info["retries"]
    out.append(f"retries: {r['retries']} per failed node, first after "
               f"{format_duration(r['retry_delay'])}, doubling"
               + "".join(f"; {k}: {v}" for k, v in r["node_retries"].items()))
    if info["notify"]:
        out.append(f"notify: {info['notify']['url']} on {', '.join(info['notify']['on'])}")
    out += [f"warning: {p}" for p in info["problems"]]
    return "\n".join(out)


def _as_list(sel: Selection) -> list[str]:
    if sel is None:
        return []
    return [sel] if isinstance(sel, str) else list(sel)


def _text(sel: Selection | Iterable[str]) -> str | None:
    if sel is None:
        return None
    return sel if isinstance(sel, str) else " ".join(sel)


def _describe_selection(select: Selection, exclude: Selection) -> str:
    parts = [f"select {_text(select)}" if select else "whole project"]
    if exclude:
        parts.append(f"exclude {_text(exclude)}")
    return ", ".join(parts)
