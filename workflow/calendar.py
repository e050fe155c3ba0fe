"""Working days in Semarang: what a deadline of "5 working days" means.

Perwal Semarang 5/2023 and SP4N-LAPOR! count deadlines in working days, in Asia/Jakarta time:
weekends, national public holidays and the government's collective leave (cuti bersama) do not count.
The `holidays` package knows the public holidays and, under its "government" category, the joint
holidays the ministers' decree sets each year; operators add or correct dates in config because the
decree is sometimes amended mid-year.

A deadline counts from the day after receipt (the day a complaint arrives is never a full working day)
and ends at the last moment of the n-th working day, local time. A complaint filed on a holiday or a
weekend therefore starts counting on the next working day.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

JAKARTA = ZoneInfo("Asia/Jakarta")
END_OF_DAY = time(23, 59, 59)
_MAX_SCAN_DAYS = 3660
"""Ten years: no real deadline needs more, and a misconfigured calendar with no working day fails loudly."""


@lru_cache(maxsize=64)
def _national(year: int, joint_leave: bool) -> frozenset[date]:
    categories: tuple[str, ...] = ("public", "government") if joint_leave else ("public",)
    return frozenset(holidays.country_holidays("ID", years=year, categories=categories).keys())


class WorkingCalendar:
    """Weekends, Indonesian public holidays, (optionally) the national joint leave, plus local extras."""

    def __init__(
        self,
        collective_leave: Iterable[date] = (),
        *,
        joint_leave: bool = True,
        working_days: Iterable[date] = (),
    ) -> None:
        """`collective_leave`: extra days off (a local decree). `working_days`: days that count even
        though the package lists them (a revoked joint holiday). `joint_leave`: use the package's
        cuti bersama list."""
        self._extra_off = frozenset(collective_leave)
        self._extra_on = frozenset(working_days)
        self._joint_leave = joint_leave

    @classmethod
    def from_strings(
        cls, collective_leave: Iterable[str], *, joint_leave: bool = True, working_days: Iterable[str] = ()
    ) -> WorkingCalendar:
        """From ISO dates as config holds them; a malformed one raises ValueError naming it."""
        return cls(
            [_parse(d) for d in collective_leave],
            joint_leave=joint_leave,
            working_days=[_parse(d) for d in working_days],
        )

    def is_working_day(self, day: date) -> bool:
        if day in self._extra_on:
            return True
        if day.weekday() >= 5 or day in self._extra_off:
            return False
        return day not in _national(day.year, self._joint_leave)

    def add_working_days(self, start: datetime, days: int) -> datetime:
        """The end (23:59:59 Asia/Jakarta, as UTC) of the `days`-th working day after `start`'s date."""
        if days < 1:
            raise ValueError("a deadline needs at least one working day")
        day = local_date(start)
        counted = 0
        for _ in range(_MAX_SCAN_DAYS):
            day += timedelta(days=1)
            if self.is_working_day(day):
                counted += 1
                if counted == days:
                    return end_of_day(day)
        raise ValueError("no working days found: check the collective leave configuration")

    def working_days_between(self, start: datetime, end: datetime) -> int:
        """Working days in (start's date, end's date]: how far a pause from `start` to `end` moves a
        deadline. Zero when both fall on the same day or `end` is earlier."""
        first, last = local_date(start), local_date(end)
        count = 0
        day = first + timedelta(days=1)
        while day <= last:
            if self.is_working_day(day):
                count += 1
            day += timedelta(days=1)
        return count

    def working_days_left(self, now: datetime, due: datetime) -> int:
        """Working days from today to the due date's day (0 on the due day, negative once overdue)."""
        if due >= now:
            return self.working_days_between(now, due)
        return -self.working_days_between(due, now)


def local_date(moment: datetime) -> date:
    if moment.tzinfo is None:
        raise ValueError("naive datetime: deadlines need an aware time")
    return moment.astimezone(JAKARTA).date()


def end_of_day(day: date) -> datetime:
    return datetime.combine(day, END_OF_DAY, tzinfo=JAKARTA).astimezone(UTC)


def _parse(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"not a date (YYYY-MM-DD): {text!r}") from None
