"""Small time helpers shared by cron, windows and the scheduler: zones, durations."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def check_timezone(name: str) -> str:
    """``name`` if it is an IANA time zone; else ValueError saying what to write."""
    zone(name)
    return name


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name`` ("America/Los_Angeles", "UTC"); ValueError if unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        pass
    from zoneinfo import available_timezones

    from headwater.errors import did_you_mean

    iana = ("use an IANA name such as 'America/Los_Angeles', 'Europe/Berlin' or 'UTC' "
            "(abbreviations like PST are ambiguous and ignore DST)")
    known = available_timezones()
    lowered = {k.lower(): k for k in known}
    if name.lower() in lowered:
        hint = f"did you mean {lowered[name.lower()]!r}?"
    elif name.isalpha() and name.isupper() and len(name) <= 5:
        hint = iana
    else:
        hint = did_you_mean(name.replace(" ", "_"), known) or iana
    raise ValueError(f"unknown time zone {name!r}; {hint}")


def utc(when: datetime) -> datetime:
    """``when`` in UTC; a naive datetime is refused (it would silently mean local time)."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"expected a timezone-aware datetime, got naive {when.isoformat()}")
    return when.astimezone(UTC)


def format_duration(delta: timedelta | float) -> str:
    """A short human duration, rounded up to the minute: ``5h12m``, ``45m``, ``3h``, ``1d2h``.

    Rounded up so that something still ahead never reads as ``0m``.
    """
    seconds = delta.total_seconds() if isinstance(delta, timedelta) else float(delta)
    if seconds <= 0:
        return "0m"
    minutes = math.ceil(seconds / 60 - 1e-9)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h{mins}m" if mins else f"{hours}h"
    return f"{mins}m"


def parse_seconds(value: float | int | str) -> float:
    """Seconds from a number or a duration string: ``90``, ``"90s"``, ``"5m"``, ``"1h30m"``."""
    import re

    if isinstance(value, int | float):
        return float(value)
    text = value.strip().lower()
    try:
        return float(text)
    except ValueError:
        pass
    parts = re.fullmatch(r"(?:(\d+(?:\.\d+)?)d)?(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?"
                         r"(?:(\d+(?:\.\d+)?)s)?", text)
    if not text or parts is None:
        raise ValueError(f"cannot read duration {value!r}; write seconds (300) or e.g. '5m', '1h'")
    d, h, m, s = (float(p) if p else 0.0 for p in parts.groups())
    return d * 86400 + h * 3600 + m * 60 + s
