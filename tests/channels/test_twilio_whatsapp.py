"""End to end on WhatsApp through Twilio: signed webhooks in, replies out through twilio's client to a
fake Twilio, the photo's MediaUrl behind the account's basic auth, delivery reported on the shared
status callback route."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.app import DISPATCHER, ENGINE, MEDIA_FETCHER
from store.models import Complaint, OutboxMessage
from tests.channels.fake_twilio_whatsapp import FakeTwilioMedia, FakeTwilioWhatsApp
from tests.channels.support import gps_jpeg
from tests.fakes.twilio_webhooks import random_sid, sign, sms_params
from tests.harness import RunningGateway, bound_socket, make_config, start_gateway

CITIZEN = "whatsapp:+6281234567890"
SENDER = "whatsapp:+14155238886"


@pytest.fixture
async def fake() -> AsyncIterator[FakeTwilioWhatsApp]:
    async with FakeTwilioWhatsApp() as server:
        yield server


@pytest.fixture
async def media(fake: FakeTwilioWhatsApp) -> AsyncIterator[FakeTwilioMedia]:
    async with FakeTwilioMedia(fake.account_sid, fake.auth_token) as server:
        yield server


@pytest.fixture
async def gateway(
    fake: FakeTwilioWhatsApp, database_url: str, tmp_path: Path
) -> AsyncIterator[RunningGateway]:
    sock = bound_socket()
    config = make_config(
        database_url,
        sock.getsockname()[1],
        CHANNELS__TWILIO__ACCOUNT_SID=fake.account_sid,
        CHANNELS__TWILIO__AUTH_TOKEN=fake.auth_token,
        CHANNELS__TWILIO__WHATSAPP_FROM=SENDER,
        CHANNELS__TWILIO__API_BASE=fake.base_url,
        MEDIA__DIRECTORY=str(tmp_path / "media"),
    )
    running = await start_gateway(config, sock, background=False)
    try:
        yield running
    finally:
        await running.stop()


async def post(gateway: RunningGateway, fake: FakeTwilioWhatsApp, path: str, form: dict[str, str]) -> int:
    url = gateway.url + path
    response = await gateway.post_form(path, form, {"X-Twilio-Signature": sign(url, form, fake.auth_token)})
    return response.status


async def test_complaint_with_photo_and_location(
    fake: FakeTwilioWhatsApp, media: FakeTwilioMedia, gateway: RunningGateway
) -> None:
    sid = random_sid("MM")
    photo_url = media.add(sid, gps_jpeg(-6.98403, 110.40935))
    first = sms_params(
        CITIZEN, "lampu PJU mati di Jl. Pemuda depan Paragon", sid, To=SENDER,
        media=[(photo_url, "image/jpeg")], ProfileName="Sri Wahyuni", WaId="6281234567890",
    )  # fmt: skip
    assert await post(gateway, fake, "/webhooks/twilio/whatsapp", first) == 200
    await gateway.app[DISPATCHER].drain()
    pin = sms_params(CITIZEN, "", To=SENDER, Latitude="-6.98403", Longitude="110.40935", Label="Paragon Mall")
    assert await post(gateway, fake, "/webhooks/twilio/whatsapp", pin) == 200
    await gateway.app[DISPATCHER].drain()
    yes = sms_params(CITIZEN, "YA", To=SENDER)
    assert await post(gateway, fake, "/webhooks/twilio/whatsapp", yes) == 200
    await gateway.app[DISPATCHER].drain()

    question, confirm, receipt = fake.sent
    assert all(m["to"] == CITIZEN and m["from"] == SENDER for m in fake.sent)
    assert "Kami catat" in question["body"] and "YA" in confirm["body"]
    assert "LPR-" in receipt["body"] and "diterima" in receipt["body"].lower()

    # Twilio reports delivery on the shared status route (served by the SMS adapter).
    url, form, headers = fake.status_callback_request(receipt["sid"], "read")
    path = url.removeprefix(gateway.url)
    assert (await gateway.post_form(path, form, headers)).status == 200

    async with gateway.app[ENGINE].connect() as conn:
        complaint = (await conn.execute(select(Complaint.__table__))).mappings().one()
        rows = (await conn.execute(select(OutboxMessage.__table__))).mappings().all()
    assert complaint["origin_channel"] == "twilio_whatsapp"
    assert (complaint["latitude"], complaint["longitude"]) == (-6.98403, 110.40935)
    assert complaint["media"] == [{"url": photo_url, "content_type": "image/jpeg"}]
    assert {r["channel"] for r in rows} == {"twilio_whatsapp"}
    assert {r["provider_message_id"]: r["status"] for r in rows}[receipt["sid"]] == "read"

    # The MediaUrl is downloaded with the account's credentials and stored as evidence.
    await gateway.app[MEDIA_FETCHER].run_once()
    async with gateway.app[ENGINE].connect() as conn:
        [stored] = (await conn.execute(select(Complaint.__table__.c.media))).scalar_one()
    assert stored["url"].startswith("/media/") and stored["source"] == photo_url
    assert len(media.fetches) == 1


async def test_forged_webhook_is_refused(fake: FakeTwilioWhatsApp, gateway: RunningGateway) -> None:
    form = sms_params(CITIZEN, "palsu", To=SENDER)
    response = await gateway.post_form("/webhooks/twilio/whatsapp", form, {"X-Twilio-Signature": "Zm9yZ2Vk"})
    assert response.status == 403
