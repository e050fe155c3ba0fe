"""Per-sender rate limiting: one flooding number (or a stuck phone resending) cannot starve everyone.

Each sender has a token bucket: `burst` messages at once, refilled at `per_minute`. A message over the
limit is still stored (acknowledged to the provider, kept for officers: nothing is lost) but is not
run through the conversation, and the sender is told politely, once per quiet period, to slow down.
State is per process and bounded (least recently seen senders are forgotten first).
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime

_State = tuple[float, float, bool]
"""(tokens left, when they were counted in epoch seconds, told to slow down): a tuple of plain
values, which the garbage collector stops tracking after its first look. A bucket object per sender
(100,000 at capacity) was traversed by every collection of the older generations instead: with the
senders of one busy hour, a 20-50 ms pause on the webhooks every few seconds."""


class SenderLimiter:
    def __init__(self, per_minute: float, burst: int, capacity: int = 100_000) -> None:
        self._rate = per_minute / 60.0
        self._burst = float(burst)
        self._capacity = capacity
        self._buckets: OrderedDict[str, _State] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self._rate > 0

    def check(self, sender: str, now: datetime) -> tuple[bool, bool]:
        """(allowed, tell them): `tell them` is True for the first refused message of a flood."""
        if not self.enabled:
            return True, False
        at = now.timestamp()
        buckets = self._buckets
        state = buckets.get(sender)
        if state is None:
            tokens, warned = self._burst, False
            if len(buckets) >= self._capacity:
                buckets.popitem(last=False)  # the sender seen least recently
        else:
            buckets.move_to_end(sender)
            tokens, counted, warned = state
            tokens = min(self._burst, tokens + max(0.0, at - counted) * self._rate)
        if tokens >= 1.0:
            tokens -= 1.0
            buckets[sender] = (tokens, at, warned and tokens < 1.0)
            return True, False
        buckets[sender] = (tokens, at, True)
        return False, not warned
