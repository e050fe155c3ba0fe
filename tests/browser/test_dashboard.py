"""The officer dashboard and the tracking page in a real browser: sign in, list, open, track."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import aiohttp
import playwright.async_api as playwright_api

from gateway.app import ENGINE
from store.users import create_user
from tests.harness import RunningGateway

expect = playwright_api.expect


async def _say(gateway: RunningGateway, sender: str, text: str, count: int) -> None:
    """Send through the simulator and long-poll until the thread holds `count` messages."""
    async with aiohttp.ClientSession(base_url=gateway.url) as http:
        payload = {"medium": "sms", "from": sender, "text": text, "id": uuid.uuid4().hex}
        async with http.post("/simulator/api/send", json=payload) as response:
            assert response.status == 200
        seen = -1
        while seen < count:
            query = {"medium": "sms", "from": sender, "seen": str(seen), "wait": "10"}
            async with http.get("/simulator/api/messages", params=query) as response:
                seen = len((await response.json())["messages"])


async def test_an_officer_signs_in_and_opens_a_complaint(
    gateway: RunningGateway, browser: Any, artifacts: Path
) -> None:
    await _say(gateway, "+6281234567801", "LaporHendi lampu PJU mati di Jl. Pemuda depan Paragon", 2)
    await _say(gateway, "+6281234567801", "YA", 4)
    await _say(gateway, "+6281234567802", "#LaporSemar banjir selutut di Jl. Kaligawe dekat Terboyo", 2)
    await _say(gateway, "+6281234567802", "YA", 4)
    await create_user(gateway.app[ENGINE], "budi", "kata-sandi-yang-panjang", role="admin")

    page = await browser.new_page(viewport={"width": 1180, "height": 760})
    await page.goto(gateway.url + "/dashboard/")
    await expect(page).to_have_url(gateway.url + "/dashboard/login")
    await page.fill("#username", "budi")
    await page.fill("#password", "kata-sandi-yang-panjang")
    await page.get_by_role("button", name="Masuk").click()
    await expect(page).to_have_url(gateway.url + "/dashboard/")
    rows = page.locator("tbody tr")
    await expect(rows).to_have_count(2)
    await expect(rows.first).to_contain_text("Banjir")  # newest first
    await page.screenshot(path=str(artifacts / "dashboard-list.png"), full_page=True)

    await rows.nth(1).locator("a.code").click()
    await expect(page.locator("h1")).to_contain_text("LPR-")
    await expect(page.locator("body")).to_contain_text("+62812****01")
    await expect(page.locator("body")).not_to_contain_text("+6281234567801")
    await page.screenshot(path=str(artifacts / "dashboard-complaint.png"), full_page=True)

    await page.get_by_role("link", name="English").click()
    await expect(page.locator("body")).to_contain_text("Status history")
    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(gateway.url + "/dashboard/login")


async def _fits(page: Any) -> None:
    """Nothing wider than the screen: an officer on a phone never scrolls sideways to read or act."""
    overflow = await page.evaluate(
        "() => document.scrollingElement.scrollWidth - document.scrollingElement.clientWidth"
    )
    assert overflow <= 1, f"{page.url} is {overflow}px wider than the phone"


async def test_the_dashboard_is_usable_on_a_phone(
    gateway: RunningGateway, browser: Any, artifacts: Path
) -> None:
    await _say(gateway, "+6281234567803", "LaporHendi saluran mampet depan SD Negeri Sendangmulyo 2", 2)
    await _say(gateway, "+6281234567803", "YA", 4)
    await create_user(gateway.app[ENGINE], "ani", "kata-sandi-yang-panjang", role="admin")

    phone = await browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True)
    page = await phone.new_page()
    await page.goto(gateway.url + "/dashboard/login")
    await _fits(page)
    await page.fill("#username", "ani")
    await page.fill("#password", "kata-sandi-yang-panjang")
    await page.get_by_role("button", name="Masuk").click()
    await expect(page).to_have_url(gateway.url + "/dashboard/")
    await page.screenshot(path=str(artifacts / "dashboard-phone-inbox.png"), full_page=True)
    await _fits(page)
    await page.locator("a.code").first.click()
    await expect(page.locator("h1")).to_contain_text("LPR-")
    await page.screenshot(path=str(artifacts / "dashboard-phone-complaint.png"), full_page=True)
    await _fits(page)
    for path in ("/dashboard/record", "/dashboard/profile", "/dashboard/notifications", "/open-data/"):
        await page.goto(gateway.url + path)
        await _fits(page)
    await phone.close()
