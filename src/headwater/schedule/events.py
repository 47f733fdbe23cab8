"""The scheduler's log: one line per scheduler, run and node event, as text or JSON lines.

Text (the default) is for people tailing a terminal or journald::

    2024-03-10T10:00:00Z run.start   schedule nightly fired at 02:00 America/Los_Angeles ...

JSON lines (``--log-format json``) are for log shippers; every line is an
object with ``ts`` (UTC, ISO 8601), ``event``, ``message`` and the event's
fields (``schedule``, ``run_id``, ``node``, ``status`` ...).

Every line passes through the redactor, so a secret never reaches the log.

Events: ``scheduler.start``, ``scheduler.stop``, ``schedule.fire``,
``schedule.catch_up``, ``schedule.skip``, ``run.deferred``, ``run.waiting``,
``run.start``, ``node.start``, ``node.end``, ``run.end``, ``run.nothing``,
``run.error``, ``retry.scheduled``, ``retry.exhausted``, ``sensor.new_data``,
``sensor.error``, ``window.open``, ``notify.sent``, ``notify.failed``.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, TextIO

from headwater.core.clock import Clock
from headwater.schedule.redact import Redactor

if TYPE_CHECKING:
    from headwater.plan.planner import Plan
    from headwater.run.runner import NodeResult

LogFormat = Literal["text", "json"]


class EventLog:
    def __init__(
        self,
        clock: Clock,
        stream: TextIO | None = None,
        *,
        fmt: LogFormat = "text",
        redactor: Redactor | None = None,
    ) -> None:
        self.clock = clock
        self.stream = stream if stream is not None else sys.stdout
        self.fmt = fmt
        self.redact = redactor or Redactor()
        self.events: list[dict[str, Any]] = []  # kept for tests and the UI; bounded below
        self._lock = threading.Lock()

    def emit(self, event: str, message: str, **fields: Any) -> dict[str, Any]:
        ts = self.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
        record: dict[str, Any] = {"ts": ts, "event": event, "message": message}
        record.update({k: v for k, v in fields.items() if v is not None})
        if self.fmt == "json":
            line = self.redact(json.dumps(record, default=str))
        else:
            line = self.redact(f"{ts} {event:<16} {message}")
        with self._lock:
            self.events.append(record)
            del self.events[:-1000]
            self.stream.write(line + "\n")
            self.stream.flush()
        return record

    def of(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == event]


def first_line(text: str | None, limit: int = 300) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


class LogReporter:
    """A runner ``Reporter`` that logs node events: starts, builds, failures, blocked nodes.

    Up-to-date skips are not logged one by one (an hourly run would print the
    whole project each time); ``run.end`` counts them.
    """

    def __init__(
        self,
        log: EventLog,
        *,
        context: dict[str, Any] | None = None,
        before: Callable[[], None] | None = None,
    ) -> None:
        self.log = log
        self.context = context or {}
        self.before = before or (lambda: None)

    def on_start(self, plan: Plan) -> None:
        self.before()

    def on_node_start(self, name: str) -> None:
        self.before()
        self.log.emit("node.start", f"{name} started", node=name, **self.context)

    def on_node_end(self, result: NodeResult) -> None:
        self.before()
        if result.status == "skipped" and not result.blocked:
            return
        rows = f", {result.rows:,} rows" if result.rows is not None else ""
        text = f"{result.name} {result.status} ({result.reason}{rows}, {result.seconds:.2f}s)"
        if result.error:
            text += f": {first_line(result.error)}"
        self.log.emit(
            "node.end", text, node=result.name, kind=result.kind, status=result.status,
            reason=result.reason, rows=result.rows, seconds=round(result.seconds, 3),
            error=first_line(result.error) or None, **self.context,
        )
