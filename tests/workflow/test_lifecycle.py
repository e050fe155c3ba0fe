"""The lifecycle: every status x every action, and what each transition writes."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from store import models
from store.db import Database
from store.models import ComplaintStatus as S
from tests.harness import ManualClock
from tests.workflow.conftest import (
    ADMIN,
    HEAD,
    OFFICER,
    OTHER_OFFICER,
    PHONE,
    complaint_row,
    file_complaint,
    notifications,
    outbox_rows,
    recipient,
)
from workflow.access import Action, Actor, Forbidden
from workflow.calendar import JAKARTA
from workflow.lifecycle import (
    TRANSITIONS,
    Conflict,
    IllegalTransition,
    MissingInput,
    TransitionError,
    Workflow,
)
from workflow.messages import render
from workflow.privacy import ContactVault

PHOTO = {"url": "media/2026/11/fixed.jpg", "content_type": "image/jpeg"}
DEPARTMENT_ACTIONS = {Action.ACCEPT, Action.REQUEST_COORDINATION, Action.RESOLVE}


async def reach(workflow: Workflow, db: Database, vault: ContactVault, status: S) -> str:
    """A complaint brought to `status` through the workflow itself (draft is how intake stores it)."""
    if status == S.DRAFT:
        return await file_complaint(db, vault, status="draft")
    code = await file_complaint(db, vault)
    path: dict[S, list[tuple[Action, Actor, dict[str, Any]]]] = {
        S.SUBMITTED: [],
        S.VERIFIED: [(Action.VERIFY, ADMIN, {})],
        S.FORWARDED: [(Action.VERIFY, ADMIN, {}), (Action.FORWARD, ADMIN, {})],
        S.IN_PROGRESS: [
            (Action.VERIFY, ADMIN, {}),
            (Action.FORWARD, ADMIN, {}),
            (Action.ACCEPT, OFFICER, {}),
        ],
        S.REJECTED: [(Action.REJECT, ADMIN, {"public_note": "Bukan wewenang Pemkot"})],
    }
    path[S.RESOLVED] = [*path[S.IN_PROGRESS], (Action.RESOLVE, OFFICER, {"evidence": [PHOTO]})]
    path[S.CLOSED] = [*path[S.RESOLVED], (Action.CLOSE, ADMIN, {})]
    path[S.REOPENED] = [*path[S.RESOLVED], (Action.REOPEN, ADMIN, {"note": "masih berlubang"})]
    if status == S.DUPLICATE:
        original = await file_complaint(db, vault)
        path[S.DUPLICATE] = [(Action.MARK_DUPLICATE, ADMIN, {"duplicate_of": original})]
    for action, actor, kwargs in path[status]:
        await workflow.transition(code, action, actor, **kwargs)
    assert (await complaint_row(db, code)).status == status
    return code


def full_input(original: str) -> dict[str, Any]:
    """Everything any action may need, so only the status decides."""
    return {
        "note": "catatan internal",
        "public_note": "Petugas sudah dijadwalkan",
        "evidence": [PHOTO],
        "departments": ["dpu"],
        "category": "jalan_rusak",
        "duplicate_of": original,
    }


@pytest.mark.parametrize("status", list(S))
async def test_every_action_from_every_status(
    status: S, db: Database, workflow: Workflow, vault: ContactVault
) -> None:
    original = await file_complaint(db, vault)
    for action in TRANSITIONS:
        code = await reach(workflow, db, vault, status)
        rule = TRANSITIONS[action]
        if action == Action.RESUME and status in rule.sources:
            await workflow.transition(code, Action.ASK_REPORTER, ADMIN, public_note="Di sisi mana jalannya?")
        actor = OFFICER if action in DEPARTMENT_ACTIONS else ADMIN
        if status in rule.sources:
            outcome = await workflow.transition(code, action, actor, **full_input(original))
            expected = rule.target or status
            assert outcome.to_status == expected, (status, action)
            assert (await complaint_row(db, code)).status == expected
        else:
            before = await complaint_row(db, code)
            with pytest.raises(
                IllegalTransition, match=f"cannot {action.value} complaint {code}: it is {status}"
            ):
                await workflow.transition(code, action, actor, **full_input(original))
            assert await complaint_row(db, code) == before, "a refused transition changes nothing"


def test_table_matches_the_design() -> None:
    def targets(action: Action) -> set[S]:
        rule = TRANSITIONS[action]
        return {rule.target} if rule.target else set(rule.sources)

    reachable = {t for a in TRANSITIONS for t in targets(a)}
    assert reachable == set(S) - {S.DRAFT}
    for terminal in (S.REJECTED, S.DUPLICATE):
        assert not any(terminal in rule.sources for rule in TRANSITIONS.values())
    assert TRANSITIONS[Action.RESOLVE].sources == {S.IN_PROGRESS}
    assert TRANSITIONS[Action.CLOSE].sources == {S.RESOLVED}


async def test_forward_writes_audit_deadline_message_and_notification_in_one_go(
    db: Database, workflow: Workflow, vault: ContactVault
) -> None:
    code = await file_complaint(db, vault)
    await workflow.transition(code, Action.VERIFY, ADMIN)
    outcome = await workflow.transition(code, Action.FORWARD, ADMIN, note="prioritas, dekat sekolah")
    row = await complaint_row(db, code)
    assert row.department == "dpu" and row.sla_scope == "single"  # the seeded routing rule
    # Monday 23 November 2026 + 5 working days = Monday 30 November, end of day in Semarang.
    assert row.due_at.astimezone(JAKARTA).strftime("%Y-%m-%d %H:%M") == "2026-11-30 23:59"
    assert outcome.due_at == row.due_at
    async with db.engine.connect() as conn:
        events = (
            await conn.execute(
                select(models.status_events)
                .where(models.status_events.c.complaint_id == row.id)
                .order_by("id")
            )
        ).all()
    assert [(e.from_status, e.to_status, e.actor, e.public, e.note) for e in events] == [
        ("submitted", "verified", "admin1", True, None),
        ("verified", "forwarded", "admin1", True, None),
        ("forwarded", "forwarded", "admin1", False, "prioritas, dekat sekolah"),
    ]
    messages = [m for m in await outbox_rows(db, code) if m.kind.startswith("status_")]
    assert [(m.kind, m.channel, recipient(m)) for m in messages] == [
        ("status_verify", "twilio_sms", PHONE),
        ("status_forward", "twilio_sms", PHONE),
    ]
    assert "Dinas Pekerjaan Umum" in messages[1].text and "30/11/2026" in messages[1].text
    assert "prioritas" not in messages[1].text, "internal notes never reach the citizen"
    assert await notifications(db) == [("dpu_officer", "forward"), ("dpu_head", "forward")]
    staff = [m for m in await outbox_rows(db, code) if m.kind == "staff_forward"]
    assert {(m.channel, recipient(m)) for m in staff} == {
        ("telegram", "9002"),
        ("whatsapp_cloud", "+6281100000002"),
        ("telegram", "9003"),
    }


async def test_coordination_scope_and_several_departments(
    db: Database, workflow: Workflow, vault: ContactVault
) -> None:
    code = await file_complaint(db, vault, category="banjir")
    await workflow.transition(code, Action.VERIFY, ADMIN)
    outcome = await workflow.transition(code, Action.FORWARD, ADMIN, departments=["dpu", "bpbd"])
    row = await complaint_row(db, code)
    assert outcome.departments == ("dpu", "bpbd") and row.sla_scope == "coordination"
    assert row.due_at.astimezone(JAKARTA).date().isoformat() == "2026-12-07"  # 10 working days
    agency = await file_complaint(db, vault)
    await workflow.transition(agency, Action.VERIFY, ADMIN)
    await workflow.transition(agency, Action.FORWARD, ADMIN, scope="agency")
    # 30 working days from 23 Nov 2026, skipping Christmas and its joint leave, New Year, Isra Mi'raj.
    assert (await complaint_row(db, agency)).due_at.astimezone(JAKARTA).date().isoformat() == "2027-01-08"


async def test_guards_say_what_is_missing(db: Database, workflow: Workflow, vault: ContactVault) -> None:
    code = await file_complaint(db, vault, category="lainnya")
    with pytest.raises(MissingInput, match="reason"):
        await workflow.transition(code, Action.REJECT, ADMIN, note="internal only")
    with pytest.raises(MissingInput, match="duplicate_of"):
        await workflow.transition(code, Action.MARK_DUPLICATE, ADMIN)
    with pytest.raises(MissingInput, match="cannot duplicate itself"):
        await workflow.transition(code, Action.MARK_DUPLICATE, ADMIN, duplicate_of=code)
    await workflow.transition(code, Action.VERIFY, ADMIN)
    with pytest.raises(MissingInput, match="no routing rule"):
        await workflow.transition(code, Action.FORWARD, ADMIN)
    with pytest.raises(MissingInput, match="unknown or inactive department: dinas_hantu"):
        await workflow.transition(code, Action.FORWARD, ADMIN, departments=["dinas_hantu"])
    await workflow.transition(code, Action.FORWARD, ADMIN, departments=["dpu"])
    await workflow.transition(code, Action.ACCEPT, OFFICER)
    with pytest.raises(MissingInput, match="evidence"):
        await workflow.transition(code, Action.RESOLVE, OFFICER, public_note="Sudah ditambal")
    with pytest.raises(MissingInput, match="media reference"):
        await workflow.transition(code, Action.RESOLVE, OFFICER, evidence=[{"url": " "}])
    with pytest.raises(TransitionError, match="unknown action"):
        await workflow.transition(code, "teleport", ADMIN)
    assert (await complaint_row(db, code)).status == "in_progress"


async def test_other_departments_are_refused(db: Database, workflow: Workflow, vault: ContactVault) -> None:
    code = await reach(workflow, db, vault, S.FORWARDED)
    with pytest.raises(Forbidden, match="own department"):
        await workflow.transition(code, Action.ACCEPT, OTHER_OFFICER)
    with pytest.raises(Forbidden, match="role 'officer' may not forward"):
        await workflow.transition(code, Action.FORWARD, OFFICER, departments=["dlh"])
    await workflow.transition(code, Action.ACCEPT, HEAD)


async def test_resolution_asks_the_reporter_and_reopen_restarts_the_deadline(
    db: Database, workflow: Workflow, vault: ContactVault, clock: ManualClock
) -> None:
    code = await reach(workflow, db, vault, S.IN_PROGRESS)
    clock.advance(days=2)
    await workflow.transition(
        code, Action.RESOLVE, OFFICER, public_note="Lubang sudah ditambal", evidence=[PHOTO]
    )
    row = await complaint_row(db, code)
    assert row.resolved_at == clock.now
    # Resolved Wednesday 25 Nov + 10 working days = 9 December.
    assert row.feedback_due_at.astimezone(JAKARTA).date().isoformat() == "2026-12-09"
    last = (await outbox_rows(db, code))[-1]
    assert last.text == render("id", "citizen.resolve", code=code, note="Lubang sudah ditambal")
    assert "Balas YA" in last.text
    await workflow.transition(code, Action.REOPEN, ADMIN, note="warga: masih berlubang")
    row = await complaint_row(db, code)
    assert row.status == "reopened" and row.reopen_count == 1 and row.resolved_at is None
    assert row.due_at.astimezone(JAKARTA).date().isoformat() == "2026-12-02"
    assert ("dpu_officer", "reopen") in await notifications(db)
    await workflow.transition(code, Action.ACCEPT, OFFICER)


async def test_pause_while_waiting_for_the_reporter_moves_the_deadline(
    db: Database, workflow: Workflow, vault: ContactVault, clock: ManualClock
) -> None:
    code = await reach(workflow, db, vault, S.IN_PROGRESS)
    due = (await complaint_row(db, code)).due_at
    await workflow.transition(code, Action.ASK_REPORTER, OFFICER, public_note="Di sisi mana lubangnya?")
    with pytest.raises(IllegalTransition, match="already waiting"):
        await workflow.transition(code, Action.ASK_REPORTER, OFFICER, public_note="Lagi?")
    clock.advance(days=3)  # Monday -> Thursday: three working days paused
    await workflow.transition(code, Action.RESUME, OFFICER)
    row = await complaint_row(db, code)
    assert row.paused_at is None
    assert row.due_at.astimezone(JAKARTA).date().isoformat() == "2026-12-03"
    assert due.astimezone(JAKARTA).date().isoformat() == "2026-11-30"


async def test_duplicate_links_and_the_reporter_follows_the_original(
    db: Database, workflow: Workflow, vault: ContactVault
) -> None:
    original = await reach(workflow, db, vault, S.FORWARDED)
    copy = await file_complaint(db, vault, phone="+6289876543210")
    await workflow.transition(copy, Action.MARK_DUPLICATE, ADMIN, duplicate_of=original)
    row = await complaint_row(db, copy)
    assert row.duplicate_of_id == (await complaint_row(db, original)).id
    await workflow.transition(original, Action.ACCEPT, OFFICER)
    accepted = [recipient(m) for m in await outbox_rows(db, original) if m.kind == "status_accept"]
    assert accepted == [PHONE, "+6289876543210"]


async def test_reporter_language_is_used(db: Database, workflow: Workflow, vault: ContactVault) -> None:
    code = await file_complaint(db, vault, language="en")
    await workflow.transition(code, Action.REJECT, ADMIN, public_note="Private land, not a city road")
    (message,) = await outbox_rows(db, code)
    assert message.text == f"Sorry, report {code} cannot be processed. Reason: Private land, not a city road"


async def test_two_officers_at_once_one_wins(db: Database, workflow: Workflow, vault: ContactVault) -> None:
    import asyncio

    code = await reach(workflow, db, vault, S.FORWARDED)
    results = await asyncio.gather(
        workflow.transition(code, Action.ACCEPT, OFFICER),
        workflow.transition(code, Action.ACCEPT, HEAD),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["IllegalTransition", "Outcome"]
    assert Conflict.__mro__[1] is TransitionError
    accepts = [m for m in await outbox_rows(db, code) if m.kind == "status_accept"]
    assert len(accepts) == 1
