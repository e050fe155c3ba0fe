"""The X poller against the fake X API: DMs, the rate-limit window, and photos fetched as evidence."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from adapters.twitter.adapter import TwitterAdapter
from adapters.twitter.poller import TwitterPoller
from gateway.app import ADAPTERS, CLOCK, DISPATCHER, ENGINE, INGESTOR, MEDIA_FETCHER
from store.models import Complaint, InboundMessage
from tests.channels.support import gps_jpeg
from tests.fakes.x_api import FakeXAPI
from tests.harness import ManualClock, RunningGateway, bound_socket, make_config, start_gateway

CITIZEN = "1234567890123"


@pytest.fixture
async def fake() -> AsyncIterator[FakeXAPI]:
    async with FakeXAPI() as server:
        server.add_user(CITIZEN, "warga_smg", "Warga Semarang")
        yield server


@pytest.fixture
async def gateway(
    fake: FakeXAPI, database_url: str, tmp_path: Path, clock: ManualClock
) -> AsyncIterator[RunningGateway]:
    sock = bound_socket()
    config = make_config(
        database_url,
        sock.getsockname()[1],
        MEDIA__DIRECTORY=str(tmp_path / "media"),
        **fake.settings(poll_seconds="0", reply_mode="dm"),
    )
    running = await start_gateway(config, sock, background=False, clock=clock)
    try:
        yield running
    finally:
        await running.stop()


def poller_of(gateway: RunningGateway, **kwargs: bool) -> TwitterPoller:
    adapter = gateway.app[ADAPTERS]["twitter"]
    assert isinstance(adapter, TwitterAdapter)
    return TwitterPoller(
        adapter, gateway.app[ENGINE], gateway.app[INGESTOR].ingest, clock=gateway.app[CLOCK], **kwargs
    )


async def test_dm_answers_are_polled_once_each(fake: FakeXAPI, gateway: RunningGateway) -> None:
    """Without the webhook, the citizen's DM answers still arrive: dm_events is read down to the
    newest stored DM, so nothing is taken twice, also by a fresh poller (a restart)."""
    fake.add_tweet(CITIZEN, "#LaporHendi Lampu PJU mati di Jl. Pemuda depan Balai Kota")
    poller = poller_of(gateway)
    assert (await poller.poll_once()).ingested == 1
    await gateway.app[DISPATCHER].drain()
    [question] = fake.dms
    assert "Kami catat" in question["text"]

    fake.add_dm(CITIZEN, "YA")
    assert (await poller.poll_once()).ingested == 1
    assert (await poller_of(gateway).poll_once()).ingested == 0
    await gateway.app[DISPATCHER].drain()
    [receipt] = fake.posted
    assert "LPR-" in receipt["text"] and "Pemuda" not in receipt["text"]
    async with gateway.app[ENGINE].connect() as conn:
        ids = (await conn.execute(select(InboundMessage.provider_message_id))).scalars().all()
    assert sorted(ids) == sorted([fake.tweets[0]["id"], "dm:" + fake.dm_events[0]["id"]])


async def test_a_used_up_window_waits_for_the_reset(
    fake: FakeXAPI, gateway: RunningGateway, clock: ManualClock
) -> None:
    reset = int(clock.now.timestamp()) + 420
    fake.rate_remaining["GET /2/tweets/search/recent"] = (0, reset)
    poller = poller_of(gateway, poll_dms=False)
    first = await poller.poll_once()
    assert first.error is None and first.next_delay == pytest.approx(420)
    searches = len(fake.calls)
    waiting = await poller.poll_once()  # no request while the window is used up
    assert waiting.error == "search rate limit used up" and len(fake.calls) == searches
    clock.advance(seconds=421)
    assert (await poller.poll_once()).error is None and len(fake.calls) == searches + 1


async def test_server_errors_keep_the_cursor(fake: FakeXAPI, gateway: RunningGateway) -> None:
    fake.add_tweet(CITIZEN, "#LaporHendi jalan berlubang di Jl. Majapahit")
    fake.fail_next("GET /2/tweets/search/recent", 503, {"title": "Service Unavailable", "status": 503})
    poller = poller_of(gateway, poll_dms=False)
    failed = await poller.poll_once()
    assert failed.ingested == 0 and failed.error is not None and "503" in failed.error
    assert (await poller.poll_once()).ingested == 1


async def test_tweet_photos_become_evidence(fake: FakeXAPI, gateway: RunningGateway) -> None:
    key = fake.add_photo(gps_jpeg(-6.98403, 110.40935), "GpohonTumbang.jpg")
    fake.add_tweet(CITIZEN, "#LaporHendi pohon tumbang di Jl. Sriwijaya", media_keys=[key])
    poller = poller_of(gateway)
    await poller.poll_once()
    await gateway.app[DISPATCHER].drain()
    fake.add_dm(CITIZEN, "YA")
    await poller.poll_once()
    await gateway.app[MEDIA_FETCHER].run_once()
    async with gateway.app[ENGINE].connect() as conn:
        [media] = (await conn.execute(select(Complaint.__table__.c.media))).scalar_one()
    assert media["url"].startswith("/media/") and media["source"].endswith("/media/GpohonTumbang.jpg")
    assert media["content_type"] == "image/jpeg" and "gps" in media
