"""The complaint's kecamatan column: written by every way a complaint or its place arrives (chat
intake, the record form, a place shared after filing), and what the inbox's area filter reads, over
the whole table."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from gateway.app import ENGINE
from store import models
from tests.dashboard.conftest import Dashboard
from tests.dashboard.seed import file, listed
from tests.dashboard.test_record import GOOD, post_record

CODE = re.compile(r"LPR-[0-9A-Z]{6}")


async def kecamatan_of(dashboard: Dashboard, code: str) -> tuple[str | None, str | None]:
    """(location_text, kecamatan) as stored."""
    table = models.complaints
    async with dashboard.gateway.app[ENGINE].connect() as conn:
        row = (
            await conn.execute(
                select(table.c.location_text, table.c.kecamatan).where(table.c.tracking_code == code)
            )
        ).one()
    return row.location_text, row.kecamatan


def code_in(replies: list[dict[str, Any]]) -> str | None:
    return next((m.group(0) for r in replies if (m := CODE.search(r["text"] or ""))), None)


async def test_the_filter_finds_an_old_complaint_behind_thousands_of_newer_ones(dashboard: Dashboard) -> None:
    now = dashboard.clock()
    old = await file(dashboard, "Lampu PJU mati", "Gg. Melati RT 03, Tembalang", at=now - timedelta(days=60))
    newer = 5_100  # more than the 5,000 newest rows the filter used to read
    async with dashboard.gateway.app[ENGINE].begin() as conn:
        reporter = (
            await conn.execute(
                models.reporters.insert().values(ref="bulk", language="id", created_at=now).returning(
                    models.reporters.c.id
                )
            )
        ).scalar_one()
        await conn.execute(
            models.complaints.insert(),
            [
                {
                    "tracking_code": f"LPR-B{n:05d}",
                    "reporter_id": reporter,
                    "origin_channel": "simulator",
                    "origin_medium": "sms",
                    "description": "Sampah menumpuk",
                    "location_text": f"dekat pasar Genuk no {n}",
                    "media": [],
                    "status": "submitted",
                    "anonymous": False,
                    "language": "id",
                    "created_at": now - timedelta(minutes=n),
                    "updated_at": now - timedelta(minutes=n),
                }
                for n in range(newer)
            ],
        )

    await dashboard.add_user("siti", "admin")
    async with dashboard.browser() as admin:
        assert await dashboard.login(admin, "siti") == 302
        assert await listed(admin, "?kecamatan=Tembalang") == [old]
        assert await listed(admin, "?kecamatan=Tembalang&status=submitted") == [old]
        assert await listed(admin, "?kecamatan=Tembalang&status=verified") == []
        genuk = await listed(admin, "?kecamatan=Genuk")
        assert genuk == [f"LPR-B{n:05d}" for n in range(25)], "newest first, one page"
        last = await listed(admin, "?kecamatan=Genuk&page=204")
        assert last == [f"LPR-B{n:05d}" for n in range(5075, 5100)]
        async with admin.get("/dashboard/?kecamatan=Genuk") as response:
            assert "1000+" in await response.text()
        assert await listed(admin, "?kecamatan=Gotham") == [], "an unknown name matches nothing"


async def test_chat_intake_stores_the_kecamatan_of_the_place(dashboard: Dashboard) -> None:
    replies = await dashboard.chat("+6281234567802", "LaporHendi lampu PJU mati di gang 3 Tembalang")
    code = code_in(replies) or code_in(await dashboard.chat("+6281234567802", "YA"))
    assert code is not None
    assert await kecamatan_of(dashboard, code) == ("gang 3 Tembalang", "Tembalang")

    await dashboard.add_user("siti", "admin")
    async with dashboard.browser() as admin:
        assert await dashboard.login(admin, "siti") == 302
        assert await listed(admin, "?kecamatan=Tembalang") == [code]


async def test_a_place_shared_after_filing_sets_the_kecamatan(dashboard: Dashboard) -> None:
    sender = "7001"
    point = {"latitude": -7.0551, "longitude": 110.4381}
    say = {"medium": "telegram"}
    assert "Lokasi" in (await dashboard.chat(sender, None, location=point, **say))[-1]["text"]
    await dashboard.chat(sender, "sampah numpuk belum diangkut seminggu", **say)
    await dashboard.chat(sender, "lewati", **say)
    code = code_in(await dashboard.chat(sender, "ok", **say))
    assert code is not None
    assert await kecamatan_of(dashboard, code) == (None, None), "a bare point names no kecamatan"

    labelled = {**point, "label": "Gg. Melati RT 03, Tembalang"}
    answer = await dashboard.chat(sender, None, location=labelled, **say)
    assert code in answer[-1]["text"], "added to the complaint just filed"
    assert await kecamatan_of(dashboard, code) == ("Gg. Melati RT 03, Tembalang", "Tembalang")


async def test_the_record_form_stores_the_officers_kecamatan(dashboard: Dashboard) -> None:
    await dashboard.add_user("siti", "admin")
    offline = {**GOOD, "reply_by": "none", "phone": "", "name": ""}
    async with dashboard.browser() as admin:
        assert await dashboard.login(admin, "siti") == 302
        codes = []
        for place, chosen in (
            ("Jl. Kaligawe dekat pasar Genuk", "Gayamsari"),  # the text names another kecamatan
            ("Gg. Melati RT 03 Banyumanik", ""),  # none chosen: read from the text
        ):
            fields = {**offline, "location": place, "kecamatan": chosen}
            status, location, _ = await post_record(admin, fields)
            assert status == 303, location
            [code] = CODE.findall(location)
            codes.append(code)
        gayamsari, banyumanik = codes
        assert (await kecamatan_of(dashboard, gayamsari))[1] == "Gayamsari"
        assert await kecamatan_of(dashboard, banyumanik) == ("Gg. Melati RT 03 Banyumanik", "Banyumanik")
        assert await listed(admin, "?kecamatan=Gayamsari") == [gayamsari]
        assert await listed(admin, "?kecamatan=Genuk") == []
        assert await listed(admin, "?kecamatan=Banyumanik") == [banyumanik]
