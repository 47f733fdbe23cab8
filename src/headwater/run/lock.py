"""The project lock: one writing run per project at a time.

An advisory ``flock`` on ``.headwater/run.lock``; the kernel releases it when
the holder dies, even by ``kill -9``, so a crash never leaves a stale lock.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from headwater.errors import DiskFullError, LockedError, disk_full


class ProjectLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def holder(self) -> str:
        """Who holds the lock, and since when (as the holder wrote it)."""
        try:
            text = self.path.read_text().strip()
        except OSError:
            return "another process"
        pid, _, since = text.partition(" since ")
        if not since:
            return text or "another process"
        try:
            age = time.time() - float(since)
        except ValueError:
            return pid
        return f"{pid}, for {age:.0f}s"

    def acquire(
        self,
        *,
        wait: bool = True,
        timeout: float | None = None,
        on_wait: Callable[[str], None] | None = None,
    ) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = None if timeout is None else time.monotonic() + timeout
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = self.holder()
                if not wait or (deadline is not None and time.monotonic() > deadline):
                    os.close(fd)
                    gave_up = "" if not wait else f"; gave up after {timeout:g}s"
                    raise LockedError(
                        f"another run is in progress on this project ({holder}){gave_up}",
                        path=self.path.parent.parent,
                        hint="wait for it to finish, or run without --no-wait to queue behind it"
                        if not wait else "wait for it to finish, or raise --wait-timeout",
                    ) from None
                if not told and on_wait is not None:
                    on_wait(holder)
                    told = True
                time.sleep(0.1)
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"pid {os.getpid()} since {time.time():.3f}".encode())
        except OSError as exc:
            os.close(fd)  # the lock goes with it
            full = disk_full(exc)
            if full is None:
                raise
            raise DiskFullError(f"the disk is full: cannot write {self.path}",
                                hint=full.hint) from None
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> ProjectLock:
        self.acquire()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
