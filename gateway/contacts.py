"""A citizen who shares their own phone number on Telegram becomes one person with their SMS and
WhatsApp selves: complaints, follow-ups and the conversation all end up with one reporter.

Telegram vouches for the number only when the contact shared is the sender's own (the adapter
checks `contact.user_id == from.id` and only then sets `extra["contact_phone"]`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Connection

from adapters.base import AddressKind, InboundMessage
from gateway.addressbook import PLAIN, AddressBook
from store import models

CONTACT_KEY = "contact_phone"
IdentityMap = dict[tuple[str, str], tuple[int, int]]


def link_shared_contacts(
    conn: Connection,
    messages: Sequence[InboundMessage],
    identities: Mapping[tuple[str, str], tuple[int, int]],
    now: datetime,
    addresses: AddressBook = PLAIN,
) -> IdentityMap:
    """Attach each shared number to its sender; returns the identity map with merged reporters."""
    result: IdentityMap = dict(identities)
    for message in messages:
        phone = message.extra.get(CONTACT_KEY)
        if not phone:
            continue
        _, reporter_id = result[(message.sender.kind.value, message.sender.value)]
        table = models.channel_identities
        owner = conn.execute(
            select(table.c.reporter_id).where(
                table.c.kind == AddressKind.PHONE.value,
                table.c.address == addresses.key(AddressKind.PHONE.value, phone),
            )
        ).scalar()
        if owner is None:
            conn.execute(
                table.insert().values(
                    reporter_id=reporter_id,
                    kind=AddressKind.PHONE.value,
                    address=addresses.key(AddressKind.PHONE.value, phone),
                    address_enc=addresses.seal(phone),
                    unreachable=False,
                    created_at=now,
                )
            )
        elif owner != reporter_id:
            merge_reporters(conn, source=reporter_id, target=owner)
            result = {
                key: (ident, owner if rid == reporter_id else rid) for key, (ident, rid) in result.items()
            }
    return result


def merge_reporters(conn: Connection, *, source: int, target: int) -> None:
    """Move everything of `source` to `target`. The target's conversation wins if both have one."""
    for table in (models.channel_identities, models.complaints, models.inbound_messages):
        conn.execute(update(table).where(table.c.reporter_id == source).values(reporter_id=target))
    conn.execute(
        update(models.outbox).where(models.outbox.c.reporter_id == source).values(reporter_id=target)
    )
    followers = models.complaint_followers
    already = select(followers.c.complaint_id).where(followers.c.reporter_id == target).scalar_subquery()
    conn.execute(
        delete(followers).where(followers.c.reporter_id == source, followers.c.complaint_id.in_(already))
    )
    conn.execute(update(followers).where(followers.c.reporter_id == source).values(reporter_id=target))
    conversations = models.conversations
    target_has = conn.execute(
        select(conversations.c.reporter_id).where(conversations.c.reporter_id == target)
    ).scalar()
    if target_has is None:
        conn.execute(
            update(conversations).where(conversations.c.reporter_id == source).values(reporter_id=target)
        )
    else:
        conn.execute(delete(conversations).where(conversations.c.reporter_id == source))
