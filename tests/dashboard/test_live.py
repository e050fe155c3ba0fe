"""Live updates: the SSE stream at /dashboard/events pushes a change as soon as a complaint arrives
or a department's work changes, and shows each officer only their department's changes."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import aiohttp

from tests.dashboard.conftest import Dashboard, csrf_from
from tests.dashboard.seed import file, move

CODE = re.compile(r"LPR-[0-9A-Z]{6}")
WAIT = 15.0
"""Upper bound for one event; they come at once (the stream is woken by the commit), this only keeps
a broken stream from hanging the suite."""


async def next_change(stream: aiohttp.ClientResponse) -> dict[str, Any]:
    """The data of the next `event: change` (retry lines, comments and ticks skipped)."""
    name = None
    async with asyncio.timeout(WAIT):
        while True:
            line = (await stream.content.readline()).decode()
            assert line, "the stream ended"
            line = line.rstrip("\n")
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: ") and name == "change":
                data: dict[str, Any] = json.loads(line.removeprefix("data: "))
                return data
            elif not line:
                name = None


async def test_a_new_complaint_reaches_an_open_stream(dashboard: Dashboard) -> None:
    await dashboard.add_user("siti", "admin")
    async with dashboard.browser() as admin:
        assert await dashboard.login(admin, "siti") == 302
        async with admin.get("/dashboard/events") as stream:
            assert stream.status == 200
            assert stream.headers["Content-Type"] == "text/event-stream"
            assert stream.headers["Cache-Control"] == "no-store"
            first = await next_change(stream)
            assert first == {"event": 0, "complaint": 0, "unread": 0}
            replies = await dashboard.chat("+6281234567802", "LaporHendi pohon tumbang di Jl. Siliwangi")
            if not any(CODE.search(m["text"] or "") for m in replies):
                await dashboard.chat("+6281234567802", "YA")
            change = await next_change(stream)
            while change["complaint"] == 0:  # a draft turn may come first; the filed complaint follows
                change = await next_change(stream)
            assert change["complaint"] > 0 and change["event"] > 0


async def test_officers_hear_about_their_department_only(dashboard: Dashboard) -> None:
    road = await file(dashboard, "Jalan berlubang", "Jl. Pemuda", category="jalan_rusak")
    await move(dashboard, road, "verify")
    await dashboard.add_user("siti", "admin")
    await dashboard.add_user("budi", "officer", "dpu")
    async with dashboard.browser() as admin, dashboard.browser() as officer:
        assert await dashboard.login(admin, "siti") == 302
        assert await dashboard.login(officer, "budi") == 302
        async with officer.get("/dashboard/events") as stream:
            assert await next_change(stream) == {"event": 0, "complaint": 0, "unread": 0}
            # The city forwards the complaint to the officer's department: their stream changes.
            token = await csrf_from(admin, f"/dashboard/complaints/{road}")
            form = {"csrf": token, "action": "forward", "departments": "dpu"}
            async with admin.post(f"/dashboard/complaints/{road}/action", data=form) as response:
                assert response.status == 200
            forwarded = await next_change(stream)
            assert forwarded["complaint"] > 0 and forwarded["event"] > 0 and forwarded["unread"] == 1
            # A complaint for nobody in particular arrives: nothing for this officer. The next event
            # the stream sends is the officer's own "mark read", with the rest unchanged.
            await file(dashboard, "Sampah menumpuk", "Pasar Johar", category="sampah")
            token = await csrf_from(officer, "/dashboard/notifications")
            async with officer.post("/dashboard/notifications/read", data={"csrf": token}) as response:
                assert response.status == 200
            assert await next_change(stream) == {**forwarded, "unread": 0}


async def test_the_stream_needs_a_session(dashboard: Dashboard) -> None:
    async with (
        aiohttp.ClientSession(base_url=dashboard.url) as anonymous,
        anonymous.get("/dashboard/events") as response,
    ):
        assert response.status == 401
