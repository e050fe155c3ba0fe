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
import dataclasses
import email.utils
import logging
import math
import random
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import BindParameter, ColumnElement

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
RECORDING_BOUND = 2
"""Outcomes waiting to be recorded, in rounds of `concurrency`, before claiming pauses."""
PACE_TIMER_FLOOR = 0.001
"""Seconds: the soonest a held-back row is tried again (an injected clock that stands still must
not make the timer spin)."""


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


def to_outbound(
    row: Mapping[str, Any], book: AddressBook = PLAIN, attempt: int | None = None
) -> OutboundMessage:
    """The message for the adapter, its recipient unsealed here, just before sending (never logged);
    `attempt` is the row's `attempts` unless given."""
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
        attempt=row["attempts"] if attempt is None else attempt,
        metadata=row["meta"] or {},
        reporter_id=row["reporter_id"],
    )


LAPSED_CHECK = timedelta(seconds=1)
"""How often claims also look for rows whose lease lapsed (in doubt after a crash or a stall)."""

_outbox = models.outbox
_NOW = bindparam("claim_now", type_=_outbox.c.next_attempt_at.type)
_CHANNELS: BindParameter[list[str]] = bindparam("channels", expanding=True)
_CLAIMED_COLUMNS = [
    _outbox.c[name]
    for name in (
        "id",
        "channel",
        "to_kind",
        "to_address",
        "to_address_enc",
        "text",
        "media",
        "reply_to",
        "kind",
        "template",
        "template_vars",
        "meta",
        "complaint_id",
        "reporter_id",
        "attempts",
        "send_started_at",
    )
]
"""What sending (and rerouting) a claimed row reads: the other dates are not converted per row."""


def _claimable(*conditions: ColumnElement[bool], by_id: bool = True) -> Select[Any]:
    """Rows meeting `conditions` on the claimed channels, oldest first: a walk along ix_outbox_due
    (status, next_attempt_at) that stops at the limit. (Pending and lapsed rows in one query,
    `a OR b`, made SQLite sort every due row in every claim.)

    SQLite's index holds the rowid after its columns, so ties on next_attempt_at come in id order
    for free. PostgreSQL's does not: `ORDER BY next_attempt_at, id` made it read and sort every due
    row (a flood's rows share one next_attempt_at) in every claim, 6 ms at 10,000 owed; there ties
    come in the index's own order (where the rows are stored: insertion order, unless a row was
    given back and stored again)."""
    order = (_outbox.c.next_attempt_at, _outbox.c.id) if by_id else (_outbox.c.next_attempt_at,)
    return (
        select(*_CLAIMED_COLUMNS)
        .where(*conditions, _outbox.c.channel.in_(_CHANNELS))
        .order_by(*order)
        .limit(bindparam("fetch"))
    )


_PENDING = (_outbox.c.status == OutboxStatus.PENDING.value, _outbox.c.next_attempt_at <= _NOW)
_LAPSED_LEASE = (_outbox.c.status == OutboxStatus.SENDING.value, _outbox.c.lease_until < _NOW)
_DUE = _claimable(*_PENDING)
_LAPSED = _claimable(*_LAPSED_LEASE)
_DUE_LOCKED = _claimable(*_PENDING, by_id=False).with_for_update(skip_locked=True)
_LAPSED_LOCKED = _claimable(*_LAPSED_LEASE, by_id=False).with_for_update(skip_locked=True)
"""PostgreSQL: rows another dispatcher is claiming right now are skipped, not waited for."""
_START = (
    update(_outbox)
    .where(_outbox.c.id.in_(bindparam("ids", expanding=True)))
    .values(
        status=OutboxStatus.SENDING.value,
        lease_owner=bindparam("claim_owner"),
        lease_until=bindparam("claim_lease", type_=_outbox.c.lease_until.type),
        send_started_at=_NOW,
        attempts=_outbox.c.attempts + 1,
        updated_at=_NOW,
    )
)

_SENT_NOW = bindparam("sent_now", type_=_outbox.c.sent_at.type)
_SENT = (
    update(_outbox)
    .where(_outbox.c.id.in_(bindparam("sent_ids", expanding=True)))
    .values(
        status=OutboxStatus.SENT.value,
        sent_at=_SENT_NOW,
        send_started_at=None,
        lease_owner=None,
        lease_until=None,
        last_error=None,
        error_code=None,
        next_attempt_at=_SENT_NOW,
        updated_at=_SENT_NOW,
    )
)
_SENT_SIDS = (
    update(_outbox)
    .where(_outbox.c.id == bindparam("row_id"))
    .values(provider_message_id=bindparam("sent_sid"))
)
"""Sends that succeeded, in two statements: what they share, in one statement for the batch; each
provider id by its row (no per-row dates to convert: SQLAlchemy's per-row work is what costs).
`attempts` already counts the attempt (the claim added it)."""


class Dispatcher:
    """Claims due rows in batches and keeps `concurrency` sends in flight.

    Claimed rows wait in `_queue` (leased and marked started, so a crash leaves them in doubt, never
    lost) until a send slot is free and, on a paced channel, until they take their tokens. The queue
    holds about half a round of sends beyond those in flight, so a finished send is replaced at once
    from memory, and the database sees one claim per batch instead of one per free slot.
    """

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
        self._counters: dict[tuple[str, str, str], Any] = {}
        self._addresses = addresses
        self._paused_until: dict[str, datetime] = {}
        """Channels that answered 'slow down' (429 + Retry-After): no new sends there until then."""
        self._throttled: dict[str, int] = {}
        """Throttling answers in a row per channel, since its last successful send."""
        self._lease_ends: dict[int, float] = {}
        """Per claimed row, when (event-loop time) our lease on it runs out."""
        self._db = db
        self._adapters = adapters
        self._channels = list(adapters)
        self._config = config
        self._clock = clock
        self._owner = f"{uuid.uuid4().hex[:12]}"
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._queue: deque[dict[str, Any]] = deque()
        """Claimed rows not sent yet, oldest first."""
        self._tasks: set[asyncio.Task[None]] = set()
        """Each claimed row being sent, or its outcome recorded."""
        self._sending = 0
        """Sends waiting on the provider: at most `config.concurrency`."""
        self._ahead = config.concurrency // 2
        """Rows claimed beyond the sends in flight: what covers a claim's round trip. (Rows a crash
        would leave in doubt, each looked up with the provider before it is sent: keep it small.)"""
        self._min_claim = max(1, min(config.batch_size, config.concurrency // 4))
        """While sends are in flight, claim only when there is room for at least this many rows."""
        self._more = True
        """Whether the database may hold more due rows than the last claim took."""
        self._warm: set[str] = set()
        self._warming: set[str] = set()
        """Paced channels whose first send is on its way: their client may still be starting (a
        Telegram Bot's getMe, a connection pool), and sends started meanwhile would wait for it and
        then reach the provider together. So the first goes alone; the others take their tokens
        once it is back."""
        self._pace_timer: asyncio.TimerHandle | None = None
        self._lapsed_checked: datetime | None = None
        self._single_process = single_process
        self._recorder = OutcomeRecorder(db)
        self.sent = 0
        self.failed = 0
        self.retried = 0
        self.reconciled = 0
        self.claims = 0
        """Claim transactions that took rows (with `sent`, how well claims are batched)."""

    @property
    def sending(self) -> int:
        """Sends waiting on the provider right now (at most `[outbox] concurrency`)."""
        return self._sending

    def wake(self) -> None:
        self._more = True
        self._wake.set()

    async def start(self) -> None:
        if self._single_process:
            await self._expire_foreign_leases()
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="outbox-dispatcher")

    async def stop(self) -> None:
        """Stop claiming, give back what was claimed but not sent, let sends in flight finish and
        record their outcome, then return."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        if self._pace_timer is not None:
            self._pace_timer.cancel()
            self._pace_timer = None
        await self._release_queue()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        log.info(
            "outbox dispatcher stopped: %d sent, %d claims, %d outcome writes",
            self.sent,
            self.claims,
            self._recorder.writes,
        )

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
            if claimed and self._more:
                continue
            self._wake.clear()
            idle = HELD_BACK_TICK if self._pacer.held_back else self._config.poll_seconds
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=idle)

    def _room(self) -> int:
        """How many more rows to claim: slots plus the rows kept ahead, less what is queued or sent.
        Outcomes still being recorded do not count (they are written in batches meanwhile), up to
        a bound, so a slow database holds claiming back."""
        if len(self._tasks) - self._sending > RECORDING_BOUND * self._config.concurrency:
            return 0
        return self._config.concurrency + self._ahead - len(self._queue) - self._sending

    async def dispatch_once(self) -> int:
        """Claim what is due, if there is room for a batch, and start what may be sent now; returns
        how many rows were claimed."""
        room = self._room()
        if room <= 0 or (room < self._min_claim and self._sending):
            self._pump()
            return 0
        lease_ends = asyncio.get_running_loop().time() + self._config.lease_seconds
        rows = await self._claim(min(room, self._config.batch_size))
        self.claims += bool(rows)
        for row in rows:
            self._lease_ends[row["id"]] = lease_ends
        self._queue.extend(rows)
        self._pump()
        return len(rows)

    async def drain(self) -> None:
        """Send everything due now and wait for the outcomes (tests and `lapor` one-shot use). Rows
        claimed but held back by pacing stay queued, in order, for the next drain (or `stop`)."""
        while True:
            if await self.dispatch_once():
                continue
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
                continue
            break

    # -- claiming

    async def _claim(self, limit: int) -> list[dict[str, Any]]:
        now = self._clock()
        ready = [c for c in self._channels if self._paused_until.get(c, now) <= now]
        ready = self._pacer.open_channels(ready, now)
        if not ready:
            return []
        # Paced channels may turn rows down (their buckets promised all they can): look a bit further.
        fetch = limit * 4 if any(self._pacer.paces(c) for c in ready) else limit
        params = {"claim_now": now, "channels": ready, "fetch": fetch}
        postgres = self._db.dialect == "postgresql"
        due, lapsed = (_DUE_LOCKED, _LAPSED_LOCKED) if postgres else (_DUE, _LAPSED)
        # Leases lapse rarely (a crash, a stall): looked for once a second, not in every claim.
        look_for_lapsed = self._lapsed_checked is None or now - self._lapsed_checked >= LAPSED_CHECK
        pacer = self._pacer
        rows: list[dict[str, Any]] = []
        """Reserved so far: given back if the transaction does not commit."""

        def claim(conn: Connection) -> None:
            candidates = list(conn.execute(lapsed, params).mappings()) if look_for_lapsed else []
            found = conn.execute(due, params).mappings().all()
            self._more = len(found) == fetch or len(candidates) == fetch
            for candidate in [*candidates, *found]:
                if len(rows) == limit:
                    self._more = True
                    break
                if pacer.reserve(candidate["channel"], candidate["to_address"], now):
                    rows.append(dict(candidate))
            if not rows:
                return
            blocked = unreachable_addresses(conn, rows, self._addresses)
            if blocked:
                for row in [r for r in rows if (r["to_kind"], r["to_address"]) in blocked]:
                    reroute(conn, row, self._channels, now, "recipient unreachable", book=self._addresses)
                    pacer.release(row["channel"], row["to_address"])
                    rows.remove(row)
                if not rows:
                    return
            # Marked as started in the claim itself: one commit per batch, not per message. A crash
            # from here on leaves the rows in doubt, and the next claimer asks the provider first.
            conn.execute(
                _START,
                {
                    "ids": [row["id"] for row in rows],
                    "claim_owner": self._owner,
                    "claim_lease": now + timedelta(seconds=self._config.lease_seconds),
                    "claim_now": now,
                },
            )

        try:
            await self._db.run(claim)
        except BaseException:
            self._more = True
            for row in rows:
                pacer.release(row["channel"], row["to_address"])
            raise
        if look_for_lapsed:
            self._lapsed_checked = now
        return rows

    async def _release_queue(self, channel: str | None = None, until: datetime | None = None) -> None:
        """Give claimed, unsent rows (of one channel, or all) back to pending: lease, start mark and
        attempt undone, so the next claim takes them as if they had never been claimed."""
        keep = [row for row in self._queue if channel is not None and row["channel"] != channel]
        rows = [row for row in self._queue if channel is None or row["channel"] == channel]
        if not rows:
            return
        self._queue = deque(keep)
        for row in rows:
            self._pacer.release(row["channel"], row["to_address"])
            self._lease_ends.pop(row["id"], None)
        table = models.outbox
        values: dict[str, Any] = {
            "status": OutboxStatus.PENDING.value,
            "lease_owner": None,
            "lease_until": None,
            "send_started_at": None,
            "attempts": table.c.attempts - 1,
            "updated_at": self._clock(),
        }
        if until is not None:
            values["next_attempt_at"] = until
        statement = (
            update(table)
            .where(
                table.c.id.in_([row["id"] for row in rows]),
                table.c.lease_owner == self._owner,
                table.c.status == OutboxStatus.SENDING.value,
            )
            .values(values)
        )
        try:
            await self._db.run(lambda conn: conn.execute(statement))
        except Exception as exc:  # they stay in doubt, and are reclaimed when their lease runs out
            log.warning("outbox: %d claimed row(s) not given back (%s); left to their lease", len(rows), exc)
        self._more = True

    # -- sending

    def _pump(self) -> None:
        """Start the queued rows that may go now: a free send slot, their channel not paused, and
        their tokens, taken here, right before the send, so the provider sees the paced rate."""
        if self._stopping or not self._queue or self._sending >= self._config.concurrency:
            return
        now = self._clock()
        loop = asyncio.get_running_loop()
        stale_before = loop.time() + self._config.lease_seconds / 2
        queue = self._queue
        held: list[dict[str, Any]] = []
        soonest: float | None = None
        while queue and self._sending < self._config.concurrency:
            row = queue.popleft()
            channel = row["channel"]
            paused = self._paused_until.get(channel)
            if (paused is not None and paused > now) or channel in self._warming:
                held.append(row)
                continue
            if self._lease_ends.get(row["id"], 0.0) < stale_before:
                # Waited half its lease (a long stall): another claimer may soon take it as in doubt.
                log.warning("outbox row %s waited too long to be sent; left to its lease", row["id"])
                self._pacer.release(channel, row["to_address"])
                self._lease_ends.pop(row["id"], None)
                continue
            if not self._pacer.admit(channel, row["to_address"], now):
                held.append(row)
                wait = self._pacer.wait(channel, row["to_address"], now)
                soonest = wait if soonest is None else min(soonest, wait)
                continue
            if channel not in self._warm and self._pacer.paces(channel):
                self._warming.add(channel)
            self._sending += 1
            task = loop.create_task(self._deliver(row))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if held:
            queue.extendleft(reversed(held))
        if soonest is not None:
            self._pump_again(loop, loop.time() + max(soonest, PACE_TIMER_FLOOR))

    def _pump_again(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        """Pump again when the first held-back row can have its tokens (unless sooner already)."""
        if self._pace_timer is not None:
            if self._pace_timer.when() <= when:
                return
            self._pace_timer.cancel()
        self._pace_timer = loop.call_at(when, self._paced_again)

    def _paced_again(self) -> None:
        self._pace_timer = None
        self._pump()

    def _slot_freed(self) -> None:
        self._sending -= 1
        self._pump()
        if self._more and not self._stopping and self._room() >= self._min_claim:
            self._wake.set()

    async def _deliver(self, row: dict[str, Any]) -> None:
        try:
            try:
                outcome = await self._attempt(row)
            finally:
                if row["channel"] in self._warming:
                    self._warming.discard(row["channel"])
                    self._warm.add(row["channel"])
                self._slot_freed()
            if isinstance(outcome, SendResult):
                await self._record_sent(row, outcome)
            elif outcome.unreachable:
                await self._reroute(row, f"unreachable: {outcome.reason}", outcome.code)
            else:
                await self._record_failure(row, outcome)
        finally:
            self._lease_ends.pop(row["id"], None)

    async def _attempt(self, row: dict[str, Any]) -> SendResult | SendError:
        """One send (or, for a row in doubt, the provider's word that it was already sent)."""
        channel, recipient = row["channel"], row["to_address"]
        spent = False
        try:
            adapter = self._adapters[channel]
            message = to_outbound(row, self._addresses, row["attempts"] + 1)
            if row["send_started_at"] is not None:
                # In doubt: a previous attempt may have reached the provider before a crash.
                previous = dataclasses.replace(message, attempt=row["attempts"])
                found = await self._find_sent(adapter, previous, row["send_started_at"])
                if found is not None:
                    log.info(
                        "outbox row %s was sent before a crash (%s): not sending it again",
                        row["id"],
                        found.provider_message_id,
                    )
                    self.reconciled += 1
                    self._count(channel, "reconciled")
                    return found
            self._pacer.spend(channel, recipient, self._clock())
            spent = True
            return await adapter.send(message)
        except SendError as exc:
            if not exc.unreachable:
                self._note_throttle(channel, exc)
            return exc
        except Exception as exc:  # a bug (adapter, unsealing) must not lose the row: retryable
            log.exception("outbox row %s: sending through %s raised", row["id"], channel)
            return SendError(f"internal: {type(exc).__name__}", retryable=True)
        finally:
            if not spent:  # no send: the tokens set aside for it are free again
                self._pacer.release(channel, recipient, admitted=True)

    def _note_throttle(self, channel: str, error: SendError) -> None:
        """A throttling answer pauses its channel at once, before any other queued send can start there.

        Throttling is the provider pacing the account, not this message failing: the channel pauses
        until the Retry-After, or for a backoff that grows while the throttling lasts.
        """
        now = self._clock()
        wait = provider_wait(error, now)
        if not is_throttle(error, wait):
            return
        streak = self._throttled[channel] = self._throttled.get(channel, 0) + 1
        delay = wait if wait else backoff(streak, self._config, None)
        until = now + timedelta(seconds=delay)
        self._paused_until[channel] = max(until, self._paused_until.get(channel, until))
        log.info("outbox: %s throttled (%s); channel paused %.1f s", channel, error.code, delay)

    async def _reroute(self, row: Mapping[str, Any], reason: str, code: str | None) -> None:
        now = self._clock()
        new_id = await self._db.run(
            lambda conn: reroute(conn, row, self._channels, now, reason, code, self._addresses)
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
        if self._metrics is None:
            return
        key = (channel, outcome, code or "")
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = self._metrics.sends.labels(*key)
        counter.inc()

    # -- outcomes

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
        attempts = row["attempts"] + 1
        if is_throttle(error, provider_wait(error, now)):
            # The channel was paused when the answer came (_note_throttle); this row waits with it,
            # and so do the rows claimed for it. The claim's attempt is given back, so a long 429
            # storm never exhausts max_attempts.
            until = self._paused_until.get(channel, now)
            attempts = row["attempts"]
            status, next_at = OutboxStatus.PENDING.value, until
            self.retried += 1
            self._count(channel, "retry", error.code)
            await self._release_queue(channel, until)
        elif not error.retryable or attempts >= self._config.max_attempts:
            status, next_at = OutboxStatus.FAILED.value, now
            self.failed += 1
            self._count(channel, "failed", error.code)
            log.warning(
                "outbox row %s to %s failed for good after %d attempt(s): %s",
                row["id"],
                channel,
                attempts,
                error.reason,
            )
        else:
            status = OutboxStatus.PENDING.value
            next_at = now + timedelta(seconds=backoff(attempts, self._config, None))
            self.retried += 1
            self._count(channel, "retry", error.code)
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
        self._writer: asyncio.Task[None] | None = None
        self.writes = 0

    async def record(self, row_id: int, values: dict[str, Any]) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append(({"row_id": row_id, **values}, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_pending())
        await future

    async def _write_pending(self) -> None:
        """One writer at a time: each round writes everything that finished while the last one was
        being written."""
        while self._pending:
            batch, self._pending = self._pending, []
            self.writes += 1
            try:
                await self._write([values for values, _ in batch])
            except Exception as exc:
                for _, waiting in batch:
                    if not waiting.done():
                        waiting.set_exception(exc)
            else:
                for _, waiting in batch:
                    if not waiting.done():
                        waiting.set_result(None)

    async def _write(self, rows: list[dict[str, Any]]) -> None:
        # Sent rows (nearly all of them) share one `sent_at`, the batch's latest; anything else
        # (retries, failures) goes through the statement spelling out every column.
        sent = [row for row in rows if row["status"] == OutboxStatus.SENT.value]
        others = [row for row in rows if row["status"] != OutboxStatus.SENT.value]
        statement = None
        if others:
            columns = [name for name in others[0] if name != "row_id"]
            statement = (
                update(models.outbox)
                .where(models.outbox.c.id == bindparam("row_id"))
                .values({name: bindparam(name) for name in columns})
            )
        sent_ids = [row["provider_message_id"] for row in sent]
        now = max(row["updated_at"] for row in rows)

        def write(conn: Connection) -> None:
            if sent:
                conn.execute(_SENT, {"sent_ids": [row["row_id"] for row in sent], "sent_now": now})
                conn.execute(
                    _SENT_SIDS,
                    [{"row_id": row["row_id"], "sent_sid": row["provider_message_id"]} for row in sent],
                )
            if statement is not None:
                conn.execute(statement, others)
            apply_parked_receipts(conn, sent_ids, now)

        await self._db.run(write)
