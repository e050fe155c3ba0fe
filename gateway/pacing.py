"""Send rates the providers publish, kept before they have to say 429.

A flood of status updates (one verification round, a bulk forward) can owe thousands of messages at
once. WhatsApp senders have a documented throughput, and Telegram allows about 30 messages a second
per bot and one a second per chat; past those, messages are refused or silently dropped. So the
dispatcher only claims a row when its channel, and its recipient, still have a token: the rest stay
pending, in order, and go out as the buckets refill. A 429 still pauses the channel (gateway.outbox);
pacing just makes it rare.

Limits are per process: with several sending processes, give each its share.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

DEFAULT_CHANNEL_RATES: Mapping[str, float] = {
    "telegram": 30.0,
    "twilio_whatsapp": 80.0,
    "whatsapp_cloud": 80.0,
}
"""Messages per second per channel unless configured: Telegram's bot limit, and the default
throughput of a WhatsApp Business sender (Twilio and Meta both document 80/s)."""

DEFAULT_RECIPIENT_RATES: Mapping[str, float] = {"telegram": 1.0}
"""Messages per second to one recipient: Telegram asks bots for no more than one a second per chat."""

CHANNEL_BURST_SECONDS = 0.25
"""A channel's bucket holds a quarter second of its rate: any one-second window then sees at most
1.25x the rate (a full second's burst would allow 2x, which providers count as over the limit)."""

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


@dataclass
class _Bucket:
    tokens: float
    at: datetime


class TokenBuckets:
    """One bucket per key, refilled at its rate up to `burst` messages, or `burst_seconds` of its rate
    (at least one message)."""

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
        elapsed = max(0.0, (now - bucket.at).total_seconds())
        bucket.tokens, bucket.at = min(burst, bucket.tokens + elapsed * rate), now
        return bucket

    def available(self, channel: str, key: str, now: datetime) -> bool:
        bucket = self._bucket(channel, key, now)
        return bucket is None or bucket.tokens >= 1.0

    def take(self, channel: str, key: str, now: datetime) -> bool:
        """Spend one token if there is one; a channel without a rate always has one."""
        bucket = self._bucket(channel, key, now)
        if bucket is None:
            return True
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True

    def forget_idle(self, now: datetime) -> None:
        """Drop full buckets, so one per recipient ever written to does not live forever."""
        for channel, key in list(self._buckets):
            bucket = self._bucket(channel, key, now)
            if bucket is not None and bucket.tokens >= self._capacity(channel):
                del self._buckets[(channel, key)]


class Pacer:
    """The channel and recipient buckets the dispatcher consults when it claims rows."""

    def __init__(self, channel_rates: Mapping[str, float], recipient_rates: Mapping[str, float]) -> None:
        self.channels = TokenBuckets(channel_rates, burst_seconds=CHANNEL_BURST_SECONDS)
        self.recipients = TokenBuckets(recipient_rates, burst=RECIPIENT_BURST)
        self._claims = 0
        self.held_back = False
        """Whether the last claim left sendable rows for later: then claim again soon, not at idle pace."""

    def open_channels(self, channels: list[str], now: datetime) -> list[str]:
        """The channels that may send one more message now."""
        open_now = [c for c in channels if self.channels.available(c, "", now)]
        self.held_back = len(open_now) < len(channels)
        return open_now

    def admit(self, channel: str, recipient: str, now: datetime) -> bool:
        """Whether a row for `recipient` on `channel` may be sent now; spends the tokens if so."""
        if not self.recipients.available(channel, recipient, now) or not self.channels.take(channel, "", now):
            self.held_back = True
            return False
        self.recipients.take(channel, recipient, now)
        self._claims += 1
        if self._claims % 10_000 == 0:
            self.recipients.forget_idle(now)
        return True
