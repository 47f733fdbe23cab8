"""Cron expressions in a time zone, DST included; durations; the fake clock; redaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from headwater.core.clock import Clock, FakeClock, SystemClock
from headwater.core.cron import Cron, normalise
from headwater.core.timeutil import format_duration, parse_seconds
from headwater.schedule.redact import Redactor, redact_url

LA = "America/Los_Angeles"


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
       ) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def utcs(fires: list[datetime]) -> list[datetime]:
    return [f.astimezone(UTC) for f in fires]


def test_daily_across_dst_start_runs_right_after_the_jump() -> None:
    fires = Cron("30 2 * * *", LA).upcoming(at(2024, 3, 9), 3)
    assert utcs(fires) == [at(2024, 3, 9, 10, 30), at(2024, 3, 10, 10, 0), at(2024, 3, 11, 9, 30)]
    assert [f.strftime("%H:%M %Z") for f in fires] == ["02:30 PST", "03:00 PDT", "02:30 PDT"]


def test_daily_across_dst_end_runs_once() -> None:
    fires = Cron("30 1 * * *", LA).upcoming(at(2024, 11, 2, 12), 3)
    assert utcs(fires) == [at(2024, 11, 3, 8, 30), at(2024, 11, 4, 9, 30), at(2024, 11, 5, 9, 30)]


def test_hourly_across_dst_end_fires_every_real_hour() -> None:
    fires = Cron("0 * * * *", LA).upcoming(at(2024, 11, 3, 7, 30), 4)
    assert utcs(fires) == [at(2024, 11, 3, h) for h in (8, 9, 10, 11)]


def test_missed_counts_ticks_and_finds_the_latest() -> None:
    c = Cron("0 * * * *", "UTC")
    assert c.missed(at(2024, 1, 1, 0), at(2024, 1, 1, 5, 30)) == (5, at(2024, 1, 1, 5))
    assert c.missed(at(2024, 1, 1, 0), at(2024, 1, 1, 0, 59)) == (0, None)
    assert c.missed(at(2024, 1, 1, 0), at(2024, 1, 1, 1)) == (1, at(2024, 1, 1, 1))


def test_missed_after_a_long_downtime_is_cheap() -> None:
    every_minute = Cron("* * * * *", "Europe/Berlin")
    count, latest = every_minute.missed(at(2020, 1, 1), at(2024, 1, 1, 0, 0, 30))
    assert count > 1000
    assert latest is not None and latest.astimezone(UTC) == at(2024, 1, 1)


def test_aliases_and_normalising() -> None:
    assert normalise("@daily") == "0 0 * * *"
    assert normalise("@HOURLY") == "0 * * * *"
    assert normalise(" 0   2 * * MON-FRI ") == "0 2 * * MON-FRI"


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("0 2 * *", "has 4 fields, expected 5"),
        ("0 0 2 * * *", "has 6 fields"),
        ("61 * * * *", "bad minute"),
        ("0 25 * * *", "bad hour"),
        ("@sometimes", "unknown cron alias"),
        ("", "has 0 fields"),
    ],
)
def test_bad_cron_says_what_is_wrong(expr: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        normalise(expr)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0m"), (1, "1m"), (59, "1m"), (60, "1m"), (61, "2m"), (3600, "1h"),
     (5 * 3600 + 12 * 60, "5h12m"), (25 * 3600, "1d1h"), (48 * 3600, "2d")],
)
def test_format_duration(seconds: int, text: str) -> None:
    assert format_duration(timedelta(seconds=seconds)) == text


def test_parse_seconds() -> None:
    assert parse_seconds(90) == 90
    assert parse_seconds("90") == 90
    assert parse_seconds("5m") == 300
    assert parse_seconds("1h30m") == 5400
    with pytest.raises(ValueError, match="cannot read duration"):
        parse_seconds("soon")


def test_fake_clock_advances_instantly_and_records_sleeps() -> None:
    clock = FakeClock(at(2024, 3, 10, 9))
    assert isinstance(clock, Clock)
    clock.sleep(30)
    clock.sleep(0)
    clock.advance(timedelta(minutes=1))
    assert clock.now() == at(2024, 3, 10, 9, 1, 30)
    assert clock.sleeps == [30, 0]
    with pytest.raises(ValueError):
        FakeClock(datetime(2024, 1, 1))


def test_system_clock_is_aware_and_wakes_early() -> None:
    clock = SystemClock()
    assert isinstance(clock, Clock)
    assert clock.now().tzinfo is not None
    clock.wake()
    t0 = datetime.now(UTC)
    clock.sleep(30)  # woken before it began: returns at once
    assert (datetime.now(UTC) - t0).total_seconds() < 5


def test_redaction() -> None:
    assert redact_url("https://user:pw@hooks.example.com/services/X?token=abc") == (
        "https://***@hooks.example.com/services/X?***"
    )
    r = Redactor(["s3cr3t-value", "on"])
    assert r("posting to https://x/s3cr3t-value failed, on retry") == (
        "posting to https://x/*** failed, on retry"
    )


def test_redactor_learns_every_variable_the_project_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HW_PG_PASSWORD", "hunter2-long")
    monkeypatch.setenv("HW_HOOK", "T0/B0/abcdef")
    (tmp_path / "sources").mkdir()
    (tmp_path / "headwater.toml").write_text('name = "x"\n[notify]\nurl = "https://h/${HW_HOOK}"\n')
    (tmp_path / "sources/pg.toml").write_text('type = "postgres"\npassword = "${HW_PG_PASSWORD}"\n')
    r = Redactor.for_project(tmp_path)
    assert r("auth failed for hunter2-long at https://h/T0/B0/abcdef") == (
        "auth failed for *** at https://h/***")
