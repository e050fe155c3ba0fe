"""Read-only queries behind the dashboard and the tracking page (SQLAlchemy Core, async).

Each function returns plain dicts shaped for one page, so templates never lazy-load anything and a
page costs a fixed, small number of round trips.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

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
    terms = search_terms(filters.q)
    if terms:
        # Every word must appear somewhere (description, place or code), in any order: "pemuda
        # paragon" finds "Jl. Pemuda depan Paragon". `%` and `_` typed by the officer are literal.
        # The three texts are searched as one, joined by spaces: a word has no space in it, so it
        # is found in the joined text exactly when it is in one of them, and each row lower-cases
        # once per word instead of three times (lower() is most of a text search's cost: the scan
        # runs until it has counted COUNT_CAP + 1 matches, about 10,000 rows for a common word).
        haystack = func.lower(
            complaints.c.description
            + " "
            + func.coalesce(complaints.c.location_text, "")
            + " "
            + complaints.c.tracking_code
        )
        wanted.extend(haystack.contains(term, autoescape=True) for term in terms)
    return wanted


MAX_TERMS = 8


def search_terms(text: str | None) -> list[str]:
    """The distinct lower-cased words of a search box, at most `MAX_TERMS` (none has whitespace in
    it: `_conditions` relies on that)."""
    if not text:
        return []
    return list(dict.fromkeys(text.lower().split()))[:MAX_TERMS]


def is_overdue(row: Any, now: datetime) -> bool:
    status = row["status"]
    if status in VERIFYING:
        return row["verify_due_at"] is not None and row["verify_due_at"] < now
    if status in ("forwarded", "in_progress", "reopened"):
        return row["due_at"] is not None and row["due_at"] < now and row.get("paused_at") is None
    return False


async def list_complaints(
    engine: AsyncEngine, *, status: str | None = None, page: int = 1, filters: Filters | None = None,
    now: datetime | None = None,
) -> Page:
    """Newest first; drafts are hidden unless asked for (they are conversations, not complaints yet)."""
    from datetime import UTC

    filters = filters or Filters(status=status)
    moment = now or datetime.now(UTC)
    condition = and_(*_conditions(filters, moment))
    columns = (
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
    query = select(*columns).where(condition).order_by(complaints.c.created_at.desc(), complaints.c.id.desc())
    async with engine.connect() as conn:
        paged = query.limit(PAGE_SIZE + 1).offset((page - 1) * PAGE_SIZE)
        rows = [dict(r) for r in (await conn.execute(paged)).mappings()]
        if filters.q and conn.dialect.name == "postgresql":
            # The planner cannot estimate a LIKE on lower(...), takes the capped count for a scan
            # of the whole table and starts parallel workers for it; the scan stops after about
            # 10,000 rows, and starting the workers cost more than it saved (on this seed the
            # count took 33-45 ms with two workers, 20-34 ms without). For this transaction only.
            await conn.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
        matching = select(complaints.c.id).where(condition)
        if filters.date_from is not None or filters.date_to is not None:
            # In the list's order, so along ix_complaints_created from the window's end. Unordered,
            # the planner takes a sequential scan, expecting the window's rows all over the table,
            # but they lie together (rows are stored as they come); and PostgreSQL starts a
            # sequential scan where the last one on the table stopped (synchronize_seqscans), so
            # the count read 1,001 rows (0.5 ms) or most of the table first (about 220 ms at 1M
            # complaints), depending on which inbox page was read before.
            matching = matching.order_by(complaints.c.created_at.desc(), complaints.c.id.desc())
        capped = matching.limit(COUNT_CAP + 1).subquery()
        total = int((await conn.execute(select(func.count()).select_from(capped))).scalar_one())
    for row in rows:
        row["overdue"] = is_overdue(row, moment)
    return Page(rows[:PAGE_SIZE], page, len(rows) > PAGE_SIZE, total)


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
