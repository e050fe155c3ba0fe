"""Staff notifications: a forward tells the department's officers and head, a coordination request
tells the city team, each person sees only their own, and "mark all read" needs the CSRF token."""

from __future__ import annotations

import re

import aiohttp

from tests.dashboard.conftest import Dashboard, csrf_from
from tests.dashboard.seed import file, move

BELL = re.compile(r'<b id="unread">(\d+)</b>')


async def bell(browser: aiohttp.ClientSession) -> int:
    """The unread count in the page header (0 when the badge is absent)."""
    async with browser.get("/dashboard/") as response:
        found = BELL.search(await response.text())
    return int(found.group(1)) if found else 0


async def notes(browser: aiohttp.ClientSession) -> str:
    async with browser.get("/dashboard/notifications") as response:
        assert response.status == 200
        return await response.text()


async def act(browser: aiohttp.ClientSession, code: str, **form: str) -> int:
    token = await csrf_from(browser, f"/dashboard/complaints/{code}")
    async with browser.post(
        f"/dashboard/complaints/{code}/action", data={"csrf": token, **form}, allow_redirects=False
    ) as response:
        return response.status


async def test_forwarding_and_coordination_notify_the_right_people(dashboard: Dashboard) -> None:
    road = await file(dashboard, "Jalan berlubang", "Jl. Pemuda", category="jalan_rusak")
    await move(dashboard, road, "verify")
    await dashboard.add_user("siti", "admin")
    await dashboard.add_user("budi", "officer", "dpu")
    await dashboard.add_user("hadi", "head", "dpu")
    await dashboard.add_user("lina", "officer", "dlh")
    async with (
        dashboard.browser() as admin,
        dashboard.browser() as officer,
        dashboard.browser() as head,
        dashboard.browser() as elsewhere,
    ):
        for browser, name in ((admin, "siti"), (officer, "budi"), (head, "hadi"), (elsewhere, "lina")):
            assert await dashboard.login(browser, name) == 302
        assert "Tidak ada notifikasi." in await notes(officer)

        assert await act(admin, road, action="forward", departments="dpu") == 303
        counts = [await bell(b) for b in (officer, head, elsewhere, admin)]
        assert counts == [1, 1, 0, 0]
        page = await notes(officer)
        assert f'href="/dashboard/complaints/{road}"' in page
        assert f"Aduan baru {road} (Jalan rusak) untuk Dinas Pekerjaan Umum" in page
        assert 'action="/dashboard/notifications/read"' in page
        assert road not in await notes(elsewhere)

        # The officer needs another department: the city team hears about it.
        async with officer.get(f"/dashboard/complaints/{road}") as response:
            assert 'id="act-request_coordination"' in await response.text()
        assert await act(officer, road, action="request_coordination") == 409  # a note is required
        assert await bell(admin) == 0
        assert await act(officer, road, action="request_coordination",
                         note="Perlu Dishub: rambu jalan ikut rusak") == 303
        assert await bell(admin) == 1
        assert "minta koordinasi untuk aduan " + road in await notes(admin)
        assert "Perlu Dishub" in await notes(admin)


async def test_mark_all_read_needs_the_token_and_touches_only_ones_own(dashboard: Dashboard) -> None:
    road = await file(dashboard, "Jalan berlubang", "Jl. Pemuda", category="jalan_rusak")
    await move(dashboard, road, "verify")
    await dashboard.add_user("budi", "officer", "dpu")
    await dashboard.add_user("hadi", "head", "dpu")
    await move(dashboard, road, "forward")  # routed to dpu by the category: both are told
    async with dashboard.browser() as officer, dashboard.browser() as head:
        assert await dashboard.login(officer, "budi") == 302
        assert await dashboard.login(head, "hadi") == 302
        assert await bell(officer) == 1
        for token in ("", "forged", await csrf_from(head, "/dashboard/notifications")):
            async with officer.post(
                "/dashboard/notifications/read", data={"csrf": token}, allow_redirects=False
            ) as response:
                assert response.status == 403
        assert await bell(officer) == 1
        token = await csrf_from(officer, "/dashboard/notifications")
        async with officer.post(
            "/dashboard/notifications/read", data={"csrf": token}, allow_redirects=False
        ) as response:
            assert (response.status, response.headers["Location"]) == (303, "/dashboard/notifications")
        assert await bell(officer) == 0
        page = await notes(officer)
        assert road in page and 'action="/dashboard/notifications/read"' not in page
        assert await bell(head) == 1, "the head's notification is still unread"
    async with aiohttp.ClientSession(base_url=dashboard.url) as anonymous:
        async with anonymous.get("/dashboard/notifications", allow_redirects=False) as response:
            assert response.status == 302
        async with anonymous.post("/dashboard/notifications/read", allow_redirects=False) as response:
            assert response.status == 302
