"""A provider that fails for a while: 500s, then 429s with Retry-After, then recovers.

Everything owed is delivered once after the recovery, and a Retry-After is honoured: after a 429
that says "wait R seconds", the fake sees no request before R seconds have passed.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import web

from gateway.app import DISPATCHER
from tests.fakes.twilio import FakeTwilio
from tests.fakes.twilio_webhooks import sign, sms_params
from tests.fault.support import SMS_PATH, citizen, replies_by_recipient, stored
from tests.harness import RunningGateway, bound_socket, make_config, start_gateway

RETRY_AFTER = 1.5


@dataclass(frozen=True)
class Attempt:
    at: float
    """time.monotonic() when the request reached the fake."""
    to: str
    status: int
    retry_after: float | None


class TimedTwilio(FakeTwilio):
    """FakeTwilio that also notes when each message creation arrived and how it was answered."""

    def __init__(self) -> None:
        super().__init__()
        self.attempts: list[Attempt] = []

    async def _create(self, request: web.Request) -> web.Response:
        at = time.monotonic()
        response = await super()._create(request)
        form = await request.post()
        header = response.headers.get("Retry-After")
        self.attempts.append(
            Attempt(at, str(form.get("To", "")), response.status, float(header) if header else None)
        )
        return response


@pytest.fixture
async def fake_twilio() -> AsyncIterator[TimedTwilio]:
    async with TimedTwilio() as fake:
        yield fake


async def running_gateway(database_url: str, fake: FakeTwilio, **overrides: str) -> RunningGateway:
    sock = bound_socket()
    settings = {
        "CHANNELS__TWILIO__ACCOUNT_SID": fake.account_sid,
        "CHANNELS__TWILIO__AUTH_TOKEN": fake.auth_token,
        "CHANNELS__TWILIO__SMS_FROM": "+15005550006",
        "CHANNELS__TWILIO__API_BASE": fake.base_url,
        "DASHBOARD__ENABLED": "false",
        "OUTBOX__POLL_SECONDS": "0.1",
        "OUTBOX__BASE_DELAY_SECONDS": "0.05",
        "OUTBOX__MAX_DELAY_SECONDS": "0.5",
        **overrides,
    }
    return await start_gateway(make_config(database_url, sock.getsockname()[1], **settings), sock)


async def complain(gateway: RunningGateway, fake: FakeTwilio, senders: list[str]) -> None:
    for sender in senders:
        form = sms_params(From=sender, Body="LaporHendi got mampet", AccountSid=fake.account_sid)
        headers = {"X-Twilio-Signature": sign(gateway.url + SMS_PATH, form, fake.auth_token)}
        assert (await gateway.post_form(SMS_PATH, form, headers)).status == 200


async def test_everything_is_delivered_once_after_500s_then_429s(
    database_url: str, fake_twilio: TimedTwilio
) -> None:
    senders = [citizen(i) for i in range(6)]
    fake_twilio.fail_next(5, status=500, code=None)
    fake_twilio.fail_next(4, status=429, code=20429, retry_after=RETRY_AFTER)
    gateway = await running_gateway(database_url, fake_twilio, OUTBOX__CONCURRENCY="2")
    try:
        await complain(gateway, fake_twilio, senders)
        await fake_twilio.wait_for_messages(len(senders), timeout=60)
    finally:
        await gateway.stop()  # graceful: the outcomes of sends in flight are recorded first
    assert (await stored(database_url)).outbox_status == {"sent": len(senders)}
    assert replies_by_recipient(fake_twilio) == dict.fromkeys(senders, 1)
    failures = [a for a in fake_twilio.attempts if a.status >= 400]
    assert [a.status for a in failures] == [500] * 5 + [429] * 4
    # The message that got a 429 is not tried again before its Retry-After.
    for index, attempt in enumerate(fake_twilio.attempts):
        if attempt.status != 429:
            continue
        later = [a for a in fake_twilio.attempts[index + 1 :] if a.to == attempt.to]
        assert later, f"{attempt.to} was never retried after its 429"
        waited = later[0].at - attempt.at
        assert waited >= RETRY_AFTER, f"{attempt.to} retried {waited:.2f}s after a {RETRY_AFTER}s Retry-After"


async def test_a_429_retry_after_pauses_the_whole_channel(
    database_url: str, fake_twilio: TimedTwilio
) -> None:
    """Twilio's 429 (error 20429) limits the *account*, not one message: after it, the next request of
    any kind must wait the Retry-After out. One send at a time, so no request was already in flight."""
    senders = [citizen(i) for i in range(4)]
    gateway = await running_gateway(
        database_url, fake_twilio, OUTBOX__CONCURRENCY="1", OUTBOX__BATCH_SIZE="1", WORKER__ENABLED="false"
    )
    try:
        await complain(gateway, fake_twilio, senders)  # owed, but nothing sends yet
        fake_twilio.fail_next(1, status=429, code=20429, retry_after=RETRY_AFTER)
        await gateway.app[DISPATCHER].start()
        await fake_twilio.wait_for_messages(len(senders), timeout=30)
        await gateway.app[DISPATCHER].stop()
    finally:
        await gateway.stop()
    assert replies_by_recipient(fake_twilio) == dict.fromkeys(senders, 1)
    limited = next(a for a in fake_twilio.attempts if a.status == 429)
    after = [a for a in fake_twilio.attempts if a.at > limited.at]
    assert after
    too_early = [f"{a.to} after {a.at - limited.at:.2f}s" for a in after if a.at - limited.at < RETRY_AFTER]
    assert not too_early, f"requests before the {RETRY_AFTER}s Retry-After elapsed: {too_early}"
