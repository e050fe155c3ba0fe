"""The public tracking page `/lacak/<code>`: what anyone holding the code may see.

It renders `workflow.views.public_view` only (no reporter, no conversation, no internal notes; a
confidential complaint shows neither text nor place) plus the resolution photo, which the department
took of the finished work and which the citizen needs to believe the fix. The page is plain HTML with
no script, small enough for a cheap phone on a slow connection.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.engine import Connection

from dashboard import common
from dashboard.render import render
from store import models
from workflow.views import public_view


def normalize(text: str) -> str | None:
    try:
        from conversation.codes import normalize_code
    except ImportError:  # the conversation package is optional for the tracking page
        cleaned = text.strip().upper()
        return cleaned if cleaned.startswith("LPR-") and len(cleaned) == 10 else None
    return normalize_code(text)


def resolution_photos(conn: Connection, code: str) -> list[str]:
    """Local evidence URLs of the public resolve events, oldest first; none for confidential ones."""
    complaints, events = models.complaints, models.status_events
    rows = conn.execute(
        select(events.c.evidence)
        .join(complaints, complaints.c.id == events.c.complaint_id)
        .where(
            complaints.c.tracking_code == code,
            complaints.c.confidential.is_(False),
            events.c.public.is_(True),
            events.c.action == "resolve",
        )
        .order_by(events.c.id)
    )
    urls: list[str] = []
    for (evidence,) in rows:
        for item in evidence or []:
            url = item.get("url") if isinstance(item, dict) else item
            content = item.get("content_type", "image/") if isinstance(item, dict) else "image/"
            if isinstance(url, str) and url.startswith("/media/") and str(content).startswith("image/"):
                urls.append(url)
    return urls


def _public(conn: Connection, code: str) -> dict[str, Any] | None:
    view = public_view(conn, code)
    if view is None:
        return None
    view["photos"] = resolution_photos(conn, code)
    departments = view["departments"]
    if departments:
        table = models.departments
        query = select(table.c.code, table.c.name).where(table.c.code.in_(departments))
        names = {code: name for code, name in conn.execute(query)}
        view["department_names"] = [names.get(d, d) for d in departments]
    else:
        view["department_names"] = []
    return view


async def track_form(request: web.Request) -> web.StreamResponse:
    typed = request.query.get("kode", "").strip()[:40]
    if typed:
        code = normalize(typed)
        if code is not None:
            raise web.HTTPFound(f"/lacak/{code}")
        return render(request, "track_form.html", {"typed": typed, "error": "track_no_code"}, status=400)
    return render(request, "track_form.html", {"typed": "", "error": None})


async def track_page(request: web.Request) -> web.StreamResponse:
    typed = request.match_info["code"][:40]
    code = normalize(typed)
    if code is None:
        return render(request, "track_form.html", {"typed": typed, "error": "track_no_code"}, status=404)
    if code != typed:
        raise web.HTTPFound(f"/lacak/{code}")
    view = await common.database(request).run(functools.partial(_public, code=code))
    if view is None:
        return render(request, "track_form.html", {"typed": code, "error": "track_unknown"}, status=404)
    return render(request, "track.html", {"complaint": view})


async def track_photo(request: web.Request) -> web.StreamResponse:
    """A resolution photo for the public page (EXIF was stripped when it was stored)."""
    from gateway.app import CONFIG
    from gateway.media import MediaStore

    code = normalize(request.match_info["code"][:40])
    try:
        index = int(request.match_info["index"])
    except ValueError:
        raise web.HTTPNotFound() from None
    if code is None:
        raise web.HTTPNotFound()
    photos = await common.database(request).run(functools.partial(resolution_photos, code=code))
    if not 0 <= index < len(photos):
        raise web.HTTPNotFound()
    media = request.app[CONFIG].media
    path = MediaStore(media.directory, media.max_bytes).path_for(photos[index])
    if path is None or not await asyncio.to_thread(path.is_file):
        raise web.HTTPNotFound()
    response = web.FileResponse(path)
    response.headers.update({"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"})
    return response
