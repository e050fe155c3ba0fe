"""X adapter `find_sent`: whether an in-doubt send reached X, asked of the fake X API over HTTP.

Every case sends through the real adapter (so X holds exactly what `send` posts: the DM, the fixed
public text, the duplicate-adjusted text, a fallback), then asks `find_sent` for one message with a
`since`, and expects the id `send` answered, or None.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import pytest

from adapters.base import Address, AddressKind, DeliveryStatus, OutboundMessage, SendError, SendResult
from adapters.twitter import TwitterAdapter
from adapters.twitter.reconcile import comparable
from gateway.config import Secret, TwitterConfig
from tests.fakes.x_api import (
    ACCESS_TOKEN,
    ACCESS_TOKEN_SECRET,
    ACCOUNT_ID,
    BEARER,
    CONSUMER_KEY,
    CONSUMER_SECRET,
    FakeXAPI,
    problem,
)
from tests.harness import ManualClock

PUBLIC_URL = "https://lapor.semarangkota.go.id"
CITIZEN = "1234567890123"
NEIGHBOUR = "9876543210987"
CODE = "LPR-7K3M9Q"
THREAD, OTHER_THREAD = "THREAD", "OTHER_THREAD"
"""Placeholders for the citizen tweets a case replies to (their ids exist once the fake has them)."""


def message(
    id: int, text: str, *, to: str = CITIZEN, reply_to: str | None = "dm:1", kind: str = "reply"
) -> OutboundMessage:
    return OutboundMessage(
        id=id, channel="twitter", to=Address(AddressKind.TWITTER, to), text=text, reply_to=reply_to, kind=kind
    )


QUESTION = message(101, "Kami catat: lampu PJU mati di Jl. Pemuda. Di mana tepatnya?", kind="ask_location")
OTHER_QUESTION = message(102, "Ada foto masalahnya? Balas dengan fotonya, atau LEWATI.", kind="ask_photo")
RECEIPT = message(
    103, f"Aduan Anda tercatat: {CODE}. Kami teruskan ke DPU.", reply_to=THREAD, kind="submitted"
)
PUBLIC_QUESTION = message(104, "Di mana lokasinya, Pak?", reply_to=THREAD, kind="ask_location")


@dataclass(frozen=True)
class Case:
    ask: OutboundMessage
    sent: list[OutboundMessage] = field(default_factory=list)
    """Sent through the adapter at T0, in order, before the question is asked."""
    expect: int | None = None
    """Index in `sent` of the send whose result find_sent must answer; None: nothing found."""
    since: timedelta = timedelta(0)
    """find_sent's `since` is T0 plus this."""
    reply_mode: str = "dm"
    dms_closed: bool = False
    deleted_thread: bool = False


CASES: dict[str, Case] = {
    "dm_found": Case(QUESTION, [QUESTION], expect=0),
    "dm_not_found": Case(QUESTION),
    "dm_text_differs": Case(QUESTION, [OTHER_QUESTION]),
    "dm_same_text_to_another_citizen": Case(
        QUESTION, [replace(QUESTION, id=201, to=Address(AddressKind.TWITTER, NEIGHBOUR))]
    ),
    "dm_older_than_since": Case(QUESTION, [QUESTION], since=timedelta(minutes=5)),
    "dm_within_clock_skew": Case(QUESTION, [QUESTION], expect=0, since=timedelta(seconds=20)),
    "dm_among_others": Case(QUESTION, [OTHER_QUESTION, QUESTION, replace(OTHER_QUESTION, id=105)], expect=1),
    "dm_long_text_is_compared_as_shortened": Case(
        replace(QUESTION, text="Kami catat: " + "jalan berlubang " * 700),
        [replace(QUESTION, text="Kami catat: " + "jalan berlubang " * 700)],
        expect=0,
    ),
    "reply_found": Case(PUBLIC_QUESTION, [PUBLIC_QUESTION], expect=0, reply_mode="reply"),
    "reply_not_found": Case(PUBLIC_QUESTION, reply_mode="reply"),
    "reply_in_another_thread": Case(
        PUBLIC_QUESTION, [replace(PUBLIC_QUESTION, reply_to=OTHER_THREAD)], reply_mode="reply"
    ),
    "reply_text_differs": Case(
        PUBLIC_QUESTION, [replace(PUBLIC_QUESTION, kind="ask_photo")], reply_mode="reply"
    ),
    "reply_older_than_since": Case(
        PUBLIC_QUESTION, [PUBLIC_QUESTION], since=timedelta(minutes=5), reply_mode="reply"
    ),
    "receipt_public_reply_found": Case(RECEIPT, [RECEIPT], expect=0),
    "receipt_adjusted_after_duplicate_found": Case(
        RECEIPT, [replace(RECEIPT, id=202, reply_to=OTHER_THREAD), RECEIPT], expect=1
    ),
    "receipt_to_another_thread_only": Case(RECEIPT, [replace(RECEIPT, id=202, reply_to=OTHER_THREAD)]),
    "dms_closed_fallback_tweet_found": Case(
        replace(RECEIPT, reply_to="dm:1", kind="status_update"),
        [replace(RECEIPT, reply_to="dm:1", kind="status_update")],
        expect=0,
        dms_closed=True,
    ),
    "deleted_thread_dm_fallback_found": Case(RECEIPT, [RECEIPT], expect=0, deleted_thread=True),
}


@pytest.fixture
async def fake() -> AsyncIterator[FakeXAPI]:
    async with FakeXAPI() as server:
        server.add_user(CITIZEN, "warga_smg")
        server.add_user(NEIGHBOUR, "tetangga_smg")
        yield server


def adapter_for(fake: FakeXAPI, clock: ManualClock, **config: Any) -> TwitterAdapter:
    settings: dict[str, Any] = {
        "bearer_token": Secret(BEARER),
        "consumer_key": CONSUMER_KEY,
        "consumer_secret": Secret(CONSUMER_SECRET),
        "access_token": ACCESS_TOKEN,
        "access_token_secret": Secret(ACCESS_TOKEN_SECRET),
        "account_id": ACCOUNT_ID,
        "account_handle": "LaporHendi1708",
        "api_base": fake.base_url,
    }
    settings.update(config)
    return TwitterAdapter(TwitterConfig(**settings), PUBLIC_URL, clock=clock)


@asynccontextmanager
async def opened(adapter: TwitterAdapter) -> AsyncIterator[TwitterAdapter]:
    try:
        yield adapter
    finally:
        await adapter.close()


def resolved(msg: OutboundMessage, threads: dict[str, str]) -> OutboundMessage:
    return replace(msg, reply_to=threads.get(msg.reply_to or "", msg.reply_to))


@pytest.mark.parametrize("name", sorted(CASES))
async def test_find_sent(name: str, fake: FakeXAPI) -> None:
    case = CASES[name]
    clock = ManualClock()
    fake.clock = clock
    threads = {
        THREAD: fake.add_tweet(CITIZEN, "#LaporHendi lampu mati")["id"],
        OTHER_THREAD: fake.add_tweet(NEIGHBOUR, "#LaporHendi jalan rusak")["id"],
    }
    if case.dms_closed:
        fake.dms_closed.add(CITIZEN)
    if case.deleted_thread:
        fake.deleted.add(threads[THREAD])
    async with opened(adapter_for(fake, clock, reply_mode=case.reply_mode)) as adapter:
        t0 = clock.now
        results = [await adapter.send(resolved(m, threads)) for m in case.sent]
        clock.advance(seconds=2)
        found = await adapter.find_sent(resolved(case.ask, threads), t0 + case.since)
    if case.expect is None:
        assert found is None, (found, fake.posted, fake.dms)
    else:
        assert found == results[case.expect], (results, fake.posted, fake.dms)
        assert not found.provider_message_id.startswith("duplicate:")


async def test_a_filing_receipt_sent_from_dm_is_found_where_send_put_it(fake: FakeXAPI) -> None:
    """A found answer has the shape send gives: the tweet id for a reply, dm:<event id> for a DM."""
    clock = ManualClock()
    fake.clock = clock
    async with opened(adapter_for(fake, clock)) as adapter:
        dm = await adapter.send(QUESTION)
        assert await adapter.find_sent(QUESTION, clock.now) == dm
        assert dm.provider_message_id == "dm:" + fake.dms[0]["dm_event_id"]
        thread = fake.add_tweet(CITIZEN, "#LaporHendi lampu mati")["id"]
        reply = await adapter.send(replace(RECEIPT, reply_to=thread))
        assert await adapter.find_sent(replace(RECEIPT, reply_to=thread), clock.now) == reply
    assert reply == SendResult(fake.posted[0]["id"], DeliveryStatus.SENT)


@pytest.mark.parametrize("what", ["dm", "tweet"])
async def test_found_past_the_first_page(what: str, fake: FakeXAPI) -> None:
    fake.page_size = 3
    clock = ManualClock()
    fake.clock = clock
    thread = fake.add_tweet(CITIZEN, "#LaporHendi lampu mati")["id"]
    ask = QUESTION if what == "dm" else replace(RECEIPT, reply_to=thread)
    async with opened(adapter_for(fake, clock)) as adapter:
        t0 = clock.now
        sent = await adapter.send(ask)
        for i in range(7):  # newer posts push ours to the third page
            clock.advance(seconds=1)
            other = replace(ask, id=300 + i, text=f"Balasan {i} untuk {CODE}, nomor {i}")
            await adapter.send(replace(other, kind="status_update") if what == "tweet" else other)
        found = await adapter.find_sent(ask, t0)
    assert found == sent
    route = "dm_events" if what == "dm" else "/tweets"
    tokens = [q.get("pagination_token") for m, p, q in fake.calls if m == "GET" and p.endswith(route)]
    assert tokens[:3] == [None, "3", "6"]


async def test_start_time_asks_x_only_for_tweets_since_the_send(fake: FakeXAPI) -> None:
    clock = ManualClock()
    fake.clock = clock
    thread = fake.add_tweet(CITIZEN, "#LaporHendi lampu mati")["id"]
    async with opened(adapter_for(fake, clock, reply_mode="reply")) as adapter:
        await adapter.find_sent(replace(PUBLIC_QUESTION, reply_to=thread), clock.now)
    [(_, path, query)] = [c for c in fake.calls if c[1].endswith("/tweets") and c[0] == "GET"]
    assert path == f"/2/users/{ACCOUNT_ID}/tweets"
    assert query["start_time"] == "2026-11-23T01:59:30Z"  # since minus the clock-skew allowance
    assert set(query["tweet.fields"].split(",")) >= {"created_at", "referenced_tweets", "text"}


def test_comparable_survives_what_x_does_to_text() -> None:
    sent = f"Terima kasih & sampai jumpa: {CODE}.  Pantau di {PUBLIC_URL}/lacak/{CODE}"
    listed = f"Terima kasih &amp; sampai jumpa: {CODE}. Pantau di https://t.co/AbC123xYz"
    assert comparable(sent) == comparable(listed)
    assert comparable(sent) != comparable(sent.replace(CODE, "LPR-2222222"))


LOOKUP_FAILURES = {
    "rate_limited": ("429", True, 429, problem(429, "Too Many Requests", "Too Many Requests")),
    "server_error": ("5xx", True, 503, problem(503, "Service Unavailable", "Service Unavailable")),
    "credentials": ("401", False, 401, problem(401, "Unauthorized", "Unauthorized")),
}


@pytest.mark.parametrize("what", ["dm", "tweet"])
@pytest.mark.parametrize("failure", sorted(LOOKUP_FAILURES))
async def test_a_lookup_x_does_not_answer_is_a_send_error(what: str, failure: str, fake: FakeXAPI) -> None:
    """As in the Twilio adapter: the outbox reads a SendError as "cannot tell" (gateway/outbox.py)."""
    code, retryable, status, body = LOOKUP_FAILURES[failure]
    clock = ManualClock()
    fake.clock = clock
    thread = fake.add_tweet(CITIZEN, "#LaporHendi lampu mati")["id"]
    ask = QUESTION if what == "dm" else replace(PUBLIC_QUESTION, reply_to=thread)
    route = (
        "GET /2/dm_conversations/with/:participant_id/dm_events"
        if what == "dm"
        else "GET /2/users/:id/tweets"
    )
    headers = {"x-rate-limit-reset": str(int(clock.now.timestamp()) + 900)} if status == 429 else {}
    fake.fail_next(route, status, body, headers)
    async with opened(adapter_for(fake, clock, reply_mode="reply")) as adapter:
        with pytest.raises(SendError) as err:
            await adapter.find_sent(ask, clock.now)
        assert await adapter.find_sent(ask, clock.now) is None  # answered the second time: not sent
    assert (err.value.code, err.value.retryable) == (code, retryable)
    if status == 429:
        assert err.value.retry_after == 900


async def test_nothing_to_look_up_when_send_would_not_call_x(fake: FakeXAPI) -> None:
    clock = ManualClock()
    async with opened(adapter_for(fake, clock, access_token="")) as adapter:
        assert await adapter.find_sent(QUESTION, clock.now) is None
    async with opened(adapter_for(fake, clock)) as adapter:
        phone = replace(QUESTION, to=Address(AddressKind.PHONE, "+6281234567890"))
        assert await adapter.find_sent(phone, clock.now) is None
    assert fake.calls == []
