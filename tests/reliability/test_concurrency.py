"""Concurrency: several Headwater processes on one project at once.

Real processes (``python -m headwater.cli.main``), a real lock, a real warehouse:
two runs at once, a run while the scheduler runs (both ways round), ``docs``,
``plan``, ``lineage``, ``show``/``query``/``test`` and ``serve`` during a run.
Nothing may corrupt the project, deadlock (every command has a deadline), or fail
obscurely: what cannot work during a run says so and exits with a clear status.
"""

from __future__ import annotations

import io
import json
import re
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from headwater import Project
from headwater.core.clock import FakeClock
from headwater.schedule.scheduler import Scheduler

from .helpers import (
    cli,
    finish,
    free_port,
    release,
    runs,
    slow_project,
    start,
    wait_until_running,
)

pytestmark = pytest.mark.slow


def assert_consistent(root: Path) -> None:
    """Every published view reads a complete table; a further run has nothing to do."""
    import sqlite3

    db = sqlite3.connect(str(root / ".headwater/state.db"))
    assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    recorded = dict(db.execute("SELECT physical, rows FROM physical").fetchall())
    published = db.execute("SELECT node, physical FROM env_nodes WHERE env = 'prod'"
                           " AND physical IS NOT NULL").fetchall()
    db.close()
    project = Project(root)
    for node, physical in published:
        n = project.query(f'SELECT count(*) AS n FROM "{node}"').to_pylist()[0]["n"]
        assert n == recorded[physical], (node, n, recorded[physical])
    again = cli("run", "--json", "--project", str(root))
    assert again.returncode == 0, again.stderr
    assert {n["status"] for n in json.loads(again.stdout)["nodes"]} == {"skipped"}


def assert_sequential(root: Path) -> None:
    """No two runs of the history overlap in time: the lock serialised them."""
    history = [r for r in runs(root) if r["ended_at"]]
    for a, b in zip(history, history[1:], strict=False):
        assert str(a["ended_at"]) <= str(b["started_at"]), (a, b)


def test_two_runs_at_once_the_second_waits_then_does_only_what_is_left(tmp_path: Path) -> None:
    root = slow_project(tmp_path / "p", seconds=2.5)
    first = start("run", "--json", "--project", str(root))
    wait_until_running(root, first)
    second = start("run", "--json", "--project", str(root))
    code1, out1, err1 = finish(first)
    code2, out2, err2 = finish(second)
    assert (code1, code2) == (0, 0), err1 + err2
    assert "waiting for the run in progress (pid" in err2
    assert "Traceback" not in err1 + err2
    built = [n["name"] for n in json.loads(out1)["nodes"] if n["status"] == "executed"]
    assert set(built) == {"orders", "stg", "slow", "totals"}
    # the second planned after the first had published: nothing was left to do
    assert {n["status"] for n in json.loads(out2)["nodes"]} == {"skipped"}
    assert [r["status"] for r in runs(root)] == ["success", "success"]
    assert_sequential(root)
    assert_consistent(root)


def test_no_wait_fails_at_once_with_a_clear_message(tmp_path: Path) -> None:
    root = slow_project(tmp_path / "p", seconds=3)
    first = start("run", "--project", str(root))
    wait_until_running(root, first)
    t0 = time.monotonic()
    busy = cli("run", "--no-wait", "--project", str(root))
    assert time.monotonic() - t0 < 30
    assert busy.returncode == 3, busy.stderr
    assert re.search(r"another run is in progress on this project \(pid \d+, for \d+s\)",
                     busy.stderr)
    assert "hint: wait for it to finish" in busy.stderr
    assert "Traceback" not in busy.stdout + busy.stderr
    assert finish(first)[0] == 0
    assert_consistent(root)


def test_readers_during_a_run_answer_or_say_busy(tmp_path: Path) -> None:
    """docs, plan, lineage and dag work from the state store while a run writes; the
    commands that must read the warehouse say it is busy (exit 3) instead of hanging."""
    root = slow_project(tmp_path / "p", seconds=0)
    assert cli("run", "--project", str(root)).returncode == 0
    (root / "slow_seconds.txt").write_text("120")
    (root / "data/orders.csv").write_text(
        "order_id,customer_id,amount\n1,10,12.5\n2,10,3.0\n3,11,7.25\n4,12,1.0\n")
    run = start("run", "--project", str(root))
    wait_until_running(root, run)
    time.sleep(0.5)  # inside the slow transform: the warehouse is held for writing
    for args in (["show", "totals"], ["query", "SELECT count(*) FROM totals"], ["test"]):
        busy = cli(*args, "--project", str(root))
        assert busy.returncode == 3, (args, busy.stdout, busy.stderr)
        assert re.search(r"the warehouse is busy: a headwater run \(\w+, env prod, started"
                         r" [0-9: -]+ UTC\) is writing to it", busy.stderr), busy.stderr
        assert "Traceback" not in busy.stdout + busy.stderr
    docs = cli("docs", "--project", str(root))
    assert docs.returncode == 0, docs.stderr
    assert (root / "target/docs/index.html").is_file()
    plan = cli("plan", "--project", str(root))
    assert plan.returncode == 0, plan.stderr
    dag = cli("dag", "--project", str(root))
    assert dag.returncode == 0 and "totals" in dag.stdout
    lineage = cli("lineage", "totals.total", "--project", str(root))
    assert lineage.returncode == 0, lineage.stderr
    assert "amount" in lineage.stdout
    assert run.poll() is None, "the readers outlived the run: the test proved nothing"
    release(root)
    assert finish(run)[0] == 0
    # afterwards the same commands read the new data
    shown = cli("query", "SELECT count(*) AS n FROM stg", "--format", "json",
                "--project", str(root))
    assert json.loads(shown.stdout) == [{"n": 4}]
    assert_consistent(root)


def test_a_long_query_makes_a_run_wait_briefly_never_fail(tmp_path: Path) -> None:
    """A reader holds the warehouse (DuckDB: readers or one writer): the run waits, says
    for whom, and the reader stops its query after a few seconds saying why; the run then
    succeeds (it used to exit 3, "another process is writing")."""
    from headwater.state.warehouse_users import READER_GRACE

    root = slow_project(tmp_path / "p", seconds=0)
    assert cli("run", "--project", str(root)).returncode == 0
    (root / "data/orders.csv").write_text(
        "order_id,customer_id,amount\n1,10,12.5\n2,10,3.0\n3,11,7.25\n4,12,1.0\n")
    query = start("query", "SELECT sum(i) AS s FROM range(100000000000) AS t(i)",
                  "--project", str(root))
    deadline = time.monotonic() + 60
    while not Project(root).state.warehouse_users() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    t0 = time.monotonic()
    run = cli("run", "--project", str(root))
    waited = time.monotonic() - t0
    assert run.returncode == 0, run.stderr
    assert "waiting" in run.stderr and "headwater query" in run.stderr, run.stderr
    out, err = query.communicate(timeout=60)
    assert query.returncode == 3, (out, err)
    assert "the query was stopped: a run is waiting for the warehouse" in err
    assert "Traceback" not in err + run.stderr
    assert waited < READER_GRACE + 20
    assert_consistent(root)


class RealSleepClock(FakeClock):
    """Fake time for cron, but a short real sleep when waiting (another process runs)."""

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        time.sleep(min(seconds, 0.2))


def test_scheduled_run_waits_for_a_run_in_progress(tmp_path: Path) -> None:
    root = slow_project(tmp_path / "p", seconds=3,
                       config='\n[[schedules]]\nname = "every_minute"\ncron = "* * * * *"\n')
    clock = RealSleepClock(datetime(2026, 1, 1, 10, 0, 30, tzinfo=UTC))
    out = io.StringIO()
    scheduler = Scheduler(Project(root), clock, stream=out)
    assert scheduler.tick() == []  # first start: nothing of the past is run
    run = start("run", "--project", str(root))
    wait_until_running(root, run)
    clock.set(datetime(2026, 1, 1, 10, 1, 0, tzinfo=UTC))
    (result,) = scheduler.tick()
    assert result.ok
    assert "every_minute: waiting, another run is in progress on this project (pid" in \
        out.getvalue()
    assert finish(run)[0] == 0
    assert [r["status"] for r in runs(root)] == ["success", "success"]
    assert_sequential(root)
    assert_consistent(root)


def test_cli_run_waits_for_a_scheduled_run(tmp_path: Path) -> None:
    root = slow_project(tmp_path / "p", seconds=3,
                       config='\n[[schedules]]\nname = "every_minute"\ncron = "* * * * *"\n')
    clock = FakeClock(datetime(2026, 1, 1, 10, 0, 30, tzinfo=UTC))
    scheduler = Scheduler(Project(root), clock, stream=io.StringIO())
    scheduler.tick()
    clock.set(datetime(2026, 1, 1, 10, 1, 0, tzinfo=UTC))
    results: list[object] = []
    thread = threading.Thread(target=lambda: results.extend(scheduler.tick()))
    thread.start()
    deadline = time.monotonic() + 60
    while not any(r["status"] == "running" for r in runs(root)):
        assert time.monotonic() < deadline, "the scheduled run did not start"
        time.sleep(0.02)
    code, out, err = finish(start("run", "--json", "--project", str(root)))
    thread.join(60)
    assert not thread.is_alive()
    assert code == 0, err
    assert "waiting for the run in progress" in err
    assert len(results) == 1 and results[0].ok  # type: ignore[attr-defined]
    assert {n["status"] for n in json.loads(out)["nodes"]} == {"skipped"}
    assert_sequential(root)
    assert_consistent(root)


def test_serve_during_a_run_answers_every_page(tmp_path: Path) -> None:
    """The web UI of a project another process is running: every page and API answers
    (no 5xx, no hang); a preview says the warehouse is busy; starting a run is refused
    with 409 while the other run holds the project."""
    root = slow_project(tmp_path / "p", seconds=0)
    assert cli("run", "--project", str(root)).returncode == 0
    (root / "slow_seconds.txt").write_text("120")
    (root / "data/orders.csv").write_text(
        "order_id,customer_id,amount\n1,10,12.5\n2,10,3.0\n3,11,7.25\n4,12,1.0\n")
    port = free_port()
    server = start("serve", "--port", str(port), "--project", str(root))
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/api/info", timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None, finish(server)
                assert time.monotonic() < deadline, "serve did not start"
                time.sleep(0.1)
        run = start("run", "--project", str(root))
        wait_until_running(root, run)
        time.sleep(0.5)
        run_id = next(r["run_id"] for r in runs(root) if r["status"] == "running")
        statuses = {}
        for path in ("/", "/runs", "/nodes/totals", "/nodes/orders", f"/runs/{run_id}",
                     "/api/info", "/api/graph", "/api/plan", "/api/nodes/totals",
                     "/api/runs", "/api/runs/current", f"/api/runs/{run_id}",
                     "/api/nodes/totals/preview", "/api/nodes/nosuch"):
            r = httpx.get(base + path, timeout=30)
            statuses[path] = r.status_code
            assert r.status_code < 500, (path, r.status_code, r.text[:500])
        assert statuses["/api/nodes/totals/preview"] == 409
        assert statuses["/api/nodes/nosuch"] == 404
        assert all(code == 200 for p, code in statuses.items()
                   if p not in ("/api/nodes/totals/preview", "/api/nodes/nosuch")), statuses
        busy = httpx.get(base + "/api/nodes/totals/preview", timeout=30).json()
        assert "busy" in json.dumps(busy).lower()
        refused = httpx.post(base + "/api/runs", json={}, timeout=30,
                             headers={"Origin": base})
        assert refused.status_code == 409, refused.text
        assert "in progress" in refused.text
        assert run.poll() is None, "the requests outlived the run: the test proved nothing"
        release(root)
        assert finish(run)[0] == 0
        after = httpx.get(base + "/api/nodes/totals/preview", timeout=30)
        assert after.status_code == 200
    finally:
        server.terminate()
        code, _, err = finish(server, timeout=60)
    assert "Traceback" not in err
    assert_consistent(root)
