"""Complaints for dashboard tests, filed the way the product files them (record_complaint and the
workflow service), at chosen times, so lists, filters and deadlines have something real to show."""

from __future__ import annotations

import functools
import re
from datetime import datetime

import aiohttp

from dashboard.intake import NewComplaint, record_complaint
from gateway.app import DATABASE, WORKFLOW
from tests.dashboard.conftest import Dashboard, csrf_from
from workflow.access import Actor

CITY = Actor("siti", "admin")
LISTED = re.compile(r'data-code="(LPR-[0-9A-Z]{6})"')


async def file(
    dashboard: Dashboard,
    description: str,
    location: str,
    *,
    medium: str = "walk_in",
    category: str | None = None,
    at: datetime | None = None,
    phone: str | None = None,
) -> str:
    """A complaint recorded (and so submitted) at `at` (default: the app's now); with `phone`, the
    citizen hears about it by Twilio SMS."""
    app = dashboard.gateway.app
    new = NewComplaint(
        medium=medium,
        description=description,
        channel="twilio_sms" if phone else None,
        phone=phone,
        category=category,
        location_text=location,
    )
    code: str = await app[DATABASE].run(
        functools.partial(
            record_complaint,
            new=new,
            actor=Actor("system", "system"),
            settings=app[WORKFLOW].settings,
            now=at or dashboard.clock(),
        )
    )
    return code


async def move(dashboard: Dashboard, code: str, action: str, **fields: object) -> None:
    """A transition as the city admin would make it (fields as Workflow.transition takes them)."""
    await dashboard.gateway.app[WORKFLOW].transition(code, action, CITY, **fields)  # type: ignore[arg-type]


async def listed(browser: aiohttp.ClientSession, query: str = "") -> list[str]:
    """The tracking codes the inbox shows for a query string, in order."""
    async with browser.get("/dashboard/" + query) as response:
        assert response.status == 200, await response.text()
        return LISTED.findall(await response.text())


async def post_bulk(
    browser: aiohttp.ClientSession, data: list[tuple[str, str]], csrf: str | None = None
) -> tuple[int, str]:
    """A bulk-action form post (repeated `codes` fields, as the checkboxes send them)."""
    token = csrf if csrf is not None else await csrf_from(browser, "/dashboard/")
    form = [("csrf", token), *data]
    async with browser.post("/dashboard/bulk", data=form, allow_redirects=False) as response:
        return response.status, await response.text()
