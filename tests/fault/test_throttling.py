"""A provider that throttles: 429 "Too Many Requests" with a Retry-After, for longer than the retry
budget, then recovers.

- Throttling pauses the channel: after a 429 nothing more is sent there until the Retry-After has
  passed, however much is owed.
- Throttling is not failure: the attempts it costs are given back, so a storm that outlasts
  `max_attempts` leaves every reply pending, never failed, and each is sent exactly once after it.
- Retry-After is honoured in both of its RFC 9110 forms, delta-seconds and an HTTP date (read against
  the gateway's clock); an unreadable one falls back to the outbox's own backoff.

Time is a ManualClock shared by the gateway and the fake Twilio; the dispatcher is driven by hand
(`drain()`), so every "not before" below is exact and nothing waits in real time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from sqlalchemy import select

from gateway.app import DISPATCHER, ENGINE
from gateway.outbox import LONGEST_WAIT, parse_retry_after
from store import models
from tests.fakes.twilio import FakeTwilio
from tests.fakes.twilio_webhooks import sign, sms_params
from tests.fault.support import SMS_PATH, citizen, replies_by_recipient
from tests.harness import ManualClock, RunningGateway, start_twilio_gateway

MAX_ATTEMPTS = 3
BASE_DELAY = 10.0
WAIT = 45


@pytest.fixture
async def fake_twilio(clock: ManualClock) -> AsyncIterator[FakeTwilio]:
    async with FakeTwilio(clock=clock) as fake:
        yield fake


@pytest.fixture
async def gateway(
    database_url: str, fake_twilio: FakeTwilio, clock: ManualClock
) -> AsyncIterator[RunningGateway]:
    running = await start_twilio_gateway(
        database_url,
        fake_twilio,
        clock=clock,
        background=False,
        OUTBOX__MAX_ATTEMPTS=str(MAX_ATTEMPTS),
        OUTBOX__BASE_DELAY_SECONDS=str(BASE_DELAY),
        # One send at a time: after a 429 no other request is already on its way, so every request
        # the fake sees after it is one the dispatcher chose to make.
        OUTBOX__CONCURRENCY="1",
        OUTBOX__BATCH_SIZE="1",
        DASHBOARD__ENABLED="false",
    )
    yield running
    await running.stop()


async def complain(gateway: RunningGateway, fake: FakeTwilio, senders: list[str]) -> None:
    for sender in senders:
        form = sms_params(From=sender, Body="LaporHendi lampu jalan mati", AccountSid=fake.account_sid)
        headers = {"X-Twilio-Signature": sign(gateway.url + SMS_PATH, form, fake.auth_token)}
        assert (await gateway.post_form(SMS_PATH, form, headers)).status == 200


async def outbox_rows(gateway: RunningGateway) -> list[dict[str, Any]]:
    async with gateway.app[ENGINE].connect() as conn:
        rows = (await conn.execute(select(models.outbox).order_by(models.outbox.c.id))).mappings()
        return [dict(row) for row in rows]


def utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def test_a_429_storm_longer_than_the_retry_budget_pauses_but_never_fails(
    gateway: RunningGateway, fake_twilio: FakeTwilio, clock: ManualClock
) -> None:
    senders = [citizen(i) for i in range(4)]
    rounds = MAX_ATTEMPTS * 3
    fake_twilio.throttle_until(clock.now + timedelta(seconds=WAIT * rounds), retry_after=WAIT)
    await complain(gateway, fake_twilio, senders)
    dispatcher = gateway.app[DISPATCHER]

    for round_ in range(rounds):
        requests = len(fake_twilio.requests)
        await dispatcher.drain()
        # One try, a 429, and the channel is paused: the other replies owed are not tried at all.
        assert len(fake_twilio.requests) == requests + 1, f"round {round_}: the channel was not paused"
        clock.advance(seconds=WAIT - 1)
        await dispatcher.drain()
        assert len(fake_twilio.requests) == requests + 1, f"round {round_}: sent before the Retry-After"
        rows = await outbox_rows(gateway)
        assert {row["status"] for row in rows} == {"pending"}, f"round {round_}: a throttled reply died"
        assert all(row["attempts"] == 0 for row in rows), "throttling burnt the retry budget"
        clock.advance(seconds=1)
    assert fake_twilio.sent == []
    assert len(fake_twilio.requests) == rounds > MAX_ATTEMPTS

    # The throttle is over: everything owed goes out, each exactly once, on the first real attempt.
    await dispatcher.drain()
    rows = await outbox_rows(gateway)
    assert [(row["status"], row["attempts"]) for row in rows] == [("sent", 1)] * len(senders)
    assert replies_by_recipient(fake_twilio) == dict.fromkeys(senders, 1)
    clock.advance(hours=1)
    await dispatcher.drain()
    assert len(fake_twilio.sent) == len(senders), "something was sent again"


async def test_errors_that_are_not_throttling_still_run_out_of_attempts(
    gateway: RunningGateway, fake_twilio: FakeTwilio, clock: ManualClock
) -> None:
    """The budget still holds for real failures, interleaved with throttling that does not count."""
    fake_twilio.fail_next(1, status=500)
    fake_twilio.fail_next(1, status=429, code=20429, retry_after=WAIT)
    fake_twilio.fail_next(MAX_ATTEMPTS, status=500)
    await complain(gateway, fake_twilio, [citizen(0)])
    for _ in range(MAX_ATTEMPTS + 1):
        await gateway.app[DISPATCHER].drain()
        clock.advance(hours=1)
    [row] = await outbox_rows(gateway)
    assert (row["status"], row["attempts"], row["error_code"]) == ("failed", MAX_ATTEMPTS, "500")
    assert len(fake_twilio.requests) == MAX_ATTEMPTS + 1
    assert fake_twilio.sent == []


def http_date(clock: ManualClock) -> str:
    return format_datetime(clock.now + timedelta(seconds=WAIT), usegmt=True)


@pytest.mark.parametrize(
    "header",
    [lambda _: str(WAIT), http_date],
    ids=["delta-seconds", "http-date"],
)
async def test_retry_after_is_honoured_in_both_forms(
    gateway: RunningGateway, fake_twilio: FakeTwilio, clock: ManualClock, header: Any
) -> None:
    fake_twilio.fail_next(1, status=429, code=20429, retry_after=header(clock))
    await complain(gateway, fake_twilio, [citizen(0)])
    dispatcher = gateway.app[DISPATCHER]
    await dispatcher.drain()
    [row] = await outbox_rows(gateway)
    assert utc(row["next_attempt_at"]) == clock.now + timedelta(seconds=WAIT)
    clock.advance(seconds=WAIT - 1)
    await dispatcher.drain()
    assert len(fake_twilio.requests) == 1, "retried before the Retry-After"
    clock.advance(seconds=1)
    await dispatcher.drain()
    assert len(fake_twilio.requests) == 2 and len(fake_twilio.sent) == 1


@pytest.mark.parametrize("header", ["soon", "Tue, 99 Foo 2026 25:61:00 GMT", "1e999", ""])
async def test_an_unreadable_retry_after_falls_back_to_backoff(
    gateway: RunningGateway, fake_twilio: FakeTwilio, clock: ManualClock, header: str
) -> None:
    fake_twilio.fail_next(1, status=429, code=20429, retry_after=header)
    await complain(gateway, fake_twilio, [citizen(0)])
    dispatcher = gateway.app[DISPATCHER]
    started = clock.now
    await dispatcher.drain()
    [row] = await outbox_rows(gateway)
    waited = (utc(row["next_attempt_at"]) - started).total_seconds()
    assert BASE_DELAY * 0.8 <= waited <= BASE_DELAY * 1.2, waited  # the first backoff step, jittered
    assert row["status"] == "pending" and row["attempts"] == 0
    clock.advance(seconds=BASE_DELAY * 0.8 - 1)
    await dispatcher.drain()
    assert len(fake_twilio.requests) == 1
    clock.advance(seconds=BASE_DELAY * 0.4 + 1)
    await dispatcher.drain()
    assert len(fake_twilio.sent) == 1


NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("0.5", 0.5),
        ("-3", 0.0),
        ("Mon, 23 Nov 2026 02:01:30 GMT", 90.0),
        ("Mon, 23 Nov 2026 02:01:30 -0000", 90.0),
        ("Mon, 23 Nov 2026 09:01:30 +0700", 90.0),
        ("Monday, 23-Nov-26 02:01:30 GMT", 90.0),  # RFC 850 and asctime: obsolete, still accepted
        ("Mon Nov 23 02:01:30 2026", 90.0),
        ("Mon, 23 Nov 2026 01:00:00 GMT", 0.0),  # already past: no wait
        ("Fri, 31 Dec 2100 00:00:00 GMT", LONGEST_WAIT),
        ("999999999999", LONGEST_WAIT),
        ("inf", None),
        ("nan", None),
        ("soon", None),
        ("", None),
    ],
)
def test_retry_after_values(value: str, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected
