"""The monthly report: how many complaints a month brought, where they went, and how fast they were fixed.

The same figures feed `lapor report monthly` and the public `/open-data/` pages, so they are defined
once, here. A month is a calendar month in Asia/Jakarta, and its complaints are the ones *received*
in it (drafts, still being collected by the conversation, are not complaints yet). Outcomes are as of
the moment the report is made: a month's report keeps improving while its complaints are handled.

- fixed: resolved or closed after a resolution with evidence (the workflow only closes resolved work;
  a closed row without `resolved_at` — an import, a manual repair — is counted as not fixed);
- closed without fix: rejected, duplicate, or closed without a resolution;
- resolution time: working days (workflow.calendar: weekends, national holidays, collective leave)
  from the day of receipt to the day of resolution, counted the way deadlines are: the day after
  receipt is day 1, so a same-day fix is 0;
- deadline compliance: of the fixed complaints that had a handling deadline (`due_at`, moved by pauses
  and reset by a reopen), the share resolved at or before it.

No personal data ever enters a report: only counts per channel, category, department, kecamatan and
status, and per-complaint resolution days reduced to a median and a 90th percentile. The kecamatan is
the complaint's `kecamatan` column (recognised from the place text when it was written, misspellings
included, see conversation.places; migration 0006 filled older rows); confidential complaints' places
count as unknown.

Split in two so the web handler can keep its event loop free: `fetch_month` runs only aggregate SQL
(GROUP BY on the `status, created_at` index), `build_report` does the arithmetic in plain Python.
"""

from __future__ import annotations

import csv
import functools
import io
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Date, and_, case, cast, func, literal_column, select
from sqlalchemy.engine import Connection

from store import models
from store.models import ComplaintStatus as S
from workflow.calendar import JAKARTA, WorkingCalendar, local_date

REPORTED_STATUSES: tuple[str, ...] = (
    S.SUBMITTED,
    S.VERIFIED,
    S.FORWARDED,
    S.IN_PROGRESS,
    S.REOPENED,
    S.RESOLVED,
    S.CLOSED,
    S.REJECTED,
    S.DUPLICATE,
)
"""Every status but draft, in lifecycle order (the order the breakdown is printed in)."""
OPEN_STATUSES = frozenset({S.SUBMITTED, S.VERIFIED, S.FORWARDED, S.IN_PROGRESS, S.REOPENED})
FIX_STATUSES = frozenset({S.RESOLVED, S.CLOSED})

NO_CATEGORY = "uncategorized"
NO_DEPARTMENT = "unassigned"
NO_PLACE = "unknown"
DIMENSIONS = ("channel", "category", "department", "kecamatan", "status")


# ---- months ----------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True, slots=True)
class Month:
    """A calendar month in Asia/Jakarta: `2025-03` runs from 1 March 00:00 WIB to 1 April 00:00 WIB."""

    year: int
    month: int

    def __post_init__(self) -> None:
        if not (1 <= self.month <= 12 and 2000 <= self.year <= 9998):
            raise ValueError(f"not a month: {self.year:04d}-{self.month:02d}")

    @classmethod
    def parse(cls, text: str) -> Month:
        """`YYYY-MM`, strictly (it also names files and URLs); ValueError otherwise."""
        text = text.strip()
        if len(text) != 7 or text[4] != "-" or not (text[:4].isdigit() and text[5:].isdigit()):
            raise ValueError(f"not a month (YYYY-MM): {text!r}")
        return cls(int(text[:4]), int(text[5:]))

    @classmethod
    def of(cls, moment: datetime) -> Month:
        day = local_date(moment)
        return cls(day.year, day.month)

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> Month:
        return Month(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    def start(self) -> datetime:
        """The first moment of the month, as an aware UTC datetime (what the store compares)."""
        return datetime(self.year, self.month, 1, tzinfo=JAKARTA).astimezone(UTC)

    def end(self) -> datetime:
        return self.next().start()

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def months_between(first: Month, last: Month) -> list[Month]:
    """Every month from `first` to `last`, newest first (how the open-data page lists them)."""
    months: list[Month] = []
    current = last
    while current >= first:
        months.append(current)
        current = current.previous()
    return months


def first_month(conn: Connection) -> Month | None:
    """The month of the earliest complaint; one index seek per status on (status, created_at)."""
    table = models.complaints
    earliest: datetime | None = None
    for status in REPORTED_STATUSES:
        found = conn.execute(select(func.min(table.c.created_at)).where(table.c.status == status)).scalar()
        if found is not None:
            found = _aware(found)
            earliest = found if earliest is None else min(earliest, found)
    return Month.of(earliest) if earliest is not None else None


# ---- what SQL hands over -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MonthRows:
    """The month's aggregates as the database returns them: no row is a complaint."""

    month: Month
    groups: list[tuple[str, str | None, str | None, str, bool, int]]
    """(medium, category, department, status, has resolved_at, count)."""
    places: list[tuple[str | None, int]]
    """(kecamatan, or None when unknown or confidential, count)."""
    resolutions: list[tuple[date, date, int, int, int]]
    """(day received, day resolved, fixed count, count with a deadline, count within it), local days."""
    department_names: dict[str, str] = field(default_factory=dict)
    category_names: dict[str, str] = field(default_factory=dict)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _local_day(conn: Connection, column: Any) -> Any:
    """The Asia/Jakarta calendar date of a stored UTC time, computed by the database.

    PostgreSQL converts with the zone itself; SQLite stores naive UTC text and gets the fixed offset
    (WIB has had no daylight saving since 1964). Literals, not bound parameters, so the expression is
    the same in SELECT and GROUP BY.
    """
    if conn.dialect.name == "postgresql":
        return cast(func.timezone(literal_column("'Asia/Jakarta'"), column), Date)
    offset = int(datetime(2000, 1, 1, tzinfo=JAKARTA).utcoffset().total_seconds())  # type: ignore[union-attr]
    return func.date(column, literal_column(f"'{offset:+d} seconds'"))


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def fetch_month(conn: Connection, month: Month) -> MonthRows:
    """The month's grouped counts, kecamatan counts and resolution day pairs: three GROUP BY queries."""
    table = models.complaints
    received = and_(
        table.c.status.in_(REPORTED_STATUSES),
        table.c.created_at >= month.start(),
        table.c.created_at < month.end(),
    )
    has_fix = table.c.resolved_at.is_not(None).label("has_fix")
    groups = [
        (medium, category, department, status, bool(fixed), int(count))
        for medium, category, department, status, fixed, count in conn.execute(
            select(
                table.c.origin_medium,
                table.c.category,
                table.c.department,
                table.c.status,
                has_fix,
                func.count(),
            )
            .where(received)
            .group_by(table.c.origin_medium, table.c.category, table.c.department, table.c.status, has_fix)
        )
    ]
    place = case((table.c.confidential.is_(True), None), else_=table.c.kecamatan).label("place")
    places = [
        (text, int(count))
        for text, count in conn.execute(select(place, func.count()).where(received).group_by(place))
    ]
    received_day = _local_day(conn, table.c.created_at).label("received_day")
    resolved_day = _local_day(conn, table.c.resolved_at).label("resolved_day")
    with_deadline = func.sum(case((table.c.due_at.is_not(None), 1), else_=0))
    within = func.sum(case((table.c.resolved_at <= table.c.due_at, 1), else_=0))
    resolutions = [
        (_as_date(day_in), _as_date(day_out), int(count), int(due or 0), int(met or 0))
        for day_in, day_out, count, due, met in conn.execute(
            select(received_day, resolved_day, func.count(), with_deadline, within)
            .where(received, table.c.status.in_(FIX_STATUSES), table.c.resolved_at.is_not(None))
            .group_by(received_day, resolved_day)
        )
    ]
    departments, categories = models.departments, models.categories
    department_names = select(departments.c.code, departments.c.name)
    category_names = select(categories.c.slug, categories.c.name_id)
    return MonthRows(
        month=month,
        groups=groups,
        places=places,
        resolutions=resolutions,
        department_names={code: name for code, name in conn.execute(department_names)},
        category_names={slug: name for slug, name in conn.execute(category_names)},
    )


# ---- the report ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResolutionTime:
    """Working days from receipt to resolution over the month's fixed complaints."""

    count: int
    median: float | None
    """The middle value (the mean of the two middle ones for an even count)."""
    p90: int | None
    """Nearest rank: the smallest value at least 90% of the fixed complaints do not exceed."""


@dataclass(frozen=True, slots=True)
class MonthlyReport:
    month: Month
    generated_at: datetime
    received: int
    by_channel: dict[str, int]
    by_category: dict[str, int]
    by_department: dict[str, int]
    by_kecamatan: dict[str, int]
    by_status: dict[str, int]
    fixed: int
    closed_without_fix: int
    still_open: int
    resolution_time: ResolutionTime
    with_deadline: int
    within_deadline: int
    department_names: dict[str, str]
    category_names: dict[str, str]

    @property
    def complete(self) -> bool:
        """Whether the month was over when the report was made (otherwise the figures are provisional)."""
        return self.generated_at >= self.month.end()

    @property
    def resolution_rate(self) -> float | None:
        return _share(self.fixed, self.received)

    @property
    def deadline_compliance(self) -> float | None:
        return _share(self.within_deadline, self.with_deadline)

    def dimension(self, name: str) -> dict[str, int]:
        """One of DIMENSIONS as {key: count}; KeyError for anything else."""
        tables = {
            "channel": self.by_channel,
            "category": self.by_category,
            "department": self.by_department,
            "kecamatan": self.by_kecamatan,
            "status": self.by_status,
        }
        return tables[name]

    def to_dict(self) -> dict[str, Any]:
        """The open-data JSON document (keys are stable: consumers script against them)."""
        return {
            "month": str(self.month),
            "timezone": "Asia/Jakarta",
            "generated_at": self.generated_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "complete": self.complete,
            "received": self.received,
            "by_channel": self.by_channel,
            "by_category": self.by_category,
            "by_department": self.by_department,
            "by_kecamatan": self.by_kecamatan,
            "by_status": self.by_status,
            "outcome": {
                "fixed": self.fixed,
                "closed_without_fix": self.closed_without_fix,
                "open": self.still_open,
            },
            "resolution_rate": _rounded(self.resolution_rate),
            "resolution_working_days": {
                "count": self.resolution_time.count,
                "median": self.resolution_time.median,
                "p90": self.resolution_time.p90,
            },
            "deadline": {
                "with_deadline": self.with_deadline,
                "within_deadline": self.within_deadline,
                "compliance": _rounded(self.deadline_compliance),
            },
            "names": {"department": self.department_names, "category": self.category_names},
        }


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _ranked(counts: Counter[str]) -> dict[str, int]:
    """Largest first, then by key, so reports of equal data are identical byte for byte."""
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def _day_counter(calendar: WorkingCalendar, first: date, last: date) -> dict[date, int]:
    """Working days from `first` up to and including each day: a pair's distance is one subtraction
    instead of a walk over every day of every complaint."""
    running = 0
    table: dict[date, int] = {}
    day = first
    while day <= last:
        if day != first and calendar.is_working_day(day):
            running += 1
        table[day] = running
        day += timedelta(days=1)
    return table


def working_days_taken(
    pairs: Iterable[tuple[date, date, int]], calendar: WorkingCalendar
) -> list[tuple[int, int]]:
    """(working days, count) per (received day, resolved day, count): the days in (received, resolved],
    as WorkingCalendar.working_days_between counts them; a resolution before receipt counts 0."""
    pairs = list(pairs)
    if not pairs:
        return []
    first = min(min(a, b) for a, b, _ in pairs)
    last = max(max(a, b) for a, b, _ in pairs)
    running = _day_counter(calendar, first, last)
    taken: Counter[int] = Counter()
    for received, resolved, count in pairs:
        taken[max(0, running[resolved] - running[received])] += count
    return sorted(taken.items())


def summarize(durations: Sequence[tuple[int, int]]) -> ResolutionTime:
    """Median and nearest-rank 90th percentile of a (value, count) distribution sorted by value."""
    total = sum(count for _, count in durations)
    if total == 0:
        return ResolutionTime(0, None, None)

    def at(rank: int) -> int:  # 1-based rank in the sorted multiset
        seen = 0
        for value, count in durations:
            seen += count
            if seen >= rank:
                return value
        raise AssertionError("rank beyond the distribution")

    middle = total // 2
    median = float(at(middle + 1)) if total % 2 else (at(middle) + at(middle + 1)) / 2
    return ResolutionTime(total, median, at(math.ceil(0.9 * total)))


@functools.cache
def _kecamatan_keys() -> tuple[dict[tuple[str, ...], str], frozenset[str], int]:
    from conversation.places import KECAMATAN, KNOWN_NAMES

    keys = {key: name for key, name in KNOWN_NAMES.items() if name in KECAMATAN}
    return keys, frozenset(key[0] for key in keys), max(len(key) for key in keys)


def kecamatan(text: str) -> str | None:
    """`conversation.places.kecamatan_of`, four times faster on ASCII text (migration 0006 runs it over
    every complaint ever filed, a million rows at the scale target).

    Same tokens, same left-to-right, longest-first search, but only over the kecamatan names: for an
    ASCII token `fold` is just `lower()`, and longer keys can only name a kelurahan or a landmark,
    which kecamatan_of skips anyway. Other text goes to kecamatan_of itself; a test holds the two equal.
    """
    from conversation.places import _TOKEN, kecamatan_of

    if not text.isascii():
        return kecamatan_of(text)
    keys, first_words, longest = _kecamatan_keys()
    norms = [match.group(0).lower().strip(".-'") for match in _TOKEN.finditer(text)]
    for start, word in enumerate(norms):
        if word not in first_words:
            continue
        for size in range(min(longest, len(norms) - start), 0, -1):
            name = keys.get(tuple(norms[start : start + size]))
            if name is not None:
                return name
    return None


def kecamatan_counts(places: Iterable[tuple[str | None, int]]) -> dict[str, int]:
    """Counts per kecamatan; places naming none (or hidden ones) are unknown."""
    counts: Counter[str] = Counter()
    for name, count in places:
        counts[name or NO_PLACE] += count
    return _ranked(counts)


def build_report(rows: MonthRows, calendar: WorkingCalendar, now: datetime) -> MonthlyReport:
    """The figures from the aggregates: pure, so it can run in a worker thread."""
    channels: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    departments: Counter[str] = Counter()
    statuses: Counter[str] = Counter({status: 0 for status in REPORTED_STATUSES})
    fixed = closed_without_fix = still_open = 0
    for medium, category, department, status, has_fix, count in rows.groups:
        channels[medium] += count
        categories[category or NO_CATEGORY] += count
        departments[department or NO_DEPARTMENT] += count
        statuses[status] += count
        if status in FIX_STATUSES and has_fix:
            fixed += count
        elif status in OPEN_STATUSES or status == S.RESOLVED:
            still_open += count  # (a resolved row without a resolution time cannot come from the workflow)
        else:
            closed_without_fix += count
    durations = working_days_taken(((a, b, n) for a, b, n, _, _ in rows.resolutions), calendar)
    received = sum(channels.values())
    used = set(departments) | set(categories)
    return MonthlyReport(
        month=rows.month,
        generated_at=now,
        received=received,
        by_channel=_ranked(channels),
        by_category=_ranked(categories),
        by_department=_ranked(departments),
        by_kecamatan=kecamatan_counts(rows.places),
        by_status={status: statuses[status] for status in REPORTED_STATUSES},
        fixed=fixed,
        closed_without_fix=closed_without_fix,
        still_open=still_open,
        resolution_time=summarize(durations),
        with_deadline=sum(due for *_, due, _ in rows.resolutions),
        within_deadline=sum(met for *_, met in rows.resolutions),
        department_names={k: v for k, v in sorted(rows.department_names.items()) if k in used},
        category_names={k: v for k, v in sorted(rows.category_names.items()) if k in used},
    )


def monthly_report(conn: Connection, month: Month, calendar: WorkingCalendar, now: datetime) -> MonthlyReport:
    """`fetch_month` then `build_report`, for callers that may block (the CLI, tests)."""
    return build_report(fetch_month(conn, month), calendar, now)


# ---- formats ---------------------------------------------------------------------------------------


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _days(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:g}"


def to_text(report: MonthlyReport) -> str:
    """A plain-text summary for a terminal or an e-mail."""
    lines = [
        f"Lapor monthly report {report.month} (Asia/Jakarta)"
        + ("" if report.complete else " - provisional, the month is not over"),
        f"generated at {report.generated_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"received              {report.received}",
        f"fixed                 {report.fixed}",
        f"closed without fix    {report.closed_without_fix}",
        f"still open            {report.still_open}",
        f"resolution rate       {_percent(report.resolution_rate)}",
        f"resolution time       median {_days(report.resolution_time.median)} working days, "
        f"p90 {_days(report.resolution_time.p90)} (over {report.resolution_time.count} fixed)",
        f"deadline compliance   {_percent(report.deadline_compliance)} "
        f"({report.within_deadline} of {report.with_deadline} within the deadline)",
    ]
    for name in DIMENSIONS:
        lines += ["", f"by {name}:"]
        table = report.dimension(name)
        width = max((len(key) for key in table), default=0)
        lines += [f"  {key:<{width}}  {count:>7}" for key, count in table.items()]
    return "\n".join(lines) + "\n"


CSV_HEADER = ("month", "section", "key", "value")


def csv_rows(report: MonthlyReport) -> list[tuple[str, str, str, str]]:
    """Long format (one figure per line): spreadsheets pivot it, and new keys never break a column."""
    month = str(report.month)
    rows: list[tuple[str, str, str, str]] = [
        (month, "total", "received", str(report.received)),
        (month, "outcome", "fixed", str(report.fixed)),
        (month, "outcome", "closed_without_fix", str(report.closed_without_fix)),
        (month, "outcome", "open", str(report.still_open)),
        (month, "rate", "resolution_rate", _csv_number(_rounded(report.resolution_rate))),
        (month, "resolution_working_days", "count", str(report.resolution_time.count)),
        (month, "resolution_working_days", "median", _csv_number(report.resolution_time.median)),
        (month, "resolution_working_days", "p90", _csv_number(report.resolution_time.p90)),
        (month, "deadline", "with_deadline", str(report.with_deadline)),
        (month, "deadline", "within_deadline", str(report.within_deadline)),
        (month, "deadline", "compliance", _csv_number(_rounded(report.deadline_compliance))),
    ]
    for name in DIMENSIONS:
        rows += [(month, name, key, str(count)) for key, count in report.dimension(name).items()]
    return rows


def _csv_number(value: float | int | None) -> str:
    if value is None:
        return ""
    return f"{value:g}" if isinstance(value, float) else str(value)


def to_csv(report: MonthlyReport) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    writer.writerows(csv_rows(report))
    return buffer.getvalue()
