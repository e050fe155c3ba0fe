"""The inbox: every filter (status, category, department, channel, overdue, dates, kecamatan), the
search box, and who sees which complaints."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlencode

from tests.dashboard.conftest import Dashboard
from tests.dashboard.seed import file, listed, move

CODE = re.compile(r"LPR-[0-9A-Z]{6}")


def q(**params: str) -> str:
    return "?" + urlencode(params)


async def test_every_filter_and_the_search_box_narrow_the_list(dashboard: Dashboard) -> None:
    now = dashboard.clock()
    old = now - timedelta(days=20)
    road = await file(dashboard, "Jalan berlubang dalam", "Jl. Pemuda depan Paragon, Kec. Semarang Tengah",
                      category="jalan_rusak", at=old)
    rubbish = await file(dashboard, "Sampah menumpuk 100% penuh", "Pasar Johar, Semarang Utara",
                         medium="letter", category="sampah")
    lamp = await file(dashboard, "Lampu PJU mati sebulan", "Gg. Melati RT 03, Tembalang", medium="phone",
                      category="lampu_pju", at=now - timedelta(hours=1))
    await move(dashboard, rubbish, "verify")
    await move(dashboard, rubbish, "forward", departments=["dlh"])
    await move(dashboard, lamp, "verify")
    replies = await dashboard.chat("+6281234567801", "LaporHendi saluran mampet di Jl. Pandanaran")
    if not any(CODE.search(m["text"] or "") for m in replies):
        replies = await dashboard.chat("+6281234567801", "YA")
    [drain] = {m.group(0) for r in replies if (m := CODE.search(r["text"] or ""))}
    everything = {road, rubbish, lamp, drain}

    await dashboard.add_user("siti", "admin")
    async with dashboard.browser() as admin:
        assert await dashboard.login(admin, "siti") == 302
        assert set(await listed(admin)) == everything
        assert (await listed(admin))[-1] == road, "newest first"

        assert await listed(admin, q(status="forwarded")) == [rubbish]
        assert await listed(admin, q(status="verified")) == [lamp]
        assert set(await listed(admin, q(status="submitted"))) == {road, drain}
        assert set(await listed(admin, q(status="no-such-status"))) == everything, "ignored, not an error"

        assert await listed(admin, q(category="sampah")) == [rubbish]
        assert await listed(admin, q(category="lampu_pju")) == [lamp]
        assert await listed(admin, q(department="dlh")) == [rubbish]
        assert await listed(admin, q(department="dpu")) == []

        assert await listed(admin, q(channel="walk_in")) == [road]
        assert await listed(admin, q(channel="letter")) == [rubbish]
        assert await listed(admin, q(channel="phone")) == [lamp]
        assert await listed(admin, q(channel="sms")) == [drain]

        # Only the 20-day-old complaint is past its 3-working-day verification deadline.
        assert await listed(admin, q(overdue="1")) == [road]
        async with admin.get("/dashboard/" + q(overdue="1")) as response:
            page = await response.text()
        assert 'class="overdue"' in page and "Lewat tenggat" in page

        old_day = (old + timedelta(hours=7)).date().isoformat()  # the day in Semarang
        assert await listed(admin, q(**{"from": old_day, "to": old_day})) == [road]
        today = (now + timedelta(hours=7)).date().isoformat()
        assert road not in await listed(admin, q(**{"from": today}))
        assert await listed(admin, q(to=(old + timedelta(days=1, hours=7)).date().isoformat())) == [road]
        assert set(await listed(admin, q(**{"from": "kemarin"}))) == everything, "a bad date is ignored"

        assert await listed(admin, q(kecamatan="Semarang Tengah")) == [road]
        assert await listed(admin, q(kecamatan="Semarang Utara")) == [rubbish]
        assert await listed(admin, q(kecamatan="Tembalang")) == [lamp]
        assert await listed(admin, q(kecamatan="Mijen")) == []

        assert await listed(admin, q(q="paragon")) == [road]
        assert await listed(admin, q(q="PEMUDA paragon")) == [road], "words in any place, any case"
        assert await listed(admin, q(q="melati tembalang")) == [lamp]
        assert await listed(admin, q(q="lampu johar")) == [], "every word must match"
        assert await listed(admin, q(q=rubbish.lower())) == [rubbish], "by tracking code"
        assert await listed(admin, q(q="100%")) == [rubbish], "% is a character, not a wildcard"
        assert await listed(admin, q(q="%")) == [rubbish]

        combined = q(status="verified", category="lampu_pju", channel="phone", kecamatan="Tembalang")
        assert await listed(admin, combined) == [lamp]
        async with admin.get("/dashboard/" + q(status="forwarded", category="lampu_pju")) as response:
            page = await response.text()
        assert "Belum ada aduan." in page and "(0)" in page
        # The form shows the filters that are on, so the officer sees why the list is short.
        async with admin.get("/dashboard/" + combined + "&q=melati") as response:
            page = await response.text()
        assert '<option value="Tembalang" selected>' in page and 'value="melati"' in page
        assert '<option value="phone" selected>' in page


async def test_departments_see_only_their_complaints_and_auditors_none(dashboard: Dashboard) -> None:
    rubbish = await file(dashboard, "Sampah menumpuk, hubungi 0812-3456-7801", "Pasar Johar 0812-3456-7801",
                         category="sampah")
    road = await file(dashboard, "Jalan berlubang", "Jl. Pemuda", category="jalan_rusak")
    await move(dashboard, rubbish, "verify")
    await move(dashboard, rubbish, "forward", departments=["dlh"])
    await dashboard.add_user("budi", "officer", "dlh")
    await dashboard.add_user("tono", "officer", None)
    await dashboard.add_user("ani", "auditor")
    async with dashboard.browser() as officer:
        assert await dashboard.login(officer, "budi") == 302
        assert await listed(officer) == [rubbish]
        assert await listed(officer, q(department="dpu")) == [], "cannot widen to another department"
        assert await listed(officer, q(q="pemuda")) == []
        async with officer.get("/dashboard/") as response:
            page = await response.text()
        assert "0812-3456-7801" not in page, "numbers typed into the place are hidden from departments"
        assert 'id="department"' not in page and 'name="codes"' not in page
    async with dashboard.browser() as unassigned:
        assert await dashboard.login(unassigned, "tono") == 302
        assert await listed(unassigned) == [], "an officer without a department sees nothing"
    async with dashboard.browser() as auditor:
        assert await dashboard.login(auditor, "ani") == 302
        async with auditor.get("/dashboard/") as response:
            page = await response.text()
        assert CODE.search(page) is None and 'id="no-view"' in page
        assert road not in page


async def test_a_large_inbox_is_counted_only_to_a_thousand(dashboard: Dashboard) -> None:
    """An exact count of a big inbox is a full scan on every page: past 1,000 it says "1000+"."""
    from datetime import UTC, datetime

    from sqlalchemy import insert

    from gateway.app import ENGINE
    from store import models

    moment = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    async with dashboard.gateway.app[ENGINE].begin() as conn:
        reporter = (
            await conn.execute(insert(models.reporters).values(ref="bulk", language="id", created_at=moment))
        ).inserted_primary_key[0]
        rows = [
            {
                "tracking_code": f"LPR-B{i:05d}",
                "reporter_id": reporter,
                "origin_channel": "twilio_sms",
                "origin_medium": "sms",
                "description": f"lampu mati {i}",
                "media": [],
                "category": "lampu_pju" if i % 2 else "sampah",
                "created_at": moment,
                "updated_at": moment,
            }
            for i in range(1001)
        ]
        await conn.execute(insert(models.complaints), rows)
    await dashboard.add_user("siti", "admin")
    async with dashboard.browser() as admin:
        assert await dashboard.login(admin, "siti") == 302
        async with admin.get("/dashboard/") as response:
            assert "(1000+)" in await response.text()
        async with admin.get("/dashboard/" + q(category="sampah")) as response:
            assert "(501)" in await response.text()
        async with admin.get("/dashboard/" + q(q="MATI")) as response:
            assert "(1000+)" in await response.text()  # the search's count, as capped
        async with admin.get("/dashboard/" + q(q="mati b00999")) as response:
            assert "(1)" in await response.text()  # a word of the text and one of the code


async def test_a_word_is_found_within_one_text_never_across_two(dashboard: Dashboard) -> None:
    """Description, place and code are searched as one text joined by spaces: a word cannot span
    the join (the end of the description and the start of the place are not one word)."""
    split = await file(dashboard, "Lampu mati di Jl. Pe", "muda depan Paragon")
    whole = await file(dashboard, "Lampu mati di Jl. Pemuda", "depan Paragon")
    await dashboard.add_user("siti", "admin")
    async with dashboard.browser() as admin:
        assert await dashboard.login(admin, "siti") == 302
        assert await listed(admin, q(q="pemuda")) == [whole]
        assert await listed(admin, q(q="pemuda paragon")) == [whole]
        assert await listed(admin, q(q="pe muda")) == [whole, split]
        assert await listed(admin, q(q=f"paragon {split[-3:].lower()}")) == [split]
        assert await listed(admin, q(q="paragon" + split[:3].lower())) == [], "place and code are apart too"


async def test_the_gateways_postgresql_connections_have_no_jit(dashboard: Dashboard) -> None:
    """JIT compiling cost more than the text search's count it was for (store.db.make_engine)."""
    from sqlalchemy import text

    from gateway.app import DATABASE

    database = dashboard.gateway.app[DATABASE]
    if database.dialect != "postgresql":
        assert database.dialect == "sqlite"  # nothing to compile there
        return
    assert await database.run(lambda conn: conn.execute(text("SHOW jit")).scalar()) == "off"
    async with database.engine.connect() as conn:
        assert (await conn.execute(text("SHOW jit"))).scalar() == "off"
