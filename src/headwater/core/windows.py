"""Source availability windows: "this vendor can only be read between 02:00 and 05:00".

A source declares, in ``sources/NAME.toml``::

    window = "02:00-05:00"                   # HH:MM-HH:MM, local time of window_timezone
    window_timezone = "America/Los_Angeles"  # default: `timezone` of headwater.toml, else UTC

The source is read only while its window is open; outside it the source is not
touched and everything that needs it is deferred, its previous data staying live.

Rules, all computed on the wall clock of the window's time zone:

* the start is inclusive, the end exclusive: ``02:00-05:00`` is open at 02:00:00
  and closed at 05:00:00;
* an end at or before the start crosses midnight: ``22:00-02:00`` is open from
  22:00 until 02:00 the next morning; ``00:00-24:00`` is open all day;
* a time the clocks skip (spring forward) means the moment they jump: on the day
  Los Angeles goes from 02:00 PST to 03:00 PDT, ``02:00-05:00`` opens at 03:00;
* a time the clocks show twice (fall back) means its first occurrence, as cron
  and Python's ``zoneinfo`` read it.

Each local day has one opening, so durations are real elapsed time: on the
fall-back day ``02:00-05:00`` in Los Angeles stays open three real hours.

:func:`window_status` is pure: the same window, zone and instant always give
the same answer, which is what plan, the run summary and the scheduler print::

    >>> from datetime import datetime, UTC
    >>> s = window_status("02:00-05:00", "America/Los_Angeles",
    ...                   datetime(2024, 6, 1, 3, 48, tzinfo=UTC))   # 20:48 PDT
    >>> s.open, s.describe()
    (False, 'opens at 02:00 America/Los_Angeles (in 5h12m)')
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from headwater.core.timeutil import format_duration, utc, zone

_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_FORMAT_HINT = 'write it as "HH:MM-HH:MM" in 24-hour time, e.g. "02:00-05:00" or "22:00-02:00"'


@dataclass(frozen=True)
class Window:
    """A parsed ``HH:MM-HH:MM``; ``end is None`` means 24:00 (midnight at the end of the day)."""

    start: time
    end: time | None
    text: str

    @property
    def crosses_midnight(self) -> bool:
        return self.end is not None and self.end <= self.start


@dataclass(frozen=True)
class WindowStatus:
    """Whether a window is open at ``now``, and when that changes.

    Closed: ``opens_at`` is the next opening and ``closes_at`` the end of that
    opening. Open: ``opens_at`` is None and ``closes_at`` is when it closes.
    Both are aware datetimes in the window's time zone.
    """

    open: bool
    opens_at: datetime | None
    closes_at: datetime | None
    window: str
    timezone: str
    now: datetime

    def describe(self) -> str:
        """``opens at 02:00 America/Los_Angeles (in 5h12m)`` or
        ``open until 05:00 America/Los_Angeles (2h3m left)``."""
        if not self.open and self.opens_at is not None:
            return (f"opens at {self.opens_at:%H:%M} {self.timezone} "
                    f"(in {format_duration(self.opens_at - self.now)})")
        if self.open and self.closes_at is not None:
            return (f"open until {self.closes_at:%H:%M} {self.timezone} "
                    f"({format_duration(self.closes_at - self.now)} left)")
        return f"window {self.window} {self.timezone}"

    def to_json(self) -> dict[str, object]:
        return {
            "window": self.window, "timezone": self.timezone, "open": self.open,
            "opens_at": self.opens_at.isoformat() if self.opens_at else None,
            "closes_at": self.closes_at.isoformat() if self.closes_at else None,
            "description": self.describe(),
        }


@lru_cache(maxsize=256)
def parse_window(text: str) -> Window:
    """Parse ``"HH:MM-HH:MM"``; ValueError with what to write instead."""
    if not isinstance(text, str):
        raise ValueError(f"window must be a string like \"02:00-05:00\", got {text!r}")
    m = _WINDOW.match(text)
    if m is None:
        raise ValueError(f"cannot read window {text!r}: {_FORMAT_HINT}")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if not (0 <= h1 <= 23 and 0 <= m1 <= 59):
        raise ValueError(f"window {text!r} starts at an impossible time {h1:02d}:{m1:02d} "
                         f"(hours 00-23, minutes 00-59)")
    if h2 == 24 and m2 == 0:
        end = None
    elif 0 <= h2 <= 23 and 0 <= m2 <= 59:
        end = time(h2, m2)
    else:
        raise ValueError(f"window {text!r} ends at an impossible time {h2:02d}:{m2:02d} "
                         f"(hours 00-24, minutes 00-59; 24:00 means the end of the day)")
    start = time(h1, m1)
    if end == start:
        raise ValueError(f"window {text!r} is empty: start and end are the same time "
                         f"(for a source that is always available, leave `window` out; "
                         f"for all day write \"00:00-24:00\")")
    return Window(start, end, text.strip())


def check_window(text: str) -> str:
    """``text`` if it is a valid window (for config validators)."""
    parse_window(text)
    return text


def local_to_utc(day: date, wall: time | None, tz: ZoneInfo) -> datetime:
    """The instant the wall clock of ``tz`` shows ``wall`` on ``day`` (None = 24:00).

    A wall time that happens twice means its first occurrence; one that the
    clocks skip means the moment they jump past it.
    """
    naive = datetime.combine(day + timedelta(days=1), time()) if wall is None \
        else datetime.combine(day, wall)
    first = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == naive:
        return first
    # In a gap. fold=1 reads it with the offset after the jump, which lands
    # before the jump; fold=0 lands after it. The jump lies between: find it.
    lo = int(naive.replace(tzinfo=tz, fold=1).astimezone(UTC).timestamp())
    hi = int(first.timestamp())
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, tz).replace(tzinfo=None) >= naive:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, UTC)


def openings(window: Window, tz: ZoneInfo, around: datetime) -> list[tuple[datetime, datetime]]:
    """The window's (open, close) instants in UTC for the local days around ``around``."""
    today = utc(around).astimezone(tz).date()
    out = []
    for offset in (-2, -1, 0, 1, 2):
        day = today + timedelta(days=offset)
        opens = local_to_utc(day, window.start, tz)
        end_day = day + timedelta(days=1) if window.crosses_midnight else day
        closes = local_to_utc(end_day, window.end, tz)
        if closes > opens:  # a window entirely inside a skipped hour does not exist that day
            out.append((opens, closes))
    return out


def window_status(window: str, tz: str, now: datetime) -> WindowStatus:
    """Whether ``window`` (``"HH:MM-HH:MM"`` in zone ``tz``) is open at ``now`` (aware).

    Raises ValueError for a malformed window, an unknown zone or a naive ``now``.
    """
    parsed = parse_window(window)
    zi = zone(tz)
    at = utc(now)
    spans = openings(parsed, zi, at)
    for opens, closes in spans:
        if opens <= at < closes:
            return WindowStatus(True, None, closes.astimezone(zi), parsed.text, tz, at)
    opens, closes = min((s for s in spans if s[0] > at), key=lambda s: s[0])
    return WindowStatus(False, opens.astimezone(zi), closes.astimezone(zi), parsed.text, tz, at)
