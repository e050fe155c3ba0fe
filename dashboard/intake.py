"""Complaints that did not arrive on a chat channel: walk-in, letter, phone call, radio, e-mail, and
Open311 clients. They become ordinary complaints so the whole workflow (deadlines, escalation, status
messages) applies to them.

What `record_complaint` writes, in the caller's transaction:
* `reporters`: a new row (random `ref`, optional display name, language) unless the phone number
  already belongs to a reporter, who is then reused (one person, one history);
* `channel_identities`: kind `phone`, `address` = `AddressBook.key("phone", e164)` (the keyed HMAC
  lookup hash when a privacy vault is configured, else the number itself), `address_enc` =
  `AddressBook.seal(e164)` (the encrypted number, or NULL without a vault), `last_channel` = the
  channel updates go out on;
* `complaints`: status `draft`, then moved to `submitted` through `workflow.lifecycle.apply(SUBMIT)`
  (audit event + verification deadline), with `origin_channel` = the SMS/WhatsApp adapter that will
  carry status messages, `origin_medium` = how it was received (walk_in, letter, phone, radio,
  email, open311), `origin_identity_id` = the identity above;
* `outbox`: one message to the citizen with the tracking code, on that channel.
Without a phone number (an anonymous letter, an Open311 report without contact) the complaint gets
a reporter and no identity: it is tracked by code only.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import phonenumbers
from sqlalchemy import select
from sqlalchemy.engine import Connection

from conversation.codes import new_code
from gateway.addressbook import AddressBook
from store import models
from workflow.access import Action, Actor
from workflow.lifecycle import Change, MissingInput, apply
from workflow.notify import Recipient, outbox_row
from workflow.settings import WorkflowSettings

OFFLINE_MEDIA = ("walk_in", "letter", "phone", "radio", "email")
RECEIPT = {
    "id": "Aduan Anda sudah kami catat dengan kode {code}. Kabar selanjutnya dikirim ke nomor ini. "
    "Cek kapan saja: balas STATUS {code}.",
    "en": "Your complaint is recorded as {code}. Updates will come to this number. "
    "Check any time: reply STATUS {code}.",
}


@dataclass(frozen=True, slots=True)
class NewComplaint:
    medium: str
    description: str
    channel: str | None
    """The adapter that carries status messages (twilio_sms, whatsapp_cloud, ...); None: no contact."""
    phone: str | None = None
    name: str | None = None
    category: str | None = None
    location_text: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    language: str = "id"
    media: tuple[dict[str, Any], ...] = ()


def e164(phone: str, region: str = "ID") -> str:
    """`0812-3456-7890` -> `+6281234567890`; raises MissingInput for something that is not a number."""
    try:
        parsed = phonenumbers.parse(phone, region)
    except phonenumbers.NumberParseException:
        raise MissingInput(f"{phone!r} is not a phone number") from None
    if not phonenumbers.is_possible_number(parsed):
        raise MissingInput(f"{phone!r} is not a phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _identity(
    conn: Connection, new: NewComplaint, addresses: AddressBook, now: datetime
) -> tuple[int, int | None, str | None]:
    """(reporter id, identity id, E.164 number) for the complaint's citizen."""
    reporters, identities = models.reporters, models.channel_identities
    number = e164(new.phone) if new.phone else None
    if number is not None:
        key = addresses.key("phone", number)
        found = conn.execute(
            select(identities.c.id, identities.c.reporter_id).where(
                identities.c.kind == "phone", identities.c.address == key
            )
        ).one_or_none()
        if found is not None:
            return found.reporter_id, found.id, number
    reporter_id = conn.execute(
        reporters.insert()
        .values(ref=secrets.token_hex(8), display_name=new.name, language=new.language, created_at=now)
        .returning(reporters.c.id)
    ).scalar_one()
    if number is None:
        return reporter_id, None, None
    identity_id = conn.execute(
        identities.insert()
        .values(
            reporter_id=reporter_id,
            kind="phone",
            address=addresses.key("phone", number),
            address_enc=addresses.seal(number),
            last_channel=new.channel,
            unreachable=False,
            created_at=now,
            last_seen_at=now,
        )
        .returning(identities.c.id)
    ).scalar_one()
    return reporter_id, identity_id, number


def record_complaint(
    conn: Connection, new: NewComplaint, actor: Actor, settings: WorkflowSettings, now: datetime
) -> str:
    """File `new` and tell the citizen its code; returns the tracking code (see module docstring)."""
    from gateway.effects import location_key

    description = new.description.strip()
    if not description:
        raise MissingInput("a complaint needs a description")
    if new.category is not None:
        row = conn.execute(
            select(models.categories.c.active).where(models.categories.c.slug == new.category)
        ).one_or_none()
        if row is None or not row.active:
            raise MissingInput(f"unknown category {new.category!r}")
    addresses = AddressBook(settings.vault)
    reporter_id, identity_id, number = _identity(conn, new, addresses, now)
    code = new_code()
    while conn.execute(
        select(models.complaints.c.id).where(models.complaints.c.tracking_code == code)
    ).first():
        code = new_code()
    conn.execute(
        models.complaints.insert().values(
            tracking_code=code,
            reporter_id=reporter_id,
            origin_channel=new.channel if identity_id is not None and new.channel else new.medium,
            origin_medium=new.medium,
            origin_identity_id=identity_id,
            description=description[:4000],
            location_text=new.location_text,
            location_key=location_key(new.location_text),
            latitude=new.latitude,
            longitude=new.longitude,
            media=list(new.media),
            category=new.category,
            status="draft",
            anonymous=False,
            language=new.language,
            created_at=now,
            updated_at=now,
        )
    )
    apply(conn, code, Change(Action.SUBMIT, actor), settings, now)
    complaint_id = conn.execute(
        select(models.complaints.c.id).where(models.complaints.c.tracking_code == code)
    ).scalar_one()
    if number is not None and new.channel:
        recipient = Recipient(new.channel, "phone", number, new.language, reporter_id, None)
        text = RECEIPT.get(new.language, RECEIPT["id"]).format(code=code)
        conn.execute(models.outbox.insert(), [outbox_row(recipient, text, "receipt", complaint_id, now)])
    return code
