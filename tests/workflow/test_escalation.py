"""Deadline jobs on an injected clock: reminders, escalation, restarts, two processes, auto-close."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

from store.db import Database
from store.migrate import upgrade
from tests.harness import ManualClock
from tests.workflow.conftest import (
    ADMIN,
    OFFICER,
    PHONE,
    complaint_row,
    file_complaint,
    notifications,
    outbox_rows,
    recipient,
)
from workflow.access import Action
from workflow.escalation import Escalator
from workflow.lifecycle import Workflow
from workflow.privacy import ContactVault
from workflow.settings import WorkflowSettings

WIB = timezone(timedelta(hours=7))


def at(day: int, hour: int, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=WIB).astimezone(UTC)


async def forwarded(workflow: Workflow, db: Database, vault: ContactVault) -> str:
    code = await file_complaint(db, vault)
    await workflow.transition(code, Action.VERIFY, ADMIN)
    await workflow.transition(code, Action.FORWARD, ADMIN)  # due Monday 30 Nov, end of day
    return code


async def test_reminder_then_head_then_admin_across_a_restart(
    database_url: str, db: Database, workflow: Workflow, vault: ContactVault, clock: ManualClock
) -> None:
    settings = workflow.settings
    code = await forwarded(workflow, db, vault)
    before = len(await notifications(db))
    escalator = Escalator(db, settings, clock=clock)

    clock.now = at(29, 12)  # Sunday noon: due in more than 24 hours
    assert (await escalator.run_once()).total == 0
    clock.now = at(30, 8)  # Monday morning, the due day
    report = await escalator.run_once()
    assert report.reminders == 1
    assert (await escalator.run_once()).total == 0, "a reminder is sent once"
    assert (await notifications(db))[before:] == [("dpu_officer", "reminder")]

    # The process restarts: a new database handle and a new escalator, state only in the rows.
    restarted = Database(database_url, sqlite_synchronous="NORMAL")
    try:
        escalator = Escalator(restarted, settings, clock=clock)
        clock.now = at(1, 8, month=12)  # Tuesday: overdue
        assert (await escalator.run_once()).to_head == 1
        clock.now = at(2, 20, month=12)  # Wednesday evening: within the two working days
        assert (await escalator.run_once()).total == 0
        clock.now = at(3, 8, month=12)  # Thursday: two working days overdue
        assert (await escalator.run_once()).to_admin == 1
        clock.now = at(10, 8, month=12)
        assert (await escalator.run_once()).total == 0, "the admin is the top of the ladder"
    finally:
        await restarted.dispose()
    assert (await notifications(db))[before:] == [
        ("dpu_officer", "reminder"),
        ("dpu_officer", "overdue_head"),
        ("dpu_head", "overdue_head"),
        ("admin1", "overdue_admin"),
    ]
    row = await complaint_row(db, code)
    assert row.escalation_level == 3
    staff_messages = [m for m in await outbox_rows(db, code) if m.kind.startswith("staff_overdue")]
    assert {(m.channel, recipient(m), m.kind) for m in staff_messages} == {
        ("telegram", "9003", "staff_overdue_head"),
        ("telegram", "9002", "staff_overdue_head"),
        ("whatsapp_cloud", "+6281100000002", "staff_overdue_head"),
        ("telegram", "9001", "staff_overdue_admin"),
    }
    assert all(recipient(m) != PHONE for m in staff_messages)


async def test_two_processes_fire_each_step_once(
    database_url: str, db: Database, workflow: Workflow, vault: ContactVault, clock: ManualClock
) -> None:
    codes = [await forwarded(workflow, db, vault) for _ in range(5)]
    before = len(await notifications(db))
    other = Database(database_url, sqlite_synchronous="NORMAL")
    try:
        first = Escalator(db, workflow.settings, clock=clock)
        second = Escalator(other, workflow.settings, clock=clock)
        clock.now = at(1, 8, month=12)
        reports = await asyncio.gather(
            first.run_once(), second.run_once(), first.run_once(), second.run_once()
        )
        assert sum(r.to_head for r in reports) == 5
        clock.now = at(3, 8, month=12)
        reports = await asyncio.gather(first.run_once(), second.run_once())
        assert sum(r.to_admin for r in reports) == 5
    finally:
        await other.dispose()
    fresh = (await notifications(db))[before:]
    assert sorted(fresh).count(("dpu_head", "overdue_head")) == 5
    assert sorted(fresh).count(("admin1", "overdue_admin")) == 5
    assert len(fresh) == 15
    for code in codes:
        assert (await complaint_row(db, code)).escalation_level == 3


async def test_verification_deadline_is_stamped_and_enforced(
    db: Database, workflow: Workflow, vault: ContactVault, clock: ManualClock
) -> None:
    code = await file_complaint(db, vault)  # filed by the intake: no deadline yet
    escalator = Escalator(db, workflow.settings, clock=clock)
    report = await escalator.run_once()
    assert report.stamped == 1
    row = await complaint_row(db, code)
    assert row.verify_due_at.astimezone(WIB).date().isoformat() == "2026-11-26"  # Mon + 3 working days
    clock.now = at(27, 9)  # Friday, after a quiet outage: straight to "overdue", no stale reminder
    assert (await escalator.run_once()).verification == 1
    assert await notifications(db) == [("admin1", "verify_overdue")]
    await workflow.transition(code, Action.VERIFY, ADMIN)
    await workflow.transition(code, Action.FORWARD, ADMIN)
    assert (await complaint_row(db, code)).escalation_level == 0, "a new deadline starts a new ladder"


async def test_paused_complaints_are_not_chased(
    db: Database, workflow: Workflow, vault: ContactVault, clock: ManualClock
) -> None:
    code = await forwarded(workflow, db, vault)
    await workflow.transition(code, Action.ACCEPT, OFFICER)
    await workflow.transition(code, Action.ASK_REPORTER, OFFICER, public_note="Foto lokasinya ada?")
    clock.now = at(4, 9, month=12)
    assert (await Escalator(db, workflow.settings, clock=clock).run_once()).total == 0


async def test_unanswered_resolution_closes_after_ten_working_days_once(
    database_url: str, db: Database, workflow: Workflow, vault: ContactVault, clock: ManualClock
) -> None:
    code = await forwarded(workflow, db, vault)
    await workflow.transition(code, Action.ACCEPT, OFFICER)
    await workflow.transition(code, Action.RESOLVE, OFFICER, evidence=["media/done.jpg"])
    other = Database(database_url, sqlite_synchronous="NORMAL")
    try:
        first = Escalator(db, workflow.settings, clock=clock)
        second = Escalator(other, workflow.settings, clock=clock)
        clock.now = at(7, 12, month=12)  # Monday + 10 working days = Monday 7 December, end of day
        assert (await first.run_once()).closed == 0
        clock.now = at(8, 8, month=12)
        reports = await asyncio.gather(first.run_once(), second.run_once())
        assert sum(r.closed for r in reports) == 1
    finally:
        await other.dispose()
    row = await complaint_row(db, code)
    assert row.status == "closed" and row.closed_at == clock.now
    closing = [m for m in await outbox_rows(db, code) if m.kind == "status_close_timeout"]
    assert len(closing) == 1 and "belum ada tanggapan" in closing[0].text


async def test_configured_close_after(database_url: str, vault: ContactVault, clock: ManualClock) -> None:
    db = Database(database_url, sqlite_synchronous="NORMAL")
    try:
        await upgrade(db.engine)
        from tests.workflow.conftest import add_staff

        await add_staff(db)
        settings = WorkflowSettings(vault=vault, close_after_days=2)
        workflow = Workflow(db, settings, clock=clock)
        code = await forwarded(workflow, db, vault)
        await workflow.transition(code, Action.ACCEPT, OFFICER)
        await workflow.transition(code, Action.RESOLVE, OFFICER, evidence=["media/done.jpg"])
        clock.now = at(26, 1)  # Thursday 01:00: Tuesday + Wednesday have passed
        assert (await Escalator(db, settings, clock=clock).run_once()).closed == 1
    finally:
        await db.dispose()


async def test_the_scheduler_runs_the_job(db: Database, workflow: Workflow, vault: ContactVault) -> None:
    """Real APScheduler, real clock: an overdue complaint is escalated without anyone calling run_once."""
    code = await file_complaint(db, vault, created_at=datetime(2026, 1, 5, 2, tzinfo=UTC))
    done = asyncio.Event()
    escalator = Escalator(db, workflow.settings, on_committed=done.set, poll_seconds=3600)
    await escalator.start()
    try:
        await asyncio.wait_for(done.wait(), timeout=30)
    finally:
        await escalator.stop()
    assert (await complaint_row(db, code)).escalation_level == 2
