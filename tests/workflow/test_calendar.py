"""Working-day deadlines: weekends, public holidays, Idul Fitri's joint leave, year boundaries."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from workflow.calendar import JAKARTA, WorkingCalendar, local_date

WIB = timezone(timedelta(hours=7))


def wib(y: int, m: int, d: int, h: int = 9, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=WIB)


def end_of(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, 23, 59, 59, tzinfo=WIB).astimezone(UTC)


CAL = WorkingCalendar()


def test_weekend_is_skipped() -> None:
    # Friday 2026-11-27: Monday, Tuesday, Wednesday.
    assert CAL.add_working_days(wib(2026, 11, 27), 3) == end_of(2026, 12, 2)


def test_plain_week() -> None:
    assert CAL.add_working_days(wib(2026, 11, 23), 5) == end_of(2026, 11, 30)


def test_idul_fitri_and_its_collective_leave() -> None:
    # 2025: Nyepi joint leave Fri 28 March, Idul Fitri 31 March + 1 April, joint leave 2-4 and 7 April.
    filed = wib(2025, 3, 27, 10)
    assert CAL.add_working_days(filed, 3) == end_of(2025, 4, 10)
    without_joint_leave = WorkingCalendar(joint_leave=False)
    assert without_joint_leave.add_working_days(filed, 3) == end_of(2025, 4, 3)
    for day in (date(2025, 3, 31), date(2025, 4, 1), date(2025, 4, 2), date(2025, 4, 7)):
        assert not CAL.is_working_day(day)
    assert CAL.is_working_day(date(2025, 4, 8))


def test_year_boundary() -> None:
    # Christmas joint leave 24 Dec, Christmas 25 Dec, New Year 1 Jan 2027.
    assert CAL.add_working_days(wib(2026, 12, 23), 5) == end_of(2027, 1, 4)


def test_configured_collective_leave_counts_as_a_day_off() -> None:
    calendar = WorkingCalendar.from_strings(["2026-12-31"])
    # 28, 29, 30 Dec, 4 Jan; 5 Jan 2027 is Isra' Mi'raj; so the 5th working day is 6 Jan.
    assert calendar.add_working_days(wib(2026, 12, 23), 5) == end_of(2027, 1, 6)


def test_revoked_holiday_counts_again() -> None:
    calendar = WorkingCalendar.from_strings([], working_days=["2026-12-24"])
    assert calendar.add_working_days(wib(2026, 12, 23), 1) == end_of(2026, 12, 24)


def test_deadline_starting_on_a_holiday() -> None:
    # Filed on Independence Day (Monday 17 August 2026): counting starts on Tuesday.
    assert CAL.add_working_days(wib(2026, 8, 17, 11), 3) == end_of(2026, 8, 20)


def test_deadline_starting_on_a_weekend() -> None:
    assert CAL.add_working_days(wib(2026, 11, 28, 22), 1) == end_of(2026, 11, 30)


def test_days_are_counted_in_jakarta_time() -> None:
    # 20:00 UTC on Monday is already Tuesday 03:00 in Semarang.
    late = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)
    assert local_date(late) == date(2026, 11, 24)
    assert CAL.add_working_days(late, 1) == end_of(2026, 11, 25)
    assert CAL.add_working_days(late, 1).astimezone(JAKARTA).hour == 23


def test_pause_length_in_working_days() -> None:
    assert CAL.working_days_between(wib(2026, 11, 23), wib(2026, 11, 25)) == 2
    assert CAL.working_days_between(wib(2026, 11, 27), wib(2026, 11, 30)) == 1  # Fri -> Mon
    assert CAL.working_days_between(wib(2026, 11, 23, 8), wib(2026, 11, 23, 17)) == 0
    assert CAL.working_days_left(wib(2026, 11, 23), end_of(2026, 11, 25)) == 2
    assert CAL.working_days_left(wib(2026, 11, 27), end_of(2026, 11, 25)) == -2


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        CAL.add_working_days(wib(2026, 1, 5), 0)
    with pytest.raises(ValueError, match="naive"):
        CAL.add_working_days(datetime(2026, 1, 5), 1)
    with pytest.raises(ValueError, match="2026-13-01"):
        WorkingCalendar.from_strings(["2026-13-01"])
