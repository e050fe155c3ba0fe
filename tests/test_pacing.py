"""Per-channel and per-recipient send rates: the dispatcher claims only what the buckets allow, the
rest waits its turn in order, and nothing is lost or sent twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.app import DISPATCHER
from gateway.config import ConfigError
from gateway.pacing import Pacer, TokenBuckets, parse_rates
from tests.fakes.twilio import FakeTwilio
from tests.harness import ManualClock, RunningGateway, make_config, sms_in, start_twilio_gateway

SMS_PATH = "/webhooks/twilio/sms"
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_no_one_second_window_sees_more_than_a_quarter_over_the_rate() -> None:
    """Providers count messages per second: a claim every 10 ms for 5 s never puts more than 1.25x
    the rate into any one-second window (a full second's burst would allow 2x)."""
    pacer = Pacer({"twilio_whatsapp": 80.0}, {})
    sent: list[float] = []
    for tick in range(500):
        moment = T0 + timedelta(milliseconds=10 * tick)
        while pacer.admit("twilio_whatsapp", f"+62812{len(sent)}", moment):
            sent.append(tick / 100)
    busiest = max(sum(1 for t in sent if start / 100 <= t < start / 100 + 1) for start in range(400))
    assert 80 <= busiest <= 100, busiest
    assert 390 <= len(sent) <= 420, "80/s over 5 s"


def test_a_bucket_gives_its_burst_then_its_rate() -> None:
    buckets = TokenBuckets({"telegram": 3.0})
    assert [buckets.take("telegram", "", T0) for _ in range(4)] == [True, True, True, False]
    assert not buckets.take("telegram", "", T0 + timedelta(seconds=0.3))
    assert buckets.take("telegram", "", T0 + timedelta(seconds=0.4))  # 0.4 s x 3/s = 1.2 tokens
    assert buckets.take("other", "", T0), "a channel without a rate is never held back"


def test_recipients_have_their_own_buckets_and_idle_ones_are_forgotten() -> None:
    buckets = TokenBuckets({"telegram": 1.0}, burst=2.0)
    assert buckets.take("telegram", "a", T0) and buckets.take("telegram", "a", T0)
    assert not buckets.take("telegram", "a", T0)
    assert buckets.take("telegram", "b", T0)
    buckets.forget_idle(T0 + timedelta(seconds=10))
    assert buckets.take("telegram", "a", T0 + timedelta(seconds=10))


@pytest.mark.parametrize("value", ["telegram", "telegram=", "telegram=0", "telegram=-1", "=5", "x=fast"])
def test_a_bad_rate_is_refused_with_its_key(value: str) -> None:
    with pytest.raises(ValueError, match=r"outbox\.channel_rates"):
        parse_rates([value], "channel_rates")
    with pytest.raises(ConfigError, match=r"outbox\.recipient_rates"):
        make_config("sqlite+aiosqlite:///unused.db", 8080, OUTBOX__RECIPIENT_RATES=value)


async def paced_gateway(
    database_url: str, fake: FakeTwilio, clock: ManualClock, **rates: str
) -> RunningGateway:
    return await start_twilio_gateway(
        database_url, fake, clock=clock, background=False, DASHBOARD__ENABLED="false", **rates
    )


async def test_a_channel_rate_spreads_a_burst_of_replies_over_seconds(
    database_url: str, fake_twilio: FakeTwilio, clock: ManualClock
) -> None:
    gateway = await paced_gateway(database_url, fake_twilio, clock, OUTBOX__CHANNEL_RATES="twilio_sms=5")
    try:
        senders = [f"+6281300000{i:03d}" for i in range(12)]
        for sender in senders:
            await sms_in(gateway, fake_twilio, sender, "LaporHendi lampu jalan mati")
        # The dispatcher claims again every few tens of milliseconds while pacing holds rows back;
        # here the test is the dispatcher, claiming every 0.2 s (one token of 5/s each time).
        sent_after = []
        for step in range(15):
            await gateway.app[DISPATCHER].drain()
            if step % 5 == 4:
                sent_after.append(len(fake_twilio.sent))
            clock.advance(seconds=0.2)
        assert sent_after == [5, 10, 12]
        assert sorted(m["to"] for m in fake_twilio.sent) == sorted(senders), "each once, none lost"
        sent = [m["to"] for m in fake_twilio.sent]
        # Oldest first: each second's five are the next five owed (sent concurrently within it).
        assert [set(sent[i : i + 5]) for i in (0, 5, 10)] == [set(senders[i : i + 5]) for i in (0, 5, 10)]
    finally:
        await gateway.stop()


async def test_a_recipient_rate_holds_back_one_chat_not_the_others(
    database_url: str, fake_twilio: FakeTwilio, clock: ManualClock
) -> None:
    gateway = await paced_gateway(
        database_url, fake_twilio, clock, OUTBOX__RECIPIENT_RATES="twilio_sms=1"
    )
    try:
        busy, others = "+6281300000999", [f"+6281300000{i:03d}" for i in range(4)]
        for text in ("LaporHendi lampu mati", "di Jl. Pemuda", "BATAL", "LaporHendi sampah", "di gang 5"):
            await sms_in(gateway, fake_twilio, busy, text)
        for sender in others:
            await sms_in(gateway, fake_twilio, sender, "LaporHendi jalan berlubang")
        await gateway.app[DISPATCHER].drain()
        # The busy citizen gets a burst of three at once; everyone else is not kept waiting behind them.
        assert len(fake_twilio.messages_to(busy)) == 3
        assert all(len(fake_twilio.messages_to(s)) == 1 for s in others)
        clock.advance(seconds=1)
        await gateway.app[DISPATCHER].drain()
        assert len(fake_twilio.messages_to(busy)) == 4
        clock.advance(seconds=1)
        await gateway.app[DISPATCHER].drain()
        assert len(fake_twilio.messages_to(busy)) == 5
        assert len(fake_twilio.sent) == 9
    finally:
        await gateway.stop()
