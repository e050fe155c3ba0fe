"""`/dashboard/profile`: how reminders and escalations reach an officer outside the dashboard.

Deadlines only work if the people who own them hear about them: an officer registers a WhatsApp
number and/or a Telegram chat id here, and a test message (sent through the same durable outbox as
every escalation, plus a dashboard notification) shows at once that the address is right. Each user
edits only their own contacts; the numbers are staff data, not reporters', and never leave the
dashboard except as the address of a staff message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from sqlalchemy import select, update

from dashboard import common
from dashboard.intake import e164
from dashboard.live import notify_change
from dashboard.officer import read_form, unread_count
from dashboard.render import render
from store import models
from workflow.lifecycle import MissingInput
from workflow.notify import tell_staff

TELEGRAM_ID_DIGITS = 20
"""Telegram chat ids are integers (negative for groups); anything longer is not one."""


def add_profile_routes(app: web.Application) -> None:
    app.router.add_get("/dashboard/profile", profile_page)
    app.router.add_post("/dashboard/profile", save_profile)
    app.router.add_post("/dashboard/profile/test", send_test)


@dataclass
class Contacts:
    """The form as typed and, per field, what is wrong with it."""

    whatsapp: str = ""
    telegram: str = ""
    errors: dict[str, str] = field(default_factory=dict)


def check(form: Any, region: str) -> Contacts:
    typed = Contacts(str(form.get("whatsapp", "")).strip()[:40], str(form.get("telegram", "")).strip()[:40])
    if typed.whatsapp:
        try:
            typed.whatsapp = e164(typed.whatsapp, region)
        except MissingInput:
            typed.errors["whatsapp"] = "bad_whatsapp"
    if typed.telegram:
        digits = typed.telegram.removeprefix("-")
        if not digits.isdigit() or len(digits) > TELEGRAM_ID_DIGITS:
            typed.errors["telegram"] = "bad_telegram"
    return typed


async def _stored(request: web.Request, user_id: int) -> Contacts:
    users = models.users
    async with common.engine(request).connect() as conn:
        row = (
            await conn.execute(
                select(users.c.whatsapp_number, users.c.telegram_chat_id).where(users.c.id == user_id)
            )
        ).one()
    return Contacts(row.whatsapp_number or "", row.telegram_chat_id or "")


async def _page(
    request: web.Request, session: Any, contacts: Contacts, notice: str = "", status: int = 200
) -> web.Response:
    from gateway.app import WORKFLOW

    settings = request.app[WORKFLOW].settings
    return render(
        request,
        "profile.html",
        {
            "session": session,
            "csrf": common.csrf(request, session),
            "unread": await unread_count(request, session.user_id),
            "contacts": contacts,
            "notice": notice,
            "whatsapp_on": bool(settings.staff_whatsapp_channel),
            "telegram_on": bool(settings.staff_telegram_channel),
        },
        status=status,
    )


async def profile_page(request: web.Request) -> web.StreamResponse:
    session = common.require(request)
    notice = request.query.get("ok", "")
    return await _page(request, session, await _stored(request, session.user_id), notice)


async def save_profile(request: web.Request) -> web.StreamResponse:
    session = common.require(request)
    form = await read_form(request)
    common.check_csrf(request, session, form)
    from gateway.app import CONFIG

    contacts = check(form, request.app[CONFIG].intake.default_region)
    if contacts.errors:
        return await _page(request, session, contacts, status=400)
    users = models.users
    async with common.engine(request).begin() as conn:
        await conn.execute(
            update(users)
            .where(users.c.id == session.user_id)
            .values(whatsapp_number=contacts.whatsapp or None, telegram_chat_id=contacts.telegram or None)
        )
    raise web.HTTPSeeOther("/dashboard/profile?ok=saved")


async def send_test(request: web.Request) -> web.StreamResponse:
    """A staff message to this user, through exactly the path an escalation takes."""
    session = common.require(request)
    form = await read_form(request)
    common.check_csrf(request, session, form)
    from gateway.app import DISPATCHER, WORKFLOW

    settings = request.app[WORKFLOW].settings
    moment = common.now(request)

    def queue(conn: Any) -> None:
        users = models.users
        user = conn.execute(
            select(
                users.c.id, users.c.username, users.c.telegram_chat_id, users.c.whatsapp_number, users.c.role
            ).where(users.c.id == session.user_id)
        ).one()
        tell_staff(conn, [user], None, "test", {"user": session.username}, moment, settings)

    await common.database(request).run(queue)
    request.app[DISPATCHER].wake()
    notify_change(request.app)
    raise web.HTTPSeeOther("/dashboard/profile?ok=tested")
