"""Timeouts (issue 17, item 3): an endless transform cannot hang a run or the runs behind it.

A node past its timeout (``@timeout`` in a SQL leading comment or a Python docstring,
``node_timeout`` in a source or sink TOML, else headwater.toml's ``node_timeout``) fails
with "timed out after ...": its DuckDB query is interrupted, its Python code stopped,
nothing of it is published, its downstream is skipped, siblings build, the lock is
released and the process exits even if a thread is stuck in C code. A run waiting on
the lock says who holds it and for how long; ``--wait-timeout`` bounds the wait.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from headwater.testing import public_tables, write_project

LOOP = 'def slow(raw):\n    """Loops forever.\n\n    @timeout: 2s\n    """\n' \
       "    while True:\n        pass\n"
BASE = {
    "sources/raw.toml": 'type = "files"\npath = "data/a.csv"\n',
    "transforms/fine.sql": "SELECT id, v FROM raw\n",
    "transforms/after.sql": "SELECT * FROM slow\n",
}


def cli(*args: str, wait: bool = True) -> subprocess.Popen[str] | subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    env.update(COLUMNS="200", NO_COLOR="1")
    cmd = [sys.executable, "-m", "headwater.cli", *args]
    if not wait:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)


def run_json(root: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], dict, float]:
    t0 = time.monotonic()
    proc = cli("run", "--json", "--project", str(root), *extra)
    assert isinstance(proc, subprocess.CompletedProcess)
    took = time.monotonic() - t0
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc, json.loads(proc.stdout), took


def make(root: Path, files: dict[str, str], toml: str = "") -> Path:
    write_project(root, {**BASE, **files})
    if toml:
        with (root / "headwater.toml").open("a") as f:
            f.write(toml)
    (root / "data").mkdir(exist_ok=True)
    (root / "data/a.csv").write_text("id,v\n1,10\n2,20\n")
    return root


def by_name(out: dict) -> dict[str, dict]:
    return {n["name"]: n for n in out["nodes"]}


def assert_timed_out(out: dict, name: str, after: str) -> None:
    node = by_name(out)[name]
    assert node["status"] == "failed", node
    assert f"timed out after {after}" in node["error"], node["error"]
    assert node["reason"] == "timed out"


def test_an_endless_python_loop_is_stopped_and_the_run_goes_on(tmp_path: Path) -> None:
    root = make(tmp_path / "p", {"transforms/slow.py": LOOP})
    proc, out, took = run_json(root)
    assert proc.returncode == 1
    assert_timed_out(out, "slow", "2s")
    nodes = by_name(out)
    assert nodes["after"]["status"] == "skipped" and nodes["after"]["reason"] == (
        "upstream slow failed")
    assert nodes["fine"]["status"] == "executed"
    assert took < 30, f"the run took {took:.1f}s"
    tables = public_tables(root)
    assert "fine" in tables and "slow" not in tables and "after" not in tables
    # the lock is free: the next run does not wait; the timed-out node is tried again
    proc, out, _ = run_json(root, "--no-wait")
    assert proc.returncode == 1
    assert_timed_out(out, "slow", "2s")
    assert by_name(out)["fine"]["status"] == "skipped"  # up to date


def test_a_long_duckdb_query_is_interrupted(tmp_path: Path) -> None:
    slow_sql = ("-- Counts a very large cross join.\n-- @timeout: 1.5s\n"
                "SELECT count(*) AS n FROM range(1000000000000) r, raw\n")
    root = make(tmp_path / "p", {"transforms/slow.sql": slow_sql})
    proc, out, took = run_json(root)
    assert proc.returncode == 1
    assert_timed_out(out, "slow", "1.5s")
    assert "slow.sql" in by_name(out)["slow"]["error"]
    assert took < 30
    assert "slow" not in public_tables(root)


def test_a_thread_stuck_in_c_code_does_not_keep_the_process_alive(tmp_path: Path) -> None:
    sleepy = 'import time\n\n\ndef slow(raw):\n    """@timeout: 1s"""\n' \
             "    time.sleep(3600)\n    return raw\n"
    root = make(tmp_path / "p", {"transforms/slow.py": sleepy})
    proc, out, took = run_json(root)
    assert proc.returncode == 1
    assert_timed_out(out, "slow", "1s")
    assert took < 30, f"the process lived {took:.1f}s"


def test_user_code_catching_exception_cannot_swallow_the_timeout(tmp_path: Path) -> None:
    stubborn = ('def slow(raw):\n    """@timeout: 1s"""\n    while True:\n        try:\n'
                "            while True:\n                pass\n"
                "        except Exception:\n            pass\n")
    root = make(tmp_path / "p", {"transforms/slow.py": stubborn})
    proc, out, took = run_json(root)
    assert proc.returncode == 1
    assert_timed_out(out, "slow", "1s")
    assert took < 30


def test_project_timeout_applies_and_a_nodes_own_wins(tmp_path: Path) -> None:
    loop = "def slow(raw):\n    while True:\n        pass\n"
    own = ('def quick_limit(raw):\n    """Has its own, shorter limit.\n\n    @timeout: 1s\n'
           '    """\n    while True:\n        pass\n')
    root = make(tmp_path / "p", {"transforms/slow.py": loop, "transforms/quick_limit.py": own},
                toml='node_timeout = "3s"\n')
    proc, out, _ = run_json(root)
    assert proc.returncode == 1
    assert_timed_out(out, "slow", "3s")
    assert "headwater.toml node_timeout" in by_name(out)["slow"]["error"]
    assert_timed_out(out, "quick_limit", "1s")
    assert by_name(out)["quick_limit"]["seconds"] < 2.5


def test_a_timeout_does_not_change_fingerprints(tmp_path: Path) -> None:
    root = make(tmp_path / "p", {"transforms/slow.py": "def slow(raw):\n    return raw\n"})
    proc, out, _ = run_json(root)
    assert proc.returncode == 0, proc.stderr
    (root / "transforms/slow.py").write_text(
        'def slow(raw):\n    """@timeout: 10m"""\n    return raw\n')
    (root / "transforms/fine.sql").write_text("-- @timeout: 30m\nSELECT id, v FROM raw\n")
    proc, out, _ = run_json(root)
    assert proc.returncode == 0, proc.stderr
    assert {n["status"] for n in out["nodes"]} == {"skipped"}, out


def test_a_source_timeout_in_its_toml(tmp_path: Path, pg_dsn: str) -> None:
    """A Postgres read that takes too long fails its branch; the process ends although the
    driver's call cannot be stopped from Python."""
    source = (f'type = "postgres"\ndsn = "{pg_dsn}"\n'
              'query = "SELECT 1 AS id, pg_sleep(20)::text AS v"\nnode_timeout = "2s"\n'
              "retries = 0\n")
    root = make(tmp_path / "p", {"sources/slow.toml": source,
                                 "transforms/slow_copy.sql": "SELECT * FROM slow\n"})
    proc, out, took = run_json(root)
    assert proc.returncode == 1
    assert_timed_out(out, "slow", "2s")
    assert "slow.toml: node_timeout" in by_name(out)["slow"]["error"]
    assert by_name(out)["slow_copy"]["status"] == "skipped"
    assert by_name(out)["fine"]["status"] == "executed"
    assert took < 19, f"the run waited for the driver ({took:.1f}s)"


@pytest.mark.parametrize("bad", ["0s", "soon", "-5s"])
def test_a_bad_timeout_is_a_clear_error(tmp_path: Path, bad: str) -> None:
    root = make(tmp_path / "p", {"transforms/slow.sql": f"-- @timeout: {bad}\nSELECT 1 AS x\n"})
    proc = cli("plan", "--project", str(root))
    assert isinstance(proc, subprocess.CompletedProcess)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "slow.sql:1" in proc.stderr and "invalid @timeout" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_waiting_run_says_who_holds_the_lock_and_wait_timeout_bounds_it(
        tmp_path: Path) -> None:
    loop = 'def slow(raw):\n    """@timeout: 8s"""\n    while True:\n        pass\n'
    root = make(tmp_path / "p", {"transforms/slow.py": loop})
    first = cli("run", "--project", str(root), wait=False)
    assert isinstance(first, subprocess.Popen)
    try:
        lock = root / ".headwater" / "run.lock"
        deadline = time.monotonic() + 30
        while not (lock.exists() and lock.read_text().startswith("pid")):
            assert time.monotonic() < deadline, "the first run never took the lock"
            time.sleep(0.05)
        t0 = time.monotonic()
        second = cli("run", "--project", str(root), "--wait-timeout", "1s")
        waited = time.monotonic() - t0
        assert isinstance(second, subprocess.CompletedProcess)
        assert second.returncode == 3, second.stdout + second.stderr
        assert f"pid {first.pid}, for " in second.stderr, second.stderr
        assert "waiting for the run in progress" in second.stderr
        assert "gave up after 1s" in second.stderr
        assert "Traceback" not in second.stderr
        assert waited < 15
    finally:
        first.wait(60)
    assert first.returncode == 1  # its node timed out, and it ended
