"""Per-sender rate limiting: one flooding number (or a stuck phone resending) cannot starve everyone.

Each sender has a token bucket: `burst` messages at once, refilled at `per_minute`. A message over the
limit is still stored (acknowledged to the provider, kept for officers: nothing is lost) but is not
run through the conversation, and the sender is told politely, once per quiet period, to slow down.
State is per process and bounded (least recently seen senders are forgotten first).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime


@dataclass
class _Bucket:
    tokens: float
    updated: datetime
    warned: bool = False


class SenderLimiter:
    def __init__(self, per_minute: float, burst: int, capacity: int = 100_000) -> None:
        self._rate = per_minute / 60.0
        self._burst = float(burst)
        self._capacity = capacity
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self._rate > 0

    def check(self, sender: str, now: datetime) -> tuple[bool, bool]:
        """(allowed, tell them): `tell them` is True for the first refused message of a flood."""
        if not self.enabled:
            return True, False
        bucket = self._buckets.get(sender)
        if bucket is None:
            bucket = _Bucket(self._burst, now)
            self._buckets[sender] = bucket
            if len(self._buckets) > self._capacity:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(sender)
            elapsed = max(0.0, (now - bucket.updated).total_seconds())
            bucket.tokens = min(self._burst, bucket.tokens + elapsed * self._rate)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            if bucket.tokens >= 1.0:
                bucket.warned = False
            return True, False
        tell = not bucket.warned
        bucket.warned = True
        return False, tell
