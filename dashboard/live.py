"""Server-sent events for the officer pages: "something changed" pushes, one small query a tick.

SSE rather than WebSocket because the traffic is one-way, it passes through every proxy as plain HTTP
and the browser reconnects by itself. The stream sends a fingerprint (newest status event, newest
complaint, unread notifications) whenever it changes; the page decides what to do with it.

A stream re-reads the fingerprint as soon as this process commits something (a citizen's message
through the ingest pipeline, a dashboard action, a recorded complaint: `notify_change`) and at least
every `TICK_SECONDS` otherwise, which covers changes made by another gateway process or the deadline
job. Officers and heads see only their department's complaints, so their fingerprint counts only
those: a complaint elsewhere in the city does not light up their banner.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from aiohttp import web
from aiohttp.client_exceptions import ClientConnectionResetError
from sqlalchemy import func, select

from dashboard import auth, common
from store import models

TICK_SECONDS = 2.0
MAX_STREAM_SECONDS = 600.0
"""Streams end after this long; EventSource reconnects, so a stuck proxy never holds one forever."""
RETRY_MS = 3000
"""How long a browser waits before reconnecting a dropped stream."""


class Changes:
    """Wakes every open stream of this process at once; cheap enough to call after every commit."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.closed = False
        """Set at shutdown: streams end at once instead of holding the server's stop for a tick."""

    def close(self) -> None:
        self.closed = True
        self.notify()

    def notify(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    def since(self) -> asyncio.Event:
        """Taken before reading the database: a change committed while reading still wakes `wait`."""
        return self._event

    @staticmethod
    async def wait(since: asyncio.Event, timeout: float) -> None:  # noqa: ASYNC109 - the poll interval
        """Until a `notify` after `since` was taken, or `timeout` seconds."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(since.wait(), timeout)


CHANGES = web.AppKey("dashboard_changes", Changes)


def add_live_routes(app: web.Application) -> None:
    from gateway.app import INGESTOR

    changes = app[CHANGES] = Changes()
    app[INGESTOR].on_committed.append(changes.notify)

    async def end_streams(app: web.Application) -> None:
        changes.close()

    app.on_shutdown.append(end_streams)
    app.router.add_get("/dashboard/events", events)


def notify_change(app: web.Application) -> None:
    """Tell open streams to look again now (after a commit made by a dashboard handler)."""
    changes = app.get(CHANGES)
    if changes is not None:
        changes.notify()


async def fingerprint(request: web.Request, session: auth.Session) -> dict[str, int]:
    events, complaints, notes = models.status_events, models.complaints, models.notifications
    links = models.complaint_departments
    last_event: Any = select(func.max(events.c.id))
    last_complaint: Any = select(func.max(complaints.c.id)).where(complaints.c.status != "draft")
    if session.role in ("officer", "head"):
        mine = select(links.c.complaint_id).where(links.c.department == (session.department or ""))
        last_event = last_event.where(events.c.complaint_id.in_(mine))
        # A complaint reaches a department when it is forwarded: the newest link is its "new complaint".
        last_complaint = select(func.max(links.c.id)).where(links.c.department == (session.department or ""))
    async with common.engine(request).connect() as conn:
        event_id = (await conn.execute(last_event)).scalar_one()
        complaint_id = (await conn.execute(last_complaint)).scalar_one()
        unread = (
            await conn.execute(
                select(func.count())
                .select_from(notes)
                .where(notes.c.user_id == session.user_id, notes.c.read_at.is_(None))
            )
        ).scalar_one()
    return {"event": int(event_id or 0), "complaint": int(complaint_id or 0), "unread": int(unread)}


async def events(request: web.Request) -> web.StreamResponse:
    session = common.session(request)
    if session is None:
        raise web.HTTPUnauthorized(text="sign in first")
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    changes = request.app[CHANGES]
    last: dict[str, int] | None = None
    loop = asyncio.get_running_loop()
    ends = loop.time() + MAX_STREAM_SECONDS
    try:
        await response.write(f"retry: {RETRY_MS}\n\n".encode())
        while loop.time() < ends and not changes.closed:
            since = changes.since()
            current = await fingerprint(request, session)
            if current != last:
                await response.write(f"event: change\ndata: {json.dumps(current)}\n\n".encode())
                last = current
            else:
                await response.write(b": tick\n\n")
            await changes.wait(since, min(TICK_SECONDS, max(0.0, ends - loop.time())))
    except (ConnectionResetError, ClientConnectionResetError):
        pass  # the officer left the page; EventSource reconnects from the next one
    return response
