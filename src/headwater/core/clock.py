"""Time, behind a seam: the scheduler asks a clock, never ``datetime.now`` or ``time.sleep``.

``SystemClock`` is the real one. ``FakeClock`` is the test double: it starts
wherever you put it and advances instantly when slept, so a test can drive a
scheduler through a week of cron ticks, a DST change and a retry backoff in
milliseconds::

    >>> from datetime import datetime, UTC
    >>> from headwater.core.clock import FakeClock
    >>> clock = FakeClock(datetime(2024, 3, 10, 9, 0, tzinfo=UTC))
    >>> clock.sleep(90)
    >>> clock.now().isoformat()
    '2024-03-10T09:01:30+00:00'
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """What the scheduler needs from time."""

    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (a ``SystemClock`` returns early when woken)."""
        ...


class SystemClock:
    """The real clock. ``wake()`` cuts the current (or next) sleep short.

    ``wake`` only sets a flag, so it is safe to call from a signal handler,
    which may interrupt the sleeping thread anywhere (a lock-based Event could
    deadlock there); sleeps are sliced to notice the flag within ``slice``.
    """

    def __init__(self, slice: float = 0.2) -> None:
        self.slice = slice
        self._woken = False

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self._woken:
            left = end - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(left, self.slice))
        self._woken = False

    def wake(self) -> None:
        self._woken = True


class FakeClock:
    """A clock for tests: ``sleep`` advances time at once and is recorded in ``sleeps``."""

    def __init__(self, start: datetime | None = None) -> None:
        start = start or datetime(2024, 1, 1, tzinfo=UTC)
        if start.tzinfo is None:
            raise ValueError("FakeClock needs a timezone-aware start, e.g. tzinfo=UTC")
        self._now = start.astimezone(UTC)
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self._now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if seconds > 0:
            self._now += timedelta(seconds=seconds)

    def advance(self, by: float | timedelta) -> datetime:
        """Move time forward without recording a sleep (downtime, a long run ...)."""
        self._now += by if isinstance(by, timedelta) else timedelta(seconds=by)
        return self._now

    def set(self, when: datetime) -> datetime:
        """Jump to ``when`` (aware)."""
        if when.tzinfo is None:
            raise ValueError("FakeClock.set needs a timezone-aware datetime")
        self._now = when.astimezone(UTC)
        return self._now

    def wake(self) -> None:
        """Nothing to interrupt: a fake sleep never blocks."""
