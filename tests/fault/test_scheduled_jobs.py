"""Scheduled work with several gateway processes on one database: each tick happens once.

Every `lapor serve` (and `lapor worker`) runs the conversation timers (reminders to idle citizens,
expiry of abandoned drafts) with no leader election: a tick is claimed row by row (`SELECT ... FOR
UPDATE SKIP LOCKED` and a re-check of `timer_at` on PostgreSQL, `BEGIN IMMEDIATE` on SQLite). Two
processes are two `Database` handles here (two connection pools, two SQLite writers), racing on the
same due conversations. The deadline job (escalation) makes the same promise with conditional
UPDATEs; tests/workflow/test_escalation.py::test_two_processes_fire_each_step_once holds it to it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from adapters.base import Address, AddressKind, InboundMessage, Medium
from conversation import api as conv
from conversation.machine import step
from gateway.effects import Stepper
from gateway.pipeline import Ingestor
from gateway.timers import ConversationTimers
from store import models
from store.db import Database
from store.migrate import upgrade
from tests.fault.support import citizen
from tests.harness import ManualClock

CONVERSATIONS = 12


@pytest.fixture
async def databases(database_url: str) -> AsyncIterator[tuple[Database, Database]]:
    first = Database(database_url, sqlite_synchronous="NORMAL")
    await upgrade(first.engine)
    second = Database(database_url, sqlite_synchronous="NORMAL")
    yield first, second
    await second.dispose()
    await first.dispose()


async def owed(db: Database) -> Counter[str]:
    async with db.engine.connect() as conn:
        return Counter(str(to) for to in (await conn.execute(select(models.outbox.c.to_address))).scalars())


async def test_two_processes_tick_each_idle_conversation_once(databases: tuple[Database, Database]) -> None:
    first, second = databases
    clock = ManualClock()
    stepper = Stepper(step, conv.Settings())
    senders = [citizen(i) for i in range(CONVERSATIONS)]
    ingestor = Ingestor(first, stepper, clock=clock, writers=1)
    await ingestor.start()
    try:
        await ingestor.ingest(
            [
                InboundMessage(
                    channel="twilio_sms",
                    medium=Medium.SMS,
                    provider_message_id=uuid.uuid4().hex,
                    sender=Address(AddressKind.PHONE, sender),
                    received_at=clock(),
                    text="LaporHendi lampu PJU mati",  # a draft: the bot asks where
                )
                for sender in senders
            ]
        )
    finally:
        await ingestor.stop()
    assert await owed(first) == dict.fromkeys(senders, 1)

    timers = [
        ConversationTimers(db, stepper, clock=clock, on_committed=lambda: None) for db in (first, second)
    ]

    async def both_race() -> int:
        ticked = await asyncio.gather(*(t.run_due() for t in timers for _ in range(2)))
        return sum(ticked)

    assert await both_race() == 0
    clock.advance(minutes=31)  # idle past the reminder
    assert await both_race() == CONVERSATIONS
    assert await owed(first) == dict.fromkeys(senders, 2), "each idle citizen reminded exactly once"
    assert await both_race() == 0
    clock.advance(hours=25)  # abandoned past the expiry
    expired = await both_race()
    after_expiry = await owed(first)
    assert expired == CONVERSATIONS
    assert len(set(after_expiry.values())) == 1, f"expiry ticked unevenly: {after_expiry}"
    assert await both_race() == 0
    assert await owed(first) == after_expiry
