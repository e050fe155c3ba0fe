"""One month of complaints (August 2026, Semarang) moved through the real workflow, and the figures a
person counted by hand from the list below: the report must arrive at the same numbers on its own.

August 2026: Saturday the 1st; Monday 17 August (Independence Day) and Tuesday 25 August (Maulid
Nabi) are national holidays. Times are WIB (UTC+7).

code medium   category      place (location text)        status       dept       resolution
A    whatsapp jalan_rusak   Jl. Pemuda, Semarang Tengah  resolved     dpu        14th->18th: 1 wd, met
B    sms      sampah        dekat pasar Genuk            closed       dlh        3rd->12th: 7 wd, missed
C    telegram lampu_pju     gang 3 Tembalang             resolved     disperkim  20th->26th: 3 wd, met
D    twitter  jalan_rusak   Jl. Kaligawe                 rejected     -
E    whatsapp jalan_rusak   Jl. Pemuda, Semarang Tengah  duplicate    -          (of A)
F    whatsapp banjir        Griya Asri Pedurungan        in_progress  dpu
G    sms      -             -                            submitted    -
H    sms      sampah        Genuk (confidential)         resolved     dlh        10th->10th: 0 wd, met
I    sms      pohon_tumbang Banyumanik                   closed       -          imported, never resolved
J    web      lainnya       -                            submitted    -          Sat 1st 01:00 WIB (July UTC)
M    telegram jalan_rusak   Jl. Pemuda                   reopened     dpu        resolved 6th, reopened 7th

Working days (wd) from receipt to resolution: A Fri 14 -> Tue 18 skips the weekend and the 17th;
B Mon 3 -> Wed 12 is 4-7, 10-12; C Thu 20 -> Wed 26 is 21, 24, 26 (the 25th is a holiday).
Deadlines (5 wd from forwarding): A Mon 24, B Mon 10 (resolved the 12th: missed), C Fri 28, H Tue 18.
not in August: a complaint of 31 July 23:00 WIB, one of 1 September 00:30 WIB (31 August UTC), a draft.
"""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from store import models
from store.db import Database
from workflow.access import Actor
from workflow.lifecycle import Workflow
from workflow.privacy import ContactVault
from workflow.settings import WorkflowSettings

WIB = ZoneInfo("Asia/Jakarta")
KEY = "opendata-test-privacy-key-0123456789"
ADMIN = Actor("admin1", "admin")
PHOTO = [{"url": "/media/evidence/done.jpg", "content_type": "image/jpeg"}]

NAMES = ("Siti Rahayu Wulandari", "Budi Santoso Prakoso", "Agus Setiawan Nugroho")
PHONES = ("+6281234567890", "+6285712345678", "+6289876543210")
SECRET_TEXT = "Pak RT Sutrisno rumah nomor 12 minta tolong"
"""Free text of every seeded complaint: none of it may reach a report."""
PRIVATE_PLACES = ("Jl. Pemuda", "Kaligawe", "pasar Genuk", "gang 3", "Griya Asri")

_codes = itertools.count(1)


def wib(day: int, hour: int = 9, minute: int = 0, month: int = 8) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=WIB)


def settings() -> WorkflowSettings:
    return WorkflowSettings(vault=ContactVault(KEY))


async def file(
    db: Database,
    vault: ContactVault,
    *,
    medium: str,
    created_at: datetime,
    category: str | None = None,
    place: str | None = None,
    status: str = "submitted",
    confidential: bool = False,
    resolved_at: datetime | None = None,
    closed_at: datetime | None = None,
) -> str:
    """A complaint as the intake files it: reporter, encrypted phone identity, complaint row."""
    number = next(_codes)
    code = f"LPR-OD{number:04d}"
    name, phone = NAMES[number % len(NAMES)], PHONES[number % len(PHONES)]

    def insert(conn: Any) -> None:
        reporter_id = conn.execute(
            models.reporters.insert()
            .values(ref=f"ref-{code}", display_name=name, language="id", created_at=created_at)
            .returning(models.reporters.c.id)
        ).scalar_one()
        identity_id = conn.execute(
            models.channel_identities.insert()
            .values(
                reporter_id=reporter_id,
                kind="phone",
                address=vault.lookup_hash("phone", f"{phone}#{code}"),
                address_enc=vault.encrypt(phone),
                unreachable=False,
                created_at=created_at,
            )
            .returning(models.channel_identities.c.id)
        ).scalar_one()
        conn.execute(
            models.complaints.insert().values(
                tracking_code=code,
                reporter_id=reporter_id,
                origin_channel={"sms": "twilio_sms", "whatsapp": "whatsapp_cloud"}.get(medium, medium),
                origin_medium=medium,
                origin_identity_id=identity_id,
                description=f"{SECRET_TEXT} ({name}, {phone})",
                location_text=place,
                media=[],
                category=category,
                status=status,
                confidential=confidential,
                anonymous=False,
                language="id",
                created_at=created_at,
                updated_at=created_at,
                resolved_at=resolved_at,
                closed_at=closed_at,
            )
        )

    await db.run(insert)
    return code


async def handled(flow: Workflow, code: str, received: datetime, resolved: datetime, department: str) -> None:
    """verify -> forward (routing rule) an hour after receipt -> accept -> resolve with a photo."""
    officer = Actor(f"{department}_officer", "officer", department)
    forwarded = received.replace(hour=received.hour + 1)
    await flow.transition(code, "verify", ADMIN, now=forwarded)
    await flow.transition(code, "forward", ADMIN, now=forwarded)
    await flow.transition(code, "accept", officer, now=forwarded.replace(minute=30))
    await flow.transition(
        code, "resolve", officer, evidence=PHOTO, public_note="Sudah diperbaiki", now=resolved
    )


async def seed_august(db: Database) -> dict[str, str]:
    """The complaints of the module docstring; returns letter -> tracking code."""
    vault = ContactVault(KEY)
    flow = Workflow(db, settings())
    c: dict[str, str] = {}

    c["A"] = await file(
        db,
        vault,
        medium="whatsapp",
        category="jalan_rusak",
        place="Jl. Pemuda, Semarang Tengah",
        created_at=wib(14, 10),
    )
    await handled(flow, c["A"], wib(14, 10), wib(18, 15), "dpu")

    c["B"] = await file(
        db, vault, medium="sms", category="sampah", place="dekat pasar Genuk", created_at=wib(3, 8)
    )
    await handled(flow, c["B"], wib(3, 8), wib(12, 11), "dlh")
    await flow.transition(c["B"], "close", Actor.citizen(), close_reason="citizen", now=wib(13, 8))

    c["C"] = await file(
        db, vault, medium="telegram", category="lampu_pju", place="gang 3 Tembalang", created_at=wib(20, 9)
    )
    await handled(flow, c["C"], wib(20, 9), wib(26, 14), "disperkim")

    c["D"] = await file(
        db, vault, medium="twitter", category="jalan_rusak", place="Jl. Kaligawe", created_at=wib(4)
    )
    await flow.transition(c["D"], "reject", ADMIN, public_note="Bukan kewenangan kota", now=wib(5))

    c["E"] = await file(
        db,
        vault,
        medium="whatsapp",
        category="jalan_rusak",
        place="Jl. Pemuda, Semarang Tengah",
        created_at=wib(15, 7),
    )
    await flow.transition(c["E"], "mark_duplicate", ADMIN, duplicate_of=c["A"], now=wib(17, 10))

    c["F"] = await file(
        db, vault, medium="whatsapp", category="banjir", place="Griya Asri Pedurungan", created_at=wib(27, 6)
    )
    await flow.transition(c["F"], "verify", ADMIN, now=wib(27, 8))
    await flow.transition(c["F"], "forward", ADMIN, now=wib(27, 8))
    await flow.transition(c["F"], "accept", Actor("dpu_officer", "officer", "dpu"), now=wib(28, 8))

    c["G"] = await file(db, vault, medium="sms", created_at=wib(29, 20))

    c["H"] = await file(
        db, vault, medium="sms", category="sampah", place="Genuk", confidential=True, created_at=wib(10, 7)
    )
    await handled(flow, c["H"], wib(10, 7), wib(10, 16), "dlh")

    c["I"] = await file(
        db,
        vault,
        medium="sms",
        category="pohon_tumbang",
        place="Banyumanik",
        status="closed",
        created_at=wib(11, 9),
        closed_at=wib(12, 9),
    )

    c["J"] = await file(db, vault, medium="web", category="lainnya", created_at=wib(1, 1))

    c["M"] = await file(
        db, vault, medium="telegram", category="jalan_rusak", place="Jl. Pemuda", created_at=wib(5, 9)
    )
    await handled(flow, c["M"], wib(5, 9), wib(6, 9), "dpu")
    await flow.transition(c["M"], "reopen", ADMIN, public_note="Lubang muncul lagi", now=wib(7, 9))

    # Outside August, or not a complaint yet.
    c["july"] = await file(
        db, vault, medium="sms", category="banjir", place="Genuk", created_at=wib(31, 23, month=7)
    )
    c["september"] = await file(
        db, vault, medium="sms", category="banjir", place="Genuk", created_at=wib(1, 0, 30, month=9)
    )
    c["draft"] = await file(
        db, vault, medium="sms", category="banjir", place="Genuk", status="draft", created_at=wib(12)
    )
    return c


EXPECTED: dict[str, Any] = {
    "month": "2026-08",
    "received": 11,
    "by_channel": {"sms": 4, "whatsapp": 3, "telegram": 2, "twitter": 1, "web": 1},
    "by_category": {
        "jalan_rusak": 4,
        "sampah": 2,
        "banjir": 1,
        "lainnya": 1,
        "lampu_pju": 1,
        "pohon_tumbang": 1,
        "uncategorized": 1,
    },
    "by_department": {"unassigned": 5, "dpu": 3, "dlh": 2, "disperkim": 1},
    "by_kecamatan": {
        "unknown": 5,
        "Semarang Tengah": 2,
        "Banyumanik": 1,
        "Genuk": 1,
        "Pedurungan": 1,
        "Tembalang": 1,
    },
    "by_status": {
        "submitted": 2,
        "verified": 0,
        "forwarded": 0,
        "in_progress": 1,
        "reopened": 1,
        "resolved": 3,
        "closed": 2,
        "rejected": 1,
        "duplicate": 1,
    },
    "outcome": {"fixed": 4, "closed_without_fix": 3, "open": 4},
    "resolution_rate": round(4 / 11, 4),
    # A 1, B 7, C 3, H 0 working days: sorted 0 1 3 7, median (1 + 3) / 2, p90 = 4th of 4 (ceil 3.6).
    "resolution_working_days": {"count": 4, "median": 2.0, "p90": 7},
    "deadline": {"with_deadline": 4, "within_deadline": 3, "compliance": 0.75},
}
