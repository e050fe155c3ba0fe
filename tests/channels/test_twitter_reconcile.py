"""A send to X left in doubt by a dead dispatcher is reconciled with X, never posted twice.

The real gateway runs in-process (background off, a ManualClock); the fake X API stalls the gateway's
DM or reply request, either after recording it (X has it, the sender never heard back) or before (it
never reached X). The dispatcher's drain is then cancelled mid-request, which leaves the outbox row as
a killed process leaves it: `sending`, `send_started_at` set, under a lease. A second gateway on the
same database, once the lease has run out, must ask X (`find_sent`) and either record what X has,
without a second post, or send it exactly once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from adapters.twitter.adapter import TwitterAdapter
from adapters.twitter.poller import TwitterPoller
from gateway.app import ADAPTERS, CLOCK, DISPATCHER, ENGINE, INGESTOR
from gateway.outbox import Dispatcher
from store.models import OutboxMessage
from tests.fakes.x_api import FakeXAPI
from tests.harness import ManualClock, RunningGateway, bound_socket, make_config, start_gateway

CITIZEN = "1234567890123"
COMPLAINT = "#LaporHendi Lampu PJU mati di Jl. Pemuda depan Balai Kota, sudah 3 malam gelap."
LEASE_SECONDS = 60


@pytest.fixture
async def fake() -> AsyncIterator[FakeXAPI]:
    async with FakeXAPI() as server:
        server.add_user(CITIZEN, "warga_smg", "Warga Semarang")
        yield server


async def start(
    fake: FakeXAPI, database_url: str, tmp_path: Path, clock: ManualClock, reply_mode: str
) -> RunningGateway:
    sock = bound_socket()
    config = make_config(
        database_url,
        sock.getsockname()[1],
        MEDIA__DIRECTORY=str(tmp_path / "media"),
        OUTBOX__LEASE_SECONDS=str(LEASE_SECONDS),
        **fake.settings(poll_seconds="0", reply_mode=reply_mode),
    )
    return await start_gateway(config, sock, background=False, clock=clock)


async def outbox(gateway: RunningGateway) -> list[dict[str, Any]]:
    async with gateway.app[ENGINE].connect() as conn:
        return [dict(r) for r in (await conn.execute(select(OutboxMessage.__table__))).mappings().all()]


async def die(draining: asyncio.Task[None]) -> None:
    """What kill -9 does to a dispatcher, in-process: its claim loop and every send it has in flight
    stop where they are, with no outcome recorded."""
    deliveries = [
        task
        for task in asyncio.all_tasks()
        if getattr(task.get_coro(), "cr_code", None) is Dispatcher._deliver.__code__
    ]
    assert deliveries, "the stalled send is a dispatcher delivery"
    for task in [draining, *deliveries]:
        task.cancel()
    await asyncio.gather(draining, *deliveries, return_exceptions=True)


def posts(fake: FakeXAPI, medium: str) -> list[dict[str, Any]]:
    return fake.dms if medium == "dm" else fake.posted


@pytest.mark.parametrize("reached_x", [True, False], ids=["reached_x", "never_reached_x"])
@pytest.mark.parametrize("medium", ["dm", "reply"])
async def test_a_send_in_doubt_is_reconciled_or_sent_once(
    medium: str, reached_x: bool, fake: FakeXAPI, database_url: str, tmp_path: Path
) -> None:
    clock = ManualClock()
    fake.clock = clock
    first = await start(fake, database_url, tmp_path, clock, reply_mode=medium)
    try:
        adapter = first.app[ADAPTERS]["twitter"]
        assert isinstance(adapter, TwitterAdapter)
        poller = TwitterPoller(adapter, first.app[ENGINE], first.app[INGESTOR].ingest, clock=first.app[CLOCK])
        fake.add_tweet(CITIZEN, COMPLAINT)
        assert (await poller.poll_once()).ingested == 1

        # The first dispatcher sends the question and dies waiting for X's answer.
        fake.stall_next("POST /2/dm" if medium == "dm" else "POST /2/tweets", after_recording=reached_x)
        draining = asyncio.create_task(first.app[DISPATCHER].drain())
        await fake.wait_for_stall()
        await die(draining)
        [row] = await outbox(first)
        assert row["status"] == "sending" and row["send_started_at"] is not None
        assert len(posts(fake, medium)) == (1 if reached_x else 0)
    finally:
        await first.stop()

    clock.advance(seconds=LEASE_SECONDS + 1)
    second = await start(fake, database_url, tmp_path, clock, reply_mode=medium)
    try:
        dispatcher = second.app[DISPATCHER]
        await dispatcher.drain()
        [row] = await outbox(second)
    finally:
        await second.stop()

    [post] = posts(fake, medium)  # exactly one, whether it went out before the crash or after
    assert row["status"] == "sent", row
    expected_id = f"dm:{post['dm_event_id']}" if medium == "dm" else post["id"]
    assert row["provider_message_id"] == expected_id
    assert (dispatcher.reconciled, dispatcher.sent) == ((1, 1) if reached_x else (0, 1))
    assert fake.posted == [] if medium == "dm" else fake.dms == []
    lookups = [
        p for m, p, _ in fake.calls if m == "GET" and p.startswith(("/2/dm_conversations/", "/2/users/"))
    ]
    # X was asked on the in-doubt claim: the primary post's list answers a found send; a send not found
    # is looked for among the fallbacks too (a DM's public fallback, a reply's DM fallback) first.
    assert len(lookups) == (1 if reached_x else 2), lookups
