"""Forwarding complaints to an upstream Open311 server (SP4N-LAPOR!, the province) and pulling back
what happens to them there.

When a complaint goes up: once the city team has *forwarded* it (status forwarded, in_progress or
reopened: verified by a person, disposed to a department) and its category is in
`[open311_upstream] categories`. Confidential complaints never go up (an Open311 server publishes
what it receives). The job table `upstream_requests` is filled by scanning for such complaints, so no
transition has to remember to enqueue anything and a complaint forwarded while the upstream was
unconfigured or down is still picked up; its unique `complaint_id` is the idempotency key that makes
a complaint go up once.

What goes up: the service code mapped from our category, the point and/or the address, the
description prefixed with our tracking code (`[LPR-7K3M9Q] ...`: the upstream's staff see our
reference, and we can find the request again), a public resolution photo URL when there is one, and
no personal data: free text is redacted of phone numbers, e-mail addresses and the reporter's name.
Name and phone go up only with `share_reporter_contact = true`.

Durability, the outbox's way (gateway/outbox.py): a row is claimed with a lease; `send_started_at` is
set in the claim, before the POST, and cleared only when the outcome is known. A crash or an
ambiguous failure (5xx, timeout, dropped connection) leaves it set, and the next attempt first looks
for the request upstream (`GET requests?service_code=..&start_date=..`, matching the tracking code in
the description) and links it instead of posting again. Failures retry with the outbox's backoff,
without a limit: only a definite refusal (a 4xx such as 400) marks the row failed, with an internal
note on the complaint for the staff. A `token` answer is resolved with `GET tokens/{token}`.

Status back: linked requests are read every `poll_seconds` (`GET requests?service_request_id=a,b,c`)
and a change is applied through the workflow (workflow.lifecycle.apply) in one transaction with the
row, acting as the complaint's department, so the citizen hears about it like any other change:

    upstream in progress / action scheduled  -> accept (forwarded/reopened -> in_progress)
    upstream closed and fixed (or plain closed) -> accept if needed, then resolve, the upstream
                                                request (or its photo) as the evidence
    upstream closed without a fix            -> internal note: the city decides what to do
    new status notes on an open request      -> public update note ("SP4N-LAPOR!: ...")
    anything else                            -> internal note with the upstream's status

Not handled (yet): a request the upstream reopens after closing it (closed rows are no longer
pulled), and re-forwarding a complaint reopened here after the upstream closed it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.engine import Connection

from gateway.config import Open311UpstreamConfig, OutboxConfig
from gateway.open311_client import Created, Open311Client, Open311Failure, RemoteRequest
from gateway.outbox import backoff
from store import models
from store.db import Database
from store.models import ComplaintStatus as S
from store.models import UpstreamState
from workflow.access import Action, Actor, Forbidden, Role
from workflow.lifecycle import OPEN, Change, TransitionError, apply
from workflow.privacy import decrypt_contact, open_name, redact
from workflow.settings import WorkflowSettings

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
ELIGIBLE = (S.FORWARDED.value, S.IN_PROGRESS.value, S.REOPENED.value)
"""Statuses in which a complaint of a configured category is forwarded upstream."""
SCAN_BATCH = 200
SEND_BATCH = 20
MAX_BATCHES = 10
POLL_BATCH = 50
SEARCH_MARGIN = timedelta(hours=1)
"""Looking for a post in doubt starts this long before it was made (clocks differ)."""
FIXED = frozenset({"fixed"})
IN_HAND = frozenset({"action scheduled", "in progress"})


def marker(code: str) -> str:
    """How our tracking code appears in the upstream description (and how we find it there)."""
    return f"[{code}]"


# ---- status mapping (pure) -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Seen:
    """What the upstream said about a request, as stored on the row."""

    status: str | None
    detail: str | None
    notes: str | None


@dataclass(frozen=True, slots=True)
class Step:
    action: Action
    public_note: str | None = None
    note: str | None = None
    evidence: tuple[dict[str, Any], ...] = field(default=())


def plan(our_status: str, before: Seen, after: Seen, *, name: str, evidence: dict[str, Any]) -> list[Step]:
    """The workflow actions an upstream change means for our complaint (see the module docstring)."""
    ours = S(our_status)
    fresh_notes = after.notes if after.notes and after.notes != before.notes else None
    if after.status == "closed":
        if after.detail is None or after.detail in FIXED:
            steps: list[Step] = []
            if ours in (S.FORWARDED, S.REOPENED):
                steps.append(Step(Action.ACCEPT))
            if ours in (S.FORWARDED, S.REOPENED, S.IN_PROGRESS):
                internal = f"Selesai menurut {name} ({after.detail or 'closed'})."
                steps.append(Step(Action.RESOLVE, fresh_notes, internal, (evidence,)))
            return steps
        if ours in OPEN:
            why = f"{name} menutup permintaan tanpa penyelesaian ({after.detail}): {after.notes or '-'}"
            return [Step(Action.UPDATE, note=why + ". Tindak lanjut ada di kota.")]
        return []
    if ours not in OPEN:
        return []
    public = f"{name}: {fresh_notes}" if fresh_notes else None
    if after.detail in IN_HAND and ours in (S.FORWARDED, S.REOPENED):
        return [Step(Action.ACCEPT, public_note=public)]
    if public is not None:
        return [Step(Action.UPDATE, public_note=public)]
    if (after.status, after.detail) != (before.status, before.detail):
        return [Step(Action.UPDATE, note=f"Status di {name}: {after.detail or after.status}")]
    return []


# ---- the job --------------------------------------------------------------------------------


@dataclass
class RunReport:
    enqueued: int = 0
    linked: int = 0
    reconciled: int = 0
    """Posts in doubt found upstream and linked without posting again."""
    retried: int = 0
    failed: int = 0
    changes: int = 0
    """Upstream status changes applied to our complaints."""


class UpstreamForwarder:
    """`run_once()` is the whole job (tests drive it with an injected clock); `start()` loops it."""

    def __init__(
        self,
        db: Database,
        config: Open311UpstreamConfig,
        outbox: OutboxConfig,
        settings: WorkflowSettings,
        *,
        clock: Clock,
        public_url: str = "",
        single_process: bool = False,
        on_committed: Callable[[], None] | None = None,
    ) -> None:
        self._db = db
        self._config = config
        self._outbox = outbox
        self._settings = settings
        self._clock = clock
        self._public_url = public_url.rstrip("/")
        self._single_process = single_process
        self._on_committed = on_committed
        self._owner = f"upstream-{uuid.uuid4().hex[:12]}"
        self._categories = tuple(dict.fromkeys(c.strip() for c in config.categories if c.strip()))
        self.client = Open311Client(
            config.endpoint,
            config.api_key,
            jurisdiction_id=config.jurisdiction_id,
            timeout_seconds=config.timeout_seconds,
        )
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self.totals = RunReport()
        self.ran = asyncio.Condition()
        """Notified after every `run_once` (tests and tools wait on `totals` with it)."""

    @property
    def _lease(self) -> timedelta:
        return timedelta(seconds=max(self._outbox.lease_seconds, self._config.timeout_seconds * 2))

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        log.info(
            "open311 upstream: forwarding %s to %s, status pulled every %ss",
            ", ".join(self._categories) or "no categories",
            self.client.base,
            self._config.poll_seconds,
        )
        if self._single_process:
            await self._expire_own_leases()
        self._task = asyncio.create_task(self._run(), name="open311-upstream")

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        await self.client.close()

    async def _expire_own_leases(self) -> None:
        """Embedded SQLite has one process: a row left 'sending' is from our own crash."""
        table = models.upstream_requests
        statement = (
            update(table)
            .where(table.c.state == UpstreamState.SENDING.value)
            .values(lease_until=self._clock())
        )
        await self._db.run(lambda conn: conn.execute(statement))

    async def _run(self) -> None:
        # Newly forwarded complaints are found by the same idle re-check as the outbox's; status
        # pulls keep their own, per-request `poll_seconds`.
        interval = min(self._config.poll_seconds, self._outbox.poll_seconds)
        while not self._stopping:
            try:
                await self.run_once()
            except Exception:
                log.exception("open311 upstream run failed; retrying shortly")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=interval)

    async def run_once(self) -> RunReport:
        """Enqueue newly eligible complaints, send (or resolve) what is due, pull what is due."""
        report = RunReport()
        if self._categories:
            report.enqueued = await self._db.run(self._enqueue)
        for _ in range(MAX_BATCHES):  # bounded: a zero retry delay must not spin here forever
            rows = await self._db.run(functools.partial(self._claim, limit=SEND_BATCH))
            if not rows:
                break
            await asyncio.gather(*(self._deliver(row, report) for row in rows))
        await self._poll(report)
        for name in ("enqueued", "linked", "reconciled", "retried", "failed", "changes"):
            setattr(self.totals, name, getattr(self.totals, name) + getattr(report, name))
        async with self.ran:
            self.ran.notify_all()
        return report

    # ---- enqueue --------------------------------------------------------------------------

    def _enqueue(self, conn: Connection) -> int:
        complaints, table = models.complaints, models.upstream_requests
        rows = conn.execute(
            select(complaints.c.id, complaints.c.category)
            .outerjoin(table, table.c.complaint_id == complaints.c.id)
            .where(
                table.c.id.is_(None),
                complaints.c.category.in_(self._categories),
                complaints.c.status.in_(ELIGIBLE),
                complaints.c.confidential.is_(False),
            )
            .order_by(complaints.c.id)
            .limit(SCAN_BATCH)
        ).all()
        if not rows:
            return 0
        now = self._clock()
        values = [
            {
                "complaint_id": row.id,
                "endpoint": self.client.base[:255],
                "service_code": self._config.service_code(row.category)[:64],
                "state": UpstreamState.PENDING.value,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
                "updated_at": now,
            }
            for row in rows
        ]
        if conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            statement: Any = pg_insert(table).on_conflict_do_nothing(index_elements=["complaint_id"])
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            statement = sqlite_insert(table).on_conflict_do_nothing(index_elements=["complaint_id"])
        inserted = conn.execute(statement.values(values).returning(table.c.id)).all()
        return len(inserted)

    # ---- sending --------------------------------------------------------------------------

    def _claim(self, conn: Connection, limit: int) -> list[dict[str, Any]]:
        now = self._clock()
        table = models.upstream_requests
        due = or_(
            and_(
                table.c.state.in_([UpstreamState.PENDING.value, UpstreamState.AWAITING_ID.value]),
                table.c.next_attempt_at <= now,
            ),
            and_(table.c.state == UpstreamState.SENDING.value, table.c.lease_until < now),
        )
        query = select(table).where(due).order_by(table.c.next_attempt_at, table.c.id).limit(limit)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows = [{**row, "claimed_at": now} for row in conn.execute(query).mappings()]
        if not rows:
            return []
        lease = {
            "state": UpstreamState.SENDING.value,
            "lease_owner": self._owner,
            "lease_until": now + self._lease,
            "attempts": table.c.attempts + 1,
            "updated_at": now,
        }
        # Posts are marked started in the claim, durably, before the request goes out: from here a
        # crash leaves the row in doubt (an earlier mark is kept: the search must start there).
        fresh = [r["id"] for r in rows if not r["token"] and r["send_started_at"] is None]
        others = [r["id"] for r in rows if r["id"] not in fresh]
        if fresh:
            conn.execute(update(table).where(table.c.id.in_(fresh)).values(**lease, send_started_at=now))
        if others:
            conn.execute(update(table).where(table.c.id.in_(others)).values(**lease))
        return rows

    async def _deliver(self, row: dict[str, Any], report: RunReport) -> None:
        try:
            if row["token"]:
                await self._resolve_token(row, report)
            else:
                await self._forward(row, report)
        except Exception as exc:  # a bug must not strand the row, nor risk a second post
            log.exception("open311 upstream: row %s failed unexpectedly", row["id"])
            failure = Open311Failure(f"internal: {type(exc).__name__}", ambiguous=True)
            doubt = None if row["token"] else (row["send_started_at"] or row["claimed_at"])
            await self._retry(row, failure, report, doubt=doubt)

    async def _forward(self, row: dict[str, Any], report: RunReport) -> None:
        code, fields = await self._db.run(functools.partial(self._payload, row=row))
        in_doubt: datetime | None = row["send_started_at"]
        if in_doubt is not None:
            # A previous POST may have reached the upstream: look for it before posting again.
            try:
                found = await self.client.search(row["service_code"], in_doubt - SEARCH_MARGIN)
            except Open311Failure as exc:
                await self._retry(row, exc, report, doubt=in_doubt)
                return
            match = next((r for r in found if marker(code) in r.description), None)
            if match is not None:
                log.info("open311 upstream: %s was already posted as %s", code, match.service_request_id)
                report.reconciled += 1
                await self._record_created(row, Created(match.service_request_id, None), report)
                return
        if not fields:
            refusal = Open311Failure("made confidential after it was queued: not forwarded", retryable=False)
            await self._retry(row, refusal, report, doubt=None)
            return
        try:
            created = await self.client.create_request(fields)
        except Open311Failure as exc:
            doubt = (in_doubt or row["claimed_at"]) if exc.ambiguous else None
            await self._retry(row, exc, report, doubt=doubt)
            return
        await self._record_created(row, created, report)

    async def _resolve_token(self, row: dict[str, Any], report: RunReport) -> None:
        try:
            request_id = await self.client.resolve_token(row["token"])
        except Open311Failure as exc:
            if exc.status == 404:  # not created yet upstream: ask again later
                exc = Open311Failure(exc.reason, status=404)
            await self._retry(row, exc, report, doubt=None)
            return
        if request_id is None:
            await self._retry(row, Open311Failure("token not resolved yet"), report, doubt=None)
            return
        await self._record_created(row, Created(request_id, row["token"]), report)

    def _payload(self, conn: Connection, row: dict[str, Any]) -> tuple[str, dict[str, str]]:
        """The Open311 fields for a complaint: nothing personal unless configured (module docstring)."""
        complaints, reporters = models.complaints, models.reporters
        complaint = conn.execute(select(complaints).where(complaints.c.id == row["complaint_id"])).one()
        stored = conn.execute(
            select(reporters.c.display_name, reporters.c.display_name_enc).where(
                reporters.c.id == complaint.reporter_id
            )
        ).one_or_none()
        name = open_name(self._settings.vault, *stored) if stored is not None else None
        names = (name,) if name else ()
        code = complaint.tracking_code
        if complaint.confidential:
            return code, {}  # an Open311 server publishes what it gets
        description = redact(complaint.description, names=names)
        fields: dict[str, str] = {
            "service_code": row["service_code"],
            "description": f"{marker(code)} {description}"[:4000],
        }
        if complaint.latitude is not None and complaint.longitude is not None:
            fields["lat"] = f"{complaint.latitude:.6f}"
            fields["long"] = f"{complaint.longitude:.6f}"
        if complaint.location_text:
            fields["address_string"] = redact(complaint.location_text, names=names)[:500]
        if self._public_url:
            from dashboard.tracking import resolution_photos

            if resolution_photos(conn, code):
                fields["media_url"] = f"{self._public_url}/lacak/{code}/foto/0"
        if self._config.share_reporter_contact:
            fields.update(self._contact(conn, complaint, name))
        return code, fields

    def _contact(self, conn: Connection, complaint: Any, name: str | None) -> dict[str, str]:
        out: dict[str, str] = {}
        if name:
            first, _, last = name.strip().partition(" ")
            out["first_name"] = first
            if last:
                out["last_name"] = last
        if complaint.origin_identity_id is not None:
            ident = models.channel_identities
            identity = conn.execute(
                select(ident.c.kind, ident.c.address, ident.c.address_enc).where(
                    ident.c.id == complaint.origin_identity_id
                )
            ).one_or_none()
            if identity is not None and identity.kind == "phone":
                out["phone"] = decrypt_contact(self._settings.vault, identity.address, identity.address_enc)
        return out

    async def _record_created(self, row: dict[str, Any], created: Created, report: RunReport) -> None:
        now = self._clock()
        table = models.upstream_requests
        values: dict[str, Any] = {
            "token": created.token,
            "send_started_at": None,
            "lease_owner": None,
            "lease_until": None,
            "last_error": None,
            "updated_at": now,
        }
        if created.service_request_id is None:
            values.update(state=UpstreamState.AWAITING_ID.value, next_attempt_at=now)
        else:
            values.update(
                state=UpstreamState.LINKED.value,
                service_request_id=created.service_request_id,
                linked_at=now,
                next_attempt_at=now + timedelta(seconds=self._config.poll_seconds),
            )

        def record(conn: Connection) -> bool:
            done = conn.execute(
                update(table)
                .where(table.c.id == row["id"], table.c.lease_owner == self._owner)
                .values(**values)
            )
            if done.rowcount != 1:
                return False
            if created.service_request_id is not None:
                note = f"Diteruskan ke {self._config.name}, nomor {created.service_request_id}."
                self._apply(conn, row["complaint_id"], [Step(Action.UPDATE, note=note)], now)
            return True

        if not await self._db.run(record):
            log.warning("open311 upstream: row %s was taken over by another worker", row["id"])
            return
        if created.service_request_id is not None:
            report.linked += 1
            log.info(
                "open311 upstream: complaint %s linked as %s", row["complaint_id"], created.service_request_id
            )
        else:
            self.wake()

    async def _retry(
        self, row: dict[str, Any], error: Open311Failure, report: RunReport, *, doubt: datetime | None
    ) -> None:
        now = self._clock()
        attempts = row["attempts"] + 1
        table = models.upstream_requests
        values: dict[str, Any] = {
            "lease_owner": None,
            "lease_until": None,
            "send_started_at": doubt,
            "last_error": error.reason[:500],
            "updated_at": now,
        }
        give_up = not error.retryable
        if give_up:
            values.update(state=UpstreamState.FAILED.value, next_attempt_at=now)
            report.failed += 1
            log.warning("open311 upstream: row %s refused for good: %s", row["id"], error.reason)
        else:
            waiting = UpstreamState.AWAITING_ID if row["token"] else UpstreamState.PENDING
            delay = backoff(attempts, self._outbox, error.retry_after)
            values.update(state=waiting.value, next_attempt_at=now + timedelta(seconds=delay))
            report.retried += 1
            level = logging.WARNING if attempts >= self._outbox.max_attempts else logging.INFO
            log.log(level, "open311 upstream: row %s attempt %d: %s", row["id"], attempts, error.reason)

        def record(conn: Connection) -> None:
            done = conn.execute(
                update(table)
                .where(table.c.id == row["id"], table.c.lease_owner == self._owner)
                .values(**values)
            )
            if done.rowcount == 1 and give_up:
                note = f"{self._config.name} menolak permintaan: {error.reason}"
                self._apply(conn, row["complaint_id"], [Step(Action.UPDATE, note=note)], now)

        await self._db.run(record)

    # ---- status back ----------------------------------------------------------------------

    def _claim_polls(self, conn: Connection) -> list[dict[str, Any]]:
        now = self._clock()
        table = models.upstream_requests
        query = (
            select(
                table.c.id,
                table.c.complaint_id,
                table.c.service_request_id,
                table.c.upstream_status,
                table.c.upstream_detail,
                table.c.upstream_notes,
            )
            .where(table.c.state == UpstreamState.LINKED.value, table.c.next_attempt_at <= now)
            .order_by(table.c.next_attempt_at, table.c.id)
            .limit(POLL_BATCH)
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows = [dict(row) for row in conn.execute(query).mappings()]
        if rows:
            conn.execute(
                update(table)
                .where(table.c.id.in_([r["id"] for r in rows]))
                .values(next_attempt_at=now + timedelta(seconds=self._config.poll_seconds), polled_at=now)
            )
        return rows

    async def _poll(self, report: RunReport) -> None:
        while True:
            rows = await self._db.run(self._claim_polls)
            if not rows:
                return
            try:
                remote = await self.client.get_requests([r["service_request_id"] for r in rows])
            except Open311Failure as exc:
                log.info(
                    "open311 upstream: status pull failed (%s); next try in %ss",
                    exc.reason,
                    self._config.poll_seconds,
                )
                return
            by_id = {r.service_request_id: r for r in remote}
            told = 0
            for row in rows:
                found = by_id.get(row["service_request_id"])
                if found is None:
                    continue
                applied, messages = await self._db.run(
                    functools.partial(self._apply_remote, row=row, remote=found)
                )
                report.changes += applied
                told += messages
            if told and self._on_committed is not None:
                self._on_committed()
            if len(rows) < POLL_BATCH:
                return

    def _apply_remote(self, conn: Connection, row: dict[str, Any], remote: RemoteRequest) -> tuple[int, int]:
        """One upstream change, recorded on the row and applied to the complaint in one transaction."""
        before = Seen(row["upstream_status"], row["upstream_detail"], row["upstream_notes"])
        after = Seen(remote.status, remote.detail, remote.notes)
        if after == before:
            return 0, 0
        now = self._clock()
        table = models.upstream_requests
        claimed = conn.execute(
            update(table)
            .where(
                table.c.id == row["id"],
                table.c.upstream_status.is_not_distinct_from(before.status),
                table.c.upstream_detail.is_not_distinct_from(before.detail),
                table.c.upstream_notes.is_not_distinct_from(before.notes),
            )
            .values(
                upstream_status=(after.status or "")[:32] or None,
                upstream_detail=(after.detail or "")[:64] or None,
                upstream_notes=after.notes,
                state=UpstreamState.CLOSED.value if after.status == "closed" else UpstreamState.LINKED.value,
                updated_at=now,
            )
        )
        if claimed.rowcount != 1:
            return 0, 0  # another poller recorded this change first
        status = conn.execute(
            select(models.complaints.c.status).where(models.complaints.c.id == row["complaint_id"])
        ).scalar_one()
        proof = (
            {"url": remote.media_url, "source": "open311_upstream", "content_type": "image/jpeg"}
            if remote.media_url
            else {
                "url": self.client.request_url(remote.service_request_id),
                "source": "open311_upstream",
                "content_type": "application/json",
            }
        )
        steps = plan(status, before, after, name=self._config.name, evidence=proof)
        return 1, self._apply(conn, row["complaint_id"], steps, now)

    def _apply(self, conn: Connection, complaint_id: int, steps: Sequence[Step], now: datetime) -> int:
        """Carry out `steps` as the complaint's department; returns the citizen messages written."""
        if not steps:
            return 0
        complaint = conn.execute(
            select(models.complaints.c.tracking_code, models.complaints.c.department).where(
                models.complaints.c.id == complaint_id
            )
        ).one()
        actor = Actor(f"open311:{self._config.name}"[:64], Role.HEAD.value, complaint.department)
        told = 0
        for step in steps:
            change = Change(
                step.action, actor, note=step.note, public_note=step.public_note, evidence=step.evidence
            )
            try:
                outcome = apply(conn, complaint.tracking_code, change, self._settings, now)
            except (TransitionError, Forbidden) as exc:
                log.info(
                    "open311 upstream: %s on %s not applied: %s", step.action, complaint.tracking_code, exc
                )
                continue
            told += outcome.citizen_messages
        return told
