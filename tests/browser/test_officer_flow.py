"""The whole officer flow in a real browser, with the citizen on SMS through a fake Twilio.

A citizen texts a complaint; the city admin verifies and forwards it; the department officer accepts
and resolves it with a photo; the citizen's phone (the fake Twilio) receives each status message and
the public tracking page shows the resolution and its photo. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import playwright.async_api as playwright_api
import pytest
from PIL import Image

from gateway.app import ENGINE
from store.users import create_user
from tests.fakes.twilio import FakeTwilio
from tests.fakes.twilio_webhooks import sign, sms_params
from tests.harness import RunningGateway, bound_socket, make_config, start_gateway

expect = playwright_api.expect
CITIZEN = "+6281234567890"
PASSWORD = "kata-sandi-yang-panjang"
CODE = re.compile(r"LPR-[0-9A-Z]{6}")


@pytest.fixture
async def sms_gateway(
    database_url: str, fake_twilio: FakeTwilio, tmp_path: Path
) -> AsyncIterator[RunningGateway]:
    sock = bound_socket()
    config = make_config(
        database_url,
        sock.getsockname()[1],
        CHANNELS__TWILIO__ACCOUNT_SID=fake_twilio.account_sid,
        CHANNELS__TWILIO__AUTH_TOKEN=fake_twilio.auth_token,
        CHANNELS__TWILIO__SMS_FROM="+15005550006",
        CHANNELS__TWILIO__API_BASE=fake_twilio.base_url,
        MEDIA__DIRECTORY=str(tmp_path / "media"),
        PRIVACY__KEY="browser-test-privacy-key",
    )
    running = await start_gateway(config, sock)
    try:
        yield running
    finally:
        await running.stop()


async def _text_in(gateway: RunningGateway, fake: FakeTwilio, body: str) -> None:
    params = sms_params(From=CITIZEN, Body=body, AccountSid=fake.account_sid)
    url = gateway.url + "/webhooks/twilio/sms"
    response = await gateway.post_form(
        "/webhooks/twilio/sms", params, {"X-Twilio-Signature": sign(url, params, fake.auth_token)}
    )
    assert response.status == 200


async def _citizen_files(gateway: RunningGateway, fake: FakeTwilio) -> str:
    await _text_in(gateway, fake, "LaporHendi lampu PJU mati di Jl. Pemuda depan Paragon kec Semarang Tengah")
    await fake.wait_for_messages(1)
    await _text_in(gateway, fake, "YA")
    sent = await fake.wait_for_messages(2)
    codes = [m.group(0) for s in sent if (m := CODE.search(str(s["body"])))]
    assert codes, sent
    return codes[0]


async def _login(page: Any, url: str, username: str) -> None:
    await page.goto(url + "/dashboard/login")
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.get_by_role("button", name="Masuk").click()
    await expect(page).to_have_url(url + "/dashboard/")


def _photo(path: Path) -> Path:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 140, 60)).save(buffer, format="JPEG")
    path.write_bytes(buffer.getvalue())
    return path


async def test_verify_forward_resolve_with_photo_reaches_the_citizen_and_the_public_page(
    sms_gateway: RunningGateway, fake_twilio: FakeTwilio, browser: Any, artifacts: Path, tmp_path: Path
) -> None:
    url = sms_gateway.url
    code = await _citizen_files(sms_gateway, fake_twilio)
    await create_user(sms_gateway.app[ENGINE], "siti", PASSWORD, role="admin")
    await create_user(sms_gateway.app[ENGINE], "budi", PASSWORD, role="officer", department="disperkim")

    admin = await (await browser.new_context(viewport={"width": 1180, "height": 800})).new_page()
    await _login(admin, url, "siti")
    row = admin.locator(f"tr[data-code='{code}']")
    await expect(row).to_contain_text("SMS")
    await admin.screenshot(path=str(artifacts / "flow-1-inbox.png"), full_page=True)
    await row.locator("a.code").click()
    await expect(admin.locator("#status")).to_have_text("Menunggu verifikasi")
    await expect(admin.locator("#reporter")).to_be_visible()
    await expect(admin.locator("body")).not_to_contain_text(CITIZEN)

    sent_before = len(fake_twilio.messages_to(CITIZEN))
    await admin.locator("#act-verify button[type=submit]").click()
    await expect(admin.locator("#status")).to_have_text("Terverifikasi")
    await admin.locator("#act-forward").evaluate("d => { d.open = true; }")
    await admin.select_option("#forward-departments", ["disperkim"])
    await admin.fill("#forward-public", "Diteruskan ke Disperkim untuk perbaikan lampu.")
    await admin.locator("#act-forward button[type=submit]").click()
    await expect(admin.locator("#status")).to_have_text("Diteruskan ke OPD")
    await expect(admin.locator("#deadline")).to_contain_text("Sesuai jadwal")
    await admin.screenshot(path=str(artifacts / "flow-2-forwarded.png"), full_page=True)

    officer_context = await browser.new_context(viewport={"width": 390, "height": 844})  # a phone
    officer = await officer_context.new_page()
    await _login(officer, url, "budi")
    await officer.locator(f"tr[data-code='{code}'] a.code").click()
    await expect(officer.locator("#status")).to_have_text("Diteruskan ke OPD")
    await expect(officer.locator("#act-verify")).to_have_count(0)  # not the officer's action
    await officer.locator("#act-accept button[type=submit]").click()
    await expect(officer.locator("#status")).to_have_text("Sedang ditangani")
    await officer.locator("#act-resolve").evaluate("d => { d.open = true; }")
    await officer.set_input_files("#resolve-photo", str(_photo(tmp_path / "selesai.jpg")))
    await officer.fill("#resolve-public", "Lampu sudah diganti dan menyala.")
    await officer.locator("#act-resolve button[type=submit]").click()
    await expect(officer.locator("#status")).to_have_text("Selesai ditangani")
    await expect(officer.locator("#gallery img")).to_have_count(1)
    await officer.screenshot(path=str(artifacts / "flow-3-resolved-phone.png"), full_page=True)

    # The citizen's phone: verify, forward, accept and resolve each reached them by SMS.
    await fake_twilio.wait_for_messages(
        len(fake_twilio.sent) - len(fake_twilio.messages_to(CITIZEN)) + sent_before + 4
    )
    bodies = [str(m["body"]) for m in fake_twilio.messages_to(CITIZEN)][sent_before:]
    assert len(bodies) == 4, bodies
    assert all(code in body for body in bodies)
    assert "Lampu sudah diganti" in bodies[-1]

    public = await (await browser.new_context(viewport={"width": 360, "height": 640})).new_page()
    await public.goto(f"{url}/lacak/{code}")
    await expect(public.locator("#status")).to_have_text("Selesai ditangani")
    await expect(public.locator("#timeline")).to_contain_text("Lampu sudah diganti dan menyala.")
    await expect(public.locator("#department")).to_be_visible()
    photo = public.locator("img[alt='Foto hasil penanganan']")
    await expect(photo).to_have_count(1)
    assert await photo.evaluate("img => img.complete && img.naturalWidth") == 64
    await expect(public.locator("body")).not_to_contain_text(CITIZEN)
    await public.screenshot(path=str(artifacts / "flow-4-public.png"), full_page=True)
