"""End to end on the 1708 short code through a Kannel-style carrier gateway: the citizen texts in the
old `LaporHendi <aduan>` format, confirms with YA, gets the tracking code by SMS within the segment
budget, and the SMSC's delivery report reaches the outbox row."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from adapters.sms.segments import segment_count
from gateway.app import DISPATCHER, ENGINE
from store.models import Complaint, OutboxMessage
from tests.fakes.kannel import FakeKannel
from tests.harness import RunningGateway, bound_socket, make_config, start_gateway

TOKEN = "kannel-token-0123456789"
CITIZEN = "6281234567890"


@pytest.fixture
async def fake() -> AsyncIterator[FakeKannel]:
    async with FakeKannel() as server:
        yield server


@pytest.fixture
async def gateway(fake: FakeKannel, database_url: str, tmp_path: Path) -> AsyncIterator[RunningGateway]:
    sock = bound_socket()
    config = make_config(
        database_url,
        sock.getsockname()[1],
        CHANNELS__KANNEL__SENDSMS_URL=fake.sendsms_url,
        CHANNELS__KANNEL__USERNAME=fake.username,
        CHANNELS__KANNEL__PASSWORD=fake.password,
        CHANNELS__KANNEL__INBOUND_TOKEN=TOKEN,
        MEDIA__DIRECTORY=str(tmp_path / "media"),
    )
    running = await start_gateway(config, sock, background=False)
    try:
        yield running
    finally:
        await running.stop()


async def test_short_code_complaint_with_delivery_report(fake: FakeKannel, gateway: RunningGateway) -> None:
    get_url = gateway.url + f"/webhooks/kannel?token={TOKEN}&from=%p&to=%P&text=%a&id=%I&ts=%T&smsc=%i"
    dispatcher = gateway.app[DISPATCHER]
    assert (
        await fake.mo(get_url, CITIZEN, "LaporHendi lampu PJU mati di Jl. Pemuda depan Paragon", I="mo-1")
        == 200
    )
    await dispatcher.drain()
    assert await fake.mo(get_url, CITIZEN, "YA", I="mo-2") == 200
    await dispatcher.drain()
    assert await fake.mo(get_url, CITIZEN, "YA", I="mo-2") == 200  # Kannel retried: processed once
    await dispatcher.drain()

    confirm, receipt = fake.sent
    assert confirm["to"] == "+" + CITIZEN and confirm["from"] == "1708"
    assert "Kami catat" in confirm["text"] and "LPR-" in receipt["text"]
    assert all(segment_count(m["text"]) <= 2 for m in fake.sent)

    assert await fake.deliver_report(receipt, 8) == 200
    assert await fake.deliver_report(receipt, 1) == 200
    async with gateway.app[ENGINE].connect() as conn:
        complaint = (await conn.execute(select(Complaint.__table__))).mappings().one()
        rows = (
            (await conn.execute(select(OutboxMessage.__table__).order_by(OutboxMessage.id))).mappings().all()
        )
    assert complaint["origin_channel"] == "kannel" and "Pemuda" in (complaint["location_text"] or "")
    assert [r["status"] for r in rows] == ["sent", "delivered"]


async def test_wrong_token_is_refused(fake: FakeKannel, gateway: RunningGateway) -> None:
    get_url = gateway.url + "/webhooks/kannel?token=guess&from=%p&to=%P&text=%a"
    assert await fake.mo(get_url, CITIZEN, "LaporHendi palsu") == 403
