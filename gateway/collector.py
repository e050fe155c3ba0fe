"""The cyclic garbage collector of `lapor serve`, run on a clock instead of on allocation counts.

CPython starts a young collection when allocations minus deallocations of tracked objects pass a
threshold. The conversation's caches (places, categories, descriptions: what the texts of the last
few thousand messages gave) fill up within minutes, and from then on every new entry's objects are
allocated as an old entry's are freed: the count hardly moves while the young generation grows by
a dozen objects a message. Collections then came every few seconds, each walking some 30,000 young
objects with the GIL held, and every tenth the middle generation too: 10-28 ms and 27-50 ms, the
slowest webhooks of a fixed-rate run (bench/ingest.py at 1,000 msg/s).

On a clock, a young collection walks only what the last tenth of a second brought (well under a
millisecond's work at that rate), and what outlives it is walked again only by the full collection
once a minute. (Every 0.25 s: median pauses 2.0-2.3 ms, max 8.8-11.4 ms; every 0.1 s, over four
alternating rounds of 16 s wrk then 5 s at 1,000 msg/s: p99 median 33.3 -> 20.7 ms, within the
machine's noise on throughput.) Cyclic garbage waits at most that minute: the gateway makes
little of it (tens of objects a second), so that is a megabyte or two at worst.
"""

from __future__ import annotations

import asyncio
import gc

YOUNG_SECONDS = 0.1
"""How often the young and middle generations are collected."""
FULL_SECONDS = 60.0
"""How often everything is (what outlived a young collection waits this long at most)."""


class PacedCollector:
    """Turns automatic collection off and collects on its own clock until stopped, then turns it
    back on."""

    def __init__(self, young_seconds: float = YOUNG_SECONDS, full_seconds: float = FULL_SECONDS) -> None:
        self._young = young_seconds
        self._full = full_seconds
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        gc.disable()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="garbage-collector")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        gc.enable()

    async def _run(self) -> None:
        clock = asyncio.get_running_loop().time
        last_full = clock()
        while True:
            await asyncio.sleep(self._young)
            now = clock()
            if now - last_full >= self._full:
                gc.collect()
                last_full = now
            else:
                gc.collect(1)
