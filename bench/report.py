"""Monthly report benchmark: `workflow.report` over a large complaints table (default 1,000,000 rows).

Seeds complaints spread over 24 months (about 42,000 a month, ten times Semarang's busiest real
month) with a realistic mix of channels, categories, statuses and free-text places (most of them
distinct, the worst case for kecamatan recognition), then times the report of one month the way the
web handler makes it: aggregate SQL on the async engine, arithmetic in Python.

    python bench/report.py                                  # SQLite file under /tmp
    python bench/report.py --url postgresql+asyncpg://root@127.0.0.1:5432/lapor_bench --rows 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select, text  # noqa: E402

from store import models  # noqa: E402
from store.db import make_engine  # noqa: E402
from store.migrate import upgrade  # noqa: E402
from workflow.calendar import WorkingCalendar  # noqa: E402
from workflow.report import Month, build_report, fetch_month, first_month  # noqa: E402

START = datetime(2024, 9, 1, tzinfo=UTC)
MEDIUMS = ["whatsapp"] * 5 + ["sms"] * 3 + ["twitter", "telegram", "web"]
CATEGORIES = ["jalan_rusak", "lampu_pju", "banjir", "sampah", "saluran", "pohon_tumbang", "pkl", None]
DEPARTMENTS = {"jalan_rusak": "dpu", "lampu_pju": "disperkim", "banjir": "dpu", "sampah": "dlh",
               "saluran": "dpu", "pohon_tumbang": "disperkim", "pkl": "satpolpp"}  # fmt: skip
PLACES = ["Tembalang", "Banyumanik", "Genuk", "Pedurungan", "Semarang Tengah", "Ngaliyan", "Mijen",
          "Gayamsari", "Candisari", "Kaligawe", "Simpang Lima", "Jatingaleh", None]  # fmt: skip
STREETS = ["Jl. Pemuda", "Jl. Pandanaran", "Jl. Majapahit", "Jl. Setiabudi", "gang 3", "depan pasar"]
STATUSES = (
    ["closed"] * 6 + ["resolved"] * 2 + ["rejected", "duplicate", "in_progress", "forwarded", "submitted"]
)


def rows(count: int, seed: int = 7) -> list[dict[str, object]]:
    rng = random.Random(seed)
    span = 24 * 30 * 86400
    out: list[dict[str, object]] = []
    for i in range(count):
        created = START + timedelta(seconds=span * i / count + rng.random())
        category = rng.choice(CATEGORIES)
        status = rng.choice(STATUSES)
        place = rng.choice(PLACES)
        text_place = f"{rng.choice(STREETS)} no {rng.randint(1, 300)} RT {rng.randint(1, 12)}" + (
            f", {place}" if place else ""
        )
        forwarded = status not in ("submitted", "rejected", "duplicate")
        resolved = (
            created + timedelta(hours=rng.randint(2, 400)) if status in ("closed", "resolved") else None
        )
        out.append(
            {
                "tracking_code": f"LPR-{i:06X}",
                "reporter_id": 1,
                "origin_channel": "bench",
                "origin_medium": rng.choice(MEDIUMS),
                "description": "bench",
                "location_text": text_place,
                "media": [],
                "category": category,
                "status": status,
                "anonymous": False,
                "language": "id",
                "confidential": rng.random() < 0.01,
                "department": DEPARTMENTS.get(category or "") if forwarded else None,
                "created_at": created,
                "updated_at": created,
                "due_at": created + timedelta(days=8) if forwarded else None,
                "resolved_at": resolved,
                "escalation_level": 0,
                "reopen_count": 0,
            }
        )
    return out


async def seed(url: str, count: int) -> None:
    engine = make_engine(url, sqlite_synchronous="OFF")
    await upgrade(engine)
    async with engine.begin() as conn:
        existing = (await conn.execute(select(func.count()).select_from(models.complaints))).scalar_one()
        if existing >= count:
            print(f"already seeded: {existing} complaints")
            await engine.dispose()
            return
        await conn.execute(
            models.reporters.insert().values(id=1, ref="bench", language="id", created_at=START)
        )
    step = 50_000
    began = time.perf_counter()
    for offset in range(0, count, step):
        batch = rows(min(step, count - offset), seed=offset)
        for n, row in enumerate(batch):
            row["tracking_code"] = f"LPR-{offset + n:06X}"
        async with engine.begin() as conn:
            await conn.execute(models.complaints.insert(), batch)
    async with engine.begin() as conn:
        await conn.execute(text("ANALYZE"))
    print(f"seeded {count} complaints in {time.perf_counter() - began:.0f} s")
    await engine.dispose()


async def measure(url: str, month: Month, repeat: int) -> None:
    engine = make_engine(url)
    calendar = WorkingCalendar()
    try:
        for _ in range(repeat):
            began = time.perf_counter()
            async with engine.connect() as conn:
                first = await conn.run_sync(first_month)
                fetched = await conn.run_sync(functools.partial(fetch_month, month=month))
            queried = time.perf_counter()
            report = await asyncio.to_thread(build_report, fetched, calendar, datetime.now(UTC))
            done = time.perf_counter()
            print(
                f"{month}: {report.received} complaints, {len(fetched.places)} distinct places; "
                f"SQL {queried - began:.2f} s + Python {done - queried:.2f} s = {done - began:.2f} s "
                f"(first month {first})"
            )
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="sqlite+aiosqlite:////tmp/lapor-report-bench.db")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--month", default="2025-06")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(seed(args.url, args.rows))
    asyncio.run(measure(args.url, Month.parse(args.month), args.repeat))


if __name__ == "__main__":
    main()
