"""Cron expressions in a time zone: when does a schedule fire?

Five fields, ``minute hour day-of-month month day-of-week``, with ``*``, ``,``,
``-``, ``/``, names (``MON``, ``JAN``), ``L`` and ``#``, plus ``@hourly``,
``@daily`` (``@midnight``), ``@weekly``, ``@monthly`` and ``@yearly``
(``@annually``). Evaluation is cronsim's, which follows Debian cron across DST
changes: a job at a wall time the clocks skip runs right after the jump, and a
job at a wall time the clocks show twice runs once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from headwater.core.timeutil import utc, zone

ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_FIELDS = "minute hour day-of-month month day-of-week"


def normalise(expr: str) -> str:
    """The five-field form of ``expr``; ValueError saying what is wrong."""
    if not isinstance(expr, str):
        raise ValueError(f"cron must be a string like \"0 2 * * *\", got {expr!r}")
    text = " ".join(expr.split())
    if text.startswith("@"):
        if text.lower() not in ALIASES:
            raise ValueError(f"unknown cron alias {text!r}; known: {', '.join(ALIASES)}")
        return ALIASES[text.lower()]
    fields = text.split(" ") if text else []
    if len(fields) != 5:
        raise ValueError(
            f"cron {expr!r} has {len(fields)} field{'s' if len(fields) != 1 else ''}, "
            f"expected 5 ({_FIELDS}), e.g. \"0 2 * * *\" for 02:00 every day"
        )
    from cronsim import CronSim, CronSimError

    try:
        CronSim(text, datetime(2000, 1, 1))
    except CronSimError as exc:
        raise ValueError(f"invalid cron {expr!r}: {str(exc).lower()} field "
                         f"(fields: {_FIELDS})") from None
    return text


def check_cron(expr: str) -> str:
    """``expr`` if it is a valid cron expression (for config validators)."""
    normalise(expr)
    return expr


@dataclass(frozen=True)
class Cron:
    """A cron expression evaluated in time zone ``tz``; instants are aware datetimes."""

    expr: str
    tz: str = "UTC"

    @property
    def zone(self) -> ZoneInfo:
        return zone(self.tz)

    def after(self, when: datetime) -> Iterator[datetime]:
        """Fire times strictly after ``when``, in order, in the schedule's zone."""
        from cronsim import CronSim

        start = utc(when)
        local = start.astimezone(self.zone)
        for fire in CronSim(normalise(self.expr), local):
            # cronsim works on wall time, which can step back at a DST change:
            # keep real instants strictly increasing
            if utc(fire) > start:
                start = utc(fire)
                yield fire

    def next_after(self, when: datetime) -> datetime | None:
        return next(self.after(when), None)

    def before(self, when: datetime) -> Iterator[datetime]:
        """Fire times at or before ``when``, latest first, in the schedule's zone."""
        from cronsim import CronSim

        end = utc(when)
        local = (end.replace(microsecond=0) + timedelta(seconds=1)).astimezone(self.zone)
        last: datetime | None = None
        for fire in CronSim(normalise(self.expr), local, reverse=True):
            if utc(fire) <= end and (last is None or utc(fire) < last):
                last = utc(fire)
                yield fire

    def missed(
        self, since: datetime, until: datetime, limit: int = 1000
    ) -> tuple[int, datetime | None]:
        """How many fire times lie in ``(since, until]`` (counting stops past ``limit``), and
        the latest of them. Cheap after a long downtime: never walks more than ``limit``."""
        start = utc(since)
        latest = next(self.before(until), None)
        if latest is None or utc(latest) <= start:
            return 0, None
        count = 0
        for fire in self.after(since):
            if utc(fire) > utc(until) or count > limit:
                break
            count += 1
        return count, latest

    def upcoming(self, when: datetime, count: int) -> list[datetime]:
        it = self.after(when)
        return [f for _, f in zip(range(count), it, strict=False)]

