"""End to end on the WhatsApp Cloud API: a citizen sends a photo with a caption and a location, taps
YA, and gets the confirmation on WhatsApp. Meta is the fake Graph API, which signs and posts webhooks
to the gateway and receives its replies; the gateway's real aiohttp client code talks to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.app import DISPATCHER, ENGINE
from store.models import Complaint, OutboxMessage
from tests.channels.support import gps_jpeg
from tests.fakes.graph import (
    FakeGraphAPI,
    button_reply,
    image_message,
    inbound_payload,
    location_message,
    status,
)
from tests.harness import RunningGateway, bound_socket, make_config, start_gateway

WA_ID = "6281234567890"
VERIFY_TOKEN = "verify-me-please"


@pytest.fixture
async def fake() -> AsyncIterator[FakeGraphAPI]:
    async with FakeGraphAPI() as server:
        yield server


@pytest.fixture
async def gateway(fake: FakeGraphAPI, database_url: str, tmp_path: Path) -> AsyncIterator[RunningGateway]:
    sock = bound_socket()
    config = make_config(
        database_url,
        sock.getsockname()[1],
        CHANNELS__WHATSAPP_CLOUD__PHONE_NUMBER_ID=fake.phone_number_id,
        CHANNELS__WHATSAPP_CLOUD__ACCESS_TOKEN=fake.access_token,
        CHANNELS__WHATSAPP_CLOUD__APP_SECRET=fake.app_secret,
        CHANNELS__WHATSAPP_CLOUD__VERIFY_TOKEN=VERIFY_TOKEN,
        CHANNELS__WHATSAPP_CLOUD__API_BASE=fake.api_base,
        MEDIA__DIRECTORY=str(tmp_path / "media"),
    )
    # The dispatcher is driven by hand (drain) so a status callback can never overtake the outbox
    # recording the wamid it is about.
    running = await start_gateway(config, sock, background=False)
    fake.webhook_url = running.url + "/webhooks/whatsapp"
    try:
        yield running
    finally:
        await running.stop()


async def test_subscription_handshake(gateway: RunningGateway) -> None:
    query = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"}
    async with gateway.session.get(gateway.url + "/webhooks/whatsapp", params=query) as response:
        assert (response.status, await response.text()) == (200, "1158201444")
    async with gateway.session.get(
        gateway.url + "/webhooks/whatsapp", params={**query, "hub.verify_token": "guess"}
    ) as response:
        assert response.status == 403


async def test_complaint_with_photo_and_location(fake: FakeGraphAPI, gateway: RunningGateway) -> None:
    media_id = fake.add_media(gps_jpeg(-6.98403, 110.40935))
    photo = image_message(WA_ID, media_id, caption="lampu PJU mati di Jl. Pemuda depan Paragon")
    assert await fake.push(inbound_payload(fake.phone_number_id, [photo])) == 200
    await gateway.app[DISPATCHER].drain()
    [question] = fake.sent
    assert question["to"] == WA_ID and "Kami catat" in question["interactive"]["body"]["text"]

    pin = location_message(WA_ID, -6.98403, 110.40935, name="Paragon Mall")
    assert await fake.push(inbound_payload(fake.phone_number_id, [pin])) == 200
    await gateway.app[DISPATCHER].drain()
    _, confirm = fake.sent
    assert [b["reply"]["id"] for b in confirm["interactive"]["action"]["buttons"]] == ["YA", "BATAL"]

    tap = button_reply(WA_ID, "YA", "YA", context_id=confirm["id"])
    assert await fake.push(inbound_payload(fake.phone_number_id, [tap])) == 200
    await gateway.app[DISPATCHER].drain()
    *_, receipt = fake.sent
    assert receipt["to"] == WA_ID and receipt["type"] == "text"
    assert "LPR-" in receipt["text"]["body"] and "diterima" in receipt["text"]["body"].lower()

    # Meta reports delivery; the outbox row learns it by the wamid.
    assert (
        await fake.push(
            inbound_payload(fake.phone_number_id, statuses=[status(receipt["id"], "read", WA_ID)])
        )
        == 200
    )
    # A retried webhook (Meta did not see our 200) is acknowledged and not processed twice.
    assert await fake.push(inbound_payload(fake.phone_number_id, [tap])) == 200
    await gateway.app[DISPATCHER].drain()

    async with gateway.app[ENGINE].connect() as conn:
        complaint = (await conn.execute(select(Complaint.__table__))).mappings().one()
        rows = (await conn.execute(select(OutboxMessage.__table__))).mappings().all()
    assert complaint["origin_channel"] == "whatsapp_cloud"
    assert (complaint["latitude"], complaint["longitude"]) == (-6.98403, 110.40935)
    assert complaint["media"][0]["url"] == f"whatsapp-media:{media_id}"
    assert len(rows) == 3 and {r["channel"] for r in rows} == {"whatsapp_cloud"}
    by_id = {r["provider_message_id"]: r for r in rows}
    assert by_id[receipt["id"]]["status"] == "read"


async def test_forged_webhook_is_refused(fake: FakeGraphAPI, gateway: RunningGateway) -> None:
    fake.app_secret = "not-the-app-secret"
    photo = image_message(WA_ID, "123", caption="palsu")
    assert await fake.push(inbound_payload(fake.phone_number_id, [photo])) == 403
    assert fake.sent == []
