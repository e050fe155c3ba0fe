"""End to end on Telegram: a citizen files a complaint with a photo and a location and gets the
confirmation in the same chat. The real gateway runs on loopback; Telegram is the fake Bot API, which
the gateway's real `telegram.Bot` talks to and which pushes updates to the webhook it was given."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from gateway.addressbook import AddressBook
from gateway.app import ADAPTERS, DISPATCHER, ENGINE, MEDIA_FETCHER, WORKFLOW
from gateway.cli import main as lapor
from store.models import ChannelIdentity, Complaint, OutboxMessage
from tests.channels.support import gps_jpeg
from tests.fakes.telegram import FakeTelegramBotAPI, callback_update, message_update, photo_sizes, user
from tests.harness import RunningGateway, bound_socket, make_config, start_gateway

SECRET = "tg-webhook-secret-0123456789"
CITIZEN = user(5_123_456_789)
PHOTO = gps_jpeg(-6.98403, 110.40935)


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegramBotAPI]:
    async with FakeTelegramBotAPI() as server:
        yield server


@pytest.fixture
async def gateway(
    fake: FakeTelegramBotAPI, database_url: str, tmp_path: Path
) -> AsyncIterator[RunningGateway]:
    sock = bound_socket()
    config = make_config(
        database_url,
        sock.getsockname()[1],
        CHANNELS__TELEGRAM__BOT_TOKEN=fake.token,
        CHANNELS__TELEGRAM__SECRET_TOKEN=SECRET,
        CHANNELS__TELEGRAM__API_BASE=fake.api_base,
        MEDIA__DIRECTORY=str(tmp_path / "media"),
    )
    running = await start_gateway(config, sock)
    try:
        yield running
    finally:
        await running.stop()


async def test_complaint_with_photo_and_location(fake: FakeTelegramBotAPI, gateway: RunningGateway) -> None:
    telegram: Any = gateway.app[ADAPTERS]["telegram"]
    await telegram.set_webhook(gateway.url + "/webhooks/telegram")
    assert fake.webhook["secret_token"] == SECRET

    file_id = fake.add_file(PHOTO, "photos/file_12.jpg")
    status, _ = await fake.push_update(
        message_update(
            fake.next_update_id(), 41, CITIZEN, photo=photo_sizes(file_id),
            caption="lampu PJU mati di Jl. Pemuda depan Paragon",
        )
    )  # fmt: skip
    assert status == 200
    [question] = await fake.wait_for("sendMessage", 1)
    assert question["params"]["chat_id"] == str(CITIZEN["id"])
    assert "Kami catat" in question["params"]["text"]

    status, _ = await fake.push_update(
        message_update(
            fake.next_update_id(), 42, CITIZEN, location={"latitude": -6.98403, "longitude": 110.40935}
        )
    )
    assert status == 200
    _, confirm = await fake.wait_for("sendMessage", 2)
    keyboard = confirm["params"]["reply_markup"]["inline_keyboard"]
    assert [b["callback_data"] for b in keyboard[0]] == ["YA", "BATAL"]

    # The citizen taps YA: Telegram gets its spinner stopped in the webhook response.
    status, body = await fake.push_update(
        callback_update(fake.next_update_id(), "YA", confirm["message"]["message_id"], CITIZEN)
    )
    assert status == 200 and isinstance(body, dict) and body["method"] == "answerCallbackQuery"
    *_, receipt = await fake.wait_for("sendMessage", 3)
    text = receipt["params"]["text"]
    assert receipt["params"]["chat_id"] == str(CITIZEN["id"])
    assert "LPR-" in text and ("diterima" in text.lower())

    async with gateway.app[ENGINE].connect() as conn:
        complaint = (await conn.execute(select(Complaint.__table__))).mappings().one()
        outbox = (await conn.execute(select(OutboxMessage.__table__))).mappings().all()
    assert complaint["origin_channel"] == "telegram"
    assert (complaint["latitude"], complaint["longitude"]) == (-6.98403, 110.40935)
    assert len(complaint["media"]) == 1
    assert {row["channel"] for row in outbox} == {"telegram"}
    assert all(row["provider_message_id"] for row in outbox if row["status"] == "sent")
    assert complaint["media"][0]["url"] == f"telegram-file:{file_id}" or complaint["media"][0][
        "url"
    ].startswith("/media/")

    # The photo is fetched through getFile (in the background; run_once waits for / finishes that
    # pass) and stored without its EXIF.
    await gateway.app[MEDIA_FETCHER].run_once()
    async with gateway.app[ENGINE].connect() as conn:
        [stored] = (await conn.execute(select(Complaint.__table__.c.media))).scalar_one()
    assert stored["url"].startswith("/media/") and stored["source"] == f"telegram-file:{file_id}"
    assert stored["content_type"] == "image/jpeg" and "gps" in stored
    assert fake.downloads == ["photos/file_12.jpg"]


async def test_retried_update_is_processed_once(fake: FakeTelegramBotAPI, gateway: RunningGateway) -> None:
    telegram: Any = gateway.app[ADAPTERS]["telegram"]
    await telegram.set_webhook(gateway.url + "/webhooks/telegram")
    update = message_update(fake.next_update_id(), 77, CITIZEN, text="sampah menumpuk di Jl. Pandanaran")
    assert (await fake.push_update(update))[0] == 200
    assert (await fake.push_update(update))[0] == 200  # Telegram did not see our first 200
    await fake.wait_for("sendMessage", 1)
    async with gateway.app[ENGINE].connect() as conn:
        count = len((await conn.execute(select(OutboxMessage.__table__))).all())
    assert count == 1


async def test_forged_update_is_refused(fake: FakeTelegramBotAPI, gateway: RunningGateway) -> None:
    telegram: Any = gateway.app[ADAPTERS]["telegram"]
    await telegram.set_webhook(gateway.url + "/webhooks/telegram")
    fake.webhook["secret_token"] = "guessed"
    status, body = await fake.push_update(message_update(fake.next_update_id(), 5, CITIZEN, text="halo"))
    assert status == 403 and isinstance(body, dict) and SECRET not in str(body)


async def test_blocked_bot_fails_the_send_for_good(
    fake: FakeTelegramBotAPI, database_url: str, tmp_path: Path
) -> None:
    """403 Forbidden is not retried. The dispatcher is driven by hand here (background=False), so the
    outcome is read right after the one send attempt instead of waited for."""
    sock = bound_socket()
    config = make_config(
        database_url,
        sock.getsockname()[1],
        CHANNELS__TELEGRAM__BOT_TOKEN=fake.token,
        CHANNELS__TELEGRAM__SECRET_TOKEN=SECRET,
        CHANNELS__TELEGRAM__API_BASE=fake.api_base,
        MEDIA__DIRECTORY=str(tmp_path / "media"),
    )
    gateway = await start_gateway(config, sock, background=False)
    try:
        telegram: Any = gateway.app[ADAPTERS]["telegram"]
        await telegram.set_webhook(gateway.url + "/webhooks/telegram")
        fake.block()
        update = message_update(fake.next_update_id(), 9, CITIZEN, text="jalan rusak di Jl. Kaligawe")
        assert (await fake.push_update(update))[0] == 200
        await gateway.app[DISPATCHER].drain()
        await gateway.app[DISPATCHER].drain()  # nothing is due again: no retry was scheduled
        async with gateway.app[ENGINE].connect() as conn:
            row = (await conn.execute(select(OutboxMessage.__table__))).mappings().one()
            identity = (await conn.execute(select(ChannelIdentity.__table__))).mappings().one()
        book = AddressBook(gateway.app[WORKFLOW].settings.vault)
    finally:
        await gateway.stop()
    assert (row["status"], row["error_code"], row["attempts"]) == ("failed", "403", 1)
    assert identity["kind"] == "telegram" and identity["address"] != str(CITIZEN["id"]), (
        "stored as a keyed hash"
    )
    assert book.open(identity["address"], identity["address_enc"]) == str(CITIZEN["id"])
    assert [m for m, _ in fake.calls].count("sendMessage") == 1


async def test_lapor_telegram_set_webhook_cli(
    fake: FakeTelegramBotAPI, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LAPOR_CHANNELS__TELEGRAM__BOT_TOKEN", fake.token)
    monkeypatch.setenv("LAPOR_CHANNELS__TELEGRAM__SECRET_TOKEN", SECRET)
    monkeypatch.setenv("LAPOR_CHANNELS__TELEGRAM__API_BASE", fake.api_base)
    monkeypatch.setenv("LAPOR_SERVER__PUBLIC_URL", "https://lapor.semarangkota.go.id")
    monkeypatch.setenv("LAPOR_DATABASE__URL", f"sqlite+aiosqlite:///{tmp_path}/unused.db")
    code = await asyncio.to_thread(lapor, ["telegram", "set-webhook", "--drop-pending-updates"])
    assert code == 0
    assert fake.webhook["url"] == "https://lapor.semarangkota.go.id/webhooks/telegram"
    assert fake.webhook["secret_token"] == SECRET and fake.webhook["drop_pending_updates"] is True


async def test_blocked_bot_reroutes_to_the_phone_the_citizen_shared(
    fake: FakeTelegramBotAPI, database_url: str, tmp_path: Path
) -> None:
    """After "Share my phone number", a blocked bot does not silence us: the message goes by SMS, the
    Telegram identity is marked unreachable, and later messages skip Telegram without trying."""
    from tests.fakes.twilio import FakeTwilio

    async with FakeTwilio() as twilio:
        sock = bound_socket()
        config = make_config(
            database_url,
            sock.getsockname()[1],
            CHANNELS__TELEGRAM__BOT_TOKEN=fake.token,
            CHANNELS__TELEGRAM__SECRET_TOKEN=SECRET,
            CHANNELS__TELEGRAM__API_BASE=fake.api_base,
            CHANNELS__TWILIO__ACCOUNT_SID=twilio.account_sid,
            CHANNELS__TWILIO__AUTH_TOKEN=twilio.auth_token,
            CHANNELS__TWILIO__SMS_FROM="+15005550006",
            CHANNELS__TWILIO__API_BASE=twilio.base_url,
            MEDIA__DIRECTORY=str(tmp_path / "media"),
        )
        gateway = await start_gateway(config, sock, background=False)
        try:
            telegram: Any = gateway.app[ADAPTERS]["telegram"]
            await telegram.set_webhook(gateway.url + "/webhooks/telegram")
            own_number = {"phone_number": "+6281234567890", "first_name": "Sri", "user_id": CITIZEN["id"]}
            update = message_update(fake.next_update_id(), 20, CITIZEN, contact=own_number)
            assert (await fake.push_update(update))[0] == 200
            await gateway.app[DISPATCHER].drain()
            fake.block()
            update = message_update(fake.next_update_id(), 21, CITIZEN, text="jalan rusak di Jl. Kaligawe")
            assert (await fake.push_update(update))[0] == 200
            await gateway.app[DISPATCHER].drain()
            await gateway.app[DISPATCHER].drain()
            sms = await twilio.wait_for_messages(1)
            assert sms[0]["to"] == "+6281234567890" and "Kaligawe" in sms[0]["body"]

            update = message_update(fake.next_update_id(), 22, CITIZEN, text="YA")
            assert (await fake.push_update(update))[0] == 200
            await gateway.app[DISPATCHER].drain()
            await gateway.app[DISPATCHER].drain()
            await twilio.wait_for_messages(2)
            async with gateway.app[ENGINE].connect() as conn:
                identities = (await conn.execute(select(ChannelIdentity.__table__))).mappings().all()
        finally:
            await gateway.stop()
    telegram_identity = next(i for i in identities if i["kind"] == "telegram")
    assert telegram_identity["unreachable"] is True
    assert [m for m, _ in fake.calls].count("sendMessage") == 2, "contact thanks, then the one blocked try"
    assert "LPR-" in twilio.sent[1]["body"], "the confirmation with the code reached the phone"
