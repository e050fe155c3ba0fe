"""An officer registers where reminders reach them, checks it with a test message, and then a real
escalation arrives there: WhatsApp through Twilio's client to the fake Twilio on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.app import ENGINE, ESCALATOR
from store import models
from tests.dashboard.conftest import Clock, Dashboard, csrf_from
from tests.fakes.twilio import FakeTwilio
from tests.harness import bound_socket, make_config, start_gateway, twilio_overrides

WHATSAPP = "whatsapp:+6281298765432"


@pytest.fixture
async def whatsapp_dashboard(
    database_url: str, tmp_path: Path, fake_twilio: FakeTwilio
) -> AsyncIterator[Dashboard]:
    sock = bound_socket()
    config = make_config(
        database_url,
        sock.getsockname()[1],
        MEDIA__DIRECTORY=str(tmp_path / "media"),
        **twilio_overrides(
            fake_twilio,
            CHANNELS__TWILIO__SMS_FROM="",
            CHANNELS__TWILIO__WHATSAPP_FROM="+15005550006",
            WORKFLOW__STAFF_WHATSAPP_CHANNEL="twilio_whatsapp",
        ),
    )
    clock = Clock()
    running = await start_gateway(config, sock, clock=clock, background=False)
    try:
        yield Dashboard(running, clock)
    finally:
        await running.stop()


async def say(dashboard: Dashboard, sender: str, text: str) -> None:
    """A citizen's message through the simulator channel, and the bot's answers sent."""
    async with dashboard.browser() as phone:
        payload = {"medium": "sms", "from": sender, "text": text}
        async with phone.post("/simulator/api/send", json=payload) as response:
            assert response.status == 200
    await dashboard.drain()


async def stored_contacts(dashboard: Dashboard, username: str) -> tuple[str | None, str | None]:
    users = models.users
    async with dashboard.gateway.app[ENGINE].connect() as conn:
        row = (
            await conn.execute(
                select(users.c.whatsapp_number, users.c.telegram_chat_id).where(users.c.username == username)
            )
        ).one()
    return row.whatsapp_number, row.telegram_chat_id


async def test_an_officer_registers_whatsapp_tests_it_and_gets_an_escalation_there(
    whatsapp_dashboard: Dashboard, fake_twilio: FakeTwilio
) -> None:
    dashboard = whatsapp_dashboard
    await dashboard.add_user("kadis", "head", "dpu")
    async with dashboard.browser() as head:
        assert await dashboard.login(head, "kadis") == 302
        token = await csrf_from(head, "/dashboard/profile")

        # Typed the way people type numbers; stored in E.164.
        form = {"csrf": token, "whatsapp": "0812-9876-5432", "telegram": "5123456789"}
        async with head.post("/dashboard/profile", data=form, allow_redirects=False) as response:
            assert response.status == 303
        assert await stored_contacts(dashboard, "kadis") == ("+6281298765432", "5123456789")
        async with head.get("/dashboard/profile") as response:
            page = await response.text()
        assert 'value="+6281298765432"' in page

        test_url = "/dashboard/profile/test"
        async with head.post(test_url, data={"csrf": token}, allow_redirects=False) as response:
            assert response.status == 303
        await dashboard.drain()
        [test] = await fake_twilio.wait_for_messages(1)
        assert test["to"] == WHATSAPP and "kadis" in test["body"]
        async with head.get("/dashboard/notifications") as response:
            assert "Uji notifikasi" in await response.text()

    # A complaint forwarded to DPU and left alone past its deadline escalates to the head.
    await dashboard.add_user("admin1", "admin")
    for text in ("LaporHendi jalan berlubang di Jl. Majapahit dekat lampu merah", "ya"):
        await say(dashboard, "+6281211110000", text)
    async with dashboard.gateway.app[ENGINE].connect() as conn:
        code = (await conn.execute(select(models.complaints.c.tracking_code))).scalar_one()
    async with dashboard.browser() as admin:
        assert await dashboard.login(admin, "admin1") == 302
        token = await csrf_from(admin, f"/dashboard/complaints/{code}")
        for action, extra in (("verify", {}), ("forward", {"departments": "dpu"})):
            form = {"csrf": token, "action": action, **extra}
            async with admin.post(
                f"/dashboard/complaints/{code}/action", data=form, allow_redirects=False
            ) as response:
                assert response.status in (302, 303), await response.text()
    dashboard.clock.advance(timedelta(days=21))
    await dashboard.gateway.app[ESCALATOR].run_once()
    await dashboard.drain()
    sent = await fake_twilio.wait_for_messages(2)
    escalation = [m for m in sent[1:] if m["to"] == WHATSAPP]
    assert escalation and code in escalation[0]["body"], sent


async def test_bad_contacts_are_refused_and_nothing_is_stored(dashboard: Dashboard) -> None:
    await dashboard.add_user("petugas", "officer", "dpu")
    async with dashboard.browser() as officer:
        assert await dashboard.login(officer, "petugas") == 302
        token = await csrf_from(officer, "/dashboard/profile")
        form = {"csrf": token, "whatsapp": "1708", "telegram": "@petugas"}
        async with officer.post("/dashboard/profile", data=form) as response:
            assert response.status == 400
            page = await response.text()
        assert 'id="whatsapp-error"' in page and 'id="telegram-error"' in page
        assert 'value="@petugas"' in page, "what the officer typed is shown again"
        form = {"csrf": "palsu", "whatsapp": "081298765432"}
        async with officer.post("/dashboard/profile", data=form) as response:
            assert response.status == 403
    assert await stored_contacts(dashboard, "petugas") == (None, None)
    async with dashboard.browser() as stranger, stranger.get(
        "/dashboard/profile", allow_redirects=False
    ) as response:
        assert response.status == 302 and response.headers["Location"] == "/dashboard/login"
