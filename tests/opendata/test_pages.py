"""`/open-data/` on the running gateway: the page in both languages, JSON, CSV and SVG, and nothing
personal in any of them."""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from store.db import Database
from store.migrate import upgrade
from tests.harness import ManualClock, RunningGateway, bound_socket, make_config, start_gateway
from tests.opendata.seed import EXPECTED, KEY, file, seed_august, wib
from tests.opendata.test_report import assert_no_personal_data, expected_part
from workflow.privacy import ContactVault
from workflow.report import DIMENSIONS

SVG = "{http://www.w3.org/2000/svg}"


def parse_svg(text: str) -> ET.Element:
    """Well-formedness is the point: a strict XML parser, on our own output."""
    root = ET.fromstring(text.encode())  # noqa: S314 - the gateway's own output, not untrusted input
    assert root.tag == f"{SVG}svg"
    return root


def bar_widths(root: ET.Element) -> dict[str, int]:
    """Each bar's tooltip ("label: count") and length."""
    widths: dict[str, int] = {}
    for group in root.iter(f"{SVG}g"):
        title, rect = group.find(f"{SVG}title"), group.find(f"{SVG}rect")
        assert title is not None and rect is not None and title.text
        widths[title.text] = int(rect.get("width") or "-1")
    return widths


@dataclass
class Site:
    gateway: RunningGateway
    clock: ManualClock
    codes: dict[str, str]
    database_url: str
    browser: aiohttp.ClientSession
    """A visitor with a cookie jar (unsafe=True keeps 127.0.0.1's cookies), so the language sticks."""

    async def get(self, path: str, **params: str) -> tuple[aiohttp.ClientResponse, str]:
        url = self.gateway.url + path
        async with self.browser.get(url, params=params, allow_redirects=False) as response:
            return response, await response.text()


@pytest.fixture
async def site(database_url: str, tmp_path: Path) -> AsyncIterator[Site]:
    db = Database(database_url, sqlite_synchronous="NORMAL")
    await upgrade(db.engine)
    codes = await seed_august(db)
    await db.dispose()
    sock = bound_socket()
    config = make_config(
        database_url, sock.getsockname()[1], MEDIA__DIRECTORY=str(tmp_path / "media"), PRIVACY__KEY=KEY
    )
    clock = ManualClock(datetime(2026, 9, 10, 3, 0, tzinfo=UTC))
    running = await start_gateway(config, sock, clock=clock, background=False)
    browser = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    try:
        yield Site(running, clock, codes, database_url, browser)
    finally:
        await browser.close()
        await running.stop()


async def test_json_csv_and_charts(site: Site) -> None:
    response, body = await site.get("/open-data/2026-08.json")
    assert response.status == 200
    assert response.content_type == "application/json"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert expected_part(await response.json()) == EXPECTED
    bodies = [body]

    response, body = await site.get("/open-data/2026-08.csv")
    assert (response.status, response.content_type, response.charset) == (200, "text/csv", "utf-8")
    rows = list(csv.reader(io.StringIO(body)))
    figures = {(section, key): value for _, section, key, value in rows[1:]}
    assert figures[("outcome", "fixed")] == "4"
    assert figures[("channel", "sms")] == "4"
    assert figures[("department", "unassigned")] == "5"
    assert {month for month, *_ in rows[1:]} == {"2026-08"}
    bodies.append(body)

    for dimension in DIMENSIONS:
        response, body = await site.get(f"/open-data/2026-08/chart-{dimension}.svg")
        assert (response.status, response.content_type) == (200, "image/svg+xml")
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
        root = parse_svg(body)
        bars = root.findall(f".//{SVG}rect")
        assert len(bars) == len(EXPECTED[f"by_{dimension}"])
        bodies.append(body)
    labels = [t.text for t in parse_svg(body).iter(f"{SVG}text")]  # the status chart, in id
    assert "Selesai ditangani" in labels and "3" in labels

    response, body = await site.get("/open-data/2026-08/chart-kecamatan.svg", lang="en")
    widths = bar_widths(parse_svg(body))
    assert widths["Unknown: 5"] > widths["Semarang Tengah: 2"] > widths["Genuk: 1"] > 0
    bodies.append(body)

    for missing in (
        "/open-data/2026-08/chart-reporter.svg",
        "/open-data/2026-10.json",  # not yet
        "/open-data/2026-06.csv",  # before the first complaint
        "/open-data/2026-13.json",
        "/open-data/2026-8.json",
    ):
        response, _ = await site.get(missing)
        assert response.status == 404, missing
    for body in bodies:
        assert_no_personal_data(body, site.codes)


async def test_page_in_indonesian_and_english(site: Site) -> None:
    response, html = await site.get("/open-data/")
    assert response.status == 200 and response.content_type == "text/html"
    assert '<html lang="id">' in html
    assert "Data terbuka aduan: Agustus 2026" in html  # the last complete month
    assert re.search(r'id="received">11<', html)
    assert re.search(r'id="fixed">4<', html) and re.search(r'id="closed-without-fix">3<', html)
    assert re.search(r'id="median">2<', html) and re.search(r'id="p90">7<', html)
    assert re.search(r'id="compliance">75%<', html) and re.search(r'id="resolution-rate">36%<', html)
    assert "Dinas Pekerjaan Umum" in html and "Belum diteruskan ke OPD" in html
    assert 'href="/open-data/2026-07/"' in html and 'href="/open-data/2026-09/"' in html
    assert "Juli 2026" in html and "September 2026" in html
    charts = re.findall(r"<svg .*?</svg>", html, flags=re.S)
    assert len(charts) == len(DIMENSIONS)
    for chart in charts:
        parse_svg(chart)
    pages = [html]

    response, html = await site.get("/open-data/2026-08/", lang="en")
    assert response.status == 200 and '<html lang="en">' in html
    assert "Complaints open data: August 2026" in html
    assert "Not forwarded to a department" in html and "Resolution rate" in html and "Unknown" in html
    pages.append(html)
    response, html = await site.get("/open-data/2026-09/")  # the language cookie sticks
    assert '<html lang="en">' in html and "not over yet" in html
    pages.append(html)

    response, _ = await site.get("/open-data/2026-08")
    assert (response.status, response.headers["Location"]) == (302, "/open-data/2026-08/")
    for page in pages:
        assert_no_personal_data(page, site.codes)


async def test_figures_are_cached_for_five_minutes(site: Site) -> None:
    response, _ = await site.get("/open-data/2026-08.json")
    assert (await response.json())["received"] == 11
    db = Database(site.database_url, sqlite_synchronous="NORMAL")
    try:
        await file(db, ContactVault(KEY), medium="sms", category="banjir", created_at=wib(21))
    finally:
        await db.dispose()
    response, _ = await site.get("/open-data/2026-08.json")
    assert (await response.json())["received"] == 11
    site.clock.advance(seconds=301)
    response, _ = await site.get("/open-data/2026-08.json")
    assert (await response.json())["received"] == 12


def test_chart_labels_are_escaped() -> None:
    """Department and category names are typed by admins: markup in them stays text."""
    from dashboard.charts import bar_chart

    svg = bar_chart('Dinas "<script>alert(1)</script>" & co', [("<img src=x onerror=alert(1)>", 2), ("B", 0)])
    root = parse_svg(svg)
    assert "<script" not in svg and "<img" not in svg
    assert root.find(f"{SVG}title") is not None
    assert bar_widths(root) == {"<img src=x onerror=alert(1)>: 2": 190, "B: 0": 0}
