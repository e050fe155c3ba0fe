"""End to end on X: a #LaporHendi tweet becomes a complaint, and the only public trace is the code.

The real gateway runs on loopback; X is the fake API server (tests/fakes/x_api.py), which the
gateway's real tweepy-based client talks to through `api_base`. Polling passes are driven by hand
with the project's own `TwitterPoller` (poll_seconds = 0 keeps the background task out of the way),
except in the test of the app's lifecycle, which waits for the background poller's reply.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from adapters.twitter.adapter import TwitterAdapter
from adapters.twitter.poller import TwitterPoller
from gateway.app import ADAPTERS, CLOCK, DISPATCHER, ENGINE, INGESTOR
from store.models import Complaint, InboundMessage, OutboxMessage
from tests.fakes.x_api import (
    ACCOUNT_HANDLE,
    ACCOUNT_ID,
    CONSUMER_SECRET,
    DELETED_DETAIL,
    FakeXAPI,
    problem,
)
from tests.harness import ManualClock, RunningGateway, bound_socket, make_config, start_gateway

CITIZEN = "1234567890123"
PHONE = "081234567890"
COMPLAINT = f"#LaporHendi Lampu PJU mati di Jl. Pemuda depan Balai Kota, sudah 3 malam gelap. WA saya {PHONE}"
CODE_RE = re.compile(r"LPR-[2-9A-Z]{6}")


@pytest.fixture
async def fake() -> AsyncIterator[FakeXAPI]:
    async with FakeXAPI() as server:
        server.add_user(CITIZEN, "warga_smg", "Warga Semarang")
        yield server


async def _gateway(
    fake: FakeXAPI, database_url: str, tmp_path: Path, *, background: bool = True,
    clock: ManualClock | None = None, **settings: str,
) -> RunningGateway:  # fmt: skip
    sock = bound_socket()
    overrides = fake.settings(**{"poll_seconds": "0", **settings})
    config = make_config(
        database_url, sock.getsockname()[1], MEDIA__DIRECTORY=str(tmp_path / "media"), **overrides
    )
    return await start_gateway(config, sock, background=background, clock=clock)


@pytest.fixture
async def gateway(fake: FakeXAPI, database_url: str, tmp_path: Path) -> AsyncIterator[RunningGateway]:
    running = await _gateway(fake, database_url, tmp_path, reply_mode="reply")
    try:
        yield running
    finally:
        await running.stop()


def poller_of(gateway: RunningGateway) -> TwitterPoller:
    """The project's own poller, bound to the running app's engine and ingestor."""
    adapter = gateway.app[ADAPTERS]["twitter"]
    assert isinstance(adapter, TwitterAdapter)
    return TwitterPoller(adapter, gateway.app[ENGINE], gateway.app[INGESTOR].ingest, clock=gateway.app[CLOCK])


async def _rows(gateway: RunningGateway, model: Any) -> list[dict[str, Any]]:
    async with gateway.app[ENGINE].connect() as conn:
        return [dict(r) for r in (await conn.execute(select(model.__table__))).mappings().all()]


def code_in(text: str) -> str:
    match = CODE_RE.search(text)
    assert match is not None, text
    return match.group(0)


def assert_nothing_personal(text: str) -> None:
    for private in (PHONE, "Pemuda", "Balai Kota", "gelap", "Warga", "warga_smg"):
        assert private.lower() not in text.lower(), f"{private!r} in public tweet {text!r}"


async def test_hashtag_tweet_to_complaint_with_only_the_code_in_public(
    fake: FakeXAPI, gateway: RunningGateway
) -> None:
    tweet = fake.add_tweet(CITIZEN, COMPLAINT)
    poller = poller_of(gateway)
    outcome = await poller.poll_once()
    assert (outcome.ingested, outcome.ignored) == (1, 0)

    [question] = await fake.wait_for_tweets(1)
    assert question["in_reply_to_tweet_id"] == tweet["conversation_id"]
    assert "YA" in question["text"]
    assert_nothing_personal(question["text"])

    # The citizen answers YA in the thread, mentioning the account as a reply does.
    fake.add_tweet(CITIZEN, f"@{ACCOUNT_HANDLE} YA", reply_to=question["id"])
    assert (await poller.poll_once()).ingested == 1
    _, receipt = await fake.wait_for_tweets(2)
    code = code_in(receipt["text"])
    assert (
        receipt["text"] == f"Terima kasih, aduan Anda tercatat: {code}. Pantau di {gateway.url}/lacak/{code}"
    )
    assert receipt["in_reply_to_tweet_id"] == tweet["id"]
    assert_nothing_personal(receipt["text"])
    assert fake.dms == []

    [complaint] = await _rows(gateway, Complaint)
    assert complaint["tracking_code"] == code
    assert complaint["origin_channel"] == "twitter"
    assert complaint["origin_thread_id"] == tweet["id"]
    assert "Lampu PJU mati" in complaint["description"] and "#LaporHendi" not in complaint["description"]
    messages = await _rows(gateway, InboundMessage)
    assert {m["provider_message_id"] for m in messages} == {t["id"] for t in fake.tweets}


async def test_dm_mode_asks_privately_and_receipts_publicly(
    fake: FakeXAPI, database_url: str, tmp_path: Path
) -> None:
    """Webhook intake; the question (quoting the citizen) goes by DM, the answer comes by DM, and the
    receipt is a public reply to the citizen's tweet with the code only, plus the full text by DM."""
    gateway = await _gateway(fake, database_url, tmp_path, reply_mode="dm")
    try:
        tweet = fake.add_tweet(CITIZEN, COMPLAINT)
        status, _ = await fake.push_activity(gateway.url + "/webhooks/twitter", activity_tweet(tweet))
        assert status == 200
        [question] = await fake.wait_for_dms(1)
        assert question["to"] == CITIZEN and "Kami catat" in question["text"]
        assert fake.posted == []

        status, _ = await fake.push_activity(gateway.url + "/webhooks/twitter", activity_dm(CITIZEN, "YA"))
        assert status == 200
        [receipt] = await fake.wait_for_tweets(1)
        code = code_in(receipt["text"])
        assert receipt["in_reply_to_tweet_id"] == tweet["id"]
        assert_nothing_personal(receipt["text"])
        _, private_copy = await fake.wait_for_dms(2)
        assert code in private_copy["text"]
    finally:
        await gateway.stop()


async def test_same_tweet_from_webhook_and_poll_is_one_message(
    fake: FakeXAPI, gateway: RunningGateway
) -> None:
    tweet = fake.add_tweet(CITIZEN, COMPLAINT)
    status, _ = await fake.push_activity(gateway.url + "/webhooks/twitter", activity_tweet(tweet))
    assert status == 200
    await poller_of(gateway).poll_once()
    await fake.wait_for_tweets(1)
    await gateway.app[DISPATCHER].drain()
    assert len(await _rows(gateway, InboundMessage)) == 1
    assert len(await _rows(gateway, OutboxMessage)) == 1
    assert len(fake.posted) == 1


async def test_restart_neither_misses_nor_repeats(fake: FakeXAPI, database_url: str, tmp_path: Path) -> None:
    first = fake.add_tweet(CITIZEN, COMPLAINT)
    fake.add_tweet("999", "RT @warga_smg: #LaporHendi lampu mati", retweet_of=first["id"])
    gateway = await _gateway(fake, database_url, tmp_path, background=False)
    try:
        assert (await poller_of(gateway).poll_once()).ingested == 1
    finally:
        await gateway.stop()

    fake.add_user("222", "tetangga")
    second = fake.add_tweet("222", "Sampah menumpuk di Jl. Kaligawe #laporhendi")
    fake.calls.clear()
    gateway = await _gateway(fake, database_url, tmp_path, background=False)
    try:
        outcome = await poller_of(gateway).poll_once()
        [search] = [q for _, path, q in fake.calls if path == "/2/tweets/search/recent"]
        messages = await _rows(gateway, InboundMessage)
    finally:
        await gateway.stop()
    assert search["since_id"] == first["id"] and "start_time" not in search
    assert outcome.ingested == 1
    assert sorted(m["provider_message_id"] for m in messages) == sorted([first["id"], second["id"]])


async def test_search_pages_are_all_read_before_ingesting(
    fake: FakeXAPI, database_url: str, tmp_path: Path
) -> None:
    fake.page_size = 2
    for n in range(5):
        fake.add_user(str(500 + n), f"warga{n}")
        fake.add_tweet(str(500 + n), f"#LaporSemar jalan berlubang nomor {n} di Jl. Majapahit")
    fake.rate_limit_next("GET /2/tweets/search/recent", reset_epoch=0)
    gateway = await _gateway(fake, database_url, tmp_path, background=False)
    try:
        poller = poller_of(gateway)
        limited = await poller.poll_once()
        assert (limited.ingested, limited.error) == (0, "429")
        outcome = await poller.poll_once()
        pages = [q for _, path, q in fake.calls if path == "/2/tweets/search/recent"]
        messages = await _rows(gateway, InboundMessage)
    finally:
        await gateway.stop()
    assert outcome.ingested == 5 and len(pages) == 1 + 3
    assert [q.get("next_token") for q in pages[1:]] == [None, "2", "4"]
    # Oldest first, so each reporter's conversation sees the order they tweeted in.
    assert [m["provider_message_id"] for m in messages] == [t["id"] for t in fake.tweets]


async def test_rate_limited_reply_is_retried_at_the_reset(
    fake: FakeXAPI, database_url: str, tmp_path: Path
) -> None:
    clock = ManualClock()
    gateway = await _gateway(fake, database_url, tmp_path, background=False, clock=clock, reply_mode="reply")
    try:
        fake.add_tweet(CITIZEN, COMPLAINT)
        await poller_of(gateway).poll_once()
        reset = int(clock.now.timestamp()) + 600
        fake.rate_limit_next("POST /2/tweets", reset)
        await gateway.app[DISPATCHER].drain()
        [row] = await _rows(gateway, OutboxMessage)
        assert (row["status"], row["error_code"]) == ("pending", "429")
        due = row["next_attempt_at"].replace(tzinfo=clock.now.tzinfo)
        assert timedelta(seconds=590) <= due - clock.now <= timedelta(seconds=900)
        await gateway.app[DISPATCHER].drain()
        assert fake.posted == []  # not before the reset
        clock.advance(seconds=901)
        await gateway.app[DISPATCHER].drain()
        [row] = await _rows(gateway, OutboxMessage)
        assert row["status"] == "sent" and len(fake.posted) == 1
    finally:
        await gateway.stop()


async def test_deleted_tweet_falls_back_to_dm_and_closed_dms_to_a_code_only_tweet(
    fake: FakeXAPI, database_url: str, tmp_path: Path
) -> None:
    gateway = await _gateway(fake, database_url, tmp_path, background=False, reply_mode="reply")
    try:
        tweet = fake.add_tweet(CITIZEN, COMPLAINT)
        poller = poller_of(gateway)
        await poller.poll_once()
        await gateway.app[DISPATCHER].drain()
        [question] = fake.posted
        fake.add_tweet(CITIZEN, f"@{ACCOUNT_HANDLE} YA", reply_to=question["id"])
        await poller.poll_once()
        fake.deleted.add(tweet["id"])  # the citizen deleted the complaint tweet meanwhile
        fake.dms_closed.add(CITIZEN)
        await gateway.app[DISPATCHER].drain()
    finally:
        await gateway.stop()
    receipt = fake.posted[-1]
    code = code_in(receipt["text"])
    assert receipt["in_reply_to_tweet_id"] is None
    assert receipt["text"].startswith(f"Aduan Anda: {code}")
    assert_nothing_personal(receipt["text"])
    assert [c[1] for c in fake.calls if c[0] == "POST"][-3:] == [
        "/2/tweets",
        f"/2/dm_conversations/with/{CITIZEN}/messages",
        "/2/tweets",
    ]


async def test_deleted_reply_target_goes_by_dm_when_open(
    fake: FakeXAPI, database_url: str, tmp_path: Path
) -> None:
    gateway = await _gateway(fake, database_url, tmp_path, background=False, reply_mode="reply")
    try:
        tweet = fake.add_tweet(CITIZEN, COMPLAINT)
        await poller_of(gateway).poll_once()
        fake.fail_next("POST /2/tweets", 403, problem(403, "Forbidden", DELETED_DETAIL))
        await gateway.app[DISPATCHER].drain()
        [row] = await _rows(gateway, OutboxMessage)
    finally:
        await gateway.stop()
    assert fake.posted == [] and len(fake.dms) == 1
    assert row["status"] == "sent" and row["provider_message_id"].startswith("dm:")
    assert tweet["id"] not in fake.dms[0]["text"]


async def test_duplicate_content_is_adjusted_once_then_counted_as_sent(
    fake: FakeXAPI, database_url: str, tmp_path: Path
) -> None:
    """Two citizens get the same fixed public question: X refuses the second as duplicate content,
    so it goes out with a short reference added."""
    gateway = await _gateway(fake, database_url, tmp_path, background=False, reply_mode="reply")
    try:
        fake.add_user("333", "warga3")
        fake.add_tweet(CITIZEN, COMPLAINT)
        fake.add_tweet("333", "#LaporHendi Lampu PJU mati di Jl. Pandanaran depan Tugu Muda")
        await poller_of(gateway).poll_once()
        await gateway.app[DISPATCHER].drain()
        rows = await _rows(gateway, OutboxMessage)
    finally:
        await gateway.stop()
    assert [r["status"] for r in rows] == ["sent", "sent"]
    first, second = fake.posted
    assert second["text"].startswith(first["text"]) and "(ref " in second["text"]


async def test_background_poller_runs_in_the_app_lifecycle(
    fake: FakeXAPI, database_url: str, tmp_path: Path
) -> None:
    fake.add_tweet(CITIZEN, COMPLAINT)
    gateway = await _gateway(fake, database_url, tmp_path, poll_seconds="3600", reply_mode="reply")
    try:
        [question] = await fake.wait_for_tweets(1)  # the first pass runs at start
    finally:
        await gateway.stop()
    assert "YA" in question["text"]


async def test_crc_and_forged_activity(fake: FakeXAPI, gateway: RunningGateway) -> None:
    status, body = await fake.crc(gateway.url + "/webhooks/twitter", "challenge-123")
    assert status == 200 and body["response_token"].startswith("sha256=")
    tweet = fake.add_tweet(CITIZEN, COMPLAINT)
    status, text = await fake.push_activity(
        gateway.url + "/webhooks/twitter", activity_tweet(tweet), secret="guessed-secret"
    )
    assert status == 403 and CONSUMER_SECRET not in text
    assert await _rows(gateway, InboundMessage) == []


# -- Account Activity payloads (v1.1 shapes), built from the fake's v2 tweets


def activity_tweet(tweet: dict[str, Any]) -> dict[str, Any]:
    return {
        "for_user_id": ACCOUNT_ID,
        "tweet_create_events": [
            {
                "created_at": "Mon Nov 23 02:00:00 +0000 2026",
                "id": int(tweet["id"]),
                "id_str": tweet["id"],
                "text": tweet["text"],
                "truncated": False,
                "in_reply_to_status_id_str": None,
                "user": {"id": int(tweet["author_id"]), "id_str": tweet["author_id"],
                         "name": "Warga Semarang", "screen_name": "warga_smg"},
                "entities": {
                    "hashtags": [{"text": h["tag"], "indices": [h["start"], h["end"]]}
                                 for h in tweet["entities"].get("hashtags", [])],
                    "user_mentions": [], "urls": [],
                },
                "is_quote_status": False,
            }
        ],
    }  # fmt: skip


def activity_dm(sender: str, text: str) -> dict[str, Any]:
    return {
        "for_user_id": ACCOUNT_ID,
        "direct_message_events": [
            {
                "type": "message_create",
                "id": "1850000000000999001",
                "created_timestamp": "1795399200000",
                "message_create": {
                    "target": {"recipient_id": ACCOUNT_ID},
                    "sender_id": sender,
                    "message_data": {
                        "text": text,
                        "entities": {"hashtags": [], "urls": [], "user_mentions": []},
                    },
                },
            }
        ],
        "users": {sender: {"id": sender, "name": "Warga Semarang", "screen_name": "warga_smg"}},
    }
