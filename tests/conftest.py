"""Shared fixtures: a fresh database per test, on SQLite by default or PostgreSQL when
LAPOR_TEST_DATABASE_URL is set (so CI runs the whole suite on both)."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tests.fakes.twilio import FakeTwilio
from tests.harness import ManualClock

PG_URL = os.environ.get("LAPOR_TEST_DATABASE_URL", "")


def _pg_database_name() -> str:
    """One database per test process: parallel workers, or two suites run at once, never share."""
    worker = re.sub(r"[^a-z0-9]", "", os.environ.get("PYTEST_XDIST_WORKER", "main").lower())
    return f"lapor_test_{worker}_{os.getpid()}"


def _pg_base() -> URL:
    base = make_url(PG_URL)
    return base.set(drivername="postgresql+asyncpg") if base.drivername == "postgresql" else base


@pytest.fixture(scope="session", autouse=True)
def _drop_test_database() -> Iterator[None]:
    """Remove this process's test database at the end of the session (PostgreSQL runs only)."""
    yield
    if not PG_URL:
        return

    async def drop() -> None:
        admin = create_async_engine(_pg_base(), isolation_level="AUTOCOMMIT")
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{_pg_database_name()}" WITH (FORCE)'))
        await admin.dispose()

    asyncio.run(drop())


@pytest.fixture
async def database_url(tmp_path: Path) -> AsyncIterator[str]:
    """An empty database for one test: a SQLite file, or a freshly wiped PostgreSQL database."""
    if not PG_URL:
        yield f"sqlite+aiosqlite:///{tmp_path}/lapor.db"
        return
    base = _pg_base()
    name = _pg_database_name()
    admin = create_async_engine(base, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        exists = (
            await conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
        ).scalar()
        if not exists:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    url = base.set(database=name)
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text("DROP SCHEMA public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()
    yield url.render_as_string(hide_password=False)


@pytest.fixture
async def fake_twilio() -> AsyncIterator[FakeTwilio]:
    """A fake Twilio REST API on loopback (tests.fakes.twilio); files needing a clocked one override it."""
    async with FakeTwilio() as fake:
        yield fake


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()
