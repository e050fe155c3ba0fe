"""gateway/collector.py: cyclic garbage is still collected, young and old, with automatic collection off."""

from __future__ import annotations

import asyncio
import gc
import weakref

from gateway.collector import PacedCollector


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def _cycle_that_sets(collected: asyncio.Event) -> _Cycle:
    cycle = _Cycle()
    weakref.finalize(cycle, collected.set)
    return cycle


async def test_young_cyclic_garbage_is_collected_on_the_clock_with_automatic_collection_off() -> None:
    collector = PacedCollector(young_seconds=0.001, full_seconds=3600)
    collector.start()
    try:
        assert not gc.isenabled()
        collected = asyncio.Event()
        _cycle_that_sets(collected)  # garbage at once, but only the collector can free a cycle
        await asyncio.wait_for(collected.wait(), timeout=10)
    finally:
        await collector.stop()
    assert gc.isenabled()


async def test_old_cyclic_garbage_waits_for_the_full_collection() -> None:
    collector = PacedCollector(young_seconds=0.001, full_seconds=0.0)  # every collection is full
    gc.disable()  # nothing but the collector under test frees it
    collected = asyncio.Event()
    cycle = _cycle_that_sets(collected)
    gc.collect(1)
    gc.collect(1)  # it survived two: the oldest generation now, which young collections never walk
    del cycle
    collector.start()
    try:
        await asyncio.wait_for(collected.wait(), timeout=10)
    finally:
        await collector.stop()


async def test_young_collections_leave_the_oldest_generation_alone() -> None:
    collector = PacedCollector(young_seconds=0.001, full_seconds=3600)
    gc.disable()
    old_collected, young_collected = asyncio.Event(), asyncio.Event()
    old = _cycle_that_sets(old_collected)
    gc.collect(1)
    gc.collect(1)
    del old
    collector.start()
    try:
        _cycle_that_sets(young_collected)
        await asyncio.wait_for(young_collected.wait(), timeout=10)
        assert not old_collected.is_set()
    finally:
        await collector.stop()
    gc.collect()
    assert old_collected.is_set()
