"""Migration 0007: the inbox search's trigram index, made from the complaints already there (a GIN
index on PostgreSQL, an FTS5 table kept by triggers on SQLite), used by the inbox's own query, and
removed again by the downgrade without breaking anything."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dashboard.queries import Filters, contains, list_complaints
from store import models
from store.db import make_engine
from store.migrate import current_revision, upgrade

NOW = datetime(2026, 12, 1, tzinfo=UTC)
FILED = {  # code: (description, place, status)
    "LPR-OLD001": ("Lampu PJU mati sebulan", "Gg. Melati RT 03, Tembalang", "submitted"),
    "LPR-OLD002": ("Banjir setinggi lutut", None, "forwarded"),  # no place
    "LPR-OLD003": ("Jalan rusak di Séмarang", "Jl. Pemuda, ÇANDİSARİ", "closed"),  # not ASCII
    "LPR-OLD004": ("Sampah menumpuk 100% penuh", "Pasar Johar", "draft"),
    "LPR-OLD005": ("Pohon tumbang", "Jl. Pemuda depan Paragon", "submitted"),
}
FILLER = 2_000
INTEGRITY_CHECK = "INSERT INTO complaints_search (complaints_search, rank) VALUES ('integrity-check', 0)"
"""FTS5's own check of its table (SQLITE_CORRUPT if it is inconsistent)."""


def complaint(code: str, description: str, place: str | None, status: str, n: int) -> dict[str, Any]:
    at = NOW - timedelta(minutes=n)
    return {"tracking_code": code, "reporter_id": 1, "origin_channel": "simulator", "origin_medium": "sms",
            "description": description, "location_text": place, "media": [], "status": status,
            "anonymous": False, "language": "id", "created_at": at, "updated_at": at}  # fmt: skip


async def fill(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(models.reporters.insert().values(id=1, ref="r", language="id", created_at=NOW))
        rows = [complaint(code, *filed, n) for n, (code, filed) in enumerate(FILED.items())]
        rows += [complaint(f"LPR-F{n:05d}", "Saluran mampet", f"gang {n}", "submitted", n + 10)
                 for n in range(FILLER)]  # fmt: skip
        await conn.execute(models.complaints.insert(), rows)


async def found(engine: AsyncEngine, words: str, **filters: Any) -> list[str]:
    page = await list_complaints(engine, filters=Filters(q=words, **filters), now=NOW)
    return [row["tracking_code"] for row in page.rows]


async def search_objects(engine: AsyncEngine) -> set[str]:
    """The search index's objects in the database."""
    async with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            names = "SELECT name FROM sqlite_master WHERE name LIKE 'complaints_search%'"
        else:
            names = "SELECT indexname FROM pg_indexes WHERE indexname IN ('ix_complaints_search')"
        return set((await conn.execute(sa.text(names))).scalars())


SQLITE_OBJECTS = {"complaints_search", "complaints_search_data", "complaints_search_idx",
                  "complaints_search_config", "complaints_search_insert", "complaints_search_delete",
                  "complaints_search_update"}  # fmt: skip


async def assert_searches(engine: AsyncEngine) -> None:
    assert await found(engine, "melati tembalang") == ["LPR-OLD001"]
    assert await found(engine, "lutut banjir") == ["LPR-OLD002"], "a complaint without a place"
    assert await found(engine, "pemuda") == ["LPR-OLD003", "LPR-OLD005"], "newest first"
    assert await found(engine, "séмarang") == ["LPR-OLD003"], "not ASCII"
    assert await found(engine, "100%", status="draft") == ["LPR-OLD004"]
    assert await found(engine, "100%") == [], "drafts are hidden"
    assert await found(engine, "lpr-old") == [f"LPR-OLD00{n}" for n in (1, 2, 3, 5)]
    assert await found(engine, "f01999 mampet") == ["LPR-F01999"], "the last of the filler"
    assert await found(engine, "gang 1999") == ["LPR-F01999"]
    assert await found(engine, "lumpur") == []


async def test_the_upgrade_indexes_the_complaints_filed_before_it(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        await upgrade(engine, "0006")
        await fill(engine)
        await upgrade(engine)
        assert await current_revision(engine) == "0007"
        await assert_searches(engine)
        if engine.dialect.name == "sqlite":
            assert await search_objects(engine) == SQLITE_OBJECTS
            async with engine.connect() as conn:
                every = "SELECT count(*) FROM complaints_search WHERE complaints_search MATCH '\"lpr-\"'"
                assert (await conn.execute(sa.text(every))).scalar() == len(FILED) + FILLER
                await conn.execute(sa.text(INTEGRITY_CHECK))
        else:
            assert await search_objects(engine) == {"ix_complaints_search"}
            async with engine.begin() as conn:
                # The inbox's own condition can be answered by the index: its expression is the
                # indexed one (with only bitmap scans allowed, a mismatch would be a sequential scan).
                await conn.execute(sa.text("SET LOCAL enable_seqscan = off"))
                await conn.execute(sa.text("SET LOCAL enable_indexscan = off"))
                query = sa.select(models.complaints.c.id).where(contains("melati"), contains("100%"))
                sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
                plan = "\n".join((await conn.exec_driver_sql("EXPLAIN " + sql)).scalars())
                assert "Bitmap Index Scan on ix_complaints_search" in plan, plan
    finally:
        await engine.dispose()


async def test_the_downgrade_removes_the_index_and_the_search_still_answers(database_url: str) -> None:
    engine = make_engine(database_url)

    def downgrade(sync_connection: Any) -> None:
        from alembic import command

        from store.migrate import alembic_config

        cfg = alembic_config()
        cfg.attributes["connection"] = sync_connection
        command.downgrade(cfg, "0006")

    try:
        await upgrade(engine)
        await fill(engine)
        async with engine.begin() as conn:
            await conn.run_sync(downgrade)
        assert await current_revision(engine) == "0006"
        assert await search_objects(engine) == set()
        async with engine.connect() as conn:
            indexes = await conn.run_sync(lambda sync: sa.inspect(sync).get_indexes("complaints"))
        assert "ix_complaints_category_created" not in {index["name"] for index in indexes}
        async with engine.begin() as conn:  # no trigger left behind to trip over
            late = complaint("LPR-LATE01", "Trotoar amblas", "Jl. Kartini", "submitted", -5)
            await conn.execute(models.complaints.insert().values(**late))
            table = models.complaints
            await conn.execute(sa.update(table).where(table.c.tracking_code == "LPR-OLD005").values(
                description="Pohon roboh"))  # fmt: skip
        await assert_searches(engine)  # by reading the table, as before 0007
        assert await found(engine, "amblas") == ["LPR-LATE01"]

        await upgrade(engine)  # and up again: the rows written meanwhile are indexed too
        await assert_searches(engine)
        assert await found(engine, "amblas kartini") == ["LPR-LATE01"]
        assert await found(engine, "roboh") == ["LPR-OLD005"] and await found(engine, "tumbang") == []
    finally:
        await engine.dispose()
