"""Per-channel and per-recipient send rates: the dispatcher claims only what the buckets will allow
within a quarter second, each send takes its tokens right before it goes (so the provider sees the
rate, however long rows waited for a free slot), the rest waits its turn in order, and nothing is
lost or sent twice. Time is a ManualClock shared with the fake provider, so "when the provider saw
it" is exact."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from gateway.app import DISPATCHER
from gateway.config import ConfigError
from gateway.pacing import CLAIM_AHEAD_SECONDS, Pacer, TokenBuckets, channel_burst, parse_rates
from tests.fakes.twilio import FakeTwilio
from tests.harness import ManualClock, RunningGateway, make_config, sms_in, start_twilio_gateway

SMS_PATH = "/webhooks/twilio/sms"
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def busiest_second(times: list[float]) -> int:
    """The most events in any one-second window [t, t + 1) (events exactly a second apart are in two
    windows; the nanosecond keeps float rounding from putting them in one)."""
    times = sorted(times)
    return max(
        (sum(1 for t in times[i:] if t < start + 1.0 - 1e-9) for i, start in enumerate(times)), default=0
    )


def test_sends_that_spend_their_tokens_as_they_start_never_put_more_than_rate_plus_burst_into_a_second() -> (
    None
):
    """Claims reserve ahead every 50 ms; a free slot admits the oldest reserved row when its tokens
    are there; its send starts (and spends them) up to 80 ms later, as a loaded event loop gets to
    it. Providers count per second: no one-second window of send starts sees more than the rate
    plus the bucket's tenth of a second (a full second's burst would allow twice the rate)."""
    pacer = Pacer({"twilio_whatsapp": 80.0}, {})
    reserved: list[str] = []
    starting: list[tuple[int, str]] = []
    started: list[float] = []
    for tick in range(5000):
        moment = T0 + timedelta(milliseconds=tick)
        if tick % 50 == 0:
            while pacer.reserve("twilio_whatsapp", f"+62812{tick}-{len(reserved)}", moment):
                reserved.append(f"+62812{tick}-{len(reserved)}")
        while reserved and pacer.admit("twilio_whatsapp", reserved[0], moment):
            starting.append((tick + (tick * 7919) % 80, reserved.pop(0)))  # each starts 0-79 ms later
        for _, recipient in [s for s in starting if s[0] == tick]:
            pacer.spend("twilio_whatsapp", recipient, moment)
            started.append(tick / 1000)
        starting = [s for s in starting if s[0] > tick]
    assert busiest_second(started) <= 80 + channel_burst(80.0), busiest_second(started)
    assert 380 <= len(started) <= 410, "80/s over 5 s"
    assert len(reserved) <= channel_burst(80.0) + 80 * CLAIM_AHEAD_SECONDS, "a quarter second ahead"


def test_a_reservation_is_a_promise_of_the_next_quarter_second_and_can_be_given_back() -> None:
    pacer = Pacer({"telegram": 4.0}, {"telegram": 1.0})
    # 1 token in the channel bucket (a tenth of a second of 4/s, at least one) and 1 more to come
    # within a quarter second; the chat's bucket has its burst of 3.
    assert [pacer.reserve("telegram", "chat-a", T0) for _ in range(3)] == [True, True, False]
    assert pacer.admit("telegram", "chat-a", T0)
    assert not pacer.admit("telegram", "chat-a", T0), "the second token is not there yet"
    assert pacer.wait("telegram", "chat-a", T0) == pytest.approx(0.25)
    pacer.spend("telegram", "chat-a", T0 + timedelta(seconds=0.2))
    assert not pacer.admit("telegram", "chat-a", T0 + timedelta(seconds=0.2)), "spent at the start"
    pacer.release("telegram", "chat-a")
    assert pacer.reserve("telegram", "chat-b", T0), "a promise given back can be made to another row"
    assert pacer.admit("telegram", "chat-b", T0 + timedelta(seconds=0.45))
    pacer.release("telegram", "chat-b", admitted=True)
    assert pacer.admit("telegram", "chat-b", T0 + timedelta(seconds=0.45)), "a send that never started"
    assert pacer.admit("twilio_sms", "anyone", T0) and pacer.reserve("twilio_sms", "anyone", T0), "no rate"


def test_a_bucket_gives_its_burst_then_its_rate() -> None:
    buckets = TokenBuckets({"telegram": 3.0})
    assert [buckets.take("telegram", "", T0) for _ in range(4)] == [True, True, True, False]
    assert not buckets.take("telegram", "", T0 + timedelta(seconds=0.3))
    assert buckets.take("telegram", "", T0 + timedelta(seconds=0.4))  # 0.4 s x 3/s = 1.2 tokens
    assert buckets.take("other", "", T0), "a channel without a rate is never held back"


def test_a_bucket_read_at_an_earlier_moment_does_not_refill_twice() -> None:
    """A claim reads the clock before its transaction and reserves inside it, while sends spend at a
    later moment meanwhile: time read out of order must not hand out the same refill twice."""
    buckets = TokenBuckets({"telegram": 10.0}, burst=1.0)
    assert buckets.take("telegram", "", T0 + timedelta(seconds=1.0))
    assert not buckets.available("telegram", "", T0 + timedelta(seconds=0.5)), "an earlier moment"
    assert not buckets.take("telegram", "", T0 + timedelta(seconds=1.05)), "0.5 token since the take"
    assert buckets.take("telegram", "", T0 + timedelta(seconds=1.1))


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
    gateway = await paced_gateway(database_url, fake_twilio, clock, OUTBOX__RECIPIENT_RATES="twilio_sms=1")
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


@pytest.fixture
async def clocked_twilio(clock: ManualClock) -> AsyncIterator[FakeTwilio]:
    """The fake Twilio stamping each message with the test's clock: what the provider counts."""
    async with FakeTwilio(clock=clock) as fake:
        yield fake


def provider_seconds(fake: FakeTwilio, clock: ManualClock, start: datetime) -> list[float]:
    return [(m["_created"] - start).total_seconds() for m in fake.sent]


async def test_sends_waiting_for_a_slot_take_their_tokens_when_they_start_not_when_claimed(
    database_url: str, clocked_twilio: FakeTwilio, clock: ManualClock
) -> None:
    """The provider stops answering for two seconds with all four send slots taken, while the dispatcher
    keeps claiming. Tokens taken at claim would pile up on the waiting rows and all reach the
    provider the moment it answers again; taken at the start of each send, they cannot."""
    gateway = await paced_gateway(
        database_url,
        clocked_twilio,
        clock,
        OUTBOX__CHANNEL_RATES="twilio_sms=4",
        OUTBOX__CONCURRENCY="4",
    )
    try:
        dispatcher = gateway.app[DISPATCHER]
        senders = [f"+6281300000{i:03d}" for i in range(13)]
        # A channel's first send goes alone (its client may still be starting): done before the
        # provider stalls, so the stall below meets a channel in full flow.
        await sms_in(gateway, clocked_twilio, senders[0], "LaporHendi lampu jalan mati")
        await dispatcher.drain()
        clock.advance(seconds=1)
        for sender in senders[1:]:
            await sms_in(gateway, clocked_twilio, sender, "LaporHendi lampu jalan mati")
        start = clock.now
        clocked_twilio.hold_answers()
        for _ in range(8):  # two seconds in which nothing is answered
            await dispatcher.dispatch_once()
            await clocked_twilio.wait_for_messages(1 + dispatcher.sending)  # arrived before time moves
            clock.advance(seconds=0.25)
        assert len(clocked_twilio.sent) - 1 == dispatcher.sending == 4, "every slot taken, nothing more"
        clocked_twilio.release_answers()
        while len(clocked_twilio.sent) < len(senders) and clock.now < start + timedelta(seconds=10):
            await dispatcher.drain()
            clock.advance(seconds=0.25)
        seconds = provider_seconds(clocked_twilio, clock, start)[1:]  # the first, before the stall
        assert busiest_second(seconds) <= 4 + channel_burst(4.0), seconds
        assert sorted(m["to"] for m in clocked_twilio.sent) == sorted(senders), "each once, none lost"
    finally:
        clocked_twilio.release_answers()
        await gateway.stop()


async def test_a_busy_channel_reaches_the_provider_at_its_rate(
    database_url: str, clocked_twilio: FakeTwilio, clock: ManualClock
) -> None:
    """Forty replies owed on a 10/s channel, the dispatcher driven every 50 ms: the provider's
    busiest second holds the rate plus the bucket's small burst, and the whole lot takes 4 s."""
    gateway = await paced_gateway(database_url, clocked_twilio, clock, OUTBOX__CHANNEL_RATES="twilio_sms=10")
    try:
        senders = [f"+6281300001{i:03d}" for i in range(40)]
        for sender in senders:
            await sms_in(gateway, clocked_twilio, sender, "LaporHendi sampah menumpuk")
        start = clock.now
        while len(clocked_twilio.sent) < len(senders) and clock.now < start + timedelta(seconds=10):
            await gateway.app[DISPATCHER].drain()
            clock.advance(seconds=0.05)
        seconds = provider_seconds(clocked_twilio, clock, start)
        assert busiest_second(seconds) <= 10 + channel_burst(10.0), seconds
        assert 3.5 <= max(seconds) <= 4.0, max(seconds)
        assert len(clocked_twilio.sent) == len(senders)
    finally:
        await gateway.stop()


def test_no_second_of_send_starts_holds_more_than_the_rate() -> None:
    """The bucket's burst is left as room for the jitter between a send's start and its arrival:
    the starts themselves never put more than the rate into one second. (A flow that begins on a
    full bucket would otherwise start 30 + 2 in its first second.)"""
    pacer = Pacer({"telegram": 30.0}, {})
    reserved: list[str] = []
    started: list[float] = []
    for tick in range(0, 5000, 5):
        moment = T0 + timedelta(milliseconds=tick)
        while pacer.reserve("telegram", f"chat-{tick}-{len(reserved)}", moment):
            reserved.append(f"chat-{tick}-{len(reserved)}")
        while reserved and pacer.admit("telegram", reserved[0], moment):
            pacer.spend("telegram", reserved.pop(0), moment)
            started.append(tick / 1000)
    assert busiest_second(started) <= 30, busiest_second(started)
    assert len(started) >= 148, "30/s over 5 s"
