"""SIGTERM to a real `headwater schedule` process: the run in progress finishes, exit 0."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from queue import Empty, Queue
from typing import Any

import duckdb
import pytest

from headwater.testing import write_project

pytestmark = pytest.mark.slow

SLOW = '''
"""Takes a couple of seconds."""
import time

import pyarrow as pa


def slow(raw: pa.Table) -> pa.Table:
    time.sleep(2)
    return raw
'''


def start(root: Path) -> tuple[subprocess.Popen[str], Queue[dict[str, Any]]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "headwater.cli", "schedule", "--project", str(root),
         "--log-format", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    lines: Queue[dict[str, Any]] = Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(json.loads(line))

    threading.Thread(target=pump, daemon=True).start()
    return proc, lines


def wait_for(lines: Queue[dict[str, Any]], seen: list[dict[str, Any]], pred: Any,
             timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            e = lines.get(timeout=0.2)
        except Empty:
            continue
        seen.append(e)
        if pred(e):
            return e
    raise AssertionError(f"timed out; events so far: {[e['event'] for e in seen]}")


def drain(lines: Queue[dict[str, Any]], seen: list[dict[str, Any]]) -> None:
    time.sleep(0.2)
    while not lines.empty():
        seen.append(lines.get())


def test_sigterm_mid_run_finishes_the_run_and_exits_cleanly(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", {
        "data/a.csv": "id,v\n1,10\n2,20\n",
        # a never-built new_data source is new data: the scheduler runs at once
        "sources/raw.toml": 'type = "files"\npath = "data/a.csv"\ntrigger = "new_data"\n'
                            "poll_interval = 3600\n",
        "transforms/slow.py": SLOW,
        "transforms/after_slow.sql": "SELECT count(*) AS n FROM slow\n",
        "transforms/other.sql": "SELECT sum(v) AS s FROM raw\n",
    })
    proc, lines = start(root)
    seen: list[dict[str, Any]] = []
    try:
        wait_for(lines, seen, lambda e: e["event"] == "node.start" and e.get("node") == "slow")
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    drain(lines, seen)
    assert proc.stderr is not None
    assert rc == 0, proc.stderr.read()
    assert time.monotonic() - t0 < 30
    kinds = [e["event"] for e in seen]
    assert kinds.index("scheduler.stopping") < kinds.index("run.end") < kinds.index(
        "scheduler.stop")
    (end,) = [e for e in seen if e["event"] == "run.end"]
    assert end["status"] == "success"
    assert "received SIGTERM" in next(e for e in seen if e["event"] == "scheduler.stopping")[
        "message"]

    state = sqlite3.connect(f"file:{root / '.headwater/state.db'}?mode=ro", uri=True)
    runs = state.execute("SELECT run_id, status, ended_at FROM runs").fetchall()
    assert runs == [(end["run_id"], "success", runs[0][2])] and runs[0][2] is not None
    nodes = dict(state.execute("SELECT node, status FROM run_nodes").fetchall())
    assert nodes["slow"] == "executed" and nodes["after_slow"] == "executed"
    state.close()

    con = duckdb.connect(str(root / ".headwater/warehouse.duckdb"), read_only=True)
    views = [r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables"
        " WHERE table_schema = 'main' AND table_type = 'VIEW'").fetchall()]
    assert {"raw", "slow", "after_slow", "other"} <= set(views)
    for v in views:
        con.execute(f'SELECT count(*) FROM main."{v}"').fetchall()  # every view resolves
    assert con.execute("SELECT n FROM main.after_slow").fetchall() == [(2,)]
    con.close()


def test_sigterm_while_idle_exits_at_once(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", {"transforms/x.sql": "SELECT 1 AS a\n"},
                         config='[[schedules]]\ncron = "0 0 1 1 *"\n')
    proc, lines = start(root)
    seen: list[dict[str, Any]] = []
    try:
        wait_for(lines, seen, lambda e: e["event"] == "scheduler.start")
        t0 = time.monotonic()
        os.kill(proc.pid, signal.SIGTERM)
        rc = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert rc == 0
    assert time.monotonic() - t0 < 5
    drain(lines, seen)
    assert [e["event"] for e in seen][-1] == "scheduler.stop"
