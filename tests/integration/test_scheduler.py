"""The scheduler on real DuckDB projects, driven by a FakeClock: no real sleeping."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from headwater import Project
from headwater.core.clock import FakeClock
from headwater.errors import ProjectError
from headwater.run.lock import ProjectLock
from headwater.run.runner import RunResult
from headwater.schedule.scheduler import Scheduler, SchedulerError
from headwater.testing import invoke, write_project

LA = "America/Los_Angeles"

FLAKY = '''
"""Fails its first N calls (N in fails.txt), counting calls in calls.txt."""
from pathlib import Path

import pyarrow as pa


def flaky(raw: pa.Table) -> pa.Table:
    root = Path(__file__).resolve().parent.parent
    calls = root / "calls.txt"
    n = int(calls.read_text()) if calls.exists() else 0
    calls.write_text(str(n + 1))
    if n < int((root / "fails.txt").read_text()):
        raise RuntimeError(f"upstream API hiccup #{n + 1}")
    return raw
'''


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
       ) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def make(tmp_path: Path, config: str = "", files: dict[str, str] | None = None) -> Project:
    base = {
        "data/a.csv": "id,v\n1,10\n2,20\n",
        "sources/raw.toml": 'type = "files"\npath = "data/a.csv"\n',
        "transforms/stg.sql": "SELECT id, v * 2 AS v2 FROM raw\n",
    }
    base.update(files or {})
    return Project(write_project(tmp_path / "p", base, config=config))


def scheduler(project: Project, clock: FakeClock, **kw: Any) -> tuple[Scheduler, io.StringIO]:
    out = io.StringIO()
    return Scheduler(project, clock, stream=out, **kw), out


def events(s: Scheduler, name: str) -> list[dict[str, Any]]:
    return s.log.of(name)


def ran(result: RunResult) -> set[str]:
    return {n.name for n in result.nodes}


# -- cron ----------------------------------------------------------------------------------


def test_fires_at_cron_times_in_its_zone_across_dst(tmp_path: Path) -> None:
    project = make(tmp_path, '[[schedules]]\nname = "nightly"\ncron = "30 2 * * *"\n'
                             f'timezone = "{LA}"\n')
    clock = FakeClock(at(2024, 3, 8, 0))
    s, _ = scheduler(project, clock)
    s.serve_forever(until=at(2024, 3, 12, 0))
    starts = [e["ts"] for e in events(s, "run.start")]
    # 02:30 PST, 02:30 PST, 03:00 PDT (02:30 does not exist that day), 02:30 PDT
    assert starts == ["2024-03-08T10:30:00Z", "2024-03-09T10:30:00Z",
                      "2024-03-10T10:00:00Z", "2024-03-11T09:30:00Z"]
    assert all(e["schedule"] == "nightly" for e in events(s, "run.start"))
    assert not any(x > 0 and x < 0.5 for x in clock.sleeps)  # no busy loop
    assert len(clock.sleeps) < 4 * 24 * 60 + 10  # at most one wake-up a minute


def test_first_start_does_not_run_the_past(tmp_path: Path) -> None:
    project = make(tmp_path, '[[schedules]]\ncron = "0 * * * *"\n')
    clock = FakeClock(at(2024, 1, 1, 10, 30))
    s, out = scheduler(project, clock)
    assert s.tick() == []
    assert "scheduler started for test" in out.getvalue()
    assert "next run 2024-01-01 11:00 UTC" in out.getvalue()
    clock.set(at(2024, 1, 1, 11, 0))
    assert len(s.tick()) == 1


def test_missed_ticks_after_downtime_run_once(tmp_path: Path) -> None:
    project = make(tmp_path, '[[schedules]]\nname = "hourly"\ncron = "0 * * * *"\n')
    clock = FakeClock(at(2024, 1, 1, 9, 59))
    first, _ = scheduler(project, clock)
    first.serve_forever(until=at(2024, 1, 1, 10, 1))
    assert len(first.results) == 1
    clock.advance(timedelta(hours=5, minutes=30))  # the scheduler was down until 15:31

    again, out = scheduler(Project(project.root), clock)
    results = again.tick()
    assert len(results) == 1 and results[0].ok
    (catch_up,) = events(again, "schedule.catch_up")
    assert catch_up["missed"] == 5
    assert "5 ticks missed since 2024-01-01 10:00Z; running once to catch up" in out.getvalue()
    assert again.tick() == []  # nothing more at the same instant
    clock.set(at(2024, 1, 1, 16, 0))
    assert len(again.tick()) == 1
    assert len(events(again, "schedule.catch_up")) == 1


def test_overlapping_tick_waits_and_runs_once_after(tmp_path: Path) -> None:
    project = make(tmp_path, '[[schedules]]\ncron = "0 * * * *"\n')
    clock = FakeClock(at(2024, 1, 1, 9, 59))
    s, _ = scheduler(project, clock)
    slow_run(project, clock, hours=2.5)
    s.tick()
    clock.set(at(2024, 1, 1, 10, 0))
    assert len(s.tick()) == 1  # the 10:00 run takes until 12:30
    assert clock.now() == at(2024, 1, 1, 12, 30)
    assert len(s.tick()) == 1  # 11:00 and 12:00 passed meanwhile: one run, not two
    assert events(s, "schedule.catch_up")[0]["missed"] == 2


def test_overlapping_tick_skips_with_on_overlap_skip(tmp_path: Path) -> None:
    project = make(tmp_path, '[[schedules]]\ncron = "0 * * * *"\non_overlap = "skip"\n')
    clock = FakeClock(at(2024, 1, 1, 9, 59))
    s, out = scheduler(project, clock)
    slow_run(project, clock, hours=1.5)
    s.tick()
    clock.set(at(2024, 1, 1, 10, 0))
    assert len(s.tick()) == 1
    assert s.tick() == []
    assert "tick at 11:00 UTC skipped, a run was in progress" in out.getvalue()
    clock.set(at(2024, 1, 1, 12, 0))
    assert len(s.tick()) == 1


def slow_run(project: Project, clock: FakeClock, hours: float) -> None:
    """Make every run of ``project`` take ``hours`` on the fake clock."""
    real = project.run

    def run(*args: Any, **kw: Any) -> RunResult:
        result = real(*args, **kw)
        clock.advance(timedelta(hours=hours))
        return result

    project.run = run  # type: ignore[method-assign]


class ReleasingClock(FakeClock):
    """A fake clock that releases a lock after some sleeps (another run finishing)."""

    def __init__(self, start: datetime, lock: ProjectLock, after: int) -> None:
        super().__init__(start)
        self.lock, self.after = lock, after

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        if len(self.sleeps) == self.after:
            self.lock.release()


def test_another_run_in_progress_waits_through_the_clock(tmp_path: Path) -> None:
    project = make(tmp_path, '[[schedules]]\ncron = "0 * * * *"\n')
    other = ProjectLock(project.state_dir / "run.lock")
    clock = ReleasingClock(at(2024, 1, 1, 10, 0), other, after=3)
    s, out = scheduler(project, clock)
    s.tick()
    other.acquire(wait=False)
    clock.set(at(2024, 1, 1, 11, 0))
    (result,) = s.tick()
    assert result.ok
    assert clock.sleeps == [1.0, 1.0, 1.0]
    assert len(events(s, "run.waiting")) == 1
    assert "waiting, another run is in progress on this project (pid" in out.getvalue()


def test_another_run_in_progress_is_skipped_with_on_overlap_skip(tmp_path: Path) -> None:
    project = make(tmp_path, '[[schedules]]\ncron = "0 * * * *"\non_overlap = "skip"\n')
    clock = FakeClock(at(2024, 1, 1, 10, 0))
    s, out = scheduler(project, clock)
    s.tick()
    with ProjectLock(project.state_dir / "run.lock"):
        clock.set(at(2024, 1, 1, 11, 0))
        assert s.tick() == []
    assert clock.sleeps == []
    assert "skipped, another run is in progress" in out.getvalue()
    clock.set(at(2024, 1, 1, 12, 0))
    assert len(s.tick()) == 1


def test_second_scheduler_on_one_project_is_refused(tmp_path: Path) -> None:
    project = make(tmp_path, '[[schedules]]\ncron = "0 * * * *"\n')
    with ProjectLock(project.state_dir / "scheduler.lock"):
        s, _ = scheduler(project, FakeClock())
        with pytest.raises(SchedulerError, match="another `headwater schedule` is running"):
            s.serve_forever(until=at(2024, 1, 2))


# -- retries --------------------------------------------------------------------------------

RETRY_FILES = {
    "transforms/flaky.py": FLAKY,
    "transforms/after_flaky.sql": "SELECT * FROM flaky\n",
    "transforms/sibling.sql": "SELECT count(*) AS n FROM raw\n",
    "fails.txt": "3",
}


def test_retries_failed_nodes_and_downstream_with_exponential_backoff(tmp_path: Path) -> None:
    project = make(tmp_path, 'retries = 3\nretry_delay = 10\n[[schedules]]\ncron = "0 2 * * *"\n',
                   RETRY_FILES)
    clock = FakeClock(at(2024, 1, 1, 1, 0))
    s, out = scheduler(project, clock)
    s.serve_forever(until=at(2024, 1, 1, 2, 5))
    starts = [e["ts"] for e in events(s, "run.start")]
    assert starts == ["2024-01-01T02:00:00Z", "2024-01-01T02:00:10Z",
                      "2024-01-01T02:00:30Z", "2024-01-01T02:01:10Z"]
    first, *retries = s.results
    assert {n.name: n.status for n in first.nodes} == {
        "raw": "executed", "stg": "executed", "sibling": "executed",
        "flaky": "failed", "after_flaky": "skipped"}
    for r in retries:
        assert ran(r) == {"flaky", "after_flaky"}  # the failed node and its downstream only
    assert [r.ok for r in retries] == [False, False, True]
    assert [e["delay"] for e in events(s, "retry.scheduled")] == [10, 20, 40]
    assert "flaky failed; retry 1 of 3 in 1m" in out.getvalue()
    assert events(s, "retry.exhausted") == []
    assert project.table("after_flaky").num_rows == 2


def test_per_node_policy_overrides_the_project(tmp_path: Path) -> None:
    project = make(tmp_path, 'retries = 3\nretry_delay = 10\n[node_retries.flaky]\nretries = 1\n'
                   'retry_delay = "1m"\n[[schedules]]\ncron = "0 2 * * *"\n',
                   {**RETRY_FILES, "fails.txt": "99"})
    clock = FakeClock(at(2024, 1, 1, 1, 0))
    s, _ = scheduler(project, clock)
    s.serve_forever(until=at(2024, 1, 1, 3, 0))
    assert [e["ts"] for e in events(s, "run.start")] == [
        "2024-01-01T02:00:00Z", "2024-01-01T02:01:00Z"]
    (gave_up,) = events(s, "retry.exhausted")
    assert gave_up["node"] == "flaky" and gave_up["attempts"] == 2
    assert "RuntimeError: upstream API hiccup #2" in gave_up["error"]


def test_unknown_node_in_node_retries_fails_at_start(tmp_path: Path) -> None:
    project = make(tmp_path, '[node_retries.stgg]\nretries = 1\n')
    with pytest.raises(ProjectError, match=r"\[node_retries.stgg\] names no node") as err:
        scheduler(project, FakeClock())
    assert "did you mean 'stg'?" in (err.value.hint or "")


def test_schedule_with_a_bad_selection_fails_at_start(tmp_path: Path) -> None:
    project = make(tmp_path, '[[schedules]]\nname = "h"\ncron = "0 * * * *"\n'
                             'select = "tag:hourly"\n')
    with pytest.raises(ProjectError, match="schedule h: no node is tagged 'hourly'"):
        scheduler(project, FakeClock())


# -- webhook --------------------------------------------------------------------------------


class Hook:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.requests.append({"path": self.path, "json": json.loads(body),
                                      "content_type": self.headers["Content-Type"]})
                self.send_response(hook.statuses.pop(0) if hook.statuses else 200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.server.shutdown()
    h.server.server_close()


TOKEN = "s3cr3t-hook-t0ken"


def test_webhook_after_retries_is_received_and_secret_never_logged(
    tmp_path: Path, hook: Hook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HW_HOOK_TOKEN", TOKEN)
    hook.statuses = [503]  # the first delivery fails, the retry succeeds
    url = f"http://127.0.0.1:{hook.port}/services/${{HW_HOOK_TOKEN}}?token=${{HW_HOOK_TOKEN}}"
    project = make(tmp_path, f'retries = 1\nretry_delay = 5\n[notify]\nurl = "{url}"\n'
                   '[[schedules]]\nname = "nightly"\ncron = "0 2 * * *"\n',
                   {**RETRY_FILES, "fails.txt": "99"})
    clock = FakeClock(at(2024, 1, 1, 1, 59))
    s, out = scheduler(project, clock, log_format="json")
    s.serve_forever(until=at(2024, 1, 1, 2, 1))

    assert len(hook.requests) == 2  # 503, then delivered
    req = hook.requests[-1]
    assert req["path"] == f"/services/{TOKEN}?token={TOKEN}"
    assert req["content_type"] == "application/json"
    text = req["json"]["text"]
    assert text.startswith(
        "headwater test: 1 node failed (schedule nightly, retry 1 of flaky, env prod, run ")
    assert "- flaky (2 attempts): " in text and "upstream API hiccup #2" in text
    assert "1 downstream node skipped, previous data still published: after_flaky" in text
    details = req["json"]["headwater"]
    assert details["failed"][0]["node"] == "flaky" and details["skipped"] == ["after_flaky"]
    (sent,) = events(s, "notify.sent")
    assert sent["attempts"] == 2
    assert 1.0 in clock.sleeps  # the delivery retry waited on the clock

    log = out.getvalue()
    assert TOKEN not in log
    assert f"127.0.0.1:{hook.port}/services/${{HW_HOOK_TOKEN}}?***" in log
    lines = [json.loads(line) for line in log.splitlines()]
    assert {"ts", "event", "message"} <= set(lines[0])
    assert "notify.sent" in [line["event"] for line in lines]


def test_webhook_unreachable_is_logged_not_raised(tmp_path: Path, hook: Hook) -> None:
    port = hook.port
    hook.server.shutdown()
    hook.server.server_close()
    project = make(tmp_path, f'[notify]\nurl = "http://127.0.0.1:{port}/x"\nretries = 2\n'
                   '[[schedules]]\ncron = "0 2 * * *"\n', {**RETRY_FILES, "fails.txt": "99"})
    clock = FakeClock(at(2024, 1, 1, 1, 59))
    s, _ = scheduler(project, clock)
    s.serve_forever(until=at(2024, 1, 1, 2, 1))
    (failed,) = events(s, "notify.failed")
    assert "ConnectError" in failed["error"]
    assert [x for x in clock.sleeps if x in (1.0, 2.0)] == [1.0, 2.0]


def test_webhook_variable_missing_fails_at_start(tmp_path: Path) -> None:
    project = make(tmp_path, '[notify]\nurl = "https://hooks.example.com/${HW_NOT_SET_ANYWHERE}"\n')
    with pytest.raises(ProjectError, match="environment variable HW_NOT_SET_ANYWHERE is not set"):
        scheduler(project, FakeClock())


# -- windows --------------------------------------------------------------------------------

WINDOW_FILES = {
    "data/vendor.csv": "id,w\n1,5\n",
    "sources/vendor.toml": 'type = "files"\npath = "data/vendor.csv"\nwindow = "02:00-05:00"\n'
                           f'window_timezone = "{LA}"\n',
    "transforms/joined.sql": "SELECT raw.id, w FROM raw JOIN vendor USING (id)\n",
}


def test_closed_window_defers_source_and_downstream_keeping_previous_data(tmp_path: Path) -> None:
    project = make(tmp_path, '[[schedules]]\ncron = "0 * * * *"\n', WINDOW_FILES)
    clock = FakeClock(at(2024, 6, 1, 9, 30))  # 02:30 PDT: open
    s, out = scheduler(project, clock)
    s.tick()
    clock.set(at(2024, 6, 1, 10, 0))
    (first,) = s.tick()
    assert {n.name for n in first.nodes if n.status == "executed"} == {
        "raw", "stg", "vendor", "joined"}

    # the vendor goes away outside its window: reading it would fail
    (project.root / "data/vendor.csv").unlink()
    (project.root / "data/a.csv").write_text("id,v\n1,11\n2,21\n")
    clock.set(at(2024, 6, 1, 3, 48) + timedelta(days=1))  # 20:48 PDT
    (second,) = s.tick()
    assert second.ok
    assert ran(second) == {"raw", "stg"}
    assert "deferred: source vendor opens at 02:00 America/Los_Angeles (in 5h12m); " \
           "waiting with it: joined" in out.getvalue()
    (end,) = [e for e in events(s, "run.end") if e["run_id"] == second.run_id]
    assert end["deferred"] == ["joined", "vendor"]
    assert project.table("joined").to_pylist() == [{"id": 1, "w": 5}]  # previous data live

    (project.root / "data/vendor.csv").write_text("id,w\n1,6\n2,7\n")
    clock.set(at(2024, 6, 2, 9, 0))  # 02:00 PDT: the hourly run reads it then
    (third,) = s.tick()
    assert {"vendor", "joined"} <= {n.name for n in third.nodes if n.status == "executed"}
    assert sorted(project.table("joined").to_pylist(), key=lambda r: r["id"]) == [
        {"id": 1, "w": 6}, {"id": 2, "w": 7}]
    assert s.deferred == {}


def test_deferred_nodes_run_when_the_window_opens(tmp_path: Path) -> None:
    project = make(tmp_path, '[[schedules]]\ncron = "0 6 * * *"\n', WINDOW_FILES)
    clock = FakeClock(at(2024, 6, 1, 5, 0))
    s, out = scheduler(project, clock)
    s.serve_forever(until=at(2024, 6, 1, 9, 30))
    assert [e["ts"] for e in events(s, "run.start")] == [
        "2024-06-01T06:00:00Z",  # the schedule: vendor deferred (23:00 PDT)
        "2024-06-01T09:00:00Z",  # the window opens at 02:00 PDT: vendor and joined run
    ]
    assert ran(s.results[1]) == {"vendor", "joined"}
    assert "window of vendor is open: running the 2 deferred nodes" in out.getvalue()


def test_dry_run_shows_fires_and_windows(tmp_path: Path) -> None:
    project = make(tmp_path, f'timezone = "{LA}"\n[[schedules]]\nname = "nightly"\n'
                   'cron = "0 2 * * *"\nselect = "stg+"\n', WINDOW_FILES)
    clock = FakeClock(at(2024, 6, 1, 3, 48))
    s, _ = scheduler(project, clock)
    info = s.dry_run(count=2)
    assert info["schedules"][0]["next"] == ["2024-06-01T02:00:00-07:00",
                                            "2024-06-02T02:00:00-07:00"]
    assert info["windows"][0]["description"] == "opens at 02:00 America/Los_Angeles (in 5h12m)"
    result = invoke(["schedule", "--dry-run", "--project", str(project.root)])
    assert result.exit_code == 0, result.output
    assert "schedule nightly: 0 2 * * * America/Los_Angeles  select stg+" in result.output
    assert "window vendor: 02:00-05:00 America/Los_Angeles," in result.output
    js = invoke(["schedule", "--dry-run", "--json", "--project", str(project.root)])
    assert json.loads(js.output)["schedules"][0]["name"] == "nightly"


def test_schedule_without_schedules_says_what_to_add(tmp_path: Path) -> None:
    project = make(tmp_path)
    result = invoke(["schedule", "--project", str(project.root)])
    assert result.exit_code == 2
    assert "nothing to schedule" in result.output
    assert "[[schedules]]" in result.output


# -- sensors --------------------------------------------------------------------------------

SENSOR_FILES = {
    "data/drops/day1.csv": "id,w\n1,5\n",
    "sources/drops.toml": 'type = "files"\npath = "data/drops/*.csv"\ntrigger = "new_data"\n'
                          'poll_interval = 30\n',
    "transforms/drop_totals.sql": "SELECT count(*) AS n FROM drops\n",
}


def test_sensor_runs_affected_nodes_when_a_new_partition_appears(tmp_path: Path) -> None:
    project = make(tmp_path, "", SENSOR_FILES)
    project.run()
    clock = FakeClock(at(2024, 1, 1, 0, 0))
    s, out = scheduler(project, clock)
    assert s.tick() == []  # built already: nothing new
    (project.root / "data/drops/day2.csv").write_text("id,w\n2,6\n")
    clock.advance(10)
    assert s.tick() == []  # not polled yet
    clock.advance(20)
    (result,) = s.tick()
    assert ran(result) == {"drops", "drop_totals"}  # raw and stg are not affected
    assert project.table("drop_totals").to_pylist() == [{"n": 2}]
    assert "new data in source drops: running it and its 1 downstream nodes" in out.getvalue()
    clock.advance(30)
    assert s.tick() == []


def test_sensor_outside_its_window_does_not_touch_the_source(tmp_path: Path) -> None:
    files = dict(SENSOR_FILES)
    files["sources/drops.toml"] += f'window = "02:00-05:00"\nwindow_timezone = "{LA}"\n'
    project = make(tmp_path, "", files)
    (project.root / "data/drops/day1.csv").unlink()  # listing it now would be an error
    clock = FakeClock(at(2024, 6, 1, 3, 48))
    s, _ = scheduler(project, clock)
    assert s.tick() == []
    assert events(s, "sensor.error") == []
    assert s.next_poll["drops"] == at(2024, 6, 1, 9, 0)
    (project.root / "data/drops/day1.csv").write_text("id,w\n1,5\n")
    s.serve_forever(until=at(2024, 6, 1, 9, 1))
    assert [e["ts"] for e in events(s, "run.start")] == ["2024-06-01T09:00:00Z"]


class StoppingClock(FakeClock):
    """A fake clock whose first sleep is interrupted by a stop request (SIGTERM)."""

    scheduler: Scheduler | None = None

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        assert self.scheduler is not None
        self.scheduler.stop("received SIGTERM")


def test_stop_while_waiting_for_the_project_leaves_the_tick_for_next_time(
    tmp_path: Path,
) -> None:
    project = make(tmp_path, '[[schedules]]\ncron = "0 * * * *"\n')
    clock = StoppingClock(at(2024, 1, 1, 10, 30))
    s, out = scheduler(project, clock)
    clock.scheduler = s
    s.tick()
    with ProjectLock(project.state_dir / "run.lock"):
        clock.set(at(2024, 1, 1, 11, 0))
        assert s.tick() == []
    assert "stopping (received SIGTERM)" in out.getvalue()
    assert s.ledger.last_fire[s.schedules[0].key] == at(2024, 1, 1, 10, 30)

    again, _ = scheduler(Project(project.root), FakeClock(at(2024, 1, 1, 11, 5)))
    (result,) = again.tick()  # the 11:00 tick was not done: it runs after the restart
    assert result.ok
