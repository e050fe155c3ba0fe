"""The simulator page, driven like a newcomer drives it: against the real gateway on SQLite.

Every wait is Playwright's auto-waiting on something the page shows, never a sleep.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

import playwright.async_api as playwright_api

from tests.harness import RunningGateway

expect = playwright_api.expect

TRACKING_LINK = ".bubble.bot a[href^='/lacak/LPR-']"


def _photo(width: int, height: int) -> bytes:
    """A small PNG (a dusk-coloured gradient) so the screenshot shows a real photo bubble."""
    rows = b"".join(
        b"\x00" + b"".join(bytes((40 + x % 200, 60 + y, 120 + (x + y) % 120)) for x in range(width))
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


async def _shot(page: Any, path: Path) -> None:
    """A full-page screenshot for people to look at (test-artifacts/ is not committed)."""
    await page.screenshot(path=str(path), full_page=True, animations="disabled")


async def test_complaint_from_first_message_to_tracking_code(
    gateway: RunningGateway, browser: Any, artifacts: Path
) -> None:
    page = await browser.new_page(viewport={"width": 1180, "height": 900})
    await page.goto(gateway.url + "/simulator/")
    await expect(page.locator("#from")).to_have_value("+6281234500001")

    await page.fill("#text", "Jalan berlubang besar, bahaya buat motor")
    await page.click("#send")
    question = page.locator(".bubble.bot").last
    await expect(question).to_contain_text("lokasi", ignore_case=True)

    await page.click("#locate")
    await page.get_by_role("button", name="Simpang Lima").click()
    await expect(page.locator(".bubble.me .loc")).to_contain_text("Simpang Lima")
    await expect(page.locator(".bubble.bot").last).to_contain_text("YA")

    await page.click("[data-quick=YA]")
    link = page.locator(TRACKING_LINK).first
    await expect(link).to_be_visible()
    code = (await link.text_content() or "").strip()
    assert code.startswith("LPR-") and len(code) == 10
    await _shot(page, artifacts / "simulator-sms.png")

    await page.goto(gateway.url + f"/lacak/{code}")
    await expect(page.locator("h1")).to_contain_text(code)
    await expect(page.locator("body")).not_to_contain_text("6281234500001")
    await _shot(page, artifacts / "lacak.png")


async def test_channels_restyle_and_remember_the_sender(
    gateway: RunningGateway, browser: Any, artifacts: Path
) -> None:
    page = await browser.new_page(viewport={"width": 1180, "height": 900})
    await page.goto(gateway.url + "/simulator/")

    await page.fill("#text", "Lampu jalan 🙏")
    await expect(page.locator("#counter")).to_contain_text("UCS-2")
    await page.fill("#text", "Lampu jalan mati")
    await expect(page.locator("#counter")).to_contain_text("GSM-7 · 16/160 · 1 SMS")

    await page.get_by_role("tab", name="WhatsApp").click()
    await expect(page.locator("#phone")).to_have_class("phone m-whatsapp")
    await page.fill("#from", "+6281234500077")
    await page.fill("#text", "LaporHendi lampu PJU mati di Jl. Pemuda depan Paragon")
    await page.click("#send")
    await expect(page.locator(".bubble.bot").last).to_contain_text("YA")
    await expect(page.locator(".bubble.me .ticks").first).to_have_text("✓✓")
    await _shot(page, artifacts / "simulator-whatsapp.png")

    await page.reload()
    await expect(page.locator("#phone")).to_have_class("phone m-whatsapp")
    await expect(page.locator("#from")).to_have_value("+6281234500077")
    await expect(page.locator(".bubble.me").first).to_contain_text("lampu PJU mati")

    await page.get_by_role("tab", name="X").click()
    await expect(page.locator("#from")).to_have_value("warga_smg")
    await page.fill("#text", "#LaporSemar banjir selutut di Jl. Kaligawe dekat terminal Terboyo")
    await page.click("#send")
    await expect(page.locator(".bubble.bot").last).to_be_visible()
    await page.get_by_role("button", name="EN", exact=True).click()
    await expect(page.locator("h1:visible")).to_contain_text("Report a problem")
    await _shot(page, artifacts / "simulator-x.png")


async def test_mobile_layout_and_telegram_photo(
    gateway: RunningGateway, browser: Any, artifacts: Path
) -> None:
    page = await browser.new_page(viewport={"width": 390, "height": 780}, is_mobile=True, has_touch=True)
    await page.goto(gateway.url + "/simulator/")
    await page.get_by_role("tab", name="Telegram").click()
    await expect(page.locator("#from")).to_have_value("123456789")
    await page.fill("#text", "Sampah menumpuk di pinggir jalan")
    png = _photo(160, 110)
    await page.set_input_files("#file", files=[{"name": "foto.png", "mimeType": "image/png", "buffer": png}])
    await expect(page.locator(".bubble.me img")).to_have_count(1)
    await expect(page.locator(".bubble.bot").last).to_be_visible()
    await _shot(page, artifacts / "simulator-telegram-mobile.png")


async def test_a_bad_sender_is_explained_and_a_location_can_be_typed(
    gateway: RunningGateway, browser: Any, artifacts: Path
) -> None:
    page = await browser.new_page(viewport={"width": 1180, "height": 900})
    await page.goto(gateway.url + "/simulator/")
    await page.fill("#from", "bukan nomor")
    await expect(page.locator("#toast")).to_contain_text("Periksa pengirim")
    await page.fill("#from", "+6281234500009")
    await page.fill("#text", "Pohon tumbang menutup jalan")
    await page.click("#send")
    await expect(page.locator(".bubble.bot").last).to_contain_text("lokasi", ignore_case=True)
    await page.click("#locate")
    await page.fill("#lat", "-6,9721")
    await page.fill("#lon", "110.4180")
    await page.fill("#loc-label", "Depan Stasiun Tawang")
    await _shot(page, artifacts / "simulator-location-sheet.png")
    await page.get_by_role("button", name="Kirim lokasi").click()
    await expect(page.locator(".bubble.me .loc").last).to_contain_text("Depan Stasiun Tawang")
    await expect(page.locator(".bubble.bot").last).to_contain_text("YA")
