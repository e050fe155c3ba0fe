"""Deadlines that act by themselves: reminders, escalation up the hierarchy, closing unanswered ones.

Semarang's rule: unresolved complaints notify the department and then the head of department, in real
time. Levels, stored on the complaint (`escalation_level`), so a restart loses nothing:

    department work (forwarded / in_progress / reopened, not paused)
      1  `reminder_hours` before `due_at`      -> the department's officers
      2  past `due_at`                           -> the head(s) of department (and the officers)
      3  `admin_after_days` working days later   -> the city admins
    verification (submitted / verified)
      1  `reminder_hours` before `verify_due_at` -> the city admins
      2  past `verify_due_at`                    -> the city admins

Each step is claimed with `UPDATE ... SET escalation_level = new WHERE id = ? AND escalation_level = old
AND status = ?` in the same transaction that writes its notifications: with several gateway processes on
one database exactly one UPDATE matches (PostgreSQL re-checks the WHERE after the row lock; SQLite
serialises writers), so each reminder goes out once. After downtime a complaint jumps straight to the
level it has reached and only that level's people are told. Resolved complaints nobody answered are
closed here too (`feedback_due_at`).

`Escalator.run_once()` is the whole job; `start()` runs it on an APScheduler interval. Tests call
`run_once()` with an injected clock.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from store import models
from store.db import Database
from store.models import ComplaintStatus as S
from workflow import notify
from workflow.access import Action, Actor, Role
from workflow.lifecycle import Change, TransitionError, apply, load_departments
from workflow.messages import due_text
from workflow.settings import WorkflowSettings

log = logging.getLogger(__name__)

DEPARTMENT_PHASE = (S.FORWARDED.value, S.IN_PROGRESS.value, S.REOPENED.value)
VERIFY_PHASE = (S.SUBMITTED.value, S.VERIFIED.value)
BATCH = 200


@dataclass
class EscalationReport:
    stamped: int = 0
    reminders: int = 0
    to_head: int = 0
    to_admin: int = 0
    verification: int = 0
    closed: int = 0

    @property
    def total(self) -> int:
        return self.reminders + self.to_head + self.to_admin + self.verification + self.closed


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Escalator:
    def __init__(
        self,
        db: Database,
        settings: WorkflowSettings,
        *,
        clock: Callable[[], datetime] = _utcnow,
        on_committed: Callable[[], None] | None = None,
        poll_seconds: float = 60.0,
    ) -> None:
        self._db = db
        self._settings = settings
        self._clock = clock
        self._on_committed = on_committed
        self._poll = poll_seconds
        self._scheduler: Any = None
        self._idle = asyncio.Event()
        self._idle.set()

    # ---- the job ------------------------------------------------------------------------

    async def run_once(self) -> EscalationReport:
        """One pass over every deadline; safe to run in any number of processes at once."""
        now = self._clock()
        report = EscalationReport()
        report.stamped = await self._db.run(functools.partial(self._stamp_verify_deadlines, now=now))
        for row in await self._candidates(now):
            target = self._target_level(row, now)
            if target <= row.escalation_level:
                continue
            claimed = await self._db.run(functools.partial(self._escalate, row=row, target=target, now=now))
            if claimed:
                self._count(report, row.status, target)
        for code in await self._unanswered(now):
            if await self._db.run(functools.partial(self._close, code=code, now=now)):
                report.closed += 1
        if report.total and self._on_committed is not None:
            self._on_committed()
        if report.total:
            log.info(
                "deadlines: %d reminders, %d to heads, %d to admins, %d verification, %d closed",
                report.reminders,
                report.to_head,
                report.to_admin,
                report.verification,
                report.closed,
            )
        return report

    @staticmethod
    def _count(report: EscalationReport, status: str, level: int) -> None:
        if status in VERIFY_PHASE:
            report.verification += 1
        elif level == 1:
            report.reminders += 1
        elif level == 2:
            report.to_head += 1
        else:
            report.to_admin += 1

    def _stamp_verify_deadlines(self, conn: Connection, now: datetime) -> int:
        """Complaints the intake filed get their 3-working-day verification deadline here."""
        table = models.complaints
        rows = conn.execute(
            select(table.c.id, table.c.created_at)
            .where(table.c.status.in_(VERIFY_PHASE), table.c.verify_due_at.is_(None))
            .limit(BATCH)
        ).all()
        for complaint_id, created_at in rows:
            due = self._settings.calendar.add_working_days(created_at, self._settings.verify_days)
            conn.execute(
                update(table)
                .where(table.c.id == complaint_id, table.c.verify_due_at.is_(None))
                .values(verify_due_at=due)
            )
        return len(rows)

    async def _candidates(self, now: datetime) -> list[Any]:
        table = models.complaints
        horizon = now + timedelta(hours=self._settings.reminder_hours)
        columns = (
            table.c.id,
            table.c.tracking_code,
            table.c.status,
            table.c.category,
            table.c.due_at,
            table.c.verify_due_at,
            table.c.escalation_level,
        )
        async with self._db.engine.connect() as conn:
            department = await conn.execute(
                select(*columns)
                .where(
                    table.c.status.in_(DEPARTMENT_PHASE),
                    table.c.paused_at.is_(None),
                    table.c.due_at <= horizon,
                    table.c.escalation_level < 3,
                )
                .order_by(table.c.due_at)
                .limit(BATCH)
            )
            verifying = await conn.execute(
                select(*columns)
                .where(
                    table.c.status.in_(VERIFY_PHASE),
                    table.c.paused_at.is_(None),
                    table.c.verify_due_at <= horizon,
                    table.c.escalation_level < 2,
                )
                .order_by(table.c.verify_due_at)
                .limit(BATCH)
            )
            return [*department.all(), *verifying.all()]

    def _target_level(self, row: Any, now: datetime) -> int:
        settings = self._settings
        lead = timedelta(hours=settings.reminder_hours)
        if row.status in VERIFY_PHASE:
            due = row.verify_due_at
            return 2 if now > due else 1 if now >= due - lead else 0
        due = row.due_at
        if now > settings.calendar.add_working_days(due, settings.admin_after_days):
            return 3
        if now > due:
            return 2
        return 1 if now >= due - lead else 0

    def _escalate(self, conn: Connection, row: Any, target: int, now: datetime) -> bool:
        """Claim the step (conditional UPDATE) and write its notifications, or do nothing."""
        table = models.complaints
        claimed = conn.execute(
            update(table)
            .where(
                table.c.id == row.id,
                table.c.escalation_level == row.escalation_level,
                table.c.status == row.status,
            )
            .values(escalation_level=target, escalated_at=now)
        )
        if claimed.rowcount != 1:
            return False
        departments = load_departments(conn, row.id)
        params: dict[str, object] = {
            "code": row.tracking_code,
            "category": row.category or "",
            "department_codes": departments,
        }
        if row.status in VERIFY_PHASE:
            params["due"] = due_text(row.verify_due_at)
            admins = notify.staff(conn, roles=(Role.ADMIN,))
            key = "verify_overdue" if target == 2 else "verify_reminder"
            notify.tell_staff(conn, admins, row.id, key, params, now, self._settings)
            return True
        params["due"] = due_text(row.due_at)
        if target == 1:
            users = notify.staff(conn, roles=(Role.OFFICER,), departments=departments)
            key = "reminder"
        elif target == 2:
            users = notify.staff(conn, roles=(Role.HEAD, Role.OFFICER), departments=departments)
            if not any(u.role == Role.HEAD for u in users):  # no head registered: straight to the city
                users += notify.staff(conn, roles=(Role.ADMIN,))
            key = "overdue_head"
        else:
            users = notify.staff(conn, roles=(Role.ADMIN,))
            key = "overdue_admin"
        notify.tell_staff(conn, users, row.id, key, params, now, self._settings)
        return True

    async def _unanswered(self, now: datetime) -> list[str]:
        table = models.complaints
        async with self._db.engine.connect() as conn:
            rows = await conn.execute(
                select(table.c.tracking_code)
                .where(table.c.status == S.RESOLVED.value, table.c.feedback_due_at <= now)
                .order_by(table.c.feedback_due_at)
                .limit(BATCH)
            )
            return [code for (code,) in rows]

    def _close(self, conn: Connection, code: str, now: datetime) -> bool:
        change = Change(Action.CLOSE, Actor.system(), close_reason="timeout")
        try:
            apply(conn, code, change, self._settings, now)
        except TransitionError:  # answered or closed by another process meanwhile
            return False
        return True

    # ---- scheduling ---------------------------------------------------------------------

    async def start(self) -> None:
        """Run `run_once` every `poll_seconds` on APScheduler's asyncio scheduler. The schedule itself
        holds no state: everything that must survive a restart is on the complaint rows."""
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        scheduler = AsyncIOScheduler(timezone="Asia/Jakarta")
        scheduler.add_job(
            self._safe_run,
            "interval",
            seconds=self._poll,
            id="workflow-deadlines",
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now(UTC),
        )
        scheduler.start()
        self._scheduler = scheduler

    async def _safe_run(self) -> None:
        self._idle.clear()
        try:
            await self.run_once()
        except Exception:
            log.exception("deadline job failed; trying again next round")
        finally:
            self._idle.set()

    async def stop(self) -> None:
        """Stop scheduling, then wait for a round in progress: the engine is disposed after this, and
        a round cancelled inside a database call can hang the driver's shutdown."""
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        await self._idle.wait()
