"""The inbox search over a large table: answered through the trigram index (migration 0007) with the
same answers as the plain rule (every word a substring of description, place and code, joined and
lower-cased), however rare or common the words, short words as dashboard.queries decides; and the
index kept in step by every writer (the record form, the chat intake's batches, a place shared
after filing, plain SQL)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from urllib.parse import urlencode

import aiohttp
from sqlalchemy import delete, func, select, text, update

from dashboard.queries import SHORT_WORDS_SCAN, Filters, list_complaints
from gateway.app import ENGINE
from store import models
from tests.dashboard.conftest import Dashboard
from tests.dashboard.seed import file, listed

CODE = re.compile(r"LPR-[0-9A-Z]{6}")
STREETS = ("Jl. Pemuda", "Jl. Setiabudi")


class Newer(list[str]):
    """Tracking codes of complaints inserted by `add_newer`, newest first, with their searched text."""

    texts: dict[str, str]

    def matching(self, words: str) -> list[str]:
        """The codes the search rule gives for `words`, in the list's order (the test's oracle)."""
        terms = words.lower().split()
        return [code for code in self if all(term in self.texts[code] for term in terms)]


async def add_newer(dashboard: Dashboard, count: int, since: datetime) -> Newer:
    """`count` complaints newer than `since`, evenly spread, inserted with plain SQL as a seed or an
    import would: "Sampah menumpuk nomor <n>", half on each of STREETS."""
    now = dashboard.clock()
    step = (now - since) / (count + 1)
    async with dashboard.gateway.app[ENGINE].begin() as conn:
        reporter = (
            await conn.execute(
                models.reporters.insert()
                .values(ref=f"bulk{count}", language="id", created_at=now)
                .returning(models.reporters.c.id)
            )
        ).scalar_one()
        rows = [
            {
                "tracking_code": f"LPR-N{n:05d}",
                "reporter_id": reporter,
                "origin_channel": "simulator",
                "origin_medium": "sms",
                "description": f"Sampah menumpuk nomor {n:05d}",
                "location_text": f"{STREETS[n % 2]} dekat pasar",
                "media": [],
                "status": "submitted",
                "anonymous": False,
                "language": "id",
                "created_at": now - step * (n + 1),
                "updated_at": now - step * (n + 1),
            }
            for n in range(count)
        ]
        await conn.execute(models.complaints.insert(), rows)
    newer = Newer(row["tracking_code"] for row in rows)
    newer.texts = {
        row["tracking_code"]: f"{row['description']} {row['location_text']} {row['tracking_code']}".lower()
        for row in rows
    }
    return newer


def label(count: int) -> str:
    return "1000+" if count > 1000 else str(count)


def q(words: str, **more: str) -> str:
    return "?" + urlencode({"q": words, **more})


async def total_label(browser: aiohttp.ClientSession, query: str) -> str:
    """The count shown next to the inbox's title: "25", "1000+"."""
    async with browser.get("/dashboard/" + query) as response:
        page = await response.text()
    match = re.search(r"<h1>[^<]*<span[^>]*>\(([^)]*)\)</span>", page)
    assert match is not None, page[:500]
    return match.group(1)


async def admin_browser(dashboard: Dashboard) -> aiohttp.ClientSession:
    await dashboard.add_user("siti", "admin")
    browser = dashboard.browser()
    assert await dashboard.login(browser, "siti") == 302
    return browser


async def test_rare_absent_and_common_words_behind_thousands_of_newer_ones(dashboard: Dashboard) -> None:
    now = dashboard.clock()
    old = await file(dashboard, "Pohon tumbang menimpa kabel, Srondol", "Jl. Pemuda pojok Setiabudi",
                     at=now - timedelta(days=400))  # fmt: skip
    newer = await add_newer(dashboard, 5_100, now - timedelta(days=300))
    async with await admin_browser(dashboard) as admin:
        assert await listed(admin, q("srondol")) == [old], "a rare word, in the oldest complaint"
        assert await total_label(admin, q("srondol")) == "1"
        assert await listed(admin, q("pemuda setiabudi")) == [old], "each common, together once"
        assert await listed(admin, q("SETIABUDI kabel pemuda")) == [old], "any order, any case"
        assert await listed(admin, q("lumpur")) == [], "absent"
        assert await total_label(admin, q("lumpur")) == "0"
        assert await listed(admin, q("pemuda lumpur")) == [], "a common word and an absent one"
        assert await listed(admin, q(old.lower())) == [old], "by its code"
        assert await listed(admin, q(old[5:].lower())) == [old], "by part of its code"
        assert await listed(admin, q("imp")) == [old], "a substring: menimpa"

        assert await listed(admin, q("sampah")) == newer[:25], "common: newest first"
        assert await total_label(admin, q("sampah")) == "1000+"
        assert await listed(admin, q("sampah", page="3")) == newer[50:75]
        assert await listed(admin, q("pemuda sampah", page="2")) == newer.matching("pemuda sampah")[25:50]
        assert await listed(admin, q("setiabudi", status="verified")) == []


async def test_matches_spread_over_the_table_are_paged_in_the_lists_order(dashboard: Dashboard) -> None:
    now = dashboard.clock()
    newer = await add_newer(dashboard, 3_000, now - timedelta(days=30))
    marked = newer[::97]  # 31 complaints all over the table get a word of their own
    async with dashboard.gateway.app[ENGINE].begin() as conn:
        await conn.execute(
            update(models.complaints)
            .where(models.complaints.c.tracking_code.in_(marked))
            .values(description="Saluran mampet, air meluap ke Kaligawe")
        )
    async with await admin_browser(dashboard) as admin:
        assert await listed(admin, q("kaligawe")) == marked[:25]
        assert await listed(admin, q("kaligawe", page="2")) == marked[25:]
        assert await listed(admin, q("kaligawe", page="3")) == []
        assert await total_label(admin, q("kaligawe")) == "31"
        assert await listed(admin, q("MAMPET kaligawe", status="submitted", page="2")) == marked[25:]
        assert await listed(admin, q("kaligawe", status="verified")) == []
        assert await listed(admin, q("sampah kaligawe")) == [], "their old description is gone"


async def test_short_words(dashboard: Dashboard) -> None:
    """Words without three letters or digits in a row cannot use the trigram index. Next to a long
    word with at most 1,000 matches they are checked on those, over the whole table; otherwise only
    the newest SHORT_WORDS_SCAN complaints are searched, and the page says so (`newest`)."""
    now = dashboard.clock()
    old = await file(dashboard, "Lampu PJU mati, tiang no 7", "Gg. Melati RT 03, Tembalang",
                     at=now - timedelta(days=400))  # fmt: skip
    newer = await add_newer(dashboard, SHORT_WORDS_SCAN + 50, now - timedelta(days=300))
    newest = Newer(newer[:SHORT_WORDS_SCAN])
    newest.texts = newer.texts
    async with await admin_browser(dashboard) as admin:
        assert await listed(admin, q("melati rt 03")) == [old], "next to a rare long word: whole table"
        assert await listed(admin, q("rt mati 7")) == [old]
        assert await listed(admin, q("03 tembalang")) == [old]
        assert await listed(admin, q("rt")) == [], "short words only: the old one is too old"
        assert await total_label(admin, q("rt")) == "0"
        assert await listed(admin, q("jl.")) == newer[:25], "common short words: newest first"
        assert await total_label(admin, q("jl.")) == "1000+"
        assert await listed(admin, q("jl. 03", page="2")) == newest.matching("jl. 03")[25:50]
        # "sampah" is in all 10,050 newer ones: too many to check "50" on, the newest only.
        assert await listed(admin, q("sampah 50")) == newest.matching("sampah 50")[:25]
        assert await total_label(admin, q("sampah 50")) == label(len(newest.matching("sampah 50")))

    engine = dashboard.gateway.app[ENGINE]
    for words, bounded in (("rt", True), ("sampah 50", True), ("jl. 03", True), ("03 tembalang", False),
                           ("tembalang", False), ("sampah", False)):  # fmt: skip
        page = await list_complaints(engine, filters=Filters(q=words))
        assert page.newest == (SHORT_WORDS_SCAN if bounded else None), words


async def test_every_writer_keeps_the_index_in_step(dashboard: Dashboard) -> None:
    """Filed by the record form and by the chat intake's batch insert, a place shared after filing
    (the intake's UPDATE), a description corrected and a complaint deleted with plain SQL: each is
    found by what it says now, and not by what it said before."""
    recorded = await file(dashboard, "Trotoar amblas di depan sekolah", "Jl. Kartini, Gayamsari")
    replies = await dashboard.chat("+6281234567891", "LaporHendi saluran mampet di Jl. Tlogosari")
    if not any(CODE.search(m["text"] or "") for m in replies):
        replies = await dashboard.chat("+6281234567891", "YA")
    [chatted] = {m.group(0) for r in replies if (m := CODE.search(r["text"] or ""))}

    sender, say = "7002", {"medium": "telegram"}
    point = {"latitude": -7.0551, "longitude": 110.4381}
    await dashboard.chat(sender, None, location=point, **say)
    await dashboard.chat(sender, "sampah numpuk belum diangkut seminggu", **say)
    await dashboard.chat(sender, "lewati", **say)
    filed = await dashboard.chat(sender, "ok", **say)
    [placed] = {m.group(0) for r in filed if (m := CODE.search(r["text"] or ""))}
    labelled = {**point, "label": "Gg. Kenanga RT 05, Pedurungan"}
    assert placed in (await dashboard.chat(sender, None, location=labelled, **say))[-1]["text"]

    engine = dashboard.gateway.app[ENGINE]
    table = models.complaints
    [gone] = await add_newer(dashboard, 1, dashboard.clock() - timedelta(days=1))  # no events: deletable
    async with engine.begin() as conn:
        await conn.execute(update(table).where(table.c.tracking_code == gone).values(description="Baliho"))
        corrected = update(table).where(table.c.tracking_code == recorded).values(description="Trotoar retak")
        await conn.execute(corrected)
        await conn.execute(delete(table).where(table.c.tracking_code == gone))

    async with await admin_browser(dashboard) as admin:
        assert await listed(admin, q("tlogosari mampet")) == [chatted], "the chat intake's batch insert"
        assert await listed(admin, q("kenanga pedurungan")) == [placed], "a place shared after filing"
        assert await listed(admin, q("seminggu diangkut")) == [placed]
        assert await listed(admin, q("trotoar retak")) == [recorded], "the new description"
        assert await listed(admin, q("kartini")) == [recorded], "and its place"
        assert await listed(admin, q("amblas")) == [], "not the old description"
        assert await listed(admin, q("baliho")) == []

    if engine.dialect.name != "sqlite":
        return  # PostgreSQL keeps its GIN index itself
    # The FTS5 table on its own (the search checks its candidates against complaints, so a stale
    # row would not show above): one row per complaint, with the text it has now.
    async with engine.connect() as conn:

        async def rowids(word: str) -> list[int]:
            match = "SELECT rowid FROM complaints_search WHERE complaints_search MATCH :m ORDER BY rowid"
            return list((await conn.execute(text(match), {"m": f'"{word}"'})).scalars())

        ids = dict((await conn.execute(select(table.c.tracking_code, table.c.id))).all())
        assert await rowids("amblas") == [] and await rowids("retak") == [ids[recorded]]
        assert await rowids("baliho") == [], "the deleted one"
        assert await rowids("kenanga") == [ids[placed]] and await rowids("tlogosari") == [ids[chatted]]
        assert await rowids("lpr-") == sorted(ids.values()), "every complaint, once"
        assert (await conn.execute(select(func.count()).select_from(table))).scalar_one() == len(ids)
        check = "INSERT INTO complaints_search (complaints_search, rank) VALUES ('integrity-check', 0)"
        await conn.execute(text(check))
