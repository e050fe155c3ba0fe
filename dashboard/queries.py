"""Read-only queries behind the dashboard and the tracking page (SQLAlchemy Core, async).

Each function returns plain dicts shaped for one page, so templates never lazy-load anything and a
page costs a fixed, small number of round trips.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Join, Text, and_, column, func, literal_column, or_, select, table, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.ext.compiler import compiles

from store import models

PAGE_SIZE = 25
# A draft collects turns for up to a day before it is filed; messages without a complaint id in that
# window before filing belong to its conversation.
CONVERSATION_WINDOW = timedelta(hours=24)
MESSAGE_LIMIT = 200

complaints = models.complaints
events = models.status_events
identities = models.channel_identities
reporters = models.reporters
inbound = models.inbound_messages
outbox = models.outbox


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[dict[str, Any]]
    page: int
    has_next: bool
    total: int
    """Matching complaints, counted up to `COUNT_CAP` + 1 (shown as "1000+")."""
    newest: int | None = None
    """Set when the trigram index could not answer the search (short words only, or next to long
    words with too many matches, see `SHORT_WORDS_SCAN`): only (about) this many newest complaints
    were searched."""

    @property
    def total_label(self) -> str:
        return f"{COUNT_CAP}+" if self.total > COUNT_CAP else str(self.total)


@dataclass(frozen=True, slots=True)
class Filters:
    """The inbox filters as typed from the query string; every field optional."""

    status: str | None = None
    category: str | None = None
    department: str | None = None
    channel: str | None = None
    overdue: bool = False
    date_from: datetime | None = None
    date_to: datetime | None = None
    kecamatan: str | None = None
    q: str | None = None
    own_department: str | None = None
    """Officers and heads see only complaints forwarded to their department."""


OPEN_STATUSES = ("submitted", "verified", "forwarded", "in_progress", "reopened")
VERIFYING = ("submitted", "verified")
COUNT_CAP = 1000
"""An inbox counts its matches only this far: an exact count of a million rows costs a full scan on
every page load (measured 250-700 ms at 1M complaints), and nobody reads past "1000+"."""


def overdue_condition(now: datetime) -> Any:
    """Past the verification deadline while verifying, or past the handling deadline afterwards."""
    return or_(
        and_(complaints.c.status.in_(VERIFYING), complaints.c.verify_due_at < now),
        and_(
            complaints.c.status.in_(("forwarded", "in_progress", "reopened")),
            complaints.c.due_at < now,
            complaints.c.paused_at.is_(None),
        ),
    )


def _conditions(filters: Filters, now: datetime) -> list[Any]:
    wanted: list[Any] = [
        complaints.c.status == filters.status if filters.status else complaints.c.status != "draft"
    ]
    if filters.category:
        wanted.append(complaints.c.category == filters.category)
    if filters.channel:
        wanted.append(complaints.c.origin_medium == filters.channel)
    for department in (filters.department, filters.own_department):
        if department:
            linked = select(models.complaint_departments.c.id).where(
                models.complaint_departments.c.complaint_id == complaints.c.id,
                models.complaint_departments.c.department == department,
            )
            wanted.append(linked.exists())
    if filters.overdue:
        wanted.append(overdue_condition(now))
    if filters.date_from is not None:
        wanted.append(complaints.c.created_at >= filters.date_from)
    if filters.date_to is not None:
        wanted.append(complaints.c.created_at < filters.date_to)
    if filters.kecamatan:
        # Recognised once, when the place was written (store.models.Complaint.kecamatan): the
        # misspelt names need Python, which a WHERE cannot run; indexed with the list order.
        wanted.append(complaints.c.kecamatan == filters.kecamatan)
    return wanted


MAX_TERMS = 8


def search_terms(text: str | None) -> list[str]:
    """The distinct lower-cased words of a search box, at most `MAX_TERMS` (none has whitespace in
    it: `_conditions` relies on that)."""
    if not text:
        return []
    return list(dict.fromkeys(text.lower().split()))[:MAX_TERMS]


def search_text() -> Any:
    """The text a search word is looked for in: description, place and tracking code, joined by
    spaces, lower-cased. Migration 0007 indexes exactly this expression on PostgreSQL (GIN,
    pg_trgm): keep the two equal, a query whose expression differs by as much as a cast cannot use
    the index. The separators are SQL literals, not bound parameters, for the same reason."""
    return func.lower(
        complaints.c.description
        + literal_column("' '", Text)
        + func.coalesce(complaints.c.location_text, literal_column("''", Text))
        + literal_column("' '", Text)
        + complaints.c.tracking_code
    )


def contains(term: str) -> Any:
    """The search rule for one word: it is a substring of the lower-cased joined text (so "mati"
    finds "dimatikan", "pemuda paragon" finds "Jl. Pemuda depan Paragon"), `%` and `_` typed by the
    officer literal. A word has no space in it, so it is found in the joined text exactly when it is
    in one of the three. Every word must match, in any order. The trigram index only narrows down
    which rows this is checked on."""
    escaped = term.replace("/", "//").replace("%", "/%").replace("_", "/_")
    return search_text().like(f"%{escaped}%", escape="/")


MIN_RUN = 3
SHORT_WORDS_SCAN = 10_000
"""Where the trigram index cannot answer a search (`indexed`), the newest this-many complaints are
searched, newest first, instead of the whole table: a rare short word read all of it (seconds at a
million complaints)."""
SHORT_WORDS_CANDIDATES = 1_000
"""A short word next to a long one ("pemuda rt") is checked on the long words' matches when they
are at most this many (every one of them is read); with more, the search is the newest-complaints
scan above. Checking them all cost ~4 µs each on PostgreSQL: "pemuda zz" read 99,566 in 420 ms,
and finding out that there are more than this many costs ~20 ms for a word as common as "pemuda"."""


def indexed(term: str) -> bool:
    """Whether the trigram index can find `term`: it has three letters or digits in a row. pg_trgm
    takes trigrams from the letters and digits of a pattern only, so "rt", "05", "jl." or "---"
    give it none (it would then hand every row over to be checked); SQLite's trigram tokenizer
    indexes any three characters, but both backends draw the line at the same place, so that they
    give the same answers."""
    run = 0
    for char in term:
        run = run + 1 if char.isalnum() else 0
        if run == MIN_RUN:
            return True
    return False


search_index = table(models.SEARCH_OBJECTS, column("rowid"), column("body"))
"""SQLite's FTS5 trigram table of migration 0007: rowid = complaints.id, body = the joined text."""


class OrderedJoin(Join):
    """An inner join SQLite runs in the order written: its CROSS JOIN (sqlite.org/optoverview.html,
    "Manual Control Of Query Plans Using CROSS JOIN"). Only compiled for SQLite."""

    inherit_cache = True


@compiles(OrderedJoin, "sqlite")
def _cross_join(join: OrderedJoin, compiler: Any, **kw: Any) -> str:
    tables = {**kw, "asfrom": True}
    left, right = compiler.process(join.left, **tables), compiler.process(join.right, **tables)
    kw.pop("asfrom", None)
    return f"{left} CROSS JOIN {right} ON {compiler.process(join.onclause, **kw)}"


def _match(terms: list[str]) -> str:
    """An FTS5 query: every term as a quoted string (a phrase: for the trigram tokenizer, a
    substring, case folded), all of them required."""
    return " ".join('"' + term.replace('"', '""') + '"' for term in terms)


async def _has_search_index(conn: AsyncConnection) -> bool:
    """SQLite: whether migration 0007 could make the FTS5 table (SQLite 3.34 or later with FTS5)."""
    found = await conn.execute(
        text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :name"),
        {"name": models.SEARCH_OBJECTS},
    )
    return found.first() is not None


def is_overdue(row: Any, now: datetime) -> bool:
    status = row["status"]
    if status in VERIFYING:
        return row["verify_due_at"] is not None and row["verify_due_at"] < now
    if status in ("forwarded", "in_progress", "reopened"):
        return row["due_at"] is not None and row["due_at"] < now and row.get("paused_at") is None
    return False


COLUMNS = (
    complaints.c.tracking_code,
    complaints.c.origin_channel,
    complaints.c.origin_medium,
    complaints.c.category,
    complaints.c.status,
    complaints.c.department,
    complaints.c.created_at,
    complaints.c.location_text,
    complaints.c.description,
    complaints.c.due_at,
    complaints.c.verify_due_at,
    complaints.c.paused_at,
)
NEWEST_FIRST = (complaints.c.created_at.desc(), complaints.c.id.desc())


async def list_complaints(
    engine: AsyncEngine, *, status: str | None = None, page: int = 1, filters: Filters | None = None,
    now: datetime | None = None,
) -> Page:
    """Newest first; drafts are hidden unless asked for (they are conversations, not complaints yet)."""
    from datetime import UTC

    filters = filters or Filters(status=status)
    moment = now or datetime.now(UTC)
    wanted = _conditions(filters, moment)
    terms = search_terms(filters.q)
    offset = (page - 1) * PAGE_SIZE
    newest = None
    async with engine.connect() as conn:
        if terms and conn.dialect.name == "postgresql":
            # A search's count reads until COUNT_CAP + 1 matches or the index's candidates run
            # out; starting parallel workers for it cost more than they saved (at 1M complaints
            # 33-45 ms with two workers, 20-34 ms without). For this transaction only.
            await conn.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
        found = await _by_index(conn, wanted, terms) if any(map(indexed, terms)) else None
        wanted += [contains(term) for term in terms]
        if terms and found is None:  # the index cannot answer: the newest complaints only
            newest = SHORT_WORDS_SCAN
            wanted += await _newest_only(conn, newest)
            # Counted in the list's order, so the count's rows are the list's first ones: the page
            # is read off them, and the newest complaints are read once, not once more for it.
            first = select(complaints.c.id, complaints.c.created_at).where(*wanted).order_by(*NEWEST_FIRST)
            matches = list((await conn.execute(first.limit(COUNT_CAP + 1))).all())
            found = Found(matches, len(matches) <= COUNT_CAP, ordered=True)
        if found is not None and found.holds_page(offset):
            # The page's matches are known: the page is theirs in the list's order, wherever they lie.
            matches = sorted(found.rows, key=lambda row: (row.created_at, row.id), reverse=True)
            ids = [row.id for row in matches[offset : offset + PAGE_SIZE + 1]]
            rows = await _page(conn, [complaints.c.id.in_(ids)], 0) if ids else []
            total = min(len(matches), COUNT_CAP + 1)
        elif found is not None:
            # More than COUNT_CAP: common enough for the newest-first read to fill a page soon.
            rows, total = await _page(conn, wanted, offset), len(found.rows)
        else:
            rows = await _page(conn, wanted, offset)
            dated = filters.date_from is not None or filters.date_to is not None
            total = await _count(conn, wanted, ordered=dated)
    for row in rows:
        row["overdue"] = is_overdue(row, moment)
    return Page(rows[:PAGE_SIZE], page, len(rows) > PAGE_SIZE, total, newest)


async def _newest_only(conn: AsyncConnection, count: int) -> list[Any]:
    """The condition for "one of the newest `count` complaints" (and those as old as the last)."""
    since = select(complaints.c.created_at).order_by(*NEWEST_FIRST).offset(count - 1).limit(1)
    boundary = (await conn.execute(since)).scalar()
    if conn.dialect.name == "postgresql":
        # Read along ix_complaints_created over those rows. The planner cannot estimate a word
        # without trigrams ("---" next to "pemuda": 14 rows expected, 99,566 read) and would take
        # the trigram index, whose candidates cover the whole table (420 ms instead of 10).
        await conn.execute(text("SET LOCAL enable_bitmapscan = off"))
    return [] if boundary is None else [complaints.c.created_at >= boundary]


async def _page(conn: AsyncConnection, wanted: list[Any], offset: int) -> list[dict[str, Any]]:
    """One page (and one row more, to know of a next one) of the list, newest first."""
    query = select(*COLUMNS).where(*wanted).order_by(*NEWEST_FIRST).limit(PAGE_SIZE + 1).offset(offset)
    return [dict(r) for r in (await conn.execute(query)).mappings()]


async def _count(conn: AsyncConnection, wanted: list[Any], *, ordered: bool) -> int:
    """Matches up to COUNT_CAP + 1; `ordered` when the rows are limited to a time range."""
    matching = select(complaints.c.id).where(*wanted)
    if ordered:
        # In the list's order, so along ix_complaints_created from the range's end. Unordered,
        # the planner takes a sequential scan, expecting the range's rows all over the table, but
        # they lie together (rows are stored as they come); and PostgreSQL starts a sequential
        # scan where the last one on the table stopped (synchronize_seqscans), so the count read
        # 1,001 rows (0.5 ms) or most of the table first (about 220 ms at 1M complaints),
        # depending on which inbox page was read before.
        matching = matching.order_by(*NEWEST_FIRST)
    capped = matching.limit(COUNT_CAP + 1).subquery()
    return int((await conn.execute(select(func.count()).select_from(capped))).scalar_one())


@dataclass(frozen=True, slots=True)
class Found:
    rows: list[Any]
    """Matches of a search, as (id, created_at) rows."""
    complete: bool
    """Whether these are all of them (then possibly more than COUNT_CAP)."""
    ordered: bool = False
    """Whether these are the first ones in the list's order (else any of them)."""

    def holds_page(self, offset: int) -> bool:
        """Whether the page from `offset` (and the row after it) is among these."""
        return self.complete or (self.ordered and len(self.rows) > offset + PAGE_SIZE)


async def _by_index(conn: AsyncConnection, wanted: list[Any], terms: list[str]) -> Found | None:
    """The matches of a search with a word the trigram index can find, through the index: at most
    COUNT_CAP + 1 of them, or None when the search has short words and the long ones find more
    than SHORT_WORDS_CANDIDATES complaints to check them on.

    The search is counted first, and by the index: on PostgreSQL the planner takes the GIN index
    for rare words (and reads the table for a common one, stopping at the cap), on SQLite the FTS5
    table gives the candidates. When there are at most COUNT_CAP matches they are all known, and
    the page is made of them: reading newest first instead reads the whole table for words each
    common but rare together ("pemuda setiabudi": PostgreSQL expects 1% of the rows to match, none
    does: 2 s at 1M complaints).
    """
    long_words = [term for term in terms if indexed(term)]
    short = [contains(term) for term in terms if not indexed(term)]
    narrowed = [*wanted, *(contains(term) for term in long_words)]
    source: Any = complaints
    if conn.dialect.name == "sqlite" and await _has_search_index(conn):
        # The FTS5 table's matches first, each complaint looked up by its id, read as they come so
        # that the LIMIT stops them: 2-4 ms at 1M complaints for a word in every tenth. As
        # `id IN (SELECT rowid ...)` SQLite collects every match first (50-230 ms), and as a plain
        # JOIN it may walk the status index and ask FTS5 about each row (180-250 ms).
        source = OrderedJoin(search_index, complaints, complaints.c.id == search_index.c.rowid)
        narrowed.append(search_index.c.body.match(_match(long_words)))
    if not short:
        query = select(complaints.c.id, complaints.c.created_at).select_from(source).where(*narrowed)
        rows = list((await conn.execute(query.limit(COUNT_CAP + 1))).all())
        return Found(rows, len(rows) <= COUNT_CAP)
    checked = select(complaints.c.id, complaints.c.created_at, and_(*short).label("hit")).select_from(source)
    rows = list((await conn.execute(checked.where(*narrowed).limit(SHORT_WORDS_CANDIDATES))).all())
    if len(rows) == SHORT_WORDS_CANDIDATES:
        return None
    return Found([row for row in rows if row.hit], complete=True)


async def choices(engine: AsyncEngine) -> dict[str, list[tuple[str, str]]]:
    """Options for the filter and forward forms: categories and departments as the routing table has them."""
    cats, deps = models.categories, models.departments
    async with engine.connect() as conn:
        categories = [
            (r.slug, r.name_id)
            for r in await conn.execute(
                select(cats.c.slug, cats.c.name_id).where(cats.c.active.is_(True)).order_by(cats.c.slug)
            )
        ]
        departments = [
            (r.code, r.name)
            for r in await conn.execute(
                select(deps.c.code, deps.c.name).where(deps.c.active.is_(True)).order_by(deps.c.code)
            )
        ]
    return {"categories": categories, "departments": departments}


async def complaint_detail(engine: AsyncEngine, code: str) -> dict[str, Any] | None:
    """One complaint with its origin identity, status events and conversation, or None."""
    async with engine.connect() as conn:
        complaint = (
            (
                await conn.execute(
                    select(
                        complaints,
                        identities.c.kind.label("identity_kind"),
                        identities.c.address.label("identity_address"),
                        identities.c.address_enc.label("identity_address_enc"),
                    )
                    .outerjoin(identities, identities.c.id == complaints.c.origin_identity_id)
                    .where(complaints.c.tracking_code == code)
                )
            )
            .mappings()
            .first()
        )
        if complaint is None:
            return None
        result = dict(complaint)
        result["events"] = [
            dict(r)
            for r in (
                await conn.execute(
                    select(events).where(events.c.complaint_id == complaint["id"]).order_by(events.c.id)
                )
            ).mappings()
        ]
        result["messages"] = await _conversation(
            conn, complaint["id"], complaint["reporter_id"], complaint["created_at"]
        )
    return result


async def _conversation(
    conn: Any, complaint_id: int, reporter_id: int, created_at: datetime
) -> list[dict[str, Any]]:
    since = created_at - CONVERSATION_WINDOW
    incoming = select(
        inbound.c.id, inbound.c.text, inbound.c.media, inbound.c.location, inbound.c.received_at.label("at")
    ).where(
        or_(
            inbound.c.complaint_id == complaint_id,
            and_(
                inbound.c.reporter_id == reporter_id,
                inbound.c.complaint_id.is_(None),
                inbound.c.received_at.between(since, created_at),
            ),
        )
    )
    outgoing = select(
        outbox.c.id, outbox.c.text, outbox.c.media, outbox.c.status, outbox.c.created_at.label("at")
    ).where(
        or_(
            outbox.c.complaint_id == complaint_id,
            and_(
                outbox.c.reporter_id == reporter_id,
                outbox.c.complaint_id.is_(None),
                outbox.c.created_at.between(since, created_at),
            ),
        )
    )
    received = (await conn.execute(incoming.limit(MESSAGE_LIMIT))).mappings()
    sent = (await conn.execute(outgoing.limit(MESSAGE_LIMIT))).mappings()
    messages = [{"direction": "in", **dict(r)} for r in received]
    messages += [{"direction": "out", **dict(r)} for r in sent]
    messages.sort(key=lambda m: (m["at"], m["direction"] == "out", m["id"]))
    return messages


async def public_complaint(engine: AsyncEngine, code: str) -> dict[str, Any] | None:
    """What anyone holding the code may see: no reporter, no conversation, only public events."""
    async with engine.connect() as conn:
        row = (
            (
                await conn.execute(
                    select(
                        complaints.c.id,
                        complaints.c.tracking_code,
                        complaints.c.category,
                        complaints.c.status,
                        complaints.c.description,
                        complaints.c.location_text,
                        complaints.c.created_at,
                        complaints.c.updated_at,
                    ).where(complaints.c.tracking_code == code, complaints.c.status != "draft")
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            return None
        result = dict(row)
        result["events"] = [
            dict(r)
            for r in (
                await conn.execute(
                    select(events.c.to_status, events.c.note, events.c.created_at)
                    .where(events.c.complaint_id == row["id"], events.c.public.is_(True))
                    .order_by(events.c.id)
                )
            ).mappings()
        ]
    return result
