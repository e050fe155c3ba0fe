"""Conversation clock ticks: reminders to idle citizens and expiry of abandoned drafts.

The machine says when it next wants a tick (`conversations.timer_at`); this loop finds the due ones
and steps them, each in its own transaction, through the same effect handling as a message.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import Connection

from adapters.base import Address, AddressKind
from gateway.addressbook import PLAIN, AddressBook
from gateway.effects import IntakeUnit, ReplyTarget, Stepper
from store import models
from store.db import Database

log = logging.getLogger(__name__)


class ConversationTimers:
    def __init__(
        self,
        db: Database,
        stepper: Stepper,
        *,
        clock: Callable[[], datetime],
        on_committed: Callable[[], None],
        poll_seconds: float = 15.0,
        addresses: AddressBook = PLAIN,
    ) -> None:
        self._addresses = addresses
        self._db = db
        self._stepper = stepper
        self._clock = clock
        self._on_committed = on_committed
        self._poll = poll_seconds
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="conversation-timers")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                await self.run_due()
            except Exception:
                log.exception("conversation timers failed; trying again next round")
            await asyncio.sleep(self._poll)

    async def run_due(self, limit: int = 200) -> int:
        """Tick every conversation whose timer has passed; returns how many were ticked."""
        now = self._clock()
        conv = models.conversations
        ident = models.channel_identities
        async with self._db.engine.connect() as conn:
            due = (
                await conn.execute(
                    select(
                        conv.c.reporter_id,
                        conv.c.channel,
                        ident.c.id,
                        ident.c.kind,
                        ident.c.address,
                        ident.c.address_enc,
                    )
                    .join(ident, ident.c.id == conv.c.identity_id)
                    .where(conv.c.timer_at <= now)
                    .order_by(conv.c.timer_at)
                    .limit(limit)
                )
            ).all()
        ticked = 0
        for reporter_id, channel, identity_id, kind, stored, sealed in due:
            address = Address(AddressKind(kind), self._addresses.open(stored, sealed))
            target = ReplyTarget(channel, address, identity_id, reporter_id)
            outcome = await self._db.run(
                functools.partial(self._tick, reporter_id=reporter_id, target=target, now=now)
            )
            if outcome is not None:
                ticked += 1
                if outcome:
                    self._on_committed()
        return ticked

    def _tick(self, conn: Connection, reporter_id: int, target: ReplyTarget, now: datetime) -> bool | None:
        """One conversation's tick; None when a message moved its timer in the meantime."""
        conv = models.conversations
        query = select(conv.c.timer_at).where(conv.c.reporter_id == reporter_id)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        timer_at = conn.execute(query).scalar()
        if timer_at is None or timer_at > now:
            return None
        unit = IntakeUnit(conn, self._stepper, now, addresses=self._addresses)
        unit.handle_tick(reporter_id, target)
        unit.flush()
        return unit.wrote_outbox
