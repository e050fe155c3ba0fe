"""The per-sender token bucket: a burst at once, then the rate; told once per flood; bounded memory."""

from __future__ import annotations

import gc
from datetime import UTC, datetime, timedelta

from gateway.ratelimit import SenderLimiter

START = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)


def test_a_burst_then_the_rate_and_one_warning_per_flood() -> None:
    limiter = SenderLimiter(per_minute=6, burst=3)  # one message every 10 s after the burst
    at = START
    assert [limiter.check("+6281", at) for _ in range(3)] == [(True, False)] * 3
    assert limiter.check("+6281", at) == (False, True)  # told once ...
    assert limiter.check("+6281", at + timedelta(seconds=5)) == (False, False)  # ... not again
    assert limiter.check("+6281", at + timedelta(seconds=10)) == (True, False)  # a token back
    assert limiter.check("+6281", at + timedelta(seconds=10)) == (False, False)  # same flood
    # Quiet long enough to earn two tokens: the flood is over, the next one is told again.
    later = at + timedelta(seconds=40)
    assert limiter.check("+6281", later) == (True, False)
    assert [limiter.check("+6281", later)[0] for _ in range(3)] == [True, True, False]
    assert limiter.check("+6281", later) == (False, False)  # still the warning of this flood
    quiet = later + timedelta(minutes=5)
    assert [limiter.check("+6281", quiet) for _ in range(3)] == [(True, False)] * 3
    assert limiter.check("+6281", quiet) == (False, True)


def test_senders_are_counted_apart_and_the_least_recent_forgotten_first() -> None:
    limiter = SenderLimiter(per_minute=1, burst=1, capacity=2)
    assert limiter.check("a", START) == (True, False)
    assert limiter.check("b", START) == (True, False)
    assert limiter.check("a", START) == (False, True)  # a is now the most recent
    assert limiter.check("c", START) == (True, False)  # b is forgotten, a kept
    assert limiter.check("a", START) == (False, False)
    assert limiter.check("b", START) == (True, False)  # forgotten: a fresh burst


def test_a_clock_going_back_earns_no_tokens() -> None:
    limiter = SenderLimiter(per_minute=60, burst=1)
    assert limiter.check("a", START) == (True, False)
    assert limiter.check("a", START - timedelta(minutes=5)) == (False, True)


def test_off_when_the_rate_is_zero() -> None:
    limiter = SenderLimiter(per_minute=0, burst=0)
    assert not limiter.enabled
    assert all(limiter.check("a", START) == (True, False) for _ in range(100))


def test_what_it_keeps_per_sender_is_nothing_the_garbage_collector_traverses() -> None:
    """Tens of thousands of senders must not lengthen every collection (see gateway/ratelimit.py)."""
    limiter = SenderLimiter(per_minute=20, burst=10)
    for number in range(1000):
        limiter.check(f"+62812{number:07d}", START)
    gc.collect()
    tracked = {id(obj) for obj in gc.get_objects()}
    assert not any(id(state) in tracked for state in limiter._buckets.values())
