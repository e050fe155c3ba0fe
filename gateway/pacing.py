"""Send rates the providers publish, kept before they have to say 429.

A flood of status updates (one verification round, a bulk forward) can owe thousands of messages at
once. WhatsApp senders have a documented throughput, and Telegram allows about 30 messages a second
per bot and one a second per chat; past those, messages are refused or silently dropped. So pacing
works in three steps per row:

- *reserve*, at claim: the dispatcher claims only the rows that the channel's and the recipient's
  buckets will allow within the next `CLAIM_AHEAD_SECONDS`; the rest stay pending, in order;
- *admit*, when a send slot is free: the row goes on only if both buckets have a token now (and
  the channel started fewer than its rate in the last second); its tokens are set aside;
- *spend*, when its send starts: the tokens count from here, as the provider will count them.

So rows claimed early, or waiting for a free slot, cannot reach the provider together, and a send
task that starts late (a busy event loop) counts when it starts. A 429 still pauses the channel
(gateway.outbox); pacing just makes it rare.

Limits are per process: with several sending processes, give each its share. The buckets are shared
between the event loop (sends) and the database thread (claims), so every method takes a lock.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

DEFAULT_CHANNEL_RATES: Mapping[str, float] = {
    "telegram": 30.0,
    "twilio_whatsapp": 80.0,
    "whatsapp_cloud": 80.0,
}
"""Messages per second per channel unless configured: Telegram's bot limit, and the default
throughput of a WhatsApp Business sender (Twilio and Meta both document 80/s)."""

DEFAULT_RECIPIENT_RATES: Mapping[str, float] = {"telegram": 1.0}
"""Messages per second to one recipient: Telegram asks bots for no more than one a second per chat."""

CHANNEL_BURST_SECONDS = 0.1
"""A channel's bucket holds a tenth of a second of its rate (at least one message): it lets a
dispatcher that was late catch up. Send starts are also capped at the rate per second
(`SendsPerSecond`), so the burst is left as room for the jitter between a send's start and its
arrival: the provider's busiest second stays within the rate plus this (88 at 80/s, 33 at 30/s)."""

CLAIM_AHEAD_SECONDS = 0.25
"""How far ahead a paced channel's rows are claimed: what its buckets allow within this time. It
covers the time between claims (`HELD_BACK_TICK`) and a claim's own round trip, and keeps the rows a
crash would leave in doubt to a quarter second's worth."""

ONE_SECOND = timedelta(seconds=1)

HELD_BACK_TICK = 0.05
"""How soon the dispatcher claims again when pacing held rows back (instead of its idle poll)."""

RECIPIENT_BURST = 3.0
"""Messages one recipient may get at once before the rate applies: a reply and a status update in
the same second are normal, and Telegram documents tolerating short bursts."""


def parse_rates(items: list[str], key: str) -> dict[str, float]:
    """`["telegram=30", "twilio_sms=10"]` -> {"telegram": 30.0, ...}; ValueError names what is wrong."""
    rates: dict[str, float] = {}
    for item in items:
        channel, _, value = item.partition("=")
        try:
            rate = float(value)
        except ValueError:
            rate = 0.0
        if not channel.strip() or rate <= 0:
            raise ValueError(f"outbox.{key}: {item!r} is not channel=messages_per_second (more than 0)")
        rates[channel.strip()] = rate
    return rates


def channel_burst(rate: float) -> float:
    """How many messages a channel bucket of `rate` holds: what one second may see above the rate."""
    return max(1.0, rate * CHANNEL_BURST_SECONDS)


@dataclass
class _Bucket:
    tokens: float
    at: datetime
    reserved: int = 0
    """Rows claimed against this bucket that have not taken their token yet."""
    admitted: int = 0
    """Of those, the ones given a send slot whose send has not started yet: their tokens are spoken
    for, and spent when the send starts."""


class TokenBuckets:
    """One bucket per key, refilled at its rate up to `burst` messages, or `burst_seconds` of its rate
    (at least one message). Not locked: `Pacer` holds the lock."""

    def __init__(
        self, rates: Mapping[str, float], burst: float | None = None, burst_seconds: float = 1.0
    ) -> None:
        self._rates = dict(rates)
        self._burst = burst
        self._burst_seconds = burst_seconds
        self._buckets: dict[tuple[str, str], _Bucket] = {}

    def _capacity(self, channel: str) -> float:
        return max(1.0, self._burst or self._rates[channel] * self._burst_seconds)

    def limited(self, channel: str) -> bool:
        return channel in self._rates

    def _bucket(self, channel: str, key: str, now: datetime) -> _Bucket | None:
        rate = self._rates.get(channel)
        if rate is None:
            return None
        burst = self._capacity(channel)
        bucket = self._buckets.get((channel, key))
        if bucket is None:
            bucket = self._buckets[(channel, key)] = _Bucket(burst, now)
        elapsed = (now - bucket.at).total_seconds()
        if elapsed > 0:  # never back: a claim reads the clock before its transaction, sends after
            # Capped at the burst even while admitted sends have yet to spend theirs: a refill they
            # would have made room for is forgone, so sends that start late cannot start together.
            bucket.tokens, bucket.at = min(burst, bucket.tokens + elapsed * rate), now
        return bucket

    def available(self, channel: str, key: str, now: datetime) -> bool:
        bucket = self._bucket(channel, key, now)
        return bucket is None or bucket.tokens - bucket.admitted >= 1.0

    def take(self, channel: str, key: str, now: datetime) -> bool:
        """Spend one token now if there is one; a channel without a rate always has one."""
        bucket = self._bucket(channel, key, now)
        if bucket is None:
            return True
        if bucket.tokens - bucket.admitted < 1.0:
            return False
        bucket.tokens -= 1.0
        return True

    def budget(self, channel: str, key: str, now: datetime, ahead: float) -> float:
        """Messages this bucket can still promise within `ahead` seconds (infinite without a rate)."""
        bucket = self._bucket(channel, key, now)
        if bucket is None:
            return math.inf
        return bucket.tokens + self._rates[channel] * ahead - bucket.reserved

    def reserve(self, channel: str, key: str, now: datetime, ahead: float) -> bool:
        """Promise one of the tokens the next `ahead` seconds will bring, if any are left."""
        if self.budget(channel, key, now, ahead) < 1.0:
            return False
        bucket = self._buckets.get((channel, key))
        if bucket is not None:
            bucket.reserved += 1
        return True

    def unreserve(self, channel: str, key: str, *, admitted: bool = False) -> None:
        bucket = self._buckets.get((channel, key))
        if bucket is not None:
            bucket.reserved = max(0, bucket.reserved - 1)
            if admitted:
                bucket.admitted = max(0, bucket.admitted - 1)

    def admit(self, channel: str, key: str, now: datetime) -> None:
        """Set a token aside for a send about to start (call only when `available`)."""
        bucket = self._bucket(channel, key, now)
        if bucket is not None:
            bucket.admitted += 1

    def admitted(self, channel: str, key: str) -> int:
        bucket = self._buckets.get((channel, key))
        return bucket.admitted if bucket is not None else 0

    def spend(self, channel: str, key: str, now: datetime) -> None:
        """An admitted send starts: its token is spent, its reservation fulfilled."""
        bucket = self._bucket(channel, key, now)
        if bucket is not None:
            bucket.tokens = max(0.0, bucket.tokens - 1.0)
            self.unreserve(channel, key, admitted=True)

    def wait(self, channel: str, key: str, now: datetime) -> float:
        """Seconds until this bucket has a token to admit (0 if it has one, or has no rate)."""
        bucket = self._bucket(channel, key, now)
        if bucket is None or bucket.tokens - bucket.admitted >= 1.0:
            return 0.0
        return (1.0 + bucket.admitted - bucket.tokens) / self._rates[channel]

    def forget_idle(self, now: datetime) -> None:
        """Drop full buckets nobody holds a reservation on, so one per recipient ever written to does
        not live forever."""
        for channel, key in list(self._buckets):
            bucket = self._bucket(channel, key, now)
            if bucket is not None and bucket.tokens >= self._capacity(channel) and not bucket.reserved:
                del self._buckets[(channel, key)]


class SendsPerSecond:
    """The sends started on each channel in the last second: no one-second window of starts may
    hold more than the channel's rate.

    The bucket alone lets a second hold its rate plus its burst, and the provider sees each send a
    little after it starts, later when the event loop is busy: such jitter can move a few more into
    one of the provider's seconds. Capping the starts at the rate leaves the burst as room for
    that, so the provider's busiest second stays within rate + burst; the average is unchanged."""

    def __init__(self, rates: Mapping[str, float]) -> None:
        self._limits = {channel: max(1, math.floor(rate)) for channel, rate in rates.items()}
        self._starts: dict[str, deque[datetime]] = {channel: deque() for channel in rates}

    def _recent(self, channel: str, now: datetime) -> deque[datetime] | None:
        starts = self._starts.get(channel)
        if starts is not None:
            while starts and now - starts[0] >= ONE_SECOND:
                starts.popleft()
        return starts

    def room(self, channel: str, now: datetime, pending: int) -> bool:
        """Whether one more send may start now, with `pending` admitted ones yet to start."""
        starts = self._recent(channel, now)
        return starts is None or len(starts) + pending < self._limits[channel]

    def started(self, channel: str, now: datetime) -> None:
        starts = self._starts.get(channel)
        if starts is not None:
            starts.append(now)

    def wait(self, channel: str, now: datetime, pending: int) -> float:
        """Seconds until `room` (0 if now): when enough of the last second's starts age out."""
        starts = self._recent(channel, now)
        if starts is None or len(starts) + pending < self._limits[channel]:
            return 0.0
        excess = len(starts) + pending - self._limits[channel]
        if excess >= len(starts):  # sends admitted but not started fill the second: look again soon
            return HELD_BACK_TICK
        return max(0.0, (starts[excess] + ONE_SECOND - now).total_seconds())


class Pacer:
    """The channel and recipient buckets, in three steps per row: reserved when it is claimed,
    admitted when it gets a send slot, spent when its send starts."""

    def __init__(
        self,
        channel_rates: Mapping[str, float],
        recipient_rates: Mapping[str, float],
        *,
        ahead: float = CLAIM_AHEAD_SECONDS,
    ) -> None:
        self.channels = TokenBuckets(channel_rates, burst_seconds=CHANNEL_BURST_SECONDS)
        self.recipients = TokenBuckets(recipient_rates, burst=RECIPIENT_BURST)
        self.seconds = SendsPerSecond(channel_rates)
        self._ahead = ahead
        self._paced = frozenset(channel_rates) | frozenset(recipient_rates)
        self._lock = threading.Lock()
        self._spent = 0
        self.held_back = False
        """Whether the last claim left sendable rows for later: then claim again soon, not at idle pace."""

    def paces(self, channel: str) -> bool:
        return channel in self._paced

    def open_channels(self, channels: list[str], now: datetime) -> list[str]:
        """The channels that can still promise one more message within the claim-ahead time."""
        with self._lock:
            open_now = [c for c in channels if self.channels.budget(c, "", now, self._ahead) >= 1.0]
            self.held_back = len(open_now) < len(channels)
            return open_now

    def reserve(self, channel: str, recipient: str, now: datetime) -> bool:
        """At claim: whether a row for `recipient` on `channel` may be claimed now (it will get its
        tokens within the claim-ahead time); if so its tokens are promised to it."""
        if channel not in self._paced:
            return True
        with self._lock:
            ahead = self._ahead
            if self.recipients.budget(channel, recipient, now, ahead) < 1.0 or not self.channels.reserve(
                channel, "", now, ahead
            ):
                self.held_back = True
                return False
            self.recipients.reserve(channel, recipient, now, ahead)
            return True

    def release(self, channel: str, recipient: str, *, admitted: bool = False) -> None:
        """A reserved (perhaps admitted) row goes back unsent: its promise is given back."""
        if channel not in self._paced:
            return
        with self._lock:
            self.channels.unreserve(channel, "", admitted=admitted)
            self.recipients.unreserve(channel, recipient, admitted=admitted)

    def admit(self, channel: str, recipient: str, now: datetime) -> bool:
        """Given a send slot: whether both buckets have a token for this row now; if so it is set
        aside for it, to be spent (`spend`) when its send starts."""
        if channel not in self._paced:
            return True
        with self._lock:
            if not self.recipients.available(channel, recipient, now):
                return False
            if not self.channels.available(channel, "", now):
                return False
            if not self.seconds.room(channel, now, self.channels.admitted(channel, "")):
                return False
            self.channels.admit(channel, "", now)
            self.recipients.admit(channel, recipient, now)
            return True

    def spend(self, channel: str, recipient: str, now: datetime) -> None:
        """The admitted row's send starts now: this is when its tokens count, as the provider will
        count them. (A send task starts a loop iteration after it is made, later under load.)"""
        if channel not in self._paced:
            return
        with self._lock:
            self.channels.spend(channel, "", now)
            self.recipients.spend(channel, recipient, now)
            self.seconds.started(channel, now)
            self._spent += 1
            if self._spent % 10_000 == 0:
                self.recipients.forget_idle(now)

    def wait(self, channel: str, recipient: str, now: datetime) -> float:
        """Seconds until `admit` could succeed for this row (0 if now)."""
        if channel not in self._paced:
            return 0.0
        with self._lock:
            return max(
                self.channels.wait(channel, "", now),
                self.recipients.wait(channel, recipient, now),
                self.seconds.wait(channel, now, self.channels.admitted(channel, "")),
            )
