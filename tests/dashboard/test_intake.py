"""`record_complaint` on its own: what it writes for a complaint that did not come by chat, and that a
refusal writes nothing."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from dashboard.intake import NewComplaint, e164, record_complaint
from store import models
from store.db import Database
from tests.harness import migrate
from workflow.access import Actor, Forbidden
from workflow.lifecycle import MissingInput
from workflow.privacy import ContactVault
from workflow.settings import WorkflowSettings

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # a Monday, 09:00 in Semarang
ADMIN = Actor("siti", "admin")
VAULT = ContactVault("kunci-uji-intake")
SETTINGS = WorkflowSettings(vault=VAULT)
CALL = NewComplaint(
    medium="phone",
    description="Lampu PJU mati sepanjang gang, gelap sekali",
    channel="twilio_sms",
    phone="0812 3456 7890",
    name="Pak Darto",
    category="lampu_pju",
    location_text="Gg. Melati RT 03 RW 05, Tembalang",
)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    await migrate(database_url)
    database = Database(database_url)
    yield database
    await database.dispose()


async def record(
    db: Database, new: NewComplaint, actor: Actor = ADMIN, settings: WorkflowSettings = SETTINGS
) -> str:
    return await db.run(
        functools.partial(record_complaint, new=new, actor=actor, settings=settings, now=NOW)
    )


def _rows(conn: Connection, table: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(select(table).order_by(table.c.id)).mappings()]


async def rows(db: Database, table: Any) -> list[dict[str, Any]]:
    return await db.run(functools.partial(_rows, table=table))


async def written(db: Database) -> int:
    def count(conn: Connection) -> int:
        tables = (models.complaints, models.reporters, models.channel_identities, models.outbox,
                  models.status_events)
        return sum(int(conn.execute(select(func.count()).select_from(t)).scalar_one()) for t in tables)

    return await db.run(count)


async def test_a_phoned_in_complaint_is_filed_submitted_with_an_encrypted_contact_and_a_receipt(
    db: Database,
) -> None:
    code = await record(db, CALL)
    [complaint] = await rows(db, models.complaints)
    [reporter] = await rows(db, models.reporters)
    [identity] = await rows(db, models.channel_identities)
    [event] = await rows(db, models.status_events)
    [receipt] = await rows(db, models.outbox)
    assert complaint["tracking_code"] == code
    assert complaint["status"] == "submitted" and complaint["category"] == "lampu_pju"
    assert (complaint["origin_medium"], complaint["origin_channel"]) == ("phone", "twilio_sms")
    assert complaint["origin_identity_id"] == identity["id"]
    # 3 working days, to the end of that day in Semarang
    assert complaint["verify_due_at"] == datetime(2026, 11, 26, 16, 59, 59, tzinfo=UTC)
    assert complaint["location_key"] == "gg melati rt 03 rw 05 tembalang"
    assert reporter["display_name"] is None, "the name is only stored encrypted"
    assert VAULT.decrypt(reporter["display_name_enc"]) == "Pak Darto"
    assert complaint["reporter_id"] == reporter["id"]
    assert identity["kind"] == "phone" and identity["last_channel"] == "twilio_sms"
    assert identity["address"] == VAULT.lookup_hash("phone", "+6281234567890")
    assert VAULT.decrypt(identity["address_enc"]) == "+6281234567890"
    assert (event["from_status"], event["to_status"], event["actor"]) == ("draft", "submitted", "siti")
    assert (receipt["channel"], receipt["to_kind"], receipt["to_address"]) == (
        "twilio_sms", "phone", identity["address"]
    ), "the recipient is stored like the identity: its lookup hash ..."
    assert VAULT.decrypt(receipt["to_address_enc"]) == "+6281234567890", "... and encrypted"
    assert receipt["kind"] == "receipt" and code in receipt["text"] and receipt["status"] == "pending"
    assert receipt["complaint_id"] == complaint["id"] and receipt["reporter_id"] == reporter["id"]


async def test_the_same_number_in_another_spelling_is_the_same_reporter(db: Database) -> None:
    unnamed = NewComplaint(medium="walk_in", description="Sampah menumpuk", channel="twilio_sms",
                           phone="+62 812-3456-7890", location_text="Pasar Johar")
    first = await record(db, unnamed)
    second = await record(db, CALL)
    complaints = await rows(db, models.complaints)
    [reporter] = await rows(db, models.reporters)
    [identity] = await rows(db, models.channel_identities)
    assert [c["tracking_code"] for c in complaints] == [first, second] and first != second
    assert {c["reporter_id"] for c in complaints} == {reporter["id"]}
    assert {c["origin_identity_id"] for c in complaints} == {identity["id"]}
    assert VAULT.decrypt(reporter["display_name_enc"]) == "Pak Darto", "a name given later fills in"
    await record(db, NewComplaint(**{**_fields(CALL), "name": "Orang Lain"}))
    [reporter] = await rows(db, models.reporters)
    assert VAULT.decrypt(reporter["display_name_enc"]) == "Pak Darto", "a known name is not overwritten"


async def test_an_anonymous_letter_gets_no_identity_and_no_message(db: Database) -> None:
    letter = NewComplaint(medium="letter", description="Parkir liar tiap malam", channel=None,
                          location_text="Jl. Gajahmada", language="en")
    code = await record(db, letter)
    [complaint] = await rows(db, models.complaints)
    assert complaint["tracking_code"] == code and complaint["status"] == "submitted"
    assert complaint["origin_channel"] == "letter" and complaint["origin_identity_id"] is None
    assert complaint["category"] is None and complaint["language"] == "en"
    assert await rows(db, models.channel_identities) == []
    assert await rows(db, models.outbox) == []


async def test_without_a_vault_the_number_is_stored_as_it_is(db: Database) -> None:
    await record(db, CALL, settings=WorkflowSettings())
    [identity] = await rows(db, models.channel_identities)
    assert (identity["address"], identity["address_enc"]) == ("+6281234567890", None)


async def test_english_speakers_get_the_receipt_in_english(db: Database) -> None:
    code = await record(db, NewComplaint(**{**_fields(CALL), "language": "en"}))
    [receipt] = await rows(db, models.outbox)
    assert receipt["text"].startswith("Your complaint is recorded as " + code)


def _fields(new: NewComplaint) -> dict[str, Any]:
    return {name: getattr(new, name) for name in NewComplaint.__dataclass_fields__}


REFUSALS: list[tuple[dict[str, Any], Actor, type[Exception], str]] = [
    ({}, Actor("budi", "officer", "disperkim"), Forbidden, "may not submit"),
    ({}, Actor("hadi", "head", "disperkim"), Forbidden, "may not submit"),
    ({}, Actor("ani", "auditor"), Forbidden, "may not submit"),
    ({"medium": "pigeon"}, ADMIN, MissingInput, "unknown medium"),
    ({"description": " \x00 "}, ADMIN, MissingInput, "needs a description"),
    # Nothing to read: separators, zero-width and bidi marks, a BOM, a soft hyphen (open311.VISIBLE).
    ({"description": "\x1c\x1d\u200b"}, ADMIN, MissingInput, "needs a description"),
    ({"description": "\ufeff\u200e\u202e\u2066\u00ad\u2060"}, ADMIN, MissingInput, "needs a description"),
    ({"phone": "12345"}, ADMIN, MissingInput, "not a phone number"),
    ({"phone": "bukan nomor"}, ADMIN, MissingInput, "not a phone number"),
    ({"channel": None}, ADMIN, MissingInput, "needs the channel"),
    ({"category": "unicorns"}, ADMIN, MissingInput, "unknown category"),
    ({"language": "jv"}, ADMIN, MissingInput, "language"),
]


async def test_refusals_write_nothing(db: Database) -> None:
    for change, actor, error, message in REFUSALS:
        with pytest.raises(error, match=message):
            await record(db, NewComplaint(**{**_fields(CALL), **change}), actor=actor)
        assert await written(db) == 0, change


async def test_one_character_to_read_among_controls_is_a_description(db: Database) -> None:
    code = await record(db, NewComplaint(**{**_fields(CALL), "description": "\u200b\x1cX\u200e"}))
    [complaint] = await rows(db, models.complaints)
    assert (complaint["tracking_code"], complaint["description"]) == (code, "\u200b\x1cX\u200e")


def test_e164_normalises_like_the_sms_adapters() -> None:
    assert e164("0812-3456-7890") == "+6281234567890"
    assert e164("62 812 3456 7890") == "+6281234567890"
    assert e164("(024) 3584000") == "+62243584000"
    assert e164("+44 20 7946 0958") == "+442079460958"
    with pytest.raises(MissingInput):
        e164("1708")  # the short code citizens text to, not a person
