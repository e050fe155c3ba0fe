"""Reaching a citizen when their channel stops working (bot blocked, number unsubscribed).

The identity is marked unreachable, and the message goes again to another identity of the same
person: a Telegram user who shared their number can still get WhatsApp or SMS. Later messages to an
unreachable identity are rerouted before any attempt, so a blocked bot is not tried again and again.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection

from adapters.base import AddressKind
from gateway.addressbook import PLAIN, AddressBook
from store import models
from store.models import OutboxStatus

# Which channel reaches an identity that never wrote to us on any (e.g. a number shared on Telegram).
PREFERRED_CHANNELS: Mapping[str, tuple[str, ...]] = {
    AddressKind.PHONE.value: ("whatsapp_cloud", "twilio_whatsapp", "kannel", "twilio_sms"),
    AddressKind.TELEGRAM.value: ("telegram",),
    AddressKind.TWITTER.value: ("twitter",),
}


def unreachable_addresses(
    conn: Connection, rows: Collection[Mapping[str, Any]], book: AddressBook = PLAIN
) -> set[tuple[str, str]]:
    """Which of these rows' recipients are already known unreachable, as (to_kind, to_address) as
    stored. The hash is recomputed from the opened address, so a row sealed before a key rotation
    still finds its (rotated) identity."""
    if not rows:
        return set()
    by_key = {
        (row["to_kind"], book.key(row["to_kind"], book.recipient(row))): (row["to_kind"], row["to_address"])
        for row in rows
    }
    found = conn.execute(
        _UNREACHABLE,
        {"kinds": sorted({kind for kind, _ in by_key}), "keys": sorted({key for _, key in by_key})},
    )
    # Kinds and keys are matched as two lists (one cached statement, on the (kind, address) index);
    # a key of one kind found under another is not a match.
    return {by_key[(kind, key)] for kind, key in found if (kind, key) in by_key}


_identities = models.channel_identities
_UNREACHABLE = select(_identities.c.kind, _identities.c.address).where(
    _identities.c.unreachable.is_(True),
    _identities.c.kind.in_(bindparam("kinds", expanding=True)),
    _identities.c.address.in_(bindparam("keys", expanding=True)),
)


def reroute(
    conn: Connection,
    row: Mapping[str, Any],
    channels: Collection[str],
    now: datetime,
    reason: str,
    code: str | None = None,
    book: AddressBook = PLAIN,
) -> int | None:
    """Mark the row's recipient unreachable, fail the row, and queue it to another identity of the
    same reporter. Returns the new row's id, or None when the person has no other way in."""
    identities = models.channel_identities
    outbox = models.outbox
    conn.execute(
        update(identities)
        .where(
            identities.c.kind == row["to_kind"],
            identities.c.address == book.key(row["to_kind"], book.recipient(row)),
        )
        .values(unreachable=True)
    )
    conn.execute(
        update(outbox)
        .where(outbox.c.id == row["id"])
        .values(
            status=OutboxStatus.FAILED.value,
            last_error=reason[:500],
            error_code=code,
            send_started_at=None,
            lease_owner=None,
            lease_until=None,
            updated_at=now,
        )
    )
    if row["reporter_id"] is None:
        return None
    others = conn.execute(
        select(identities.c.kind, identities.c.address, identities.c.address_enc, identities.c.last_channel)
        .where(identities.c.reporter_id == row["reporter_id"], identities.c.unreachable.is_(False))
        .order_by(identities.c.last_seen_at.desc().nulls_last(), identities.c.id)
    ).all()
    for kind, stored, sealed, last_channel in others:
        channel = (
            last_channel
            if last_channel in channels
            else next((c for c in PREFERRED_CHANNELS.get(kind, ()) if c in channels), None)
        )
        if channel is None:
            continue
        keep = ("text", "media", "kind", "template", "template_vars", "complaint_id", "reporter_id")
        new_id = conn.execute(
            outbox.insert().returning(outbox.c.id),
            {
                **{name: row[name] for name in keep},
                "channel": channel,
                "to_kind": kind,
                **book.recipient_columns(kind, book.open(stored, sealed)),
                "reply_to": None,
                "meta": {**(row["meta"] or {}), "rerouted_from": row["id"]},
                "status": OutboxStatus.PENDING.value,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
                "updated_at": now,
            },
        ).scalar_one()
        return int(new_id)
    return None
