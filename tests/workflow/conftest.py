"""Workflow fixtures: a migrated database (seeded departments), staff users and complaints to move."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from store import models
from store.db import Database
from store.migrate import upgrade
from store.users import hash_password
from tests.harness import ManualClock
from workflow.access import Actor
from workflow.lifecycle import Workflow
from workflow.privacy import ContactVault, open_recipient, seal_name
from workflow.settings import WorkflowSettings

START = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday 09:00 in Semarang
PHONE = "+6281234567890"
NAME = "Siti Rahayu"
KEY = "test-privacy-key-not-for-production"

ADMIN = Actor("admin1", "admin")
OFFICER = Actor("dpu_officer", "officer", "dpu")
HEAD = Actor("dpu_head", "head", "dpu")
OTHER_OFFICER = Actor("dlh_officer", "officer", "dlh")
AUDITOR = Actor("auditor1", "auditor")

_codes = itertools.count(1)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def vault() -> ContactVault:
    return ContactVault(KEY)


@pytest.fixture
def settings(vault: ContactVault) -> WorkflowSettings:
    return WorkflowSettings(vault=vault)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url, sqlite_synchronous="NORMAL")
    await upgrade(database.engine)
    await add_staff(database)
    yield database
    await database.dispose()


@pytest.fixture
def workflow(db: Database, settings: WorkflowSettings, clock: ManualClock) -> Workflow:
    return Workflow(db, settings, clock=clock)


STAFF = [
    ("admin1", "admin", None, "9001", None),
    ("dpu_officer", "officer", "dpu", "9002", "+6281100000002"),
    ("dpu_head", "head", "dpu", "9003", None),
    ("dlh_officer", "officer", "dlh", "9004", None),
    ("auditor1", "auditor", None, None, None),
]


async def add_staff(db: Database) -> None:
    password = hash_password("not-used-here")
    rows = [
        {
            "username": name,
            "password_hash": password,
            "role": role,
            "department": dept,
            "telegram_chat_id": chat,
            "whatsapp_number": wa,
            "failed_logins": 0,
            "active": True,
            "created_at": START,
        }
        for name, role, dept, chat, wa in STAFF
    ]
    await db.run(lambda conn: conn.execute(models.users.insert(), rows))


async def file_complaint(
    db: Database,
    vault: ContactVault | None,
    *,
    status: str = "submitted",
    category: str | None = "jalan_rusak",
    anonymous: bool = False,
    language: str = "id",
    phone: str = PHONE,
    name: str = NAME,
    description: str = "Jalan berlubang besar di Jl. Pemuda depan Paragon",
    created_at: datetime = START,
) -> str:
    """A complaint as the intake files it; the contact encrypted the way the pipeline will store it."""
    code = f"LPR-T{next(_codes):05d}"[:10]

    def insert(conn: Any) -> None:
        reporter_id = conn.execute(
            models.reporters.insert()
            .values(ref=f"ref-{code}", **seal_name(vault, name), language=language, created_at=created_at)
            .returning(models.reporters.c.id)
        ).scalar_one()
        # One identity per test complaint: the lookup hash is made unique with the code.
        stored = vault.lookup_hash("phone", f"{phone}#{code}") if vault else f"{phone}#{code}"
        identity_id = conn.execute(
            models.channel_identities.insert()
            .values(
                reporter_id=reporter_id,
                kind="phone",
                address=stored,
                address_enc=vault.encrypt(phone) if vault else None,
                unreachable=False,
                created_at=created_at,
            )
            .returning(models.channel_identities.c.id)
        ).scalar_one()
        conn.execute(
            models.complaints.insert().values(
                tracking_code=code,
                reporter_id=reporter_id,
                origin_channel="twilio_sms",
                origin_medium="sms",
                origin_identity_id=identity_id,
                description=description,
                location_text="Jl. Pemuda",
                media=[],
                category=category,
                status=status,
                anonymous=anonymous,
                language=language,
                created_at=created_at,
                updated_at=created_at,
            )
        )

    await db.run(insert)
    return code


async def complaint_row(db: Database, code: str) -> Any:
    async with db.engine.connect() as conn:
        return (
            await conn.execute(select(models.complaints).where(models.complaints.c.tracking_code == code))
        ).one()


def recipient(row: Any) -> str:
    """Whom an outbox row goes to: stored sealed (hash and ciphertext under KEY), opened here."""
    return open_recipient(ContactVault(KEY), row._mapping)


async def outbox_rows(db: Database, code: str | None = None) -> list[Any]:
    table = models.outbox
    query = select(table).order_by(table.c.id)
    if code is not None:
        query = query.join(models.complaints, models.complaints.c.id == table.c.complaint_id).where(
            models.complaints.c.tracking_code == code
        )
    async with db.engine.connect() as conn:
        return list(await conn.execute(query))


async def notifications(db: Database) -> list[tuple[str, str]]:
    users, notes = models.users, models.notifications
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            select(users.c.username, notes.c.kind)
            .join(users, users.c.id == notes.c.user_id)
            .order_by(notes.c.id)
        )
        return [(u, k) for u, k in rows]
