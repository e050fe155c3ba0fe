"""Rotating the privacy key (`lapor keys rotate`): contacts written under key A through the real
pipeline are re-sealed under key B, readable with B alone, still found by the lookup hash the
pipeline computes under B, and a second run changes nothing. On SQLite and PostgreSQL alike."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from adapters.base import Address, AddressKind, InboundMessage, Medium
from conversation import api as conv
from conversation.machine import step
from gateway.addressbook import PLAIN, AddressBook
from gateway.effects import Stepper
from gateway.keys_cli import RotationReport, generate_key, rotate
from gateway.pipeline import Ingestor
from store import models
from store.db import Database
from store.migrate import upgrade
from tests.harness import ManualClock
from workflow.privacy import ContactVault, PrivacyError

ROOT = Path(__file__).resolve().parent.parent
KEY_A = "old-privacy-key-a-for-tests-only"
KEY_B = "new-privacy-key-b-for-tests-only"
SITI = "+6281234567801"
BUDI = "+6281234567802"
LEGACY = "+6281234567803"  # stored in clear by a version before contacts were encrypted
RINA = "+6281234567804"
RUDI = "+6281234567805"
TELEGRAM_ID = "519283746"
HANDLE = "WargaSemarang"  # X handles are case-insensitive: the hash is of the lower-case form


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url, sqlite_synchronous="NORMAL")
    await upgrade(database.engine)
    yield database
    await database.dispose()


def message(kind: AddressKind, address: str, text: str, clock: ManualClock) -> InboundMessage:
    channel, medium = {
        AddressKind.PHONE: ("twilio_sms", Medium.SMS),
        AddressKind.TELEGRAM: ("telegram", Medium.TELEGRAM),
        AddressKind.TWITTER: ("twitter", Medium.TWITTER),
    }[kind]
    return InboundMessage(
        channel=channel,
        medium=medium,
        provider_message_id=uuid.uuid4().hex,
        sender=Address(kind, address),
        received_at=clock(),
        text=text,
    )


async def send(
    db: Database, book: AddressBook, clock: ManualClock, *texts: tuple[AddressKind, str, str]
) -> None:
    """What the gateway does with inbound messages, with the given key configuration."""
    ingestor = Ingestor(db, Stepper(step, conv.Settings()), clock=clock, addresses=book)
    await ingestor.start()
    try:
        for kind, address, text in texts:
            clock.advance(minutes=1)
            await ingestor.ingest([message(kind, address, text, clock)])
    finally:
        await ingestor.stop()


async def identities(db: Database) -> list[Any]:
    table = models.channel_identities
    async with db.engine.connect() as conn:
        return list(await conn.execute(select(table).order_by(table.c.id)))


async def count(db: Database, table: Any) -> int:
    async with db.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def reporter_of(db: Database, book: AddressBook, kind: AddressKind, address: str) -> int | None:
    table = models.channel_identities
    async with db.engine.connect() as conn:
        found = await conn.execute(
            select(table.c.reporter_id).where(
                table.c.kind == kind.value, table.c.address == book.key(kind, address)
            )
        )
        return found.scalar()


async def seed(db: Database, clock: ManualClock) -> dict[tuple[AddressKind, str], int]:
    """Four reporters under key A, one from the plaintext era; returns reporter id by contact."""
    under_a = AddressBook(ContactVault(KEY_A))
    await send(
        db,
        under_a,
        clock,
        (AddressKind.PHONE, SITI, "LaporHendi lampu jalan mati"),
        (AddressKind.PHONE, SITI, "di Jl. Pemuda depan Paragon"),
        (AddressKind.PHONE, SITI, "ya"),
        (AddressKind.PHONE, BUDI, "LaporHendi sampah menumpuk di gang 5 Jl. Majapahit"),
        (AddressKind.TELEGRAM, TELEGRAM_ID, "jalan berlubang di Jl. Pandanaran"),
        (AddressKind.TWITTER, HANDLE, "#LaporHendi banjir di Jl. Kaligawe"),
    )
    await send(db, PLAIN, clock, (AddressKind.PHONE, LEGACY, "LaporHendi pohon tumbang di Jl. Siliwangi"))
    reporters = {
        (kind, address): await reporter_of(db, under_a, kind, address)
        for kind, address in [
            (AddressKind.PHONE, SITI),
            (AddressKind.PHONE, BUDI),
            (AddressKind.TELEGRAM, TELEGRAM_ID),
            (AddressKind.TWITTER, HANDLE),
        ]
    }
    reporters[(AddressKind.PHONE, LEGACY)] = await reporter_of(db, PLAIN, AddressKind.PHONE, LEGACY)
    assert all(reporters.values()) and len(set(reporters.values())) == 5
    return {key: value for key, value in reporters.items() if value is not None}


def b_with_a_previous() -> tuple[ContactVault, ContactVault]:
    return ContactVault(KEY_B, (KEY_A,)), ContactVault(KEY_B)


async def test_rotation_reseals_every_contact_under_the_new_key_and_lookups_still_work(
    db: Database, clock: ManualClock
) -> None:
    reporters = await seed(db, clock)
    vault, current_only = b_with_a_previous()
    batches: list[int] = []
    report = await rotate(db, vault, current_only, batch_size=2, progress=lambda r: batches.append(r.scanned))

    assert (report.scanned, report.reencrypted, report.rehashed, report.sealed) == (5, 4, 4, 1)
    assert (report.merged, report.unchanged, report.unreadable) == (0, 0, [])
    assert batches[:3] == [2, 4, 5], "identities committed in batches of two"
    assert len(batches) > 3, "then outbox recipients and profile names, batch by batch"
    only_b, only_a = ContactVault(KEY_B), ContactVault(KEY_A)
    rows = await identities(db)
    contacts = set()
    for row in rows:
        assert row.address_enc is not None, "the plaintext row is sealed too"
        plain = only_b.decrypt(row.address_enc)
        contacts.add((row.kind, plain))
        assert row.address == only_b.lookup_hash(row.kind, plain)
        with pytest.raises(PrivacyError):
            only_a.decrypt(row.address_enc)
    assert contacts == {(kind.value, address) for kind, address in reporters}

    # The gateway restarted with key B alone: every returning reporter is recognised.
    book_b = AddressBook(only_b)
    await send(
        db,
        book_b,
        clock,
        (AddressKind.PHONE, SITI, "LaporHendi got tertutup sampah di Jl. Pemuda"),
        (AddressKind.PHONE, LEGACY, "cek"),
        (AddressKind.TELEGRAM, TELEGRAM_ID, "halo"),
        (AddressKind.TWITTER, "@wargasemarang", "#LaporHendi masih banjir"),
    )
    assert await count(db, models.channel_identities) == 5
    assert await count(db, models.reporters) == 5
    for (kind, address), reporter_id in reporters.items():
        assert await reporter_of(db, book_b, kind, address) == reporter_id
    async with db.engine.connect() as conn:
        senders = set((await conn.execute(select(models.inbound_messages.c.reporter_id))).scalars())
    assert senders == set(reporters.values())

    # A second run finds nothing to do and writes nothing.
    before = [tuple(row) for row in await identities(db)]
    again = await rotate(db, ContactVault(KEY_B, (KEY_A,)), ContactVault(KEY_B))
    assert (again.scanned, again.unchanged, again.changed) == (5, 5, 0)
    assert [tuple(row) for row in await identities(db)] == before


async def test_a_reporter_who_wrote_between_restart_and_rotation_keeps_one_identity(
    db: Database, clock: ManualClock
) -> None:
    reporters = await seed(db, clock)
    siti = reporters[(AddressKind.PHONE, SITI)]
    vault, current_only = b_with_a_previous()
    # Restarted with B (A as previous) but not rotated yet: Siti's old row has A's hash, so she is
    # taken for someone new, and starts a conversation under a second reporter.
    await send(db, AddressBook(vault), clock, (AddressKind.PHONE, SITI, "LaporHendi trotoar rusak"))
    assert await count(db, models.channel_identities) == 6
    assert await count(db, models.reporters) == 6

    report = await rotate(db, vault, current_only)
    assert (report.merged, report.unreadable) == (1, [])

    rows = await identities(db)
    assert len(rows) == 5
    phone_rows = [r for r in rows if ContactVault(KEY_B).decrypt(r.address_enc) == SITI]
    assert len(phone_rows) == 1 and phone_rows[0].reporter_id == siti
    async with db.engine.connect() as conn:
        messages = (
            await conn.execute(
                select(models.inbound_messages.c.reporter_id, models.inbound_messages.c.identity_id).where(
                    models.inbound_messages.c.text.like("%trotoar%")
                )
            )
        ).one()
        conversation = (
            await conn.execute(
                select(models.conversations.c.reporter_id, models.conversations.c.identity_id).where(
                    models.conversations.c.reporter_id == siti
                )
            )
        ).one()
    assert tuple(messages) == (siti, phone_rows[0].id), "the message moved to the surviving identity"
    assert tuple(conversation) == (siti, phone_rows[0].id)
    # ... and the conversation she is in the middle of is the one that continues.
    await send(db, AddressBook(ContactVault(KEY_B)), clock, (AddressKind.PHONE, SITI, "di depan SMA 1"))
    async with db.engine.connect() as conn:
        replies = list(
            (
                await conn.execute(
                    select(models.outbox.c.text)
                    .where(models.outbox.c.reporter_id == siti)
                    .order_by(models.outbox.c.id.desc())
                )
            ).scalars()
        )
    assert "trotoar rusak" in replies[0] and "SMA 1" in replies[0], "the location completed that intake"
    assert await count(db, models.channel_identities) == 5
    assert (await rotate(db, vault, current_only)).changed == 0


async def test_dry_run_counts_without_writing_and_unknown_keys_are_reported_not_touched(
    db: Database, clock: ManualClock
) -> None:
    await seed(db, clock)
    before = [tuple(row) for row in await identities(db)]
    vault, current_only = b_with_a_previous()
    planned = await rotate(db, vault, current_only, dry_run=True)
    assert (planned.changed, planned.reencrypted, planned.sealed) == (5, 4, 1)
    assert [tuple(row) for row in await identities(db)] == before

    # B without A as previous: A's ciphertexts are unreadable; they are listed and left alone.
    alone = ContactVault(KEY_B)
    report = await rotate(db, alone, alone)
    assert len(report.unreadable) == 4 and report.sealed == 1
    unchanged = {row[0]: row for row in before}
    for row in await identities(db):
        if row.id in report.unreadable:
            assert tuple(row) == unchanged[row.id]


async def test_rotation_seals_outbox_recipients_and_profile_names_too(
    db: Database, clock: ManualClock
) -> None:
    await seed(db, clock)
    # Rina texted a version that kept names and recipients in clear; Rudi texted under key A.
    for book, sender, name in (
        (PLAIN, RINA, "Rina Kusumawati"),
        (AddressBook(ContactVault(KEY_A)), RUDI, "Rudi"),
    ):
        ingestor = Ingestor(db, Stepper(step, conv.Settings()), clock=clock, addresses=book)
        await ingestor.start()
        try:
            named = message(AddressKind.PHONE, sender, "LaporHendi got mampet di Jl. Dr. Cipto", clock)
            await ingestor.ingest([dataclasses.replace(named, profile_name=name)])
        finally:
            await ingestor.stop()
    async with db.engine.connect() as conn:
        outbox_before = list(await conn.execute(select(models.outbox)))
        names_before = list(await conn.execute(select(models.reporters).where(models.reporters.c.id > 0)))
    assert any(row.to_address == RINA and row.to_address_enc is None for row in outbox_before), "in clear"
    assert [r.display_name for r in names_before if r.display_name] == ["Rina Kusumawati"]

    vault, current_only = b_with_a_previous()
    report = await rotate(db, vault, current_only, batch_size=3)
    assert (report.recipients, report.names) == (len(outbox_before), 2)
    assert report.unreadable_recipients == report.unreadable_names == []
    only_b, only_a = ContactVault(KEY_B), ContactVault(KEY_A)
    async with db.engine.connect() as conn:
        outbox = list(await conn.execute(select(models.outbox).order_by(models.outbox.c.id)))
        reporters = list(await conn.execute(select(models.reporters)))
    recipients = set()
    for row in outbox:
        plain = only_b.decrypt(row.to_address_enc)
        recipients.add(plain)
        assert row.to_address == only_b.lookup_hash(row.to_kind, plain), "found like its identity"
        assert AddressBook(only_b).recipient(row._mapping) == plain, "what the dispatcher sends to"
        with pytest.raises(PrivacyError):
            only_a.decrypt(row.to_address_enc)
    assert recipients == {SITI, BUDI, LEGACY, TELEGRAM_ID, HANDLE, RINA, RUDI}
    assert all(r.display_name is None for r in reporters), "no name left in clear"
    names = {only_b.decrypt(r.display_name_enc) for r in reporters if r.display_name_enc}
    assert names == {"Rina Kusumawati", "Rudi"}

    again = await rotate(db, vault, current_only)
    assert (again.recipients, again.names, again.changed) == (0, 0, 0), "a second run changes nothing"


def lapor(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
    )


async def test_the_keys_commands_as_an_operator_runs_them(
    database_url: str, db: Database, clock: ManualClock, tmp_path: Path
) -> None:
    generated = lapor("keys", "generate", env={}, cwd=tmp_path)
    assert generated.returncode == 0, generated.stderr
    new_key = generated.stdout.strip()
    assert len(new_key) == 44 and new_key != generate_key()
    ContactVault(new_key)  # usable as a key as it is

    await seed(db, clock)
    env = {
        "LAPOR_DATABASE__URL": database_url,
        "LAPOR_PRIVACY__KEY": new_key,
        "LAPOR_PRIVACY__PREVIOUS_KEY": KEY_A,
    }
    first = lapor("keys", "rotate", "--batch-size", "3", env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "5 identities scanned: 5 updated (4 re-encrypted, 4 re-hashed, 1 sealed" in first.stdout
    assert "0 unreadable" in first.stdout
    assert "7 outbox recipients and 0 profile names sealed under the current key" in first.stdout
    second = lapor("keys", "rotate", "--dry-run", env=env, cwd=tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "0 updated" in second.stdout and "5 already current" in second.stdout
    same_key = lapor("keys", "rotate", env={**env, "LAPOR_PRIVACY__KEY": KEY_A}, cwd=tmp_path)
    assert same_key.returncode == 2, "the new key as previous of itself is refused"
    for result in (generated, first, second, same_key):
        out = result.stdout + result.stderr
        for secret in (KEY_A, SITI, BUDI, LEGACY, TELEGRAM_ID):
            assert secret not in out
    assert new_key not in first.stdout + first.stderr + second.stdout + second.stderr
    assert not (tmp_path / "var").exists(), "rotate never creates a key file of its own"
    for row in await identities(db):
        ContactVault(new_key).decrypt(row.address_enc)


def test_report_counts_add_up() -> None:
    report = RotationReport(scanned=5, unchanged=1, reencrypted=3, rehashed=3, sealed=1, unreadable=[7])
    assert report.changed == 3
    assert "3 updated" in report.summary() and "1 unreadable" in report.summary()
