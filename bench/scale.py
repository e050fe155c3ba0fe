"""Dashboard, tracking page and Open311 reads at 1,000,000 complaints on PostgreSQL (target p95 <= 100 ms).

Needs a PostgreSQL server the script may create a database on (`--pg-admin-url`, default
postgresql://root@127.0.0.1:5432/test). Run from the project root:

    .venv/bin/python bench/scale.py                          # seed 1M complaints, time, drop the DB
    .venv/bin/python bench/scale.py --complaints 200000 --samples 40
    .venv/bin/python bench/scale.py --keep                   # keep lapor_bench_scale for another run
    .venv/bin/python bench/scale.py --reuse                  # time an already seeded (--keep) database
    .venv/bin/python bench/scale.py --reuse --backfill       # also time migrations 0006 and 0007 first
    .venv/bin/python bench/scale.py --reuse --search-index   # also time migration 0007 (search index) first
    .venv/bin/python bench/scale.py --backfill-sqlite        # 0006, 0007 and searches on a SQLite file
    .venv/bin/python bench/scale.py --backfill-sqlite --sqlite-file /tmp/1m.db   # keep it; reuse it later
    .venv/bin/python bench/scale.py --reuse --cpu            # in-process CPU per Open311 list answer, alone

1. Seeds `lapor_bench_scale` with COPY (asyncpg): `--complaints` complaints over the last 24 months
   with a realistic spread of channels, categories (and their departments), kecamatan in the place
   text (and in the `kecamatan` column, as intake stores it), statuses (each with its chain of status
   events), deadlines, inbound messages and replies; reporters who complain more than once. About 10
   rows of other tables per complaint.
   With `--backfill`, the database then goes back to revision 0005 (column and index dropped) and
   the upgrade to 0006 is timed: migration 0006 recognising every complaint's kecamatan again. The
   counts per kecamatan must come out as seeded. Then `VACUUM FULL complaints` (PostgreSQL), timed
   too, as docs/DEPLOY.md says to run after 0006, and the upgrade to head (0007: the trigram index
   of the inbox search, built from every complaint, and the category index). `--search-index`
   times only 0007 (back to 0006 first). After 0007 the search index must hold every complaint.
2. Starts `lapor serve` on it, creates an admin and a `dpu` officer with `lapor user add`, logs both
   in through the login form.
3. Times `--samples` rounds of every request below, sequentially, interleaved (so a noisy moment
   hits all of them alike), and prints p50/p95 per request next to `/healthz` (the baseline: same
   process, same client, no database).
4. Times `lapor report monthly --month <last full month>` (if the command exists) against
   `lapor version` (the CLI's start-up alone).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from bench.ingest import Server, free_port, wait_healthy  # noqa: E402
from bench.ingest_multi import create_pg_database, drop_pg_database  # noqa: E402
from workflow.report import kecamatan as recognise  # noqa: E402 - what migration 0006 runs

DB_NAME = "lapor_bench_scale"
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
PASSWORD = "bench-password-0123456789"

CATEGORIES = {  # slug: (weight, department) as migration 0002 routes them
    "jalan_rusak": (20, "dpu"),
    "banjir": (12, "dpu"),
    "lampu_pju": (12, "disperkim"),
    "sampah": (12, "dlh"),
    "saluran": (10, "dpu"),
    "pohon_tumbang": (5, "disperkim"),
    "rob": (4, "dpu"),
    "adminduk": (5, "disdukcapil"),
    "kesehatan": (3, "dinkes"),
    "pendidikan": (3, "disdik"),
    "perizinan": (2, "dpmptsp"),
    "pajak": (2, "bapenda"),
    "pkl": (4, "satpolpp"),
    "parkir_liar": (3, "dishub"),
    "lainnya": (3, "kota"),
}
MEDIUMS = {  # medium: (weight, channel)
    "whatsapp": (55, "twilio_whatsapp"),
    "sms": (20, "twilio_sms"),
    "twitter": (10, "twitter"),
    "telegram": (10, "telegram"),
    "web": (5, "simulator"),
}
PATH = ["submitted", "verified", "forwarded", "in_progress", "resolved", "closed"]
STATUSES = {  # final status: (weight, the status chain that led there)
    "closed": (44, PATH),
    "resolved": (8, PATH[:5]),
    "in_progress": (7, PATH[:4]),
    "forwarded": (8, PATH[:3]),
    "verified": (3, PATH[:2]),
    "submitted": (6, PATH[:1]),
    "rejected": (12, ["submitted", "rejected"]),
    "duplicate": (8, ["submitted", "duplicate"]),
    "reopened": (2, [*PATH, "reopened"]),
    "draft": (2, []),
}
KECAMATAN = [
    "Semarang Tengah", "Semarang Utara", "Semarang Timur", "Semarang Selatan", "Semarang Barat",
    "Gayamsari", "Candisari", "Gajahmungkur", "Genuk", "Pedurungan", "Tembalang", "Banyumanik",
    "Gunungpati", "Mijen", "Ngaliyan", "Tugu",
]  # fmt: skip
STREETS = ["Jl. Pemuda", "Jl. Pandanaran", "Jl. Majapahit", "Jl. Setiabudi", "Jl. Kaligawe", "gang 3",
           "depan pasar", "Jl. Fatmawati", "Jl. Ngesrep Timur", "Jl. Imam Bonjol"]  # fmt: skip
DESCRIPTIONS = {
    "jalan_rusak": "jalan berlubang {n} cm, sudah ada motor jatuh",
    "banjir": "banjir setinggi {n} cm sejak pagi, air masuk rumah",
    "lampu_pju": "lampu PJU mati {n} hari, gelap dan rawan",
    "sampah": "sampah menumpuk {n} karung di pinggir jalan, bau",
    "saluran": "saluran mampet {n} meter, air meluap kalau hujan",
}


def tracking_code(complaint_id: int) -> str:
    """A unique, scrambled `LPR-XXXXXX` for each id (a bijection mod 31^6)."""
    value = (complaint_id * 2654435761) % len(ALPHABET) ** 6
    chars = []
    for _ in range(6):
        value, digit = divmod(value, len(ALPHABET))
        chars.append(ALPHABET[digit])
    return "LPR-" + "".join(chars)


def _weighted(table: dict[str, tuple[int, Any]]) -> tuple[list[str], list[int]]:
    return list(table), [weight for weight, _ in table.values()]


# --------------------------------------------------------------------------- seeding


class Seeder:
    """Generates every table's rows in id order; the complaint ids are 1..N, so foreign keys are known."""

    def __init__(self, complaints: int, seed: int = 8) -> None:
        self.n = complaints
        self.rng = random.Random(seed)
        self.now = datetime.now(UTC)
        self.reporters = max(1, int(complaints * 0.4))
        self.event_id = self.inbound_id = self.outbox_id = self.link_id = 0

    def reporter_rows(self) -> Iterator[dict[str, Any]]:
        start = self.now - timedelta(days=800)
        for rid in range(1, self.reporters + 1):
            yield {
                "id": rid,
                "ref": f"r{rid:031d}",
                "display_name": None,
                "language": "id",
                "created_at": start,
            }

    def identity_rows(self) -> Iterator[dict[str, Any]]:
        start = self.now - timedelta(days=800)
        for rid in range(1, self.reporters + 1):
            yield {
                "id": rid,
                "reporter_id": rid,
                "kind": "phone",
                "address": f"+62812{rid:08d}",
                "last_channel": "twilio_whatsapp",
                "unreachable": False,
                "created_at": start,
                "last_seen_at": start,
            }

    def complaint_rows(self) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]],
                                              list[dict[str, Any]], list[dict[str, Any]]]]:  # fmt: skip
        """Per complaint: (complaint, status events, inbound messages, outbox rows, department links)."""
        rng = self.rng
        cats, cat_w = _weighted(CATEGORIES)
        meds, med_w = _weighted(MEDIUMS)
        stats, stat_w = _weighted(STATUSES)
        span = 730 * 86400
        for cid in range(1, self.n + 1):
            created = self.now - timedelta(seconds=span * (1 - cid / self.n) + rng.random() * 60)
            category = rng.choices(cats, cat_w)[0]
            department = CATEGORIES[category][1]
            medium = rng.choices(meds, med_w)[0]
            status = rng.choices(stats, stat_w)[0]
            chain = STATUSES[status][1]
            reporter = rng.randrange(1, self.reporters + 1)
            kecamatan = rng.choice(KECAMATAN)
            place = f"{rng.choice(STREETS)} no {rng.randint(1, 300)} RT {rng.randint(1, 12)}, {kecamatan}"
            text = DESCRIPTIONS.get(category, "mohon ditindaklanjuti, sudah {n} hari").format(
                n=rng.randint(2, 90)
            )
            forwarded = "forwarded" in chain
            step = timedelta(hours=rng.uniform(2, 30))
            at = {s: created + step * i for i, s in enumerate(chain)}
            complaint = {
                "id": cid,
                "tracking_code": tracking_code(cid),
                "reporter_id": reporter,
                "origin_channel": MEDIUMS[medium][1],
                "origin_medium": medium,
                "origin_identity_id": reporter,
                "description": text,
                "location_text": place,
                "location_key": place.lower(),
                "kecamatan": recognise(place),
                "latitude": -7.0 + rng.random() * 0.1 if rng.random() < 0.4 else None,
                "longitude": 110.4 + rng.random() * 0.1,
                "media": "[]",
                "category": category,
                "category_confidence": 0.9,
                "status": status,
                "anonymous": False,
                "language": "id",
                "created_at": created,
                "updated_at": at[chain[-1]] if chain else created,
                "confidential": rng.random() < 0.02,
                "department": department if forwarded else None,
                "sla_scope": "single" if forwarded else None,
                "verify_due_at": created + timedelta(days=4),
                "forwarded_at": at.get("forwarded"),
                "due_at": at["forwarded"] + timedelta(days=7) if forwarded else None,
                "escalation_level": 0,
                "resolved_at": at.get("resolved"),
                "feedback_due_at": at["resolved"] + timedelta(days=3) if "resolved" in at else None,
                "closed_at": at.get("closed"),
                "rating": rng.randint(3, 5) if status == "closed" and rng.random() < 0.3 else None,
                "reopen_count": 1 if status == "reopened" else 0,
            }
            events = []
            previous = None
            for s in chain:
                self.event_id += 1
                events.append(
                    {
                        "id": self.event_id,
                        "complaint_id": cid,
                        "from_status": previous,
                        "to_status": s,
                        "actor": "citizen" if s == "submitted" else "admin",
                        "note": None if s in ("submitted", "verified") else f"Status: {s}",
                        "public": True,
                        "created_at": at[s],
                        "action": s,
                    }
                )
                previous = s
            messages = []
            for k in range(1 + (rng.random() < 0.6) + (rng.random() < 0.2)):
                self.inbound_id += 1
                messages.append(
                    {
                        "id": self.inbound_id,
                        "channel": MEDIUMS[medium][1],
                        "provider_message_id": f"SM{cid:09d}{k}",
                        "identity_id": reporter,
                        "reporter_id": reporter,
                        "complaint_id": cid,
                        "text": text if k == 0 else place,
                        "media": "[]",
                        "received_at": created - timedelta(minutes=3 - k),
                        "created_at": created - timedelta(minutes=3 - k),
                    }
                )
            replies = []
            for s in [chain[0], chain[-1]] if len(chain) > 1 else chain:
                self.outbox_id += 1
                replies.append(
                    {
                        "id": self.outbox_id,
                        "channel": MEDIUMS[medium][1],
                        "to_kind": "phone",
                        "to_address": f"+62812{reporter:08d}",
                        "text": f"Laporan {complaint['tracking_code']}: {s}",
                        "media": "[]",
                        "kind": "status_update",
                        "template_vars": "{}",
                        "meta": "{}",
                        "complaint_id": cid,
                        "reporter_id": reporter,
                        "status": "delivered",
                        "attempts": 1,
                        "next_attempt_at": at[s],
                        "provider_message_id": f"SMout{self.outbox_id:010d}",
                        "created_at": at[s],
                        "sent_at": at[s],
                        "updated_at": at[s],
                    }
                )
            links = []
            if forwarded:
                for lead, dep in [(True, department)] + (
                    [(False, "dishub")] if rng.random() < 0.1 and department != "dishub" else []
                ):
                    self.link_id += 1
                    links.append(
                        {
                            "id": self.link_id,
                            "complaint_id": cid,
                            "department": dep,
                            "lead": lead,
                            "created_at": at["forwarded"],
                        }
                    )
            yield complaint, events, messages, replies, links


async def seed(url: str, complaints: int) -> float:
    """COPY everything in; returns the seconds it took."""
    import asyncpg

    from store import models
    from store.db import make_engine
    from store.migrate import upgrade

    engine = make_engine(url)
    await upgrade(engine)
    await engine.dispose()
    tables = {
        "reporters": models.reporters,
        "channel_identities": models.channel_identities,
        "complaints": models.complaints,
        "status_events": models.status_events,
        "inbound_messages": models.inbound_messages,
        "outbox": models.outbox,
        "complaint_departments": models.complaint_departments,
    }
    columns = {name: [c.name for c in table.columns] for name, table in tables.items()}
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    started = time.perf_counter()
    seeder = Seeder(complaints)
    try:

        async def copy(name: str, rows: list[dict[str, Any]]) -> None:
            if rows:
                cols = columns[name]
                records = [tuple(row.get(c) for c in cols) for row in rows]
                await conn.copy_records_to_table(name, records=records, columns=cols)

        await copy("reporters", list(seeder.reporter_rows()))
        await copy("channel_identities", list(seeder.identity_rows()))
        buffers: dict[str, list[dict[str, Any]]] = {name: [] for name in list(tables)[2:]}
        for done, (complaint, events, messages, replies, links) in enumerate(seeder.complaint_rows(), 1):
            buffers["complaints"].append(complaint)
            buffers["status_events"].extend(events)
            buffers["inbound_messages"].extend(messages)
            buffers["outbox"].extend(replies)
            buffers["complaint_departments"].extend(links)
            if done % 50_000 == 0 or done == complaints:
                for name, rows in buffers.items():
                    await copy(name, rows)
                    rows.clear()
                print(f"  seeded {done:,} complaints ({time.perf_counter() - started:.0f} s)", flush=True)
        for name in tables:
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT max(id) FROM {name}))"  # noqa: S608
            )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return time.perf_counter() - started


# --------------------------------------------------------------------------- migration 0006


def _downgrade(revision: str) -> Any:
    def run(sync_connection: Any) -> None:
        from alembic import command

        from store.migrate import alembic_config

        cfg = alembic_config()
        cfg.attributes["connection"] = sync_connection
        command.downgrade(cfg, revision)

    return run


async def time_backfill(url: str, *, seeded: bool = True) -> tuple[float, float]:
    """Back to revision 0005 (if `seeded` at head), then the timed upgrade to 0006 (the kecamatan
    backfill), VACUUM FULL, and the timed upgrade to head (0007); returns both upgrades' seconds. A
    seeded database's counts per kecamatan must come out as seeded."""
    from sqlalchemy import func, select, text

    from store import models
    from store.db import make_engine
    from store.migrate import upgrade

    table = models.complaints
    per_kecamatan = select(table.c.kecamatan, func.count()).group_by(table.c.kecamatan)
    engine = make_engine(url)
    postgres = engine.dialect.name == "postgresql"
    try:
        if seeded:
            async with engine.connect() as conn:
                before: dict[str | None, int] = {k: n for k, n in await conn.execute(per_kecamatan)}
            async with engine.begin() as conn:
                await conn.run_sync(_downgrade("0005"))
        started = time.perf_counter()
        await upgrade(engine, "0006")
        seconds = time.perf_counter() - started
        async with engine.connect() as conn:
            after: dict[str | None, int] = {k: n for k, n in await conn.execute(per_kecamatan)}
        if seeded and after != before:
            raise RuntimeError(f"the backfill disagrees with the seed: {before} != {after}")
        named = sum(count for name, count in after.items() if name is not None)
        print(f"migration 0006 on {sum(after.values()):,} complaints ({named:,} with a kecamatan): "
              f"{seconds:.1f} s ({engine.dialect.name})", flush=True)  # fmt: skip
        if postgres:
            async with engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                size = text("SELECT pg_size_pretty(pg_relation_size('complaints'))")
                bloated = (await conn.execute(size)).scalar_one()
                started = time.perf_counter()
                await conn.execute(text("VACUUM FULL ANALYZE complaints"))
                print(f"VACUUM FULL complaints: {time.perf_counter() - started:.1f} s, "
                      f"{bloated} -> {(await conn.execute(size)).scalar_one()}", flush=True)  # fmt: skip
        return seconds, await _time_search_index(engine)
    finally:
        await engine.dispose()


async def time_search_index(url: str) -> float:
    """Back to revision 0006, then the timed upgrade to head (0007, the search index)."""
    from store.db import make_engine

    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_downgrade("0006"))
        return await _time_search_index(engine)
    finally:
        await engine.dispose()


async def _time_search_index(engine: Any) -> float:
    """The upgrade from 0006 to head, timed; then the index must be whole: the first and the last
    complaint are found by their codes, and on SQLite the FTS5 table has a row for every complaint."""
    from sqlalchemy import func, select, text

    from dashboard.queries import Filters, list_complaints
    from store import models
    from store.migrate import upgrade

    started = time.perf_counter()
    await upgrade(engine)
    seconds = time.perf_counter() - started
    table = models.complaints
    async with engine.connect() as conn:
        total = (await conn.execute(select(func.count()).select_from(table))).scalar_one()
        first, last = (await conn.execute(select(func.min(table.c.id), func.max(table.c.id)))).one()
        codes = [(await conn.execute(select(table.c.tracking_code).where(table.c.id == i))).scalar_one()
                 for i in (first, last)]  # fmt: skip
        if engine.dialect.name == "sqlite":
            everyone = text("SELECT count(*) FROM complaints_search WHERE complaints_search MATCH '\"lpr\"'")
            indexed = (await conn.execute(everyone)).scalar_one()
        else:
            valid = text("SELECT indisvalid FROM pg_index WHERE indexrelid = 'ix_complaints_search'::regclass")  # noqa: E501
            indexed = total if (await conn.execute(valid)).scalar_one() else 0
    for code in codes:
        page = await list_complaints(engine, filters=Filters(q=code.lower(), status="draft"))
        found = [row["tracking_code"] for row in page.rows]
        page = await list_complaints(engine, filters=Filters(q=code.lower()))
        found += [row["tracking_code"] for row in page.rows]
        if found != [code]:
            raise RuntimeError(f"the search index does not find {code}: {found}")
    if indexed != total:
        raise RuntimeError(f"the search index holds {indexed:,} of {total:,} complaints")
    print(f"migration 0007 (search index) on {total:,} complaints: {seconds:.1f} s ({engine.dialect.name})",
          flush=True)  # fmt: skip
    return seconds


def seed_sqlite(path: Path, complaints: int) -> None:
    """`complaints` complaints (no other tables) in a SQLite file at revision 0005."""
    import sqlite3

    from store import models
    from store.db import make_engine
    from store.migrate import upgrade

    async def schema() -> None:
        engine = make_engine(f"sqlite+aiosqlite:///{path}")
        await upgrade(engine, "0005")
        await engine.dispose()

    asyncio.run(schema())
    columns = [c.name for c in models.complaints.columns if c.name != "kecamatan"]

    def stored(value: Any) -> Any:
        if isinstance(value, datetime):
            return f"{value.astimezone(UTC):%Y-%m-%d %H:%M:%S.%f}"
        return int(value) if isinstance(value, bool) else value

    db = sqlite3.connect(path)
    try:
        reporter = "INSERT INTO reporters (id, ref, language, created_at) VALUES (1, 'r', 'id', '2024-01-01')"
        db.execute(reporter)
        marks = ", ".join("?" * len(columns))
        sql = f"INSERT INTO complaints ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608 - own columns
        batch: list[tuple[Any, ...]] = []
        for complaint, *_ in Seeder(complaints).complaint_rows():
            complaint.update(reporter_id=1, origin_identity_id=None)
            batch.append(tuple(stored(complaint.get(c)) for c in columns))
            if len(batch) == 50_000:
                db.executemany(sql, batch)
                batch.clear()
        db.executemany(sql, batch)
        db.commit()
    finally:
        db.close()


def backfill_sqlite(complaints: int, samples: int, keep: Path | None) -> None:
    """Seed a SQLite file at 0005, time 0006 and 0007, time the searches in-process. With `keep`,
    the file stays there, and a file already there is reused: only the searches are timed."""
    with tempfile.TemporaryDirectory(prefix="lapor-bench-0006-") as tmp:
        path = keep or Path(tmp) / "lapor.db"
        url = f"sqlite+aiosqlite:///{path}"
        if not path.exists():
            started = time.perf_counter()
            seed_sqlite(path, complaints)
            seconds = time.perf_counter() - started
            print(f"seeded {complaints:,} complaints at 0005 in {seconds:.0f} s", flush=True)
            asyncio.run(time_backfill(url, seeded=False))
        print(f"\ninbox searches in-process on SQLite, {samples} samples each, interleaved:")
        print_timings(asyncio.run(time_searches(url, samples)), "inbox (no filter, baseline)")


def searches(code: str) -> list[tuple[str, dict[str, str]]]:
    """The inbox searches timed, as (label, query string); `code`, a tracking code of the seed."""
    fragment = code[4:9].lower()  # five of its six characters: one or two complaints have them
    return [
        ("inbox ?q=pemuda (common word)", {"q": "pemuda"}),
        (f"inbox ?q={fragment} (rare: part of a code)", {"q": fragment}),
        ("inbox ?q=pemuda setiabudi (common, none together)", {"q": "pemuda setiabudi"}),
        ("inbox ?q=zzzz (rare: 2-3 codes)", {"q": "zzzz"}),
        ("inbox ?q=lumpur (no match)", {"q": "lumpur"}),
        ("inbox ?q=jl pemuda no 99 (short words)", {"q": "jl pemuda no 99"}),
    ]


async def time_searches(url: str, samples: int) -> dict[str, list[float]]:
    """`list_complaints` in-process for the searches, against the unfiltered inbox."""
    from sqlalchemy import select

    from dashboard.queries import Filters, list_complaints
    from store import models
    from store.db import make_engine

    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            table = models.complaints
            code = (await conn.execute(select(table.c.tracking_code).where(table.c.id == 1))).scalar_one()
        plan: list[tuple[str, dict[str, str]]] = [("inbox (no filter, baseline)", {}), *searches(code)]
        timings: dict[str, list[float]] = {label: [] for label, _ in plan}
        for round_number in range(samples + 2):
            for label, query in plan:
                started = time.perf_counter()
                await list_complaints(engine, filters=Filters(q=query.get("q")))
                if round_number >= 2:
                    timings[label].append((time.perf_counter() - started) * 1000)
        return timings
    finally:
        await engine.dispose()


def print_timings(timings: dict[str, list[float]], baseline_label: str, errors: dict[str, int] | None = None,
                  ) -> None:  # fmt: skip
    baseline = statistics.median(timings[baseline_label])
    print(f"{'request':58}{'p50 ms':>9}{'p95 ms':>9}{'p50/base':>10}  p95 <= 100 ms  errors")
    for label, values in timings.items():
        if not values:
            print(f"{label:58} no successful answer")
            continue
        p50, p95 = statistics.median(values), quantile(values, 0.95)
        print(
            f"{label:58}{p50:9.1f}{p95:9.1f}{p50 / baseline:9.1f}x  {'yes' if p95 <= 100 else 'NO ':13}"
            f"  {(errors or {}).get(label, 0)}"
        )


# --------------------------------------------------------------------------- timing


async def login(session: Any, base: str, username: str) -> None:
    async with session.get(f"{base}/dashboard/login") as response:
        page = await response.text()
    match = re.search(r'name="csrf"\s+value="([^"]+)"', page)
    if match is None:
        raise RuntimeError("no csrf field on the login page")
    form = {"username": username, "password": PASSWORD, "csrf": match.group(1)}
    async with session.post(f"{base}/dashboard/login", data=form, allow_redirects=False) as response:
        if response.status != 302:
            raise RuntimeError(f"login as {username} failed: {response.status}")


def endpoints(codes: list[str], rng: random.Random, now: datetime) -> list[tuple[str, str, Any]]:
    """(who: admin|officer|public, label, path or a function giving a fresh path each call)."""
    month_start = (now.replace(day=1) - timedelta(days=40)).replace(day=1)
    week_end = now - timedelta(days=30)
    week_start = week_end - timedelta(days=7)

    def code() -> str:
        return rng.choice(codes)

    def iso(moment: datetime) -> str:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    return [
        ("public", "/healthz (baseline)", "/healthz"),
        ("admin", "inbox", "/dashboard/"),
        ("admin", "inbox ?status=in_progress", "/dashboard/?status=in_progress"),
        ("admin", "inbox ?category=banjir&page=5", "/dashboard/?category=banjir&page=5"),
        ("admin", "inbox ?category=banjir&status=in_progress",
         "/dashboard/?category=banjir&status=in_progress"),
        ("admin", "inbox ?department=dlh", "/dashboard/?department=dlh"),
        ("admin", "inbox ?overdue=1", "/dashboard/?overdue=1"),
        ("admin", "inbox ?channel=sms&status=forwarded", "/dashboard/?channel=sms&status=forwarded"),
        ("admin", "inbox ?from&to (one month)",
         f"/dashboard/?from={month_start:%Y-%m-%d}&to={(month_start + timedelta(days=27)):%Y-%m-%d}"),
        ("admin", "inbox ?kecamatan=Tembalang", "/dashboard/?kecamatan=Tembalang"),
        *(("admin", label, "/dashboard/?" + urlencode(query)) for label, query in searches(codes[0])),
        ("officer", "officer (dpu) inbox", "/dashboard/"),
        ("officer", "officer (dpu) ?status=forwarded", "/dashboard/?status=forwarded"),
        ("admin", "complaint page", lambda: f"/dashboard/complaints/{code()}"),
        ("public", "/lacak/<code> tracking page", lambda: f"/lacak/{code()}"),
        ("public", "open311 requests.json (default 90 days)", "/open311/v2/requests.json"),
        ("public", "open311 requests.json ?service_code&status",
         "/open311/v2/requests.json?service_code=banjir&status=open"),
        ("public", "open311 requests.json ?start_date&end_date (1 week)",
         f"/open311/v2/requests.json?start_date={iso(week_start)}&end_date={iso(week_end)}"),
        ("public", "open311 requests/<id>.json", lambda: f"/open311/v2/requests/{code()}.json"),
    ]  # fmt: skip


async def filed_codes(url: str) -> list[str]:
    """About 1,000 tracking codes spread over the table, drafts left out (public pages hide them)."""
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        query = "SELECT tracking_code FROM complaints WHERE status <> 'draft' AND id % 997 = 0"
        return [row[0] for row in await conn.fetch(query)]
    finally:
        await conn.close()


async def time_requests(
    base: str, codes: list[str], samples: int
) -> tuple[dict[str, list[float]], dict[str, int]]:
    import aiohttp

    rng = random.Random(5)
    jar = {who: aiohttp.CookieJar(unsafe=True) for who in ("admin", "officer", "public")}
    sessions = {who: aiohttp.ClientSession(cookie_jar=jar[who]) for who in jar}
    try:
        await login(sessions["admin"], base, "bench-admin")
        await login(sessions["officer"], base, "bench-officer")
        plan = endpoints(codes, rng, datetime.now(UTC))
        timings: dict[str, list[float]] = {label: [] for _, label, _ in plan}
        errors: dict[str, int] = {}
        for round_number in range(samples + 2):  # two warm-up rounds, not counted
            for who, label, path in plan:
                url = base + (path() if callable(path) else path)
                started = time.perf_counter()
                async with sessions[who].get(url, allow_redirects=False) as response:
                    await response.read()
                    status = response.status
                elapsed = time.perf_counter() - started
                if status != 200:
                    errors[label] = errors.get(label, 0) + 1
                    print(f"  {label}: {url} answered {status}", flush=True)
                elif round_number >= 2:
                    timings[label].append(elapsed * 1000)
        return timings, errors
    finally:
        for session in sessions.values():
            await session.close()


OPEN311_LISTS: dict[str, dict[str, str] | str] = {
    "default (90 days)": {},
    "service_code&status": {"service_code": "banjir", "status": "open"},
    "start_date&end_date (1 week)": "week",
    "default, extensions=true": {"extensions": "true"},
}


async def open311_cpu(url: str, calls: int) -> dict[str, tuple[float, float, int]]:
    """CPU (this process, so asyncpg's decoding and all the Python) per Open311 list answer, through
    the real handler on a bare aiohttp app: {label: (median CPU ms, median wall ms, rows)}."""
    import json

    from aiohttp import web
    from aiohttp.test_utils import make_mocked_request

    from dashboard.open311 import list_requests
    from gateway.app import CLOCK, DATABASE
    from store.db import Database

    database = Database(url)
    app = web.Application()
    app[DATABASE] = database
    now = datetime.now(UTC)
    app[CLOCK] = lambda: now
    week_end = now - timedelta(days=30)
    week = {
        "start_date": (week_end - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end_date": week_end.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    results: dict[str, tuple[float, float, int]] = {}
    try:
        for label, params in OPEN311_LISTS.items():
            query = week if isinstance(params, str) else params
            path = "/open311/v2/requests.json?" + "&".join(f"{k}={v}" for k, v in query.items())
            cpu, wall, rows = [], [], 0
            for call in range(calls + 3):  # three warm-up calls, not counted
                request = make_mocked_request("GET", path, app=app, match_info={"fmt": "json"})
                started_cpu, started = time.process_time(), time.perf_counter()
                response = await list_requests(request)
                if call >= 3:
                    cpu.append((time.process_time() - started_cpu) * 1000)
                    wall.append((time.perf_counter() - started) * 1000)
            assert isinstance(response, web.Response) and response.body is not None
            rows = len(json.loads(bytes(response.body)))  # type: ignore[arg-type]
            results[label] = (statistics.median(cpu), statistics.median(wall), rows)
    finally:
        await database.dispose()
    return results


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def time_report(env: dict[str, str], folder: Path, runs: int) -> tuple[list[float], list[float], str] | None:
    """`lapor report monthly` of the last full month vs `lapor version`; None if there is no such command."""
    full_env = {**os.environ, **env}
    check = subprocess.run(
        [sys.executable, "-m", "gateway", "report", "monthly", "--help"],
        env=full_env,
        cwd=folder,
        capture_output=True,
        text=True,
    )
    if check.returncode != 0:
        return None
    last = (datetime.now(UTC).replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    report, startup = [], []
    out = ""
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "gateway", "version"], env=full_env, cwd=folder, check=True,
                       capture_output=True)  # fmt: skip
        startup.append(time.perf_counter() - started)
        started = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-m", "gateway", "report", "monthly", "--month", last],
            env=full_env,
            cwd=folder,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        report.append(time.perf_counter() - started)
    return report, startup, out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--complaints", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=60, help="timed rounds over every request")
    parser.add_argument("--report-runs", type=int, default=3)
    parser.add_argument("--pg-admin-url", default="postgresql://root@127.0.0.1:5432/test")
    parser.add_argument("--keep", action="store_true", help=f"keep the {DB_NAME} database afterwards")
    parser.add_argument("--reuse", action="store_true", help=f"time the existing {DB_NAME} (no seeding)")
    parser.add_argument("--backfill", action="store_true", help="time migrations 0006 and 0007 on it first")
    parser.add_argument("--search-index", action="store_true", help="time migration 0007 on it first")
    parser.add_argument("--sqlite-file", type=Path, help="--backfill-sqlite: keep (or reuse) the file")
    parser.add_argument("--backfill-sqlite", action="store_true",
                        help="only time migration 0006 on a SQLite file of --complaints rows")  # fmt: skip
    parser.add_argument("--cpu", action="store_true",
                        help="only time the Open311 lists' CPU in-process, --samples calls")  # fmt: skip
    args = parser.parse_args()
    if args.cpu:
        base = args.pg_admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
        print(f"Open311 list answers in-process on {DB_NAME}, median of {args.samples} calls:")
        print(f"{'request':36}{'CPU ms':>9}{'wall ms':>9}{'rows':>7}")
        for label, (cpu, wall, rows) in asyncio.run(open311_cpu(f"{base}/{DB_NAME}", args.samples)).items():
            print(f"{label:36}{cpu:9.1f}{wall:9.1f}{rows:7}")
        return
    if args.backfill_sqlite:
        backfill_sqlite(args.complaints, args.samples, args.sqlite_file)
        return

    base_url = args.pg_admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    url = f"{base_url}/{DB_NAME}"
    seconds = None
    if not args.reuse:
        url = create_pg_database(args.pg_admin_url, DB_NAME)
        print(f"seeding {args.complaints:,} complaints into {DB_NAME} ...", flush=True)
        seconds = asyncio.run(seed(url, args.complaints))
    backfill = asyncio.run(time_backfill(url)) if args.backfill else None
    search_index = asyncio.run(time_search_index(url)) if args.search_index and not args.backfill else None
    server = None
    try:
        with tempfile.TemporaryDirectory(prefix="lapor-bench-scale-") as tmp:
            folder = Path(tmp)
            port = free_port()
            env = {
                "LAPOR_DATABASE__URL": url,
                "LAPOR_SERVER__PUBLIC_URL": f"http://127.0.0.1:{port}",
                "LAPOR_LOGGING__LEVEL": "WARNING",
                "LAPOR_WORKER__ENABLED": "false",
                "LAPOR_NEW_PASSWORD": PASSWORD,
            }
            full_env = {**os.environ, **env}
            subprocess.run([sys.executable, "-m", "gateway", "migrate"], env=full_env, cwd=folder, check=True,
                           capture_output=True)  # fmt: skip
            for username, extra in (
                ("bench-admin", []),
                ("bench-officer", ["--role", "officer", "--department", "dpu"]),
            ):
                subprocess.run(
                    [sys.executable, "-m", "gateway", "user", "add", username, *extra],
                    env=full_env,
                    cwd=folder,
                    capture_output=True,  # the user is there already on --reuse: fine
                )
            server = Server([sys.executable, "-m", "gateway", "serve", "--port", str(port)], env, cwd=folder)
            wait_healthy(f"http://127.0.0.1:{port}")
            timings, errors = asyncio.run(
                time_requests(f"http://127.0.0.1:{port}", asyncio.run(filed_codes(url)), args.samples)
            )
            out = server.stop()
            server = None
            if "Traceback" in out:
                print(out[-3000:])
            report = time_report(env, folder, args.report_runs)
    finally:
        if server is not None:
            server.stop()
        if not args.keep:
            drop_pg_database(args.pg_admin_url, DB_NAME)

    print(
        f"\nScale: {args.complaints:,} complaints on PostgreSQL"
        + (f" (seeded by COPY in {seconds:.0f} s)" if seconds else "")
        + f"; {args.samples} sequential samples per request, interleaved; {os.cpu_count()} shared CPUs"
        + (f"; migration 0006 (backfill) {backfill[0]:.1f} s, 0007 {backfill[1]:.1f} s" if backfill else "")
        + (f"; migration 0007 (search index) {search_index:.1f} s" if search_index is not None else "")
    )
    print_timings(timings, "/healthz (baseline)", errors)
    if report is None:
        print("`lapor report monthly`: no such command yet")
    else:
        runs, startup, text = report
        print(
            f"`lapor report monthly`: median {statistics.median(runs):.2f} s over {len(runs)} runs "
            f"(`lapor version`, the CLI start-up alone: {statistics.median(startup):.2f} s); target <= 2 s"
        )
        print("  first lines: " + " | ".join(text.strip().splitlines()[:3]))


if __name__ == "__main__":
    main()
