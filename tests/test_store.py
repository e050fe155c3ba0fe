"""The schema: migrations equal the models, and both backends behave the same."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from store.db import make_engine
from store.migrate import upgrade
from store.models import Base, ChannelIdentity, Reporter, described_by_models


async def test_migrations_produce_exactly_the_models(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        await upgrade(engine)
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(
                        sync, opts={"compare_type": True, "include_name": described_by_models}
                    ),
                    Base.metadata,
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


async def test_intake_lookups_stay_index_lookups(database_url: str) -> None:
    """The duplicate check reads the unique index by both columns, on SQLite by its planner, on
    PostgreSQL because every statement is planned with its values (a cached generic plan read every
    row of the channel, 6-12 ms a batch and growing with the table)."""
    from store.db import Database

    db = Database(database_url)
    try:
        await upgrade(db.engine)

        def plan(conn: Any) -> str:
            lookup = (
                "SELECT provider_message_id FROM inbound_messages"
                " WHERE channel = 'twilio_sms' AND provider_message_id IN ('SM1', 'SM2')"
            )
            if db.sqlite:
                return " ".join(str(row[-1]) for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + lookup))
            setting = conn.exec_driver_sql("SHOW plan_cache_mode").scalar()
            return f"{setting} " + " ".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + lookup))

        explained = await db.run(plan)
    finally:
        await db.dispose()
    if db.sqlite:
        assert "INDEX" in explained and "(channel=? AND provider_message_id=?)" in explained
    else:
        assert explained.startswith("force_custom_plan ")
        assert "provider_message_id" in explained.split("Index Cond:")[1]
