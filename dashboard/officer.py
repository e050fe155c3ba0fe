"""The officer's screens: the inbox, one complaint with its actions, bulk actions, notifications.

Every state change goes through `Workflow.transition` (or `reveal_identity`), which checks the role
again and writes the audit, the citizen's status message and staff notifications in one transaction;
the buttons shown here are only `workflow.access.can` asked in advance, so nobody sees a button that
would be refused.
"""

from __future__ import annotations

import asyncio
import functools
from datetime import date, datetime, time, timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import func, select, update

from dashboard import common, queries
from dashboard.i18n import MEDIUM_LABELS, STATUS_LABELS, request_language
from dashboard.live import notify_change
from dashboard.record import REPLY_CHANNELS, add_record_routes
from dashboard.render import JAKARTA, render
from store import models
from workflow.access import Action, Forbidden, Scope, can
from workflow.lifecycle import TRANSITIONS, TransitionError
from workflow.privacy import redact
from workflow.views import reveal_identity, staff_view

MAX_UPLOAD = 12 * 1024 * 1024
FORM_ACTIONS = (
    Action.VERIFY,
    Action.FORWARD,
    Action.ACCEPT,
    Action.REPLY,
    Action.UPDATE,
    Action.ASK_REPORTER,
    Action.RESUME,
    Action.REQUEST_COORDINATION,
    Action.RESOLVE,
    Action.REJECT,
    Action.MARK_DUPLICATE,
    Action.CLOSE,
)
"""The actions with a form on the complaint page, in the order an officer meets them."""
BULK_ACTIONS = (Action.VERIFY, Action.FORWARD, Action.REJECT)


def add_officer_routes(app: web.Application) -> None:
    router = app.router
    router.add_get("/dashboard/", inbox)
    router.add_get("/dashboard/complaints/{code}", complaint_page)
    router.add_post("/dashboard/complaints/{code}/action", complaint_action)
    router.add_post("/dashboard/complaints/{code}/reveal", reveal)
    router.add_post("/dashboard/bulk", bulk)
    router.add_get("/dashboard/notifications", notifications_page)
    router.add_post("/dashboard/notifications/read", notifications_read)
    add_record_routes(app)


def _local_day(text: str | None, *, end: bool = False) -> datetime | None:
    """A `YYYY-MM-DD` from a date input as the start (or the end) of that day in Semarang."""
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return None
    if end:
        day += timedelta(days=1)
    return datetime.combine(day, time(), JAKARTA)


def filters_from(request: web.Request, own_department: str | None) -> queries.Filters:
    q = request.query
    status = q.get("status") or None
    return queries.Filters(
        status=status if status in STATUS_LABELS["id"] else None,
        category=(q.get("category") or None),
        department=(q.get("department") or None),
        channel=(q.get("channel") or None),
        overdue=q.get("overdue") == "1",
        date_from=_local_day(q.get("from")),
        date_to=_local_day(q.get("to"), end=True),
        kecamatan=(q.get("kecamatan") or None),
        q=(q.get("q", "").strip()[:100] or None),
        own_department=own_department,
    )


def _page_number(request: web.Request) -> int:
    try:
        return max(1, min(10_000, int(request.query.get("page", "1"))))
    except ValueError:
        return 1


async def unread_count(request: web.Request, user_id: int) -> int:
    table = models.notifications
    async with common.engine(request).connect() as conn:
        count = await conn.execute(
            select(func.count())
            .select_from(table)
            .where(table.c.user_id == user_id, table.c.read_at.is_(None))
        )
        return int(count.scalar_one())


def _kecamatan_names() -> list[str]:
    from conversation.places import KECAMATAN

    return sorted(KECAMATAN)


async def inbox(request: web.Request) -> web.StreamResponse:
    session = common.require(request)
    actor = common.actor(session)
    bound = session.role in ("officer", "head")
    filters = filters_from(request, (session.department or "-") if bound else None)
    may_view = can(actor, Action.VIEW)
    if may_view:
        page = await queries.list_complaints(
            common.engine(request), filters=filters, page=_page_number(request), now=common.now(request)
        )
    else:  # auditors read statistics and open data, never complaints
        page = queries.Page([], 1, False, 0)
    if session.role != "admin":  # a number typed into the place stays with the city team
        for row in page.rows:
            row["location_text"] = redact(row["location_text"]) if row["location_text"] else None

    def page_url(number: int) -> str:
        return str(request.rel_url.update_query(page=number))

    return render(
        request,
        "list.html",
        {
            "may_view": may_view,
            "session": session,
            "csrf": common.csrf(request, session),
            "page": page,
            "filters": filters,
            "query": request.query,
            "status": filters.status,
            "statuses": list(STATUS_LABELS["id"]),
            "channels": list(MEDIUM_LABELS),
            "kecamatan": _kecamatan_names(),
            "choices": await queries.choices(common.engine(request)),
            "bulk_actions": [a.value for a in BULK_ACTIONS if can(actor, a)],
            "unread": await unread_count(request, session.user_id),
            "page_url": page_url,
        },
    )


async def _staff_view(request: web.Request, code: str, session: Any) -> dict[str, Any]:
    from gateway.app import WORKFLOW

    vault = request.app[WORKFLOW].settings.vault
    if vault is None:
        from workflow.privacy import ContactVault

        vault = ContactVault("unset")  # only pseudonyms are derived from it; contacts are plaintext
    view: dict[str, Any] = await common.database(request).run(
        functools.partial(staff_view, code=code, viewer=common.actor(session), vault=vault)
    )
    return view


def deadline_state(view: dict[str, Any], now: datetime) -> tuple[str, datetime | None]:
    """`overdue`, `due_soon` (within a day), `on_track`, or `none`, with the deadline that counts."""
    status = view["status"]
    due = view["verify_due_at"] if status in queries.VERIFYING else view["due_at"]
    if status not in queries.OPEN_STATUSES or due is None:
        return "none", due
    if view["paused"]:
        return "paused", due
    if due < now:
        return "overdue", due
    return ("due_soon" if due - now < timedelta(days=1) else "on_track"), due


async def _render_complaint(
    request: web.Request,
    session: Any,
    code: str,
    *,
    error: str | None = None,
    revealed: Any = None,
    status: int = 200,
) -> web.Response:
    context: dict[str, Any] = {"session": session, "csrf": common.csrf(request, session), "error": error}
    try:
        view = await _staff_view(request, code, session)
    except Forbidden as exc:
        context.update(complaint=None, error=str(exc))
        return render(request, "complaint.html", context, status=403)
    except TransitionError:
        return render(request, "complaint.html", {**context, "complaint": None}, status=404)
    detail = await queries.complaint_detail(common.engine(request), code)
    assert detail is not None
    actor = common.actor(session)
    thread = detail["messages"]
    if actor.role != "admin":  # departments see the citizen's words, not the numbers typed in them
        thread = [{**m, "text": redact(m["text"]) if m["text"] else m["text"]} for m in thread]
    scope = Scope(frozenset(view["departments"]))
    allowed = [
        a.value
        for a in FORM_ACTIONS
        if can(actor, a, scope) and view["status"] in TRANSITIONS[a].sources
    ]
    state, due = deadline_state(view, common.now(request))
    lang, _ = request_language(request)
    return render(
        request,
        "complaint.html",
        {
            **context,
            "complaint": view,
            "messages": thread,
            "origin_medium": detail["origin_medium"],
            "origin_channel": detail["origin_channel"],
            "allowed": allowed,
            "can_reveal": can(actor, Action.REVEAL_IDENTITY) and not view["reporter"]["anonymous"],
            "revealed": revealed,
            "deadline": state,
            "due": due,
            "choices": await queries.choices(common.engine(request)),
            "done": request.query.get("done"),
            "recorded": request.query.get("recorded") == "1",
            "reply_label": REPLY_CHANNELS.get(detail["origin_channel"]),
            "unread": await unread_count(request, session.user_id),
            "lang_code": lang,
        },
        status=status,
    )


async def complaint_page(request: web.Request) -> web.StreamResponse:
    session = common.require(request)
    return await _render_complaint(request, session, request.match_info["code"].upper())


async def store_photo(request: web.Request, upload: Any) -> dict[str, Any]:
    """An uploaded photo into the evidence store (type checked, EXIF stripped), as a media entry."""
    from gateway.app import CONFIG
    from gateway.media import MediaStore

    media = request.app[CONFIG].media
    data = await asyncio.to_thread(upload.file.read, MAX_UPLOAD + 1) if hasattr(upload, "file") else b""
    if len(data) > MAX_UPLOAD:
        raise TransitionError("the photo is too large")
    store = MediaStore(media.directory, media.max_bytes)
    stored = await asyncio.to_thread(store.store, data, getattr(upload, "content_type", None))
    return stored.entry("dashboard")


def _text(form: Any, name: str, limit: int = 2000) -> str | None:
    value = form.get(name)
    if not isinstance(value, str):
        return None
    return value.replace("\x00", "").strip()[:limit] or None  # PostgreSQL text cannot hold NUL


async def perform(
    request: web.Request, session: Any, code: str, action: str, form: Any
) -> None:
    """One workflow transition from a submitted form; raises TransitionError/Forbidden for the officer."""
    from gateway.app import WORKFLOW
    from gateway.media import MediaRejected

    evidence: list[dict[str, Any]] = []
    for upload in form.getall("photo", []):
        if hasattr(upload, "file"):
            try:
                evidence.append(await store_photo(request, upload))
            except MediaRejected as exc:
                raise TransitionError(f"photo refused: {exc}") from None
    departments = [d for d in form.getall("departments", []) if isinstance(d, str) and d]
    await request.app[WORKFLOW].transition(
        code,
        action,
        common.actor(session),
        note=_text(form, "note"),
        public_note=_text(form, "public_note", 500),
        evidence=evidence,
        departments=departments,
        scope=_text(form, "scope", 20),
        category=_text(form, "category", 64),
        duplicate_of=(_text(form, "duplicate_of", 16) or "").upper() or None,
        close_reason="admin",
    )


async def read_form(request: web.Request) -> Any:
    """The posted form (multipart with photos, or urlencoded), refused early when over the size limit."""
    if request.content_length is not None and request.content_length > MAX_UPLOAD + 65536:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_UPLOAD, actual_size=request.content_length)
    return await request.post()


async def complaint_action(request: web.Request) -> web.StreamResponse:
    session = common.require(request)
    code = request.match_info["code"].upper()
    form = await read_form(request)
    common.check_csrf(request, session, form)
    action = form.get("action")
    if not isinstance(action, str) or action not in {a.value for a in FORM_ACTIONS}:
        return await _render_complaint(request, session, code, error=f"unknown action {action!r}", status=400)
    try:
        await perform(request, session, code, action, form)
    except Forbidden as exc:
        return await _render_complaint(request, session, code, error=str(exc), status=403)
    except TransitionError as exc:
        return await _render_complaint(request, session, code, error=str(exc), status=409)
    notify_change(request.app)
    raise web.HTTPSeeOther(f"/dashboard/complaints/{code}?done={action}")


async def reveal(request: web.Request) -> web.StreamResponse:
    session = common.require(request)
    code = request.match_info["code"].upper()
    form = await read_form(request)
    common.check_csrf(request, session, form)
    from gateway.app import WORKFLOW

    vault = request.app[WORKFLOW].settings.vault
    reason = _text(form, "reason", 500) or ""
    try:
        if vault is None:
            raise Forbidden("no contact vault configured")
        who = await common.database(request).run(
            functools.partial(
                reveal_identity,
                code=code,
                actor=common.actor(session),
                reason=reason,
                vault=vault,
                now=common.now(request),
            )
        )
    except Forbidden as exc:
        return await _render_complaint(request, session, code, error=str(exc), status=403)
    return await _render_complaint(request, session, code, revealed=who)


async def bulk(request: web.Request) -> web.StreamResponse:
    """The same action on several complaints; each is its own transaction, failures are listed."""
    session = common.require(request)
    form = await read_form(request)
    common.check_csrf(request, session, form)
    action = form.get("action")
    codes = list(dict.fromkeys(c.upper() for c in form.getall("codes", []) if isinstance(c, str)))[:100]
    if action not in {a.value for a in BULK_ACTIONS} or not codes:
        raise web.HTTPBadRequest(text="choose an action and at least one complaint")
    if not can(common.actor(session), str(action)):
        raise web.HTTPForbidden(text=f"role {session.role!r} may not {action}")
    failures: list[tuple[str, str]] = []
    done = 0
    for code in codes:
        try:
            await perform(request, session, code, str(action), form)
            done += 1
        except (TransitionError, Forbidden) as exc:
            failures.append((code, str(exc)))
    if done:
        notify_change(request.app)
    return render(
        request,
        "bulk.html",
        {
            "session": session,
            "csrf": common.csrf(request, session),
            "action": action,
            "done": done,
            "failures": failures,
            "unread": await unread_count(request, session.user_id),
        },
        status=200 if not failures else 207,
    )


async def notifications_page(request: web.Request) -> web.StreamResponse:
    session = common.require(request)
    notes, complaints = models.notifications, models.complaints
    async with common.engine(request).connect() as conn:
        rows = [
            dict(r)
            for r in (
                await conn.execute(
                    select(notes.c.id, notes.c.kind, notes.c.text, notes.c.created_at, notes.c.read_at,
                           complaints.c.tracking_code)
                    .outerjoin(complaints, complaints.c.id == notes.c.complaint_id)
                    .where(notes.c.user_id == session.user_id)
                    .order_by(notes.c.id.desc())
                    .limit(100)
                )
            ).mappings()
        ]
    return render(
        request,
        "notifications.html",
        {
            "session": session,
            "csrf": common.csrf(request, session),
            "notes": rows,
            "unread": sum(1 for r in rows if r["read_at"] is None),
        },
    )


async def notifications_read(request: web.Request) -> web.StreamResponse:
    session = common.require(request)
    form = await read_form(request)
    common.check_csrf(request, session, form)
    table = models.notifications
    async with common.engine(request).begin() as conn:
        await conn.execute(
            update(table)
            .where(table.c.user_id == session.user_id, table.c.read_at.is_(None))
            .values(read_at=common.now(request))
        )
    notify_change(request.app)
    raise web.HTTPSeeOther("/dashboard/notifications")
