"""What each audience may see of a complaint; the dashboard renders these, never the raw rows.

* `staff_view`: for officers, heads and admins allowed to VIEW it. The reporter appears as a pseudonym
  and a masked contact; free text has phone numbers, e-mails and the reporter's own name removed.
  An ANONIM complaint shows no contact at all and a per-complaint pseudonym.
* `reveal_identity`: a city admin sees the real name and contact after giving a reason; the reveal is
  written to `identity_reveals` in the same transaction, so there is no unaudited path. ANONIM
  complaints cannot be revealed by anyone.
* `public_view` (tracking page, Open311) and `export_rows` (open data): no reporter at all, and for a
  confidential complaint no description or place either.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from store import models
from workflow.access import Action, Actor, Forbidden, Role, Scope, require
from workflow.lifecycle import ComplaintNotFound, load_departments
from workflow.privacy import ContactVault, decrypt_contact, mask, open_name, pseudonym, redact

MIN_REASON = 10


@dataclass(frozen=True, slots=True)
class ReporterCard:
    pseudonym: str
    contact: str | None
    """Masked contact, or None for ANONIM."""
    channel: str
    anonymous: bool


@dataclass(frozen=True, slots=True)
class RevealedIdentity:
    name: str | None
    kind: str
    address: str
    channel: str


def _complaint(conn: Connection, code: str) -> Any:
    table = models.complaints
    row = conn.execute(select(table).where(table.c.tracking_code == code)).one_or_none()
    if row is None:
        raise ComplaintNotFound(f"no complaint {code}")
    return row


def _identity(conn: Connection, complaint: Any) -> Any:
    ident, reporters = models.channel_identities, models.reporters
    return conn.execute(
        select(
            reporters.c.ref,
            reporters.c.display_name,
            reporters.c.display_name_enc,
            ident.c.kind,
            ident.c.address,
            ident.c.address_enc,
        )
        .select_from(reporters)
        .outerjoin(ident, ident.c.id == complaint.origin_identity_id)
        .where(reporters.c.id == complaint.reporter_id)
    ).one()


def reporter_card(conn: Connection, vault: ContactVault, complaint: Any) -> ReporterCard:
    who = _identity(conn, complaint)
    if complaint.anonymous:
        return ReporterCard(
            pseudonym(vault, who.ref, anonymous_in=complaint.tracking_code),
            None,
            complaint.origin_channel,
            True,
        )
    contact = None
    if who.kind is not None:
        contact = mask(who.kind, decrypt_contact(vault, who.address, who.address_enc))
    return ReporterCard(pseudonym(vault, who.ref), contact, complaint.origin_channel, False)


def staff_view(conn: Connection, code: str, viewer: Actor, vault: ContactVault) -> dict[str, Any]:
    """One complaint for a staff screen, after the VIEW check (own department for officers/heads)."""
    complaint = _complaint(conn, code)
    departments = load_departments(conn, complaint.id)
    require(viewer, Action.VIEW, Scope(frozenset(departments)))
    card = reporter_card(conn, vault, complaint)
    who = _identity(conn, complaint)
    names = (open_name(vault, who.display_name, who.display_name_enc) or "",)
    events = models.status_events
    timeline = [
        {
            "at": e.created_at,
            "from": e.from_status,
            "to": e.to_status,
            "action": e.action,
            "actor": e.actor,
            "note": redact(e.note, names=names) if e.note else None,
            "public": e.public,
            "evidence": e.evidence or [],
        }
        for e in conn.execute(
            select(events).where(events.c.complaint_id == complaint.id).order_by(events.c.id)
        )
    ]
    return {
        "code": complaint.tracking_code,
        "status": complaint.status,
        "category": complaint.category,
        "description": redact(complaint.description, names=names),
        "location_text": redact(complaint.location_text, names=names) if complaint.location_text else None,
        "latitude": complaint.latitude,
        "longitude": complaint.longitude,
        "media": complaint.media,
        "confidential": complaint.confidential,
        "departments": list(departments),
        "sla_scope": complaint.sla_scope,
        "verify_due_at": complaint.verify_due_at,
        "due_at": complaint.due_at,
        "paused": complaint.paused_at is not None,
        "escalation_level": complaint.escalation_level,
        "created_at": complaint.created_at,
        "reporter": {
            "pseudonym": card.pseudonym,
            "contact": card.contact,
            "channel": card.channel,
            "anonymous": card.anonymous,
        },
        "events": timeline,
    }


def reveal_identity(
    conn: Connection, code: str, actor: Actor, reason: str, vault: ContactVault, now: datetime
) -> RevealedIdentity:
    """The reporter's real name and contact for a city admin with a reason; audited, or refused."""
    require(actor, Action.REVEAL_IDENTITY)
    reason = reason.strip()
    if len(reason) < MIN_REASON:
        raise Forbidden(f"a reveal needs a reason of at least {MIN_REASON} characters")
    complaint = _complaint(conn, code)
    if complaint.anonymous:
        raise Forbidden(f"{code} was sent as ANONIM: the reporter's identity is not shown to anyone")
    who = _identity(conn, complaint)
    conn.execute(
        models.identity_reveals.insert().values(
            complaint_id=complaint.id,
            reporter_id=complaint.reporter_id,
            actor=actor.name,
            reason=reason,
            created_at=now,
        )
    )
    if who.kind is None:
        raise Forbidden(f"{code} has no contact on record")
    address = decrypt_contact(vault, who.address, who.address_enc)
    name = open_name(vault, who.display_name, who.display_name_enc)
    return RevealedIdentity(name, who.kind, address, complaint.origin_channel)


def reveals(conn: Connection, actor: Actor, code: str | None = None) -> list[dict[str, Any]]:
    """The reveal audit trail, for admins (and auditors, who check the admins)."""
    if Role(actor.role) not in (Role.ADMIN, Role.AUDITOR):
        raise Forbidden("only admins and auditors read the reveal log")
    table, complaints = models.identity_reveals, models.complaints
    query = (
        select(complaints.c.tracking_code, table.c.actor, table.c.reason, table.c.created_at)
        .join(complaints, complaints.c.id == table.c.complaint_id)
        .order_by(table.c.id)
    )
    if code is not None:
        query = query.where(complaints.c.tracking_code == code)
    return [dict(r._mapping) for r in conn.execute(query)]


def public_view(conn: Connection, code: str) -> dict[str, Any] | None:
    """What anyone with the tracking code sees: status and public notes; no reporter, ever."""
    table = models.complaints
    row = conn.execute(
        select(table).where(table.c.tracking_code == code, table.c.status != "draft")
    ).one_or_none()
    if row is None:
        return None
    events = models.status_events
    departments = load_departments(conn, row.id)
    return {
        "code": row.tracking_code,
        "status": row.status,
        "category": row.category,
        "description": None if row.confidential else redact(row.description),
        "location_text": None if row.confidential or not row.location_text else redact(row.location_text),
        "departments": list(departments),
        "due_at": row.due_at,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "events": [
            {"at": e.created_at, "status": e.to_status, "note": None if row.confidential else e.note}
            for e in conn.execute(
                select(events.c.created_at, events.c.to_status, events.c.note)
                .where(events.c.complaint_id == row.id, events.c.public.is_(True))
                .order_by(events.c.id)
            )
        ],
    }


def export_rows(conn: Connection, actor: Actor, since: datetime, until: datetime) -> list[dict[str, Any]]:
    """Open data: one row per complaint filed in [since, until), with no personal data. Places are
    rounded to about 100 m; confidential complaints keep only category, status and dates."""
    require(actor, Action.EXPORT)
    table = models.complaints
    rows = conn.execute(
        select(table)
        .where(table.c.created_at >= since, table.c.created_at < until, table.c.status != "draft")
        .order_by(table.c.id)
    )
    out = []
    for row in rows:
        hidden = row.confidential
        out.append(
            {
                "code": row.tracking_code,
                "category": row.category,
                "status": row.status,
                "department": row.department,
                "channel": row.origin_medium,
                "created_at": row.created_at.isoformat(),
                "resolved_at": row.resolved_at.isoformat() if row.resolved_at else None,
                "closed_at": row.closed_at.isoformat() if row.closed_at else None,
                "on_time": None
                if row.due_at is None or row.resolved_at is None
                else row.resolved_at <= row.due_at,
                "rating": row.rating,
                "description": None if hidden else redact(row.description),
                "location_text": None if hidden or not row.location_text else redact(row.location_text),
                "latitude": None if hidden or row.latitude is None else round(row.latitude, 3),
                "longitude": None if hidden or row.longitude is None else round(row.longitude, 3),
            }
        )
    return out
