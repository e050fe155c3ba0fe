"""Server-sent events for the officer pages: "something changed" pushes, one small query a tick.

SSE rather than WebSocket because the traffic is one-way, it passes through every proxy as plain HTTP
and the browser reconnects by itself. The stream sends a fingerprint (newest status event, newest
complaint, unread notifications) whenever it changes; the page decides what to do with it.
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import web
from aiohttp.client_exceptions import ClientConnectionResetError
from sqlalchemy import func, select

from dashboard import common
from store import models

TICK_SECONDS = 2.0
MAX_STREAM_SECONDS = 600.0
"""Streams end after this long; EventSource reconnects, so a stuck proxy never holds one forever."""


def add_live_routes(app: web.Application) -> None:
    app.router.add_get("/dashboard/events", events)


async def fingerprint(request: web.Request, user_id: int) -> dict[str, int]:
    events, complaints, notes = models.status_events, models.complaints, models.notifications
    async with common.engine(request).connect() as conn:
        last_event = (await conn.execute(select(func.max(events.c.id)))).scalar_one()
        last_complaint = (await conn.execute(select(func.max(complaints.c.id)))).scalar_one()
        unread = (
            await conn.execute(
                select(func.count())
                .select_from(notes)
                .where(notes.c.user_id == user_id, notes.c.read_at.is_(None))
            )
        ).scalar_one()
    return {"event": int(last_event or 0), "complaint": int(last_complaint or 0), "unread": int(unread)}


async def events(request: web.Request) -> web.StreamResponse:
    session = common.session(request)
    if session is None:
        raise web.HTTPUnauthorized(text="sign in first")
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    last: dict[str, int] | None = None
    loop = asyncio.get_running_loop()
    ends = loop.time() + MAX_STREAM_SECONDS
    try:
        while loop.time() < ends:
            current = await fingerprint(request, session.user_id)
            if current != last:
                await response.write(f"event: change\ndata: {json.dumps(current)}\n\n".encode())
                last = current
            else:
                await response.write(b": tick\n\n")
            await asyncio.sleep(TICK_SECONDS)
    except (ConnectionResetError, ClientConnectionResetError):
        pass  # the officer left the page; EventSource reconnects from the next one
    return response
