"""Who uses the warehouse file, so that readers and a run can wait for each other politely.

DuckDB lets one process write a database file, or several read it, never both: while a
``headwater query`` reads, a run cannot open the warehouse. Every Headwater process that
opens the warehouse says so in the state store (``warehouse_users``: pid, role, what,
since). A run that finds the file held waits (and says for whom); a reader sees that a
run waits and, after :data:`READER_GRACE` seconds, interrupts its own query with an
error saying why, so no reader blocks a run for long. Rows of processes that died are
ignored (their pid is gone) and cleaned up.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from headwater.errors import HeadwaterError, disk_full

if TYPE_CHECKING:
    from headwater.engines.base import Engine
    from headwater.state.store import StateStore

READER_GRACE = 5.0  # seconds a reader goes on after a run started waiting for it
WRITER_PATIENCE = 120.0  # seconds a run waits for a process that is not a Headwater reader


@dataclass(frozen=True)
class User:
    token: str
    pid: int
    role: str  # read | waiting
    what: str
    since: str

    def describe(self) -> str:
        started = datetime.fromisoformat(self.since)
        age = (datetime.now(UTC) - started).total_seconds()
        return f"{self.what} (pid {self.pid}, for {age:.0f}s)"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def users(state: StateStore, role: str | None = None) -> list[User]:
    """The processes using the warehouse now (rows of dead processes are dropped)."""
    out = []
    for row in state.warehouse_users():
        user = User(*row)
        if not _alive(user.pid):
            state.leave_warehouse(user.token)
            continue
        if role is None or user.role == role:
            out.append(user)
    return out


@contextmanager
def using(state: StateStore, role: str, what: str) -> Iterator[str]:
    """Be listed as using the warehouse while the block runs.

    A reader that cannot say so (the disk is full) reads anyway: being listed only lets a
    waiting run know whom it waits for.
    """
    token = uuid.uuid4().hex
    try:
        state.enter_warehouse(token, os.getpid(), role, what)
        listed = True
    except Exception as exc:
        if role != "read" or disk_full(exc) is None:
            raise
        listed = False
    try:
        yield token
    finally:
        if listed:
            state.leave_warehouse(token)


class InterruptedForRun(HeadwaterError):
    """A reader stopped its query because a run waited for the warehouse."""

    exit_code = 3


@contextmanager
def reader(state: StateStore, engine: Engine, what: str) -> Iterator[threading.Event]:
    """Read the warehouse, stopping the query in progress when a run has waited for
    :data:`READER_GRACE` seconds; the event tells that it happened."""
    stopped = threading.Event()
    done = threading.Event()

    def watch() -> None:
        waited_since: float | None = None
        while not done.wait(0.25):
            try:
                waiting = users(state, "waiting")
            except Exception:  # noqa: BLE001 - never let the watchdog fail a read
                continue
            if not waiting:
                waited_since = None
                continue
            waited_since = waited_since or time.monotonic()
            if time.monotonic() - waited_since >= READER_GRACE:
                stopped.set()
                if engine.capabilities.interrupt:
                    engine.interrupt()
                return

    with using(state, "read", what):
        thread = threading.Thread(target=watch, name="hw-reader-watch", daemon=True)
        thread.start()
        try:
            yield stopped
        finally:
            done.set()
            thread.join(1)


def open_for_writing(
    state: StateStore, engine: Engine, *, on_wait: Callable[[str], None] | None = None,
    timeout: float | None = None,
) -> None:
    """Open ``engine`` for writing, waiting for the processes that read the file."""
    from headwater.engines.duckdb import WarehouseBusyError

    deadline = time.monotonic() + (timeout if timeout is not None else WRITER_PATIENCE)
    told = ""
    with using(state, "waiting", f"headwater {command_name()}"):
        while True:
            try:
                engine.open()
                return
            except WarehouseBusyError as exc:
                readers = users(state, "read")
                who = ", ".join(u.describe() for u in readers) if readers else (
                    f"a process that is not a Headwater reader (pid {exc.holder_pid})"
                    if exc.holder_pid else "another process")
                if time.monotonic() > deadline:
                    raise WarehouseBusyError(
                        f"the warehouse is in use by {who}; gave up waiting",
                        path=exc.path,
                        hint="close the program holding .headwater/warehouse.duckdb open"
                        " (a DuckDB shell, a notebook) and run again",
                        holder_pid=exc.holder_pid) from None
                if who != told and on_wait is not None:
                    on_wait(f"waiting for {who} to close the warehouse (a reader stops"
                            f" within {READER_GRACE:.0f}s)" if readers else
                            f"waiting for {who} to close the warehouse")
                told = who
                time.sleep(0.2)


def command_name() -> str:
    """The CLI command this process runs (``query``, ``run`` ...), for the listing."""
    import sys

    args = [a for a in sys.argv[1:2] if not a.startswith("-")]
    return args[0] if args else "run"
