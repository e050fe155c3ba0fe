"""The outbox dispatcher: every reply owed is sent, retried with backoff, and never sent twice.

Rows are claimed with a lease (`status='sending'`, `lease_until`), so several dispatchers (processes)
can share one database. `send_started_at` marks a send in flight: if the process dies before it
records the outcome, the row is *in doubt* once its lease lapses. The next dispatcher asks the
provider whether that message went out (`find_sent`, where the adapter can) before sending again,
which is what makes a crash mid-send cost neither a lost reply nor a duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import math
import random
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.engine import Connection

from adapters.base import Address, AddressKind, ChannelAdapter, OutboundMessage, SendError, SendResult
from gateway.addressbook import PLAIN, AddressBook
from gateway.config import OutboxConfig
from gateway.metrics import Metrics
from gateway.pacing import HELD_BACK_TICK, Pacer
from gateway.reach import reroute, unreachable_addresses
from gateway.receipts import apply_parked_receipts
from store import models
from store.db import Database
from store.models import OutboxStatus

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
OFF_CHANNEL_DELAY = timedelta(minutes=5)
FIRST_RECORD_RETRY = 0.05


class FindsSent(Protocol):
    async def find_sent(self, message: OutboundMessage, since: datetime) -> SendResult | None: ...


def backoff(attempt: int, config: OutboxConfig, retry_after: float | None) -> float:
    """Exponential backoff with jitter; a provider's Retry-After is a floor, never ignored."""
    delay = min(config.max_delay_seconds, config.base_delay_seconds * 2.0 ** max(0, attempt - 1))
    delay *= random.uniform(0.8, 1.2)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


LONGEST_WAIT = 24 * 3600.0
"""A Retry-After further out than this (a day) is read as this: a provider's typo or a skewed clock
must not silence a channel for a year."""


def parse_retry_after(value: str, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After value: delta-seconds or an HTTP date (RFC 9110 10.2.3),
    the date read against `now` (the dispatcher's clock). None for anything else, so the caller falls
    back to its own backoff."""
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT; "-0000" parses as naive
            when = when.replace(tzinfo=UTC)
        seconds = (when - now).total_seconds()
    if not math.isfinite(seconds):
        return None
    return min(max(0.0, seconds), LONGEST_WAIT)


def provider_wait(error: SendError, now: datetime) -> float | None:
    """How long the provider asked us to wait: its Retry-After header verbatim when the adapter kept
    it (read against `now`), else the seconds the adapter read (a JSON field, a rate-limit reset)."""
    if error.retry_after_header:
        wait = parse_retry_after(error.retry_after_header, now)
        if wait is not None:
            return wait
    if error.retry_after is None or not math.isfinite(error.retry_after):
        return None
    return min(max(0.0, error.retry_after), LONGEST_WAIT)


def is_throttle(error: SendError, wait: float | None) -> bool:
    """A provider saying "not now" rather than "this failed": a retryable error with a Retry-After,
    or a rate-limit code (HTTP 429, Twilio 20429, Graph 130429 all end in 429)."""
    return error.retryable and (wait is not None or (error.code or "").endswith("429"))


def to_outbound(row: Mapping[str, Any], book: AddressBook = PLAIN) -> OutboundMessage:
    """The message for the adapter, its recipient unsealed here, just before sending (never logged)."""
    return OutboundMessage(
        id=row["id"],
        channel=row["channel"],
        to=Address(AddressKind(row["to_kind"]), book.recipient(row)),
        text=row["text"],
        media_urls=tuple(m["url"] for m in row["media"] or ()),
        reply_to=row["reply_to"],
        kind=row["kind"],
        template=row["template"],
        template_vars=row["template_vars"] or {},
        attempt=row["attempts"],
        metadata=row["meta"] or {},
        reporter_id=row["reporter_id"],
    )


class Dispatcher:
    def __init__(
        self,
        db: Database,
        adapters: Mapping[str, ChannelAdapter],
        config: OutboxConfig,
        *,
        clock: Clock,
        single_process: bool = False,
        metrics: Metrics | None = None,
        addresses: AddressBook = PLAIN,
        pacer: Pacer | None = None,
    ) -> None:
        self._pacer = pacer or Pacer({}, {})
        self._metrics = metrics
        self._addresses = addresses
        self._paused_until: dict[str, datetime] = {}
        """Channels that answered 'slow down' (429 + Retry-After): no new sends there until then."""
        self._throttled: dict[str, int] = {}
        """Throttling answers in a row per channel, since its last successful send."""
        self._lease_ends: dict[int, float] = {}
        """Per claimed row, when (event-loop time) our lease on it runs out."""
        self._db = db
        self._adapters = adapters
        self._config = config
        self._clock = clock
        self._owner = f"{uuid.uuid4().hex[:12]}"
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._semaphore = asyncio.Semaphore(config.concurrency)
        self._single_process = single_process
        self._recorder = OutcomeRecorder(db)
        self.sent = 0
        self.failed = 0
        self.retried = 0
        self.reconciled = 0

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        if self._single_process:
            await self._expire_foreign_leases()
        self._task = asyncio.create_task(self._run(), name="outbox-dispatcher")

    async def stop(self) -> None:
        """Stop claiming, let sends in flight finish and record their outcome, then return."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)

    async def _expire_foreign_leases(self) -> None:
        """An embedded SQLite database has one process: leases left 'sending' are from our own crash."""
        table = models.outbox
        expired = (
            update(table)
            .where(table.c.status == OutboxStatus.SENDING.value)
            .values(lease_until=self._clock())
        )
        await self._db.run(lambda conn: conn.execute(expired))

    async def _run(self) -> None:
        while not self._stopping:
            try:
                claimed = await self.dispatch_once()
            except Exception:
                log.exception("outbox claim failed; retrying shortly")
                claimed = 0
            if claimed:
                continue
            self._wake.clear()
            idle = HELD_BACK_TICK if self._pacer.held_back else self._config.poll_seconds
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=idle)

    async def dispatch_once(self) -> int:
        """Claim what is due and start sending it; returns how many rows were claimed."""
        free = self._config.concurrency - len(self._in_flight)
        if free <= 0:
            await asyncio.wait(self._in_flight, return_when=asyncio.FIRST_COMPLETED)
            return 1
        lease_ends = asyncio.get_running_loop().time() + self._config.lease_seconds
        rows = await self._claim(min(free, self._config.batch_size))
        for row in rows:
            self._lease_ends[row["id"]] = lease_ends
            task = asyncio.create_task(self._deliver(row))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
        return len(rows)

    async def drain(self) -> None:
        """Send everything due now and wait for the outcomes (tests and `lapor` one-shot use)."""
        while await self.dispatch_once():
            pass
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)

    async def _claim(self, limit: int) -> list[dict[str, Any]]:
        now = self._clock()
        table = models.outbox
        due = or_(
            and_(table.c.status == OutboxStatus.PENDING.value, table.c.next_attempt_at <= now),
            and_(table.c.status == OutboxStatus.SENDING.value, table.c.lease_until < now),
        )
        channels = list(self._adapters)
        ready = [c for c in channels if self._paused_until.get(c, now) <= now]
        ready = self._pacer.open_channels(ready, now)
        if not ready:
            return []
        paced = any(self._pacer.channels.limited(c) or self._pacer.recipients.limited(c) for c in ready)
        ids_query = (
            select(table.c.id, table.c.channel, table.c.to_address)
            .where(due, table.c.channel.in_(ready))
            .order_by(table.c.next_attempt_at, table.c.id)
            # Paced channels may turn rows down (a recipient's bucket is empty): look a bit further.
            .limit(limit * 4 if paced else limit)
        )
        if self._db.dialect == "postgresql":
            ids_query = ids_query.with_for_update(skip_locked=True)

        def admitted(candidates: list[Any]) -> list[int]:
            ids: list[int] = []
            for candidate in candidates:
                if len(ids) == limit:
                    break
                if self._pacer.admit(candidate.channel, candidate.to_address, now):
                    ids.append(candidate.id)
            return ids

        def claim(conn: Connection) -> list[dict[str, Any]]:
            ids = admitted(list(conn.execute(ids_query)))
            if not ids:
                return []
            rows = [dict(r) for r in conn.execute(select(table).where(table.c.id.in_(ids))).mappings()]
            blocked = unreachable_addresses(conn, rows, self._addresses)
            for row in [r for r in rows if (r["to_kind"], r["to_address"]) in blocked]:
                reroute(conn, row, channels, now, "recipient unreachable", book=self._addresses)
                rows.remove(row)
                ids.remove(row["id"])
            if not ids:
                return []
            # Marked as started in the claim itself: one commit per batch, not per message. A crash
            # from here on leaves the rows in doubt, and the next claimer asks the provider first.
            conn.execute(
                update(table)
                .where(table.c.id.in_(ids))
                .values(
                    status=OutboxStatus.SENDING.value,
                    lease_owner=self._owner,
                    lease_until=now + timedelta(seconds=self._config.lease_seconds),
                    send_started_at=now,
                    attempts=table.c.attempts + 1,
                    updated_at=now,
                )
            )
            return [dict(row) for row in rows]

        return await self._db.run(claim)

    async def _deliver(self, row: dict[str, Any]) -> None:
        try:
            await self._deliver_claimed(row)
        finally:
            self._lease_ends.pop(row["id"], None)

    async def _deliver_claimed(self, row: dict[str, Any]) -> None:
        async with self._semaphore:
            adapter = self._adapters[row["channel"]]
            message = to_outbound(row, self._addresses)
            if row["send_started_at"] is not None:
                # In doubt: a previous attempt may have reached the provider before a crash.
                found = await self._find_sent(adapter, message, row["send_started_at"])
                if found is not None:
                    log.info(
                        "outbox row %s was sent before a crash (%s): not sending it again",
                        row["id"],
                        found.provider_message_id,
                    )
                    self.reconciled += 1
                    self._count(row["channel"], "reconciled")
                    await self._record_sent(row, found)
                    return
            message = OutboundMessage(**{**_fields(message), "attempt": row["attempts"] + 1})
            try:
                result = await adapter.send(message)
            except SendError as exc:
                if exc.unreachable:
                    await self._reroute(row, f"unreachable: {exc.reason}", exc.code)
                    return
                await self._record_failure(row, exc)
                return
            except Exception as exc:  # an adapter bug must not lose the row: treat as retryable
                log.exception("adapter %s raised while sending outbox row %s", row["channel"], row["id"])
                await self._record_failure(row, SendError(f"internal: {type(exc).__name__}", retryable=True))
                return
            await self._record_sent(row, result)

    async def _reroute(self, row: Mapping[str, Any], reason: str, code: str | None) -> None:
        channels = list(self._adapters)
        now = self._clock()
        new_id = await self._db.run(
            lambda conn: reroute(conn, row, channels, now, reason, code, self._addresses)
        )
        self.failed += 1
        self._count(row["channel"], "rerouted", code)
        log.info("outbox row %s: %s; rerouted as row %s", row["id"], reason, new_id)
        if new_id is not None:
            self.wake()

    @staticmethod
    async def _find_sent(
        adapter: ChannelAdapter, message: OutboundMessage, since: datetime
    ) -> SendResult | None:
        finder = getattr(adapter, "find_sent", None)
        if finder is None:
            return None
        try:
            result: SendResult | None = await finder(message, since)
        except SendError:
            return None  # cannot tell: sending again is the lesser harm than never replying
        return result

    def _count(self, channel: str, outcome: str, code: str | None = None) -> None:
        if self._metrics is not None:
            self._metrics.sends.labels(channel, outcome, code or "").inc()

    async def _record_sent(self, row: Mapping[str, Any], result: SendResult) -> None:
        now = self._clock()
        self.sent += 1
        self._throttled.pop(row["channel"], None)
        self._count(row["channel"], "sent")
        await self._record(
            row,
            {
                "status": OutboxStatus.SENT.value,
                "attempts": row["attempts"] + 1,
                "provider_message_id": result.provider_message_id,
                "sent_at": now,
                "send_started_at": None,
                "lease_owner": None,
                "lease_until": None,
                "last_error": None,
                "error_code": None,
                "next_attempt_at": now,
                "updated_at": now,
            },
        )

    async def _record_failure(self, row: Mapping[str, Any], error: SendError) -> None:
        now = self._clock()
        channel = row["channel"]
        wait = provider_wait(error, now)
        attempts = row["attempts"] + 1
        if is_throttle(error, wait):
            # Throttling is the provider pacing the account, not this message failing: the channel
            # pauses (until the Retry-After, or a backoff that grows while the throttling lasts) and
            # the claim's attempt is given back, so a long 429 storm never exhausts max_attempts.
            streak = self._throttled[channel] = self._throttled.get(channel, 0) + 1
            delay = wait if wait else backoff(streak, self._config, None)
            until = now + timedelta(seconds=delay)
            self._paused_until[channel] = max(until, self._paused_until.get(channel, until))
            attempts = row["attempts"]
            status, next_at = OutboxStatus.PENDING.value, until
            self.retried += 1
            self._count(channel, "retry", error.code)
            log.info(
                "outbox row %s: %s throttled (%s); channel paused %.1f s",
                row["id"],
                channel,
                error.code,
                delay,
            )
        elif not error.retryable or attempts >= self._config.max_attempts:
            status, next_at = OutboxStatus.FAILED.value, now
            self.failed += 1
            self._count(row["channel"], "failed", error.code)
            log.warning(
                "outbox row %s to %s failed for good after %d attempt(s): %s",
                row["id"],
                row["channel"],
                attempts,
                error.reason,
            )
        else:
            status = OutboxStatus.PENDING.value
            next_at = now + timedelta(seconds=backoff(attempts, self._config, None))
            self.retried += 1
            self._count(row["channel"], "retry", error.code)
        await self._record(
            row,
            {
                "status": status,
                "attempts": attempts,
                "provider_message_id": None,
                "sent_at": None,
                "send_started_at": None,
                "lease_owner": None,
                "lease_until": None,
                "last_error": error.reason[:500],
                "error_code": error.code,
                "next_attempt_at": next_at,
                "updated_at": now,
            },
        )

    async def _record(self, row: Mapping[str, Any], values: dict[str, Any]) -> None:
        """Make a send's outcome durable, retrying with backoff while the database is unavailable.

        Only this process knows the outcome. Given up, the row stays in doubt ('sending'), and the
        next claimer has to ask the provider whether it went out, which only some adapters can
        answer (`find_sent`); for the others it is sent again. So the write is retried for as long
        as the lease is ours; past it the row is anyone's to claim, and in doubt it stays.
        """
        loop = asyncio.get_running_loop()
        lease_ends = self._lease_ends.get(row["id"], loop.time())
        delay = FIRST_RECORD_RETRY
        while True:
            try:
                await self._recorder.record(row["id"], values)
            except Exception as exc:
                if loop.time() + delay >= lease_ends:
                    log.error(
                        "outbox row %s: outcome (%s) not recorded before its lease ran out: %s; "
                        "the row is left in doubt",
                        row["id"],
                        values["status"],
                        exc,
                    )
                    return
                if delay == FIRST_RECORD_RETRY:
                    log.warning("outbox row %s: cannot record outcome yet (%s); retrying", row["id"], exc)
                await asyncio.sleep(delay)  # backoff while the database is away
                delay = min(delay * 2, 2.0)
            else:
                return


class OutcomeRecorder:
    """Writes send outcomes in groups: one commit for everything that finished meanwhile.

    `record` returns once the outcome is durable. Until then the row still says 'sending' with
    `send_started_at` set, so a crash in between only leaves it in doubt, never lost or doubled.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._pending: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._lock = asyncio.Lock()

    async def record(self, row_id: int, values: dict[str, Any]) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append(({"row_id": row_id, **values}, future))
        async with self._lock:  # whoever gets the lock writes everyone's outcomes queued so far
            if not future.done():
                batch, self._pending = self._pending, []
                try:
                    await self._write([values for values, _ in batch])
                except Exception as exc:
                    for _, waiting in batch:
                        waiting.set_exception(exc)
                else:
                    for _, waiting in batch:
                        waiting.set_result(None)
        await future

    async def _write(self, rows: list[dict[str, Any]]) -> None:
        table = models.outbox
        columns = [name for name in rows[0] if name != "row_id"]
        statement = (
            update(table)
            .where(table.c.id == bindparam("row_id"))
            .values({name: bindparam(name) for name in columns})
        )
        sent_ids = [row["provider_message_id"] for row in rows if row.get("provider_message_id")]
        now = rows[0]["updated_at"]

        def write(conn: Connection) -> None:
            conn.execute(statement, rows)
            apply_parked_receipts(conn, sent_ids, now)

        await self._db.run(write)


def _fields(message: OutboundMessage) -> dict[str, Any]:
    return {name: getattr(message, name) for name in OutboundMessage.__slots__}
