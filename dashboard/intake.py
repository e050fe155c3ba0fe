"""Complaints that did not arrive on a chat channel: walk-in, letter, phone call, radio, e-mail, and
Open311 clients. They become ordinary complaints so the whole workflow (deadlines, escalation, status
messages) applies to them.

What `record_complaint` writes, in the caller's transaction:
* `reporters`: a new row (random `ref`, optional display name, language) unless the phone number
  already belongs to a reporter, who is then reused (one person, one history; a name given now fills
  in one the reporter did not have). The name is reporter identity: staff screens show a pseudonym
  and strip the name from free text, only an audited reveal shows it (workflow/views.py);
* `channel_identities`: kind `phone`, `address` = `AddressBook.key("phone", e164)` (the keyed HMAC
  lookup hash when a privacy vault is configured, else the number itself), `address_enc` =
  `AddressBook.seal(e164)` (the encrypted number, or NULL without a vault), `last_channel` = the
  channel updates go out on;
* `complaints`: status `draft`, then moved to `submitted` through `workflow.lifecycle.apply(SUBMIT)`
  (audit event + verification deadline), with `origin_channel` = the SMS/WhatsApp adapter that will
  carry status messages, `origin_medium` = how it was received (walk_in, letter, phone, radio,
  email, open311), `origin_identity_id` = the identity above;
* `outbox`: one message to the citizen with the tracking code, on that channel, its recipient
  stored like the identity (`to_address` the lookup hash, `to_address_enc` the encrypted number).
  The name goes to `display_name_enc` (encrypted) when a vault is configured, else `display_name`.
Without a phone number (an anonymous letter, an Open311 report without contact) the complaint gets
a reporter and no identity: it is tracked by code only.

Nothing is written unless the actor may SUBMIT (city admins and the system), the medium is known,
the description is there and the number is a real one: every refusal is a `MissingInput` or
`Forbidden` raised before the first INSERT, so the caller's transaction is never half-done.
Numbers are normalised exactly as the SMS/WhatsApp adapters normalise a sender (E.164 via
`adapters.addresses.normalize_phone`), so a citizen who later texts in is the same reporter.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from adapters.addresses import normalize_phone
from adapters.base import AddressKind
from conversation.codes import new_code
from gateway.addressbook import AddressBook
from store import models
from workflow.access import Action, Actor, require
from workflow.lifecycle import Change, MissingInput, apply
from workflow.notify import Recipient, outbox_row
from workflow.settings import WorkflowSettings

OFFLINE_MEDIA = ("walk_in", "letter", "phone", "radio", "email")
MEDIA = (*OFFLINE_MEDIA, "open311")
LANGUAGES = ("id", "en")
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
    region: str = "ID"
    """Where a number written without +country belongs (`[intake] default_region`)."""


def e164(phone: str, region: str = "ID") -> str:
    """`0812-3456-7890` -> `+6281234567890`; raises MissingInput for something that is not a number
    (a short code, letters, too few digits, a number no operator can have)."""
    try:
        address = normalize_phone(phone.replace("\x00", "")[:64], region)
    except ValueError:
        raise MissingInput("a phone number is empty") from None
    if address.kind != AddressKind.PHONE:
        raise MissingInput(f"{phone[:64]!r} is not a phone number")
    return address.value


def _clean(text: str | None, limit: int) -> str | None:
    """Stripped, NUL-free (PostgreSQL text cannot hold NUL), cut to `limit`; None when empty."""
    if text is None:
        return None
    return text.replace("\x00", "").strip()[:limit] or None


def readable(text: str | None) -> bool:
    """Whether `text` has a character someone can read: not only whitespace, control or format
    characters (U+001C, zero-width spaces, bidi marks...), which say nothing. The rule of the
    Open311 POST (dashboard.open311.VISIBLE), for every way a complaint is recorded."""
    from dashboard.open311 import VISIBLE  # here: dashboard.open311 imports this module

    return text is not None and re.search(VISIBLE, text) is not None


def _identity(
    conn: Connection, new: NewComplaint, addresses: AddressBook, now: datetime
) -> tuple[int, int | None, str | None]:
    """(reporter id, identity id, E.164 number) for the complaint's citizen."""
    reporters, identities = models.reporters, models.channel_identities
    number = e164(new.phone, new.region) if new.phone else None
    name = _clean(new.name, 200)
    if number is not None:
        key = addresses.key("phone", number)
        found = conn.execute(
            select(identities.c.id, identities.c.reporter_id).where(
                identities.c.kind == "phone", identities.c.address == key
            )
        ).one_or_none()
        if found is not None:
            if name is not None:
                conn.execute(
                    update(reporters)
                    .where(
                        reporters.c.id == found.reporter_id,
                        reporters.c.display_name.is_(None),
                        reporters.c.display_name_enc.is_(None),
                    )
                    .values(**addresses.name_columns(name))
                )
            return found.reporter_id, found.id, number
    reporter_id = conn.execute(
        reporters.insert()
        .values(
            ref=secrets.token_hex(8), **addresses.name_columns(name), language=new.language, created_at=now
        )
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

    require(actor, Action.SUBMIT)
    if new.medium not in MEDIA:
        raise MissingInput(f"unknown medium {new.medium!r}: one of {', '.join(MEDIA)}")
    if new.language not in LANGUAGES:
        raise MissingInput(f"language must be one of {', '.join(LANGUAGES)}")
    description = _clean(new.description, 4000)
    if description is None or not readable(description):
        raise MissingInput("a complaint needs a description: something to read, not only spaces or controls")
    location_text = _clean(new.location_text, 500)
    if new.phone and not new.channel:
        raise MissingInput("a phone number needs the channel its status messages go out on")
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
            description=description,
            location_text=location_text,
            location_key=location_key(location_text),
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
        receipt = outbox_row(recipient, text, "receipt", complaint_id, now, settings.vault)
        conn.execute(models.outbox.insert(), [receipt])
    return code
