"""What the reliability tests share: the CLI in a subprocess, small projects, waiting."""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from headwater.testing import write_project

PG_DSN = os.environ.get("HEADWATER_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
TIMEOUT = 180  # no command of the suite may take longer: a hang is a failure, not a wait


def pg_reachable(dsn: str) -> str | None:
    """None when the server answers, else why not."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed: pip install -e '.[dev]'"
    try:
        psycopg.connect(dsn, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        return str(exc).strip()
    return None


def cli_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    env.update(COLUMNS="200", NO_COLOR="1", TERM="dumb", PYTHONIOENCODING="utf-8")
    env.update(extra or {})
    return env


def cli(*args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None,
        timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    """``headwater ARGS`` as a user runs it, in its own process."""
    return subprocess.run([sys.executable, "-m", "headwater.cli", *args], cwd=cwd,
                          env=cli_env(env), capture_output=True, text=True, timeout=timeout)


def start(*args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None
          ) -> subprocess.Popen[str]:
    """``headwater ARGS`` started in the background (stdout and stderr captured); the
    ``reap_processes`` fixture kills it if the test leaves it running."""
    proc = subprocess.Popen([sys.executable, "-m", "headwater.cli", *args], cwd=cwd,
                            env=cli_env(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    STARTED.append(proc)
    return proc


STARTED: list[subprocess.Popen[str]] = []


def reap() -> None:
    """Kill (by pid) what a test started and left running, and close its pipes."""
    while STARTED:
        proc = STARTED.pop()
        if proc.poll() is None:
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired, ValueError):
            proc.communicate(timeout=30)


def finish(proc: subprocess.Popen[str], timeout: float = TIMEOUT) -> tuple[int, str, str]:
    """Wait for ``proc`` (a hang fails the test) and return (exit code, stdout, stderr)."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"no answer within {timeout}s (a deadlock?)\n{out}\n{err}"
                             ) from None
    return proc.returncode, out, err


def runs(root: Path) -> list[dict[str, object]]:
    """The run history from the state store, oldest first."""
    path = root / ".headwater/state.db"
    if not path.exists():
        return []
    db = sqlite3.connect(str(path), timeout=30)
    try:
        rows = db.execute("SELECT run_id, env, started_at, ended_at, status, pid FROM runs"
                          " ORDER BY started_at").fetchall()
    except sqlite3.OperationalError:  # created a moment ago, its tables not yet
        return []
    finally:
        db.close()
    keys = ("run_id", "env", "started_at", "ended_at", "status", "pid")
    return [dict(zip(keys, r, strict=True)) for r in rows]


def wait_until_running(root: Path, proc: subprocess.Popen[str], timeout: float = 120) -> None:
    """Until ``proc`` has started its run (its row is in the state store, engine open)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before it was seen running: {proc.returncode}"
                                 f"\n{proc.stderr.read() if proc.stderr else ''}")
        if any(r["pid"] == proc.pid and r["status"] == "running" for r in runs(root)):
            return
        time.sleep(0.02)
    raise AssertionError("the run did not start")


SLOW = '''"""Holds the run for up to slow_seconds.txt seconds, or until a file named release
appears in the project (a test's way to let the run go on), then passes its input on."""
import time
from pathlib import Path

import pyarrow as pa


def slow(stg: pa.Table) -> pa.Table:
    root = Path(__file__).resolve().parent.parent
    seconds = root / "slow_seconds.txt"
    end = time.monotonic() + (float(seconds.read_text()) if seconds.exists() else 0)
    while time.monotonic() < end and not (root / "release").exists():
        time.sleep(0.02)
    return stg
'''


def release(root: Path) -> None:
    """Let a held run of ``slow_project`` go on (and the next ones pass straight through)."""
    (root / "release").write_text("")


def hold(root: Path) -> None:
    """Make the next run of ``slow_project`` wait in its slow transform."""
    (root / "release").unlink(missing_ok=True)


def slow_project(root: Path, seconds: float = 3.0, extra: Mapping[str, str] | None = None,
                 config: str = "") -> Path:
    """A small project whose run holds the warehouse for about ``seconds``."""
    files = {
        "data/orders.csv": "order_id,customer_id,amount\n1,10,12.5\n2,10,3.0\n3,11,7.25\n",
        "sources/orders.toml": 'type = "files"\npath = "data/orders.csv"\n',
        "transforms/stg.sql": "-- Staged orders.\n-- @check: not_null(order_id)\n"
                              "SELECT order_id, customer_id, amount FROM orders\n",
        "transforms/slow.py": SLOW,
        "transforms/totals.sql": "SELECT customer_id, sum(amount) AS total, count(*) AS n"
                                 " FROM slow GROUP BY customer_id\n",
        **(extra or {}),
    }
    write_project(root, files, config=config)
    (root / "slow_seconds.txt").write_text(str(seconds))
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TcpProxy:
    """A TCP forwarder in front of a server, to take it down and bring it back, or cut
    connections in the middle of a transfer (a dropped network, a killed backend).

    ``down()`` closes the listening socket (new connections are refused) and every open
    connection; ``up()`` listens again on the same port. ``cut(after, times)`` closes the
    next ``times`` connections (-1: all) once ``after`` bytes went from the server to the
    client.
    """

    def __init__(self, host: str, port: int) -> None:
        import threading

        self.target = (host, port)
        self.port = free_port()
        self.cut_after: int | None = None
        self.cut_times = 0
        self.cuts = 0
        self.connections = 0
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    def cut(self, after: int, times: int = 1) -> None:
        with self._lock:
            self.cut_after, self.cut_times = after, times

    def up(self) -> TcpProxy:
        import threading

        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def down(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            socks, self._open = list(self._open), set()
        for s in socks:
            self._close(s)

    @staticmethod
    def _close(s: socket.socket) -> None:
        import contextlib

        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)
        s.close()

    def _accept(self, listener: socket.socket) -> None:
        import threading

        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=10)
                server.settimeout(None)
            except OSError:
                self._close(client)
                continue
            with self._lock:
                self.connections += 1
                self._open |= {client, server}
            pair = (client, server)
            threading.Thread(target=self._pump, args=(client, server, False, pair),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True, pair),
                             daemon=True).start()

    def _should_cut(self, sent: int) -> bool:
        """Whether a connection that has now carried ``sent`` bytes back is cut here."""
        with self._lock:
            if self.cut_after is None or self.cut_times == 0 or sent <= self.cut_after:
                return False
            if self.cut_times > 0:
                self.cut_times -= 1
            self.cuts += 1
            return True

    def _pump(self, src: socket.socket, dst: socket.socket, back: bool,
              pair: tuple[socket.socket, socket.socket]) -> None:
        sent = 0
        try:
            while data := src.recv(65536):
                if back and self._should_cut(sent + len(data)):
                    break
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        for s in pair:
            self._close(s)
        with self._lock:
            self._open -= set(pair)
