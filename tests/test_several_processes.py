"""Several gateways on one database: every reporter's turns, spread over both, build one correct
complaint in order, and every reply goes out exactly once.

On PostgreSQL both gateways also run their dispatchers, so outbox claims race for real. On SQLite the
supported shape is web processes plus one process that sends (`[worker] enabled = false` on the rest),
so only the first gateway sends there.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from store import models
from store.db import is_sqlite, make_engine
from tests.fakes.twilio import FakeTwilio
from tests.harness import RunningGateway, sms_in, start_twilio_gateway

SMS_PATH = "/webhooks/twilio/sms"
REPORTERS = 12


@pytest.fixture
async def pair(database_url: str, fake_twilio: FakeTwilio) -> AsyncIterator[list[RunningGateway]]:
    both_send = not is_sqlite(database_url)
    gateways = []
    for index in range(2):
        sends = "true" if index == 0 or both_send else "false"
        gateways.append(
            await start_twilio_gateway(
                database_url, fake_twilio, DASHBOARD__ENABLED="false", WORKER__ENABLED=sends
            )
        )
    yield gateways
    for gateway in gateways:
        if not gateway.session.closed:
            await gateway.stop()


async def test_turns_spread_over_two_gateways_make_one_complaint_each(
    pair: list[RunningGateway], fake_twilio: FakeTwilio, database_url: str
) -> None:
    senders = [f"+62812000{index:05d}" for index in range(REPORTERS)]

    async def citizen(index: int, sender: str) -> None:
        turns = ["LaporHendi lampu jalan mati", f"di Jl. Pemuda nomor {100 + index}", "ya"]
        for turn, body in enumerate(turns):
            # Alternate gateways, starting on a different one per citizen: each turn is
            # acknowledged before the next is written, as a phone does.
            await sms_in(pair[(index + turn) % 2], fake_twilio, sender, body)

    await asyncio.gather(*(citizen(i, s) for i, s in enumerate(senders)))
    await fake_twilio.wait_for_messages(3 * REPORTERS, timeout=30)
    # A graceful stop records every outcome still in flight: then the database is the whole truth.
    engine = make_engine(database_url)
    for gateway in pair:
        await gateway.stop()

    async with engine.connect() as conn:
        complaints = (
            await conn.execute(
                select(models.complaints.c.tracking_code, models.complaints.c.location_text).where(
                    models.complaints.c.status == "submitted"
                )
            )
        ).all()
        sent_rows = (await conn.execute(select(models.outbox.c.status))).scalars().all()
    await engine.dispose()
    assert len(complaints) == REPORTERS
    places = sorted(str(location) for _, location in complaints)
    assert places == sorted(f"Jl. Pemuda nomor {100 + i}" for i in range(REPORTERS)), places
    assert set(sent_rows) == {"sent"} and len(sent_rows) == 3 * REPORTERS

    codes = {code for code, _ in complaints}
    for sender in senders:
        replies = [m["body"] for m in fake_twilio.messages_to(sender)]
        assert len(replies) == 3, (sender, replies)  # each reply exactly once
        assert any("lokasi" in r.lower() for r in replies), replies
        assert any("YA" in r for r in replies), replies
        assert sum(any(code in r for code in codes) for r in replies) == 1, replies
