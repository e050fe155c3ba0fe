"""The inbound pipeline: dedup, identity, conversation step, one durable commit, then the 2xx.

Committing once per webhook caps a SQLite gateway at a few hundred messages a second, because every
commit is an fsync. So webhooks are *grouped*: each handler puts its events on a queue and waits; a
writer task takes everything queued, processes it in one transaction with a handful of multi-row
statements, commits once, and only then releases the handlers to answer their providers. Under light
load a batch is one message and nothing waits; under a flood burst hundreds share one fsync. Nothing
is acknowledged before it is durable, and a batch that fails is retried message by message so one
bad message cannot take its neighbours down with it.

Writers are partitioned by sender, so one reporter's messages are always handled in order by the same
writer, while different reporters can be written in parallel on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError

from adapters.base import Event, InboundMessage, StatusUpdate
from gateway.addressbook import PLAIN, AddressBook
from gateway.contacts import link_shared_contacts
from gateway.effects import FeedbackHook, IntakeUnit, Stepper
from gateway.ratelimit import SenderLimiter
from store import models
from store.bulk import insert_rows, select_in
from store.db import Database

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def storable(message: InboundMessage) -> InboundMessage:
    """What an adapter parsed, made safe to store: a value the database refuses would be refused on
    every provider retry too (PostgreSQL text cannot hold NUL; columns have lengths; a provider may
    send a list where a name belongs)."""
    text = message.text.replace("\x00", "") if isinstance(message.text, str) else None
    name = message.profile_name.replace("\x00", "")[:200] if isinstance(message.profile_name, str) else None
    if text == message.text and name == message.profile_name and len(message.provider_message_id) <= 128:
        return message
    return dataclasses.replace(
        message, text=text, profile_name=name or None, provider_message_id=message.provider_message_id[:128]
    )


class IngestUnavailable(Exception):
    """The database could not take the events: the provider must retry (503), nothing was acked."""


@dataclass
class _Pending:
    events: Sequence[Event]
    done: asyncio.Future[None]


def _settle(item: _Pending, error: IngestUnavailable | None = None) -> None:
    """Tell a waiting handler how its events fared, unless it stopped waiting (was cancelled)."""
    if item.done.done():
        return
    if error is None:
        item.done.set_result(None)
    else:
        item.done.set_exception(error)


@dataclass
class IngestStats:
    batches: int = 0
    events: int = 0
    duplicates: int = 0
    largest_batch: int = 0
    fallbacks: int = 0
    by_channel: dict[str, int] = field(default_factory=dict)


class Ingestor:
    """Turns acknowledged-to-be events into durable rows, grouping concurrent webhooks into one commit."""

    def __init__(
        self,
        db: Database,
        stepper: Stepper,
        *,
        clock: Clock,
        writers: int = 1,
        max_batch: int = 256,
        max_retries: int = 3,
        limiter: SenderLimiter | None = None,
        addresses: AddressBook = PLAIN,
        feedback: FeedbackHook | None = None,
    ) -> None:
        self._limiter = limiter
        self._addresses = addresses
        self._feedback = feedback
        self._db = db
        self._stepper = stepper
        self._clock = clock
        self._max_batch = max_batch
        self._max_retries = max_retries
        self._queues: list[asyncio.Queue[_Pending]] = [asyncio.Queue() for _ in range(max(1, writers))]
        self._tasks: list[asyncio.Task[None]] = []
        self.stats = IngestStats()
        self.on_committed: list[Callable[[], None]] = []
        """Called after every commit that wrote outbox rows (wakes the dispatcher)."""

    async def start(self) -> None:
        for index, queue in enumerate(self._queues):
            self._tasks.append(asyncio.create_task(self._writer(queue), name=f"ingest-writer-{index}"))

    async def stop(self) -> None:
        """Finish what was queued (handlers are waiting on it), then stop the writers."""
        for queue in self._queues:
            await queue.join()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def ingest(self, events: Sequence[Event]) -> None:
        """Return once `events` are committed; raise `IngestUnavailable` if they could not be."""
        if not events:
            return
        loop = asyncio.get_running_loop()
        pending = _Pending(events, loop.create_future())
        self._queues[self._partition(events[0])].put_nowait(pending)
        # Awaited as it is (no shield: that was a second future and loop hop a webhook): a handler
        # cancelled meanwhile cancels only its future, and the writer still commits its events.
        await pending.done

    def _partition(self, event: Event) -> int:
        if len(self._queues) == 1:
            return 0
        key = str(event.sender) if isinstance(event, InboundMessage) else event.provider_message_id
        return zlib.crc32(key.encode()) % len(self._queues)

    async def _writer(self, queue: asyncio.Queue[_Pending]) -> None:
        while True:
            batch = [await queue.get()]
            while len(batch) < self._max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                await self._commit_batch(batch)
            except Exception:  # the writer must survive anything; each handler learns its own fate
                log.exception("ingest writer failed on a batch of %d", len(batch))
                for item in batch:
                    _settle(item, IngestUnavailable("internal error"))
            finally:
                for _ in batch:
                    queue.task_done()

    async def _commit_batch(self, batch: list[_Pending]) -> None:
        events = [event for item in batch for event in item.events]
        error = await self._try_commit(events)
        if error is None:
            self._record(events)
            for item in batch:
                _settle(item)
            return
        if len(batch) == 1:
            _settle(batch[0], IngestUnavailable(error))
            return
        # Isolate the culprit: everyone else still gets their commit.
        self.stats.fallbacks += 1
        for item in batch:
            single_error = await self._try_commit(list(item.events))
            if single_error is None:
                self._record(item.events)
                _settle(item)
            else:
                _settle(item, IngestUnavailable(single_error))

    async def _try_commit(self, events: Sequence[Event]) -> str | None:
        """Commit the events in one transaction; retry races (unique keys, deadlocks) a few times."""
        last = "unknown"
        for attempt in range(self._max_retries):
            try:
                wrote_outbox = await self._process(events)
            except IntegrityError as exc:
                last = f"integrity: {exc.orig!r}"
                log.info("ingest race, retrying (attempt %d): %s", attempt + 1, type(exc.orig).__name__)
                continue
            except DBAPIError as exc:
                last = f"database: {type(exc.orig).__name__}"
                log.warning("ingest database error (attempt %d): %s", attempt + 1, last)
                if exc.connection_invalidated:
                    continue
                await asyncio.sleep(0.05 * (attempt + 1))  # transient lock/serialization back-off
                continue
            if wrote_outbox:
                for callback in self.on_committed:
                    callback()
            return None
        return last

    def _record(self, events: Sequence[Event]) -> None:
        self.stats.batches += 1
        self.stats.events += len(events)
        self.stats.largest_batch = max(self.stats.largest_batch, len(events))
        for event in events:
            self.stats.by_channel[event.channel] = self.stats.by_channel.get(event.channel, 0) + 1

    async def _process(self, events: Sequence[Event]) -> bool:
        now = self._clock()
        return await self._db.run(lambda conn: self._process_in(conn, events, now))

    def _process_in(self, conn: Connection, events: Sequence[Event], now: datetime) -> bool:
        """The whole batch as one synchronous transaction (one driver hop on SQLite)."""
        unit = IntakeUnit(conn, self._stepper, now, self._limiter, self._feedback, self._addresses)
        statuses = [e for e in events if isinstance(e, StatusUpdate)]
        messages = [storable(e) for e in events if isinstance(e, InboundMessage)]
        if statuses:
            unit.apply_status_updates(statuses)
        if messages:
            fresh = self._drop_duplicates(conn, messages)
            self.stats.duplicates += len(messages) - len(fresh)
            if fresh:
                identities = self._resolve_identities(conn, fresh, now)
                identities = link_shared_contacts(conn, fresh, identities, now, self._addresses)
                unit.handle_messages(fresh, identities)
        unit.flush()
        return unit.wrote_outbox

    @staticmethod
    def _drop_duplicates(conn: Connection, messages: list[InboundMessage]) -> list[InboundMessage]:
        """A provider retry (same channel + message id) is acknowledged again but processed once."""
        seen: set[tuple[str, str]] = set()
        unique: list[InboundMessage] = []
        for message in messages:
            key = (message.channel, message.provider_message_id)
            if key not in seen:
                seen.add(key)
                unique.append(message)
        existing: set[tuple[str, str]] = set()
        by_channel: dict[str, list[str]] = {}
        for channel, provider_id in seen:
            by_channel.setdefault(channel, []).append(provider_id)
        table = models.inbound_messages
        for channel, ids in by_channel.items():
            rows = select_in(
                conn, table, ("provider_message_id",), "provider_message_id", ids, {"channel": channel}
            )
            existing.update((channel, pid) for (pid,) in rows)
        return [m for m in unique if (m.channel, m.provider_message_id) not in existing]

    def _resolve_identities(
        self, conn: Connection, messages: list[InboundMessage], now: datetime
    ) -> dict[tuple[str, str], tuple[int, int]]:
        """(kind, address) -> (identity id, reporter id); first contact creates the reporter.

        Identities are found by their stored key (a keyed hash when contacts are encrypted)."""
        book = self._addresses
        keys = {(m.sender.kind.value, m.sender.value) for m in messages}
        stored = {(kind, book.key(kind, address)): (kind, address) for kind, address in keys}
        found: dict[tuple[str, str], tuple[int, int]] = {}
        table = models.channel_identities

        def look_up(wanted: list[tuple[str, str]]) -> None:
            for kind in {kind for kind, _ in wanted}:
                rows = select_in(
                    conn,
                    table,
                    ("id", "reporter_id", "address"),
                    "address",
                    [key for k, key in wanted if k == kind],
                    {"kind": kind},
                )
                for identity_id, reporter_id, key in rows:
                    found[stored[(kind, key)]] = (identity_id, reporter_id)

        look_up(list(stored))
        missing = sorted(keys - found.keys())
        if missing:
            # Multi-row inserts, then read the ids back by natural key: RETURNING with guaranteed
            # order would take one statement per row on SQLite.
            names = {(m.sender.kind.value, m.sender.value): m.profile_name for m in messages}
            refs = {key: uuid.uuid4().hex for key in missing}
            reporters = models.reporters
            insert_rows(
                conn,
                reporters,
                [
                    {
                        "ref": refs[key],
                        **book.name_columns(names.get(key)),
                        "language": "id",
                        "created_at": now,
                    }
                    for key in missing
                ],
            )
            ids_by_ref = dict(select_in(conn, reporters, ("ref", "id"), "ref", refs.values()))
            insert_rows(
                conn,
                table,
                [
                    {
                        "reporter_id": ids_by_ref[refs[(kind, address)]],
                        "kind": kind,
                        "address": book.key(kind, address),
                        "address_enc": book.seal(address),
                        "unreachable": False,
                        "created_at": now,
                        "last_seen_at": now,
                    }
                    for kind, address in missing
                ],
            )
            look_up([(kind, book.key(kind, address)) for kind, address in missing])
        return found
