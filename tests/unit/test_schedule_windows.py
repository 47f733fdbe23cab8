"""Source availability windows: parsing, across midnight, DST start and end."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from headwater.core.windows import parse_window, window_status

LA = "America/Los_Angeles"


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
       ) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def test_describe_matches_the_contract_text() -> None:
    s = window_status("02:00-05:00", LA, at(2024, 6, 1, 3, 48))  # 20:48 PDT
    assert not s.open
    assert s.describe() == "opens at 02:00 America/Los_Angeles (in 5h12m)"
    assert s.opens_at == datetime(2024, 6, 1, 9, 0, tzinfo=UTC)
    assert s.opens_at is not None and s.opens_at.tzinfo is not None
    assert s.opens_at.utcoffset() is not None and str(s.opens_at.tzinfo) == LA
    assert s.closes_at == datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def test_open_inside_start_inclusive_end_exclusive() -> None:
    assert window_status("02:00-05:00", "UTC", at(2024, 6, 1, 2, 0)).open
    s = window_status("02:00-05:00", "UTC", at(2024, 6, 1, 3, 0))
    assert s.open and s.opens_at is None
    assert s.describe() == "open until 05:00 UTC (2h left)"
    closed = window_status("02:00-05:00", "UTC", at(2024, 6, 1, 5, 0))
    assert not closed.open
    assert closed.describe() == "opens at 02:00 UTC (in 21h)"


def test_rounds_up_to_the_minute() -> None:
    s = window_status("02:00-05:00", "UTC", at(2024, 6, 1, 1, 59, 30))
    assert s.describe() == "opens at 02:00 UTC (in 1m)"


@pytest.mark.parametrize(
    ("hour", "minute", "is_open", "text"),
    [
        (21, 59, False, "opens at 22:00 UTC (in 1m)"),
        (22, 0, True, "open until 02:00 UTC (4h left)"),
        (23, 30, True, "open until 02:00 UTC (2h30m left)"),
        (0, 0, True, "open until 02:00 UTC (2h left)"),
        (1, 59, True, "open until 02:00 UTC (1m left)"),
        (2, 0, False, "opens at 22:00 UTC (in 20h)"),
        (12, 0, False, "opens at 22:00 UTC (in 10h)"),
    ],
)
def test_window_across_midnight(hour: int, minute: int, is_open: bool, text: str) -> None:
    s = window_status("22:00-02:00", "UTC", at(2024, 6, 1, hour, minute))
    assert s.open is is_open
    assert s.describe() == text


def test_open_across_midnight_closes_the_next_day() -> None:
    s = window_status("22:00-02:00", "UTC", at(2024, 6, 1, 23, 0))
    assert s.closes_at == at(2024, 6, 2, 2, 0)
    s = window_status("22:00-02:00", "UTC", at(2024, 6, 2, 1, 0))
    assert s.closes_at == at(2024, 6, 2, 2, 0)


def test_all_day_window() -> None:
    s = window_status("00:00-24:00", LA, at(2024, 6, 1, 15, 0))
    assert s.open
    assert s.closes_at is not None and s.closes_at.hour == 0


# -- DST start: Los Angeles, 2024-03-10, 02:00 PST -> 03:00 PDT (10:00 UTC) ---------


def test_dst_start_window_opening_in_the_skipped_hour_opens_when_clocks_jump() -> None:
    s = window_status("02:00-05:00", LA, at(2024, 3, 10, 9, 30))  # 01:30 PST
    assert not s.open
    assert s.opens_at == at(2024, 3, 10, 10, 0)  # 03:00 PDT, the jump
    assert s.describe() == "opens at 03:00 America/Los_Angeles (in 30m)"
    assert s.closes_at == at(2024, 3, 10, 12, 0)  # 05:00 PDT: two real hours that day
    assert window_status("02:00-05:00", LA, at(2024, 3, 10, 10, 0)).open
    assert not window_status("02:00-05:00", LA, at(2024, 3, 10, 12, 0)).open


def test_dst_start_day_before_and_after_use_their_own_offsets() -> None:
    before = window_status("02:00-05:00", LA, at(2024, 3, 9, 9, 59))  # 01:59 PST
    assert before.opens_at == at(2024, 3, 9, 10, 0)  # 02:00 PST
    after = window_status("02:00-05:00", LA, at(2024, 3, 11, 8, 0))  # 01:00 PDT
    assert after.opens_at == at(2024, 3, 11, 9, 0)  # 02:00 PDT
    assert after.describe() == "opens at 02:00 America/Los_Angeles (in 1h)"


def test_dst_start_window_across_midnight() -> None:
    # 23:00 PST on 3/9 to 03:00 PDT on 3/10: three real hours
    s = window_status("23:00-03:00", LA, at(2024, 3, 10, 8, 0))  # 00:00 PST
    assert s.open
    assert s.closes_at == at(2024, 3, 10, 10, 0)
    assert window_status("23:00-03:00", LA, at(2024, 3, 10, 7, 0)).open  # 23:00 PST
    assert not window_status("23:00-03:00", LA, at(2024, 3, 10, 10, 0)).open


def test_dst_start_window_entirely_inside_the_skipped_hour_does_not_open_that_day() -> None:
    s = window_status("02:10-02:50", LA, at(2024, 3, 10, 9, 0))  # 01:00 PST
    assert not s.open
    assert s.opens_at == at(2024, 3, 11, 9, 10)  # 02:10 PDT the next day


def test_dst_start_window_ending_in_the_skipped_hour_ends_at_the_jump() -> None:
    s = window_status("00:00-02:30", LA, at(2024, 3, 10, 9, 59))  # 01:59 PST
    assert s.open
    assert s.closes_at == at(2024, 3, 10, 10, 0)
    assert not window_status("00:00-02:30", LA, at(2024, 3, 10, 10, 0)).open


# -- DST end: Los Angeles, 2024-11-03, 02:00 PDT -> 01:00 PST (09:00 UTC) -----------


def test_dst_end_window_lasts_its_real_hours() -> None:
    s = window_status("02:00-05:00", LA, at(2024, 11, 3, 9, 30))  # 01:30 PST (second time)
    assert not s.open
    assert s.describe() == "opens at 02:00 America/Los_Angeles (in 30m)"
    assert s.opens_at == at(2024, 11, 3, 10, 0)
    assert s.closes_at == at(2024, 11, 3, 13, 0)
    first = window_status("02:00-05:00", LA, at(2024, 11, 3, 8, 30))  # 01:30 PDT
    assert first.describe() == "opens at 02:00 America/Los_Angeles (in 1h30m)"


def test_dst_end_repeated_time_means_its_first_occurrence() -> None:
    s = window_status("01:30-03:00", LA, at(2024, 11, 3, 8, 30))  # first 01:30 (PDT)
    assert s.open
    assert s.closes_at == at(2024, 11, 3, 11, 0)  # 03:00 PST
    assert window_status("01:30-03:00", LA, at(2024, 11, 3, 9, 15)).open  # 01:15 PST
    assert not window_status("01:30-03:00", LA, at(2024, 11, 3, 8, 29)).open


def test_dst_end_window_across_midnight() -> None:
    # 22:00 PDT on 11/2 to 02:00 PST on 11/3: five real hours
    s = window_status("22:00-02:00", LA, at(2024, 11, 3, 5, 0))  # 22:00 PDT
    assert s.open
    assert s.closes_at == at(2024, 11, 3, 10, 0)
    assert (s.closes_at - s.now).total_seconds() == 5 * 3600


def test_southern_hemisphere_dst() -> None:
    # Sydney: 2024-10-06 02:00 AEST -> 03:00 AEDT (16:00 UTC on 10/5)
    s = window_status("02:00-04:00", "Australia/Sydney", at(2024, 10, 5, 15, 30))
    assert s.describe() == "opens at 03:00 Australia/Sydney (in 30m)"


# -- bad input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2-5", "cannot read window '2-5'"),
        ("02:00 05:00", "cannot read window"),
        ("0200-0500", "cannot read window"),
        ("25:00-03:00", "starts at an impossible time 25:00"),
        ("02:00-05:60", "ends at an impossible time 05:60"),
        ("02:00-24:30", "ends at an impossible time 24:30"),
        ("05:00-05:00", "is empty"),
    ],
)
def test_bad_windows_say_what_to_write(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as err:
        parse_window(text)
    if "cannot read" in message:
        assert '"HH:MM-HH:MM"' in str(err.value)


def test_bad_zone_and_naive_now() -> None:
    with pytest.raises(ValueError, match="unknown time zone 'America/Los Angeles'.*Los_Angeles"):
        window_status("02:00-05:00", "America/Los Angeles", at(2024, 1, 1))
    with pytest.raises(ValueError, match="abbreviations like PST"):
        window_status("02:00-05:00", "PST", at(2024, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        window_status("02:00-05:00", "UTC", datetime(2024, 1, 1))


def test_pure_same_inputs_same_answer() -> None:
    now = at(2024, 6, 1, 3, 48)
    assert window_status("02:00-05:00", LA, now) == window_status("02:00-05:00", LA, now)
