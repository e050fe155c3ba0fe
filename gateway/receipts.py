"""Delivery receipts: what providers tell us about messages we sent, applied to the outbox.

Three things make this more than an UPDATE:
- statuses only move forward (a late "sent" never undoes "delivered"; "failed" may follow "sent");
- a receipt can arrive before we recorded the provider's id for the row (the provider answered our
  send and called back faster than our outcome commit): it waits in `early_receipts` and is applied
  when the id is recorded, instead of being lost;
- WhatsApp refuses free-form text outside the 24-hour window, often only in a *later* failed receipt
  (Twilio 63016, Cloud API 131047): the message is queued again marked `window_closed`, and the
  adapter sends it as an approved template.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.engine import Connection

from adapters.base import DeliveryStatus, StatusUpdate
from store import models
from store.models import OutboxStatus

WINDOW_CLOSED_CODES = frozenset({"63016", "131047"})
EARLY_RECEIPT_TTL = timedelta(days=2)

# Forward-only delivery states: a late 'sent' callback must not undo 'delivered'.
_RANK = {
    OutboxStatus.PENDING.value: 0,
    OutboxStatus.SENDING.value: 1,
    OutboxStatus.SENT.value: 2,
    OutboxStatus.FAILED.value: 2,
    OutboxStatus.UNDELIVERED.value: 2,
    OutboxStatus.DELIVERED.value: 3,
    OutboxStatus.READ.value: 4,
}
_FROM_DELIVERY = {
    DeliveryStatus.QUEUED: OutboxStatus.SENT,
    DeliveryStatus.SENT: OutboxStatus.SENT,
    DeliveryStatus.DELIVERED: OutboxStatus.DELIVERED,
    DeliveryStatus.READ: OutboxStatus.READ,
    DeliveryStatus.FAILED: OutboxStatus.FAILED,
    DeliveryStatus.UNDELIVERED: OutboxStatus.UNDELIVERED,
}
_FAILURES = (OutboxStatus.FAILED.value, OutboxStatus.UNDELIVERED.value)


def _moves_forward(current: str, new: str) -> bool:
    if new in _FAILURES:
        return current in (OutboxStatus.SENDING.value, OutboxStatus.SENT.value)
    return _RANK[new] > _RANK.get(current, 0)


def apply_receipts(conn: Connection, updates: Iterable[StatusUpdate], now: datetime) -> None:
    """Apply receipts to their outbox rows; park the ones whose row is not known yet."""
    latest: dict[str, StatusUpdate] = {}
    for receipt in updates:
        latest[receipt.provider_message_id] = receipt
    if not latest:
        return
    table = models.outbox
    rows = conn.execute(select(table).where(table.c.provider_message_id.in_(list(latest)))).mappings().all()
    _apply(conn, [(dict(row), latest[row["provider_message_id"]]) for row in rows], now)
    unknown = set(latest) - {row["provider_message_id"] for row in rows}
    if unknown:
        parked = models.early_receipts
        already = set(
            conn.execute(
                select(parked.c.provider_message_id).where(parked.c.provider_message_id.in_(list(unknown)))
            ).scalars()
        )
        fresh = sorted(unknown - already)
        if fresh:
            conn.execute(
                parked.insert(),
                [
                    {
                        "provider_message_id": pid,
                        "status": latest[pid].status.value,
                        "error_code": latest[pid].error_code,
                        "error_message": latest[pid].error_message,
                        "received_at": now,
                    }
                    for pid in fresh
                ],
            )


def apply_parked_receipts(conn: Connection, provider_ids: Sequence[str], now: datetime) -> None:
    """Called when provider ids are recorded: apply receipts that arrived first, forget stale ones."""
    parked = models.early_receipts
    conn.execute(delete(parked).where(parked.c.received_at < now - EARLY_RECEIPT_TTL))
    if not provider_ids:
        return
    waiting = (
        conn.execute(select(parked).where(parked.c.provider_message_id.in_(list(provider_ids))))
        .mappings()
        .all()
    )
    if not waiting:
        return
    receipts = [
        StatusUpdate(
            channel="",
            provider_message_id=row["provider_message_id"],
            status=DeliveryStatus(row["status"]),
            at=row["received_at"],
            raw_status=row["status"],
            error_code=row["error_code"],
            error_message=row["error_message"],
        )
        for row in waiting
    ]
    conn.execute(
        delete(parked).where(parked.c.provider_message_id.in_([r.provider_message_id for r in receipts]))
    )
    apply_receipts(conn, receipts, now)


def _apply(conn: Connection, matched: list[tuple[dict[str, Any], StatusUpdate]], now: datetime) -> None:
    table = models.outbox
    changes = []
    retries = []
    for row, receipt in matched:
        new = _FROM_DELIVERY[receipt.status].value
        if not _moves_forward(row["status"], new):
            continue
        changes.append(
            {
                "row_id": row["id"],
                "status": new,
                "error_code": receipt.error_code,
                "last_error": receipt.error_message,
                "updated_at": now,
            }
        )
        meta = row["meta"] or {}
        if new in _FAILURES and receipt.error_code in WINDOW_CLOSED_CODES and not meta.get("window_closed"):
            retries.append(_window_closed_copy(row, now))
    if changes:
        conn.execute(
            update(table)
            .where(table.c.id == bindparam("row_id"))
            .values(
                status=bindparam("status"),
                error_code=bindparam("error_code"),
                last_error=bindparam("last_error"),
                updated_at=bindparam("updated_at"),
            ),
            changes,
        )
    if retries:
        conn.execute(table.insert(), retries)


def _window_closed_copy(row: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The same message again, for the adapter to send as an approved template."""
    keep = (
        "channel",
        "to_kind",
        "to_address",
        "to_address_enc",
        "text",
        "media",
        "reply_to",
        "kind",
        "template",
        "template_vars",
    )
    copy = {name: row[name] for name in keep}
    copy.update(
        meta={**(row["meta"] or {}), "window_closed": True, "retry_of": row["id"]},
        complaint_id=row["complaint_id"],
        reporter_id=row["reporter_id"],
        status=OutboxStatus.PENDING.value,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
    )
    return copy
