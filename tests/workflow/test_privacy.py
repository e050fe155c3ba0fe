"""Privacy: contacts encrypted at rest, departments see pseudonyms, reveals are audited, ANONIM holds,
and no view, export or log line carries the reporter's number or name."""

from __future__ import annotations

import functools
import json
import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from store import models
from store.db import Database
from tests.harness import ManualClock
from tests.workflow.conftest import (
    ADMIN,
    AUDITOR,
    HEAD,
    NAME,
    OFFICER,
    OTHER_OFFICER,
    PHONE,
    file_complaint,
    recipient,
)
from workflow.access import Action, Forbidden
from workflow.escalation import Escalator
from workflow.lifecycle import Workflow
from workflow.privacy import ContactVault, PrivacyError, load_vault, mask, pseudonym, redact
from workflow.views import export_rows, public_view, reveal_identity, reveals, staff_view

DESCRIPTION = f"Jalan rusak depan rumah saya, saya {NAME}, hubungi 0812-3456-7890 atau siti@example.com"


def test_vault_round_trip_lookup_and_pseudonym(vault: ContactVault) -> None:
    token = vault.encrypt(PHONE)
    assert PHONE not in token and vault.decrypt(token) == PHONE
    assert vault.lookup_hash("phone", PHONE) == ContactVault(
        "test-privacy-key-not-for-production"
    ).lookup_hash("phone", PHONE)
    assert vault.lookup_hash("phone", PHONE) != ContactVault("another key").lookup_hash("phone", PHONE)
    assert vault.lookup_hash("twitter", "@WargaSmg") == vault.lookup_hash("twitter", "wargasmg")
    assert len(vault.lookup_hash("phone", PHONE)) == 64
    assert pseudonym(vault, "ref1") == pseudonym(vault, "ref1") != pseudonym(vault, "ref2")
    assert pseudonym(vault, "ref1", anonymous_in="LPR-A") != pseudonym(vault, "ref1", anonymous_in="LPR-B")
    with pytest.raises(PrivacyError):
        ContactVault("another key").decrypt(token)
    rotated = ContactVault("new key", previous=("test-privacy-key-not-for-production",))
    assert rotated.decrypt(token) == PHONE
    assert "test-privacy" not in repr(vault)
    assert mask("phone", PHONE) == "+62812****90"
    assert redact(DESCRIPTION, names=(NAME,)).count("[…]") == 3


def test_key_file_is_created_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "var" / "privacy.key"
    first = load_vault("", str(path))
    second = load_vault("", str(path))
    assert second.decrypt(first.encrypt(PHONE)) == PHONE
    assert os.stat(path).st_mode & 0o777 == 0o600


async def test_contacts_are_not_stored_in_clear(db: Database, vault: ContactVault) -> None:
    await file_complaint(db, vault)
    async with db.engine.connect() as conn:
        rows = (await conn.execute(select(models.channel_identities))).all()
    assert rows and all(PHONE not in f"{r.address}{r.address_enc}" for r in rows)


async def test_department_view_shows_a_pseudonym_and_masked_contact(
    db: Database, workflow: Workflow, vault: ContactVault
) -> None:
    code = await file_complaint(db, vault, description=DESCRIPTION)
    await workflow.transition(code, Action.VERIFY, ADMIN)
    await workflow.transition(code, Action.FORWARD, ADMIN, note=f"penelpon {NAME} minta cepat")
    view = await db.run(functools.partial(staff_view, code=code, viewer=OFFICER, vault=vault))
    assert view["reporter"]["pseudonym"].startswith("Warga-")
    assert view["reporter"]["contact"] == "+62812****90"
    dumped = json.dumps(view, default=str)
    assert PHONE not in dumped and "0812-3456-7890" not in dumped and NAME not in dumped
    assert "siti@example.com" not in dumped
    with pytest.raises(Forbidden, match="own department"):
        await db.run(functools.partial(staff_view, code=code, viewer=OTHER_OFFICER, vault=vault))
    with pytest.raises(Forbidden):
        await db.run(functools.partial(staff_view, code=code, viewer=AUDITOR, vault=vault))


async def test_reveal_needs_an_admin_and_a_reason_and_is_audited(
    db: Database, vault: ContactVault, clock: ManualClock
) -> None:
    code = await file_complaint(db, vault)
    reveal = functools.partial(reveal_identity, code=code, vault=vault, now=clock.now)
    with pytest.raises(Forbidden):
        await db.run(functools.partial(reveal, actor=HEAD, reason="ingin menelepon pelapor"))
    with pytest.raises(Forbidden, match="reason"):
        await db.run(functools.partial(reveal, actor=ADMIN, reason="  cek "))
    shown = await db.run(functools.partial(reveal, actor=ADMIN, reason="Lokasi tidak jelas, perlu telepon"))
    assert (shown.name, shown.address) == (NAME, PHONE)
    log = await db.run(functools.partial(reveals, actor=AUDITOR, code=code))
    assert [(r["actor"], r["reason"]) for r in log] == [("admin1", "Lokasi tidak jelas, perlu telepon")]
    with pytest.raises(Forbidden):
        await db.run(functools.partial(reveals, actor=OFFICER))


async def test_anonim_keeps_identity_from_everyone(
    db: Database, workflow: Workflow, vault: ContactVault, clock: ManualClock
) -> None:
    first = await file_complaint(db, vault, anonymous=True)
    await workflow.transition(first, Action.VERIFY, ADMIN)
    view = await db.run(functools.partial(staff_view, code=first, viewer=ADMIN, vault=vault))
    assert view["reporter"]["contact"] is None and view["reporter"]["anonymous"] is True
    with pytest.raises(Forbidden, match="ANONIM"):
        await db.run(
            functools.partial(
                reveal_identity,
                code=first,
                actor=ADMIN,
                reason="tetap ingin tahu",
                vault=vault,
                now=clock.now,
            )
        )
    async with db.engine.connect() as conn:
        assert (await conn.execute(select(models.identity_reveals))).all() == []
        messages = (await conn.execute(select(models.outbox))).all()
    assert [recipient(m) for m in messages] == [PHONE], "the system still answers the reporter"
    assert PHONE not in messages[0].to_address + (messages[0].to_address_enc or ""), "sealed at rest"


async def test_public_views_and_export_hold_no_personal_data_and_no_confidential_content(
    db: Database, workflow: Workflow, vault: ContactVault, clock: ManualClock
) -> None:
    open_code = await file_complaint(db, vault, description=DESCRIPTION)
    secret_code = await file_complaint(db, vault, description="Pungli di kantor kelurahan oleh oknum")
    await workflow.transition(secret_code, Action.VERIFY, ADMIN, confidential=True)
    await workflow.transition(open_code, Action.VERIFY, ADMIN)
    public = await db.run(functools.partial(public_view, code=open_code))
    hidden = await db.run(functools.partial(public_view, code=secret_code))
    assert public is not None and hidden is not None
    assert hidden["description"] is None and hidden["location_text"] is None
    assert "Pungli" not in json.dumps(hidden, default=str)
    since, until = clock.now - timedelta(days=1), clock.now + timedelta(days=1)
    rows = await db.run(functools.partial(export_rows, actor=AUDITOR, since=since, until=until))
    assert {r["code"] for r in rows} == {open_code, secret_code}
    for text in (json.dumps(public, default=str), json.dumps(rows, default=str)):
        assert PHONE not in text and "0812-3456-7890" not in text and "siti@example.com" not in text
        assert "Pungli" not in text
    with pytest.raises(Forbidden):
        await db.run(functools.partial(export_rows, actor=OFFICER, since=since, until=until))


async def test_logs_never_carry_the_reporter(
    db: Database,
    workflow: Workflow,
    vault: ContactVault,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    code = await file_complaint(db, vault, description=DESCRIPTION)
    for action, actor, kwargs in [
        (Action.VERIFY, ADMIN, {}),
        (Action.FORWARD, ADMIN, {}),
        (Action.ACCEPT, OFFICER, {}),
        (Action.RESOLVE, OFFICER, {"evidence": ["media/x.jpg"]}),
    ]:
        await workflow.transition(code, action, actor, **kwargs)
    clock.now = datetime(2027, 1, 30, tzinfo=UTC)
    await Escalator(db, workflow.settings, clock=clock).run_once()
    text = caplog.text
    assert "closed" in text, "the job logged its work"
    assert PHONE not in text and NAME not in text and "0812" not in text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sampah menumpuk di pasar Johar", "sampah menumpuk di pasar Johar"),
        ("lubang 30 cm di RT 05 RW 02", "lubang 30 cm di RT 05 RW 02"),
        ("hubungi 0812 3456 7890 ya", "hubungi […] ya"),
        ("WA +62 812-3456-7890.", "WA […]."),
        ("tel.081234567890/email budi.s@mail.co.id", "tel.[…]/email […]"),
        ("surel warga@semarangkota.go.id saja", "surel […] saja"),
        ("@LaporHendi tolong", "@LaporHendi tolong"),
    ],
)
def test_redact_removes_numbers_and_addresses_and_nothing_else(text: str, expected: str) -> None:
    assert redact(text) == expected
