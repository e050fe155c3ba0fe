"""Contact data at rest: after a whole flow through the real gateway (WhatsApp with a profile name,
SMS, Telegram, a complaint an officer records from a phone call, status messages back to the
citizens, delivery receipts), a raw dump of every column of every table holds neither a citizen's
phone number, in any spelling, nor a profile name. Yet every reply reached the right number at the
fake provider, receipts still moved the rows, and the audited admin reveal still shows the contact.

What citizens type is theirs and is kept as typed (inbound_messages.text, the description in
complaints and conversations.state): staff and public views redact numbers and names from it
(tests/workflow/test_privacy.py). The citizens here do not type their own contacts, so the dump must
be clean everywhere. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import MetaData, select
from sqlalchemy.engine import Connection

from dashboard.intake import NewComplaint, record_complaint
from gateway.app import ADAPTERS, DISPATCHER, ENGINE, WORKFLOW
from store import models
from tests.channels.fake_twilio_whatsapp import FakeTwilioWhatsApp
from tests.fakes.telegram import FakeTelegramBotAPI, message_update, user
from tests.fakes.twilio_webhooks import sign, sms_params
from tests.harness import ManualClock, RunningGateway, bound_socket, make_config, start_gateway
from workflow.access import Action, Actor
from workflow.views import reveal_identity

KEY = "privacy-at-rest-test-key-not-for-production"
SECRET = "tg-webhook-secret-0123456789"
SITI = "+6281234567890"
SITI_NAME = "Sitinurbaya Rahayuningsih"
DARTO = "+6289876543210"
DARTO_NAME = "Sudartono Wiryokusumo"
TELEGRAM_USER = user(5_123_456_789, first_name="Bambang", last_name="Sutejowibowo")
TELEGRAM_NAME = "Bambang Sutejowibowo"
SENDER = "whatsapp:+14155238886"
SMS_FROM = "+15005550006"
ADMIN = Actor("admin1", "admin")


def spellings(e164: str) -> list[str]:
    """+6281234567890, 6281234567890, 081234567890 and the bare subscriber number 81234567890."""
    national = e164.removeprefix("+62")
    return [e164, e164[1:], "0" + national, national]


FORBIDDEN = [*spellings(SITI), *spellings(DARTO), SITI_NAME, DARTO_NAME, TELEGRAM_NAME, "Sutejowibowo"]


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilioWhatsApp]:
    async with FakeTwilioWhatsApp() as server:
        yield server


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegramBotAPI]:
    async with FakeTelegramBotAPI() as server:
        yield server


@pytest.fixture
async def gateway(
    twilio: FakeTwilioWhatsApp, telegram: FakeTelegramBotAPI, database_url: str, tmp_path: Path
) -> AsyncIterator[RunningGateway]:
    sock = bound_socket()
    config = make_config(
        database_url,
        sock.getsockname()[1],
        PRIVACY__KEY=KEY,
        PRIVACY__KEY_FILE=str(tmp_path / "never-created.key"),
        CHANNELS__TWILIO__ACCOUNT_SID=twilio.account_sid,
        CHANNELS__TWILIO__AUTH_TOKEN=twilio.auth_token,
        CHANNELS__TWILIO__SMS_FROM=SMS_FROM,
        CHANNELS__TWILIO__WHATSAPP_FROM=SENDER,
        CHANNELS__TWILIO__API_BASE=twilio.base_url,
        CHANNELS__TELEGRAM__BOT_TOKEN=telegram.token,
        CHANNELS__TELEGRAM__SECRET_TOKEN=SECRET,
        CHANNELS__TELEGRAM__API_BASE=telegram.api_base,
        MEDIA__DIRECTORY=str(tmp_path / "media"),
        DASHBOARD__ENABLED="false",
    )
    running = await start_gateway(config, sock, clock=ManualClock(), background=False)
    try:
        yield running
    finally:
        await running.stop()


async def twilio_in(gateway: RunningGateway, twilio: FakeTwilioWhatsApp, path: str, **form: str) -> None:
    params = sms_params(AccountSid=twilio.account_sid, **form)
    signature = sign(gateway.url + path, params, twilio.auth_token)
    assert (await gateway.post_form(path, params, {"X-Twilio-Signature": signature})).status == 200
    await gateway.app[DISPATCHER].drain()


def dump(conn: Connection) -> dict[str, list[str]]:
    """Every value of every column of every table, as the database returns it, per table.column."""
    schema = MetaData()
    schema.reflect(conn)
    found: dict[str, list[str]] = {}
    for table in schema.sorted_tables:
        if table.name == models.SEARCH_OBJECTS:
            continue  # SQLite's FTS5 table cannot be scanned; its shadow tables hold what it keeps
        for row in conn.execute(select(table)).mappings():
            for column, value in row.items():
                if value is not None:
                    text = value if isinstance(value, str) else json.dumps(value, default=str)
                    found.setdefault(f"{table.name}.{column}", []).append(text)
    return found


async def test_no_contact_or_profile_name_at_rest_yet_replies_receipts_and_reveal_work(
    gateway: RunningGateway,
    twilio: FakeTwilioWhatsApp,
    telegram: FakeTelegramBotAPI,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    app = gateway.app
    # Siti on WhatsApp (Twilio sends her profile name), then the same number by SMS.
    whatsapp = {"From": "whatsapp:" + SITI, "To": SENDER, "ProfileName": SITI_NAME, "WaId": SITI[1:]}
    for body in ("LaporHendi lampu jalan mati", "di Jl. Pemuda depan Paragon", "LEWATI", "ya"):
        await twilio_in(gateway, twilio, "/webhooks/twilio/whatsapp", Body=body, **whatsapp)
    for body in ("LaporHendi sampah menumpuk", "di gang 5 Jl. Majapahit", "ya"):
        await twilio_in(gateway, twilio, "/webhooks/twilio/sms", From=SITI, To=SMS_FROM, Body=body)
    # Bambang on Telegram, with his name on his profile.
    await app[ADAPTERS]["telegram"].set_webhook(gateway.url + "/webhooks/telegram")  # type: ignore[attr-defined]
    for message_id, text in ((41, "jalan berlubang di Jl. Pandanaran"), (42, "YA")):
        update = message_update(telegram.next_update_id(), message_id, TELEGRAM_USER, text=text)
        assert (await telegram.push_update(update))[0] == 200
        await app[DISPATCHER].drain()
    # Pak Darto phoned the call centre; the officer records it with his number as he said it.
    db, settings, now = app[WORKFLOW].db, app[WORKFLOW].settings, app[WORKFLOW].clock
    call = NewComplaint(
        medium="phone", channel="twilio_sms", phone="0898-7654-3210", name=DARTO_NAME,
        description="Lampu PJU mati di Gg. Melati", location_text="Gg. Melati RT 03 Tembalang",
    )  # fmt: skip
    darto_code = await db.run(
        functools.partial(record_complaint, new=call, actor=ADMIN, settings=settings, now=now())
    )
    await app[DISPATCHER].drain()

    async with app[ENGINE].connect() as conn:
        codes = list((await conn.execute(select(models.complaints.c.tracking_code))).scalars())
    assert len(codes) == 4 and darto_code in codes
    # Status changes reach each citizen on the channel the complaint came in on.
    before = len(twilio.sent)
    for code in codes:
        await app[WORKFLOW].transition(code, Action.VERIFY, ADMIN)
    await app[DISPATCHER].drain()
    status_messages = twilio.sent[before:]
    assert sorted(m["to"] for m in status_messages) == sorted(["whatsapp:" + SITI, SITI, DARTO])
    telegram_messages = await telegram.wait_for("sendMessage", 3)
    assert {m["params"]["chat_id"] for m in telegram_messages} == {str(TELEGRAM_USER["id"])}
    assert all(m["to"] in ("whatsapp:" + SITI, SITI, DARTO) for m in twilio.sent), "only to the right number"
    assert {m["to"] for m in twilio.sent} == {"whatsapp:" + SITI, SITI, DARTO}

    # A delivery receipt, matched by the provider's message id alone, still moves its row.
    last = status_messages[-1]
    url, form, headers = twilio.status_callback_request(last["sid"], "delivered")
    assert (await gateway.post_form(url.removeprefix(gateway.url), form, headers)).status == 200
    async with app[ENGINE].connect() as conn:
        status = await conn.execute(
            select(models.outbox.c.status).where(models.outbox.c.provider_message_id == last["sid"])
        )
        assert status.scalar_one() == "delivered"

    # The city admin, with a reason, still sees who it was (and the reveal is audited).
    vault = settings.vault
    assert vault is not None, "the key from the environment"
    reveals = {}
    for code in codes:
        reveals[code] = await db.run(
            functools.partial(
                reveal_identity,
                code=code,
                actor=ADMIN,
                reason="menelepon balik warga",
                vault=vault,
                now=now(),
            )
        )
    assert reveals[darto_code].address == DARTO and reveals[darto_code].name == DARTO_NAME
    others = [reveals[code] for code in codes if code != darto_code]
    assert {(r.kind, r.address, r.name) for r in others} <= {
        ("phone", SITI, SITI_NAME),
        ("telegram", str(TELEGRAM_USER["id"]), TELEGRAM_NAME),
    }
    assert len({r.address for r in others}) == 2

    # The raw database: nowhere a number or a name.
    async with app[ENGINE].connect() as conn:
        stored = await conn.run_sync(dump)
    assert "outbox.to_address_enc" in stored and "reporters.display_name_enc" in stored
    leaks = {
        (column, secret) for column, values in stored.items() for value in values for secret in FORBIDDEN
        if secret in value
    }  # fmt: skip
    assert leaks == set()
    logged = caplog.text
    assert [secret for secret in FORBIDDEN if secret in logged] == []
