"""Migration 0006: complaints filed before the kecamatan column existed get it from their place text,
in batches, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from store import models
from store.db import make_engine
from store.migrate import current_revision, upgrade
from store.models import UTCDateTime

# The complaints table as revision 0005 has it (models.complaints already has the new column).
COMPLAINTS_0005 = sa.table(
    "complaints",
    *(sa.column(name) for name in ("tracking_code", "reporter_id", "origin_channel", "origin_medium",
                                   "description", "location_text", "status", "anonymous", "language",
                                   "confidential")),
    sa.column("media", sa.JSON),
    sa.column("created_at", UTCDateTime),
    sa.column("updated_at", UTCDateTime),
)  # fmt: skip
PLACES = {
    "LPR-OLD001": ("Gg. Melati RT 03, Tembalang", "Tembalang"),
    "LPR-OLD002": ("banyu manik RT 04/RW 02", "Banyumanik"),  # misspelt
    "LPR-OLD003": ("Jl. Pemuda, smrg tengah", "Semarang Tengah"),
    "LPR-OLD004": ("dekat masjid", None),  # names no kecamatan
    "LPR-OLD005": (None, None),  # no place at all
    "LPR-OLD006": ("Séмarang tengah, Genuk", "Genuk"),  # not ASCII
}
FILLER = 10_050
"""Rows after the named ones, so the backfill needs more than one batch (0006.BATCH is 10,000)."""


async def test_the_upgrade_fills_the_kecamatan_of_every_old_complaint(database_url: str) -> None:
    engine = make_engine(database_url)
    now = datetime(2026, 11, 1, tzinfo=UTC)
    try:
        await upgrade(engine, "0005")

        def row(code: str, place: str | None, n: int) -> dict[str, object]:
            at = now - timedelta(minutes=n)
            return {"tracking_code": code, "reporter_id": 1, "origin_channel": "simulator",
                    "origin_medium": "sms", "description": "lama", "location_text": place, "media": [],
                    "status": "submitted", "anonymous": False, "language": "id", "confidential": n == 2,
                    "created_at": at, "updated_at": at}  # fmt: skip

        async with engine.begin() as conn:
            await conn.execute(models.reporters.insert().values(id=1, ref="r", language="id", created_at=now))
            named = [row(code, place, n) for n, (code, (place, _)) in enumerate(PLACES.items())]
            filler = [row(f"LPR-F{n:05d}", f"gang {n} Genuk", n) for n in range(FILLER)]
            await conn.execute(COMPLAINTS_0005.insert(), named + filler)

        await upgrade(engine, "0006")

        assert await current_revision(engine) == "0006"
        table = sa.table("complaints", sa.column("tracking_code"), sa.column("kecamatan"))
        async with engine.connect() as conn:
            stored = dict((await conn.execute(sa.select(table.c.tracking_code, table.c.kecamatan))).all())
        assert {code: stored[code] for code in PLACES} == {code: name for code, (_, name) in PLACES.items()}
        assert {stored[f"LPR-F{n:05d}"] for n in range(FILLER)} == {"Genuk"}, "every batch, the last too"
    finally:
        await engine.dispose()
