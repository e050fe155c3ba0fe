"""The reporter's YA / BELUM after resolution, and the optional 1-5 rating."""

from __future__ import annotations

import functools

import pytest

from store.db import Database
from tests.harness import ManualClock
from tests.workflow.conftest import ADMIN, OFFICER, complaint_row, file_complaint, outbox_rows
from workflow.access import Action
from workflow.feedback import Answer, answer_in, parse_answer
from workflow.lifecycle import Workflow
from workflow.privacy import ContactVault


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("YA", Answer("yes")),
        ("ya sudah beres", Answer("yes")),
        ("Yes", Answer("yes")),
        ("BELUM", Answer("no")),
        ("belum, lubangnya masih ada", Answer("no", reason="lubangnya masih ada")),
        ("No it is still dark", Answer("no", reason="it is still dark")),
        ("5", Answer("rating", rating=5)),
        (" 1 ", Answer("rating", rating=1)),
        ("6", None),
        ("ya ampun jalan di depan rumah saya juga rusak parah", None),
        ("lampu mati di Jl. Pemuda", None),
        ("", None),
        (None, None),
        ("🙂", None),
    ],
)
def test_parse_answer(text: str | None, expected: Answer | None) -> None:
    assert parse_answer(text) == expected


async def resolved(workflow: Workflow, db: Database, vault: ContactVault) -> tuple[str, int]:
    code = await file_complaint(db, vault)
    await workflow.transition(code, Action.VERIFY, ADMIN)
    await workflow.transition(code, Action.FORWARD, ADMIN)
    await workflow.transition(code, Action.ACCEPT, OFFICER)
    await workflow.transition(code, Action.RESOLVE, OFFICER, evidence=["media/fixed.jpg"])
    return code, (await complaint_row(db, code)).reporter_id


async def test_ya_closes_and_a_rating_follows(
    db: Database, workflow: Workflow, vault: ContactVault, clock: ManualClock
) -> None:
    code, reporter = await resolved(workflow, db, vault)
    answer = functools.partial(answer_in, reporter_id=reporter, now=clock.now, settings=workflow.settings)
    result = await db.run(functools.partial(answer, text="YA"))
    assert result is not None and result.code == code and result.outcome == "closed"
    row = await complaint_row(db, code)
    assert row.status == "closed"
    assert "nilai" in (await outbox_rows(db, code))[-1].text
    rated = await db.run(functools.partial(answer, text="4"))
    assert rated is not None and rated.outcome == "rated"
    assert (await complaint_row(db, code)).rating == 4
    assert await db.run(functools.partial(answer, text="5")) is None, "rated once"
    assert await db.run(functools.partial(answer, text="YA")) is None, "nothing awaits an answer"


async def test_belum_reopens_with_the_reason(
    db: Database, workflow: Workflow, vault: ContactVault, clock: ManualClock
) -> None:
    code, reporter = await resolved(workflow, db, vault)
    result = await db.run(
        functools.partial(
            answer_in,
            reporter_id=reporter,
            text="BELUM, masih berlubang di sisi kiri",
            now=clock.now,
            settings=workflow.settings,
        )
    )
    assert result is not None and result.outcome == "reopened"
    row = await complaint_row(db, code)
    assert row.status == "reopened" and row.reopen_count == 1 and row.due_at is not None
    assert "status_reopen" in [m.kind for m in await outbox_rows(db, code)]


async def test_other_text_goes_to_the_conversation(
    db: Database, workflow: Workflow, vault: ContactVault, clock: ManualClock
) -> None:
    _, reporter = await resolved(workflow, db, vault)
    result = await db.run(
        functools.partial(
            answer_in,
            reporter_id=reporter,
            text="Lampu mati di Jl. Pandanaran",
            now=clock.now,
            settings=workflow.settings,
        )
    )
    assert result is None
