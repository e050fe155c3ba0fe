"""Messages the workflow owes people, written inside the caller's transaction.

Citizens hear about their complaint on the channel it came from (and followers on theirs), in their
language; staff get a dashboard notification plus, when they registered one, a Telegram or WhatsApp
message through the same durable outbox. Writing these rows in the transaction that changes the
complaint is what guarantees "every change reaches the citizen" without a second system.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from store import models
from store.models import OutboxStatus
from workflow import messages
from workflow.privacy import ContactVault, decrypt_contact, seal_recipient
from workflow.settings import WorkflowSettings


@dataclass(frozen=True, slots=True)
class Recipient:
    channel: str
    kind: str
    address: str
    language: str
    reporter_id: int
    reply_to: str | None


def citizen_recipients(conn: Connection, complaint: Any, settings: WorkflowSettings) -> list[Recipient]:
    """The reporter (origin channel and identity) and every follower, once each."""
    ident, followers, reporters = models.channel_identities, models.complaint_followers, models.reporters
    found: list[Recipient] = []
    seen: set[tuple[str, str]] = set()
    if complaint.origin_identity_id is not None:
        row = conn.execute(
            select(ident.c.kind, ident.c.address, ident.c.address_enc).where(
                ident.c.id == complaint.origin_identity_id
            )
        ).one_or_none()
        if row is not None:
            address = decrypt_contact(settings.vault, row.address, row.address_enc)
            found.append(
                Recipient(
                    complaint.origin_channel,
                    row.kind,
                    address,
                    complaint.language,
                    complaint.reporter_id,
                    complaint.origin_thread_id,
                )
            )
            seen.add((complaint.origin_channel, address))
    rows = conn.execute(
        select(
            followers.c.channel,
            followers.c.reporter_id,
            ident.c.kind,
            ident.c.address,
            ident.c.address_enc,
            reporters.c.language,
        )
        .join(ident, ident.c.id == followers.c.identity_id)
        .join(reporters, reporters.c.id == followers.c.reporter_id)
        .where(followers.c.complaint_id == complaint.id)
        .order_by(followers.c.id)
    )
    for channel, reporter_id, kind, stored, encrypted, language in rows:
        address = decrypt_contact(settings.vault, stored, encrypted)
        if (channel, address) in seen:
            continue
        seen.add((channel, address))
        found.append(Recipient(channel, kind, address, language, reporter_id, None))
    return found


def outbox_row(
    recipient: Recipient,
    text: str,
    kind: str,
    complaint_id: int | None,
    now: datetime,
    vault: ContactVault | None,
) -> dict[str, Any]:
    """The same row shape as the intake's replies (gateway.effects.IntakeUnit.add_outbox), the
    recipient sealed under `vault` (workflow.privacy.seal_recipient)."""
    return {
        "channel": recipient.channel,
        "to_kind": recipient.kind,
        **seal_recipient(vault, recipient.kind, recipient.address),
        "text": text,
        "media": [],
        "reply_to": recipient.reply_to,
        "kind": kind,
        "template_vars": {},
        "complaint_id": complaint_id,
        "reporter_id": recipient.reporter_id or None,
        "status": OutboxStatus.PENDING.value,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }


def tell_citizens(
    conn: Connection,
    complaint: Any,
    key: str,
    params: dict[str, object],
    now: datetime,
    settings: WorkflowSettings,
) -> int:
    """One status message per recipient, each in their own language; returns how many."""
    rows = []
    for recipient in citizen_recipients(conn, complaint, settings):
        text = messages.render(
            recipient.language, f"citizen.{key}", **localise(conn, params, recipient.language)
        )
        rows.append(outbox_row(recipient, text, f"status_{key}", complaint.id, now, settings.vault))
    if rows:
        conn.execute(models.outbox.insert(), rows)
    return len(rows)


def localise(conn: Connection, params: dict[str, object], language: str) -> dict[str, object]:
    """Department codes and category slugs become names in the reader's language."""
    out = dict(params)
    if isinstance(params.get("department_codes"), tuple):
        out["department"] = department_names(conn, params["department_codes"], language)  # type: ignore[arg-type]
    if isinstance(params.get("category"), str) and params.get("category"):
        out["category"] = category_name(conn, str(params["category"]), language)
    out.pop("department_codes", None)
    return out


def department_names(conn: Connection, codes: Iterable[str], language: str = "id") -> str:
    codes = list(codes)
    table = models.departments
    names = {
        code: (name_en if language == "en" and name_en else name)
        for code, name, name_en in conn.execute(
            select(table.c.code, table.c.name, table.c.name_en).where(table.c.code.in_(codes))
        )
    }
    joined = [names.get(code, code) for code in codes]
    return ", ".join(joined) if joined else "-"


def category_name(conn: Connection, slug: str | None, language: str = "id") -> str:
    if not slug:
        return "-"
    table = models.categories
    row = conn.execute(select(table.c.name_id, table.c.name_en).where(table.c.slug == slug)).one_or_none()
    if row is None:
        return slug
    return str(row.name_en if language == "en" and row.name_en else row.name_id)


def staff(conn: Connection, *, roles: Iterable[str], departments: Iterable[str] | None = None) -> list[Any]:
    """Active users with one of `roles` (and, when given, in one of `departments`)."""
    users = models.users
    query = select(
        users.c.id, users.c.username, users.c.telegram_chat_id, users.c.whatsapp_number, users.c.role
    ).where(users.c.active.is_(True), users.c.role.in_(list(roles)))
    if departments is not None:
        query = query.where(users.c.department.in_(list(departments)))
    return list(conn.execute(query.order_by(users.c.id)))


def tell_staff(
    conn: Connection,
    users: Iterable[Any],
    complaint_id: int | None,
    key: str,
    params: dict[str, object],
    now: datetime,
    settings: WorkflowSettings,
) -> int:
    """A dashboard notification per user, plus a Telegram/WhatsApp message where they registered one."""
    text = messages.render("id", f"staff.{key}", **localise(conn, params, "id"))
    notes, outbox = [], []
    for user in users:
        notes.append(
            {"user_id": user.id, "complaint_id": complaint_id, "kind": key, "text": text, "created_at": now}
        )
        if user.telegram_chat_id and settings.staff_telegram_channel:
            target = Recipient(
                settings.staff_telegram_channel, "telegram", user.telegram_chat_id, "id", 0, None
            )
            outbox.append(outbox_row(target, text, f"staff_{key}", complaint_id, now, settings.vault))
        if user.whatsapp_number and settings.staff_whatsapp_channel:
            target = Recipient(settings.staff_whatsapp_channel, "phone", user.whatsapp_number, "id", 0, None)
            outbox.append(outbox_row(target, text, f"staff_{key}", complaint_id, now, settings.vault))
    if notes:
        conn.execute(models.notifications.insert(), notes)
    if outbox:
        conn.execute(models.outbox.insert(), outbox)
    return len(notes)
