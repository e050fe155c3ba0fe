"""The schema: migrations equal the models, and both backends behave the same."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from store.db import make_engine
from store.migrate import upgrade
from store.models import Base, ChannelIdentity, Reporter


async def test_migrations_produce_exactly_the_models(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        await upgrade(engine)
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}), Base.metadata
                )
            )
        assert diff == [], "models changed without a migration: add one with alembic revision --autogenerate"
    finally:
        await engine.dispose()


async def test_times_come_back_aware_utc_and_naive_ones_are_refused(database_url: str) -> None:
    engine = make_engine(database_url)
    jakarta = timezone(timedelta(hours=7))
    try:
        await upgrade(engine)
        async with engine.begin() as conn:
            await conn.execute(
                Reporter.__table__.insert().values(
                    ref="r1", language="id", created_at=datetime(2026, 1, 1, 9, tzinfo=jakarta)
                )
            )
            stored = (await conn.execute(select(Reporter.created_at))).scalar_one()
        assert stored == datetime(2026, 1, 1, 2, tzinfo=UTC) and stored.tzinfo is not None
        with pytest.raises(Exception, match="naive datetime"):
            async with engine.begin() as conn:
                await conn.execute(
                    Reporter.__table__.insert().values(
                        ref="r2", language="id", created_at=datetime(2026, 1, 1)
                    )
                )
    finally:
        await engine.dispose()


async def test_one_identity_per_address(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        await upgrade(engine)
        async with engine.begin() as conn:
            rid = (
                await conn.execute(
                    Reporter.__table__.insert()
                    .values(ref="r1", language="id", created_at=datetime.now(UTC))
                    .returning(Reporter.id)
                )
            ).scalar_one()
            row = {
                "reporter_id": rid,
                "kind": "phone",
                "address": "+6281234567890",
                "unreachable": False,
                "created_at": datetime.now(UTC),
            }
            await conn.execute(ChannelIdentity.__table__.insert().values(**row))
        with pytest.raises(IntegrityError):
            async with engine.begin() as conn:
                await conn.execute(ChannelIdentity.__table__.insert().values(**row))
    finally:
        await engine.dispose()
