"""The (still thin) officer dashboard and the public tracking page `/lacak/<code>`.

Server-rendered HTML on purpose: officers work on old office PCs and citizens open the tracking link
from an SMS on a cheap phone, so the pages must work without JavaScript and load in one request.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from dashboard import auth
from dashboard.live import add_live_routes
from dashboard.officer import add_officer_routes
from dashboard.opendata import add_open_data_routes
from dashboard.profile import add_profile_routes
from dashboard.render import render
from dashboard.tracking import track_form, track_page, track_photo

STATIC = Path(__file__).parent / "static"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_FORM = 4096


def add_dashboard_routes(app: web.Application) -> None:
    from gateway.app import CONFIG

    app[auth.SECRET] = auth.app_secret(app[CONFIG].dashboard.session_secret.reveal())
    router = app.router
    router.add_get("/dashboard", _redirect("/dashboard/"))
    router.add_get("/dashboard/login", login_form)
    router.add_post("/dashboard/login", login)
    router.add_get("/dashboard/logout", _redirect("/dashboard/"))
    router.add_post("/dashboard/logout", logout)
    router.add_get("/media/{folder}/{name}", evidence)
    router.add_get("/lacak", _redirect("/lacak/"))
    router.add_get("/lacak/", track_form)
    router.add_get("/lacak/{code}", track_page)
    router.add_get("/lacak/{code}/foto/{index}", track_photo)
    router.add_static("/dashboard/static/", STATIC, append_version=False)
    add_officer_routes(app)
    add_live_routes(app)
    add_open_data_routes(app)
    add_profile_routes(app)
    if app[CONFIG].open311.enabled:
        from dashboard.open311 import add_open311_routes

        add_open311_routes(app)


def _redirect(location: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(location)

    return handler


def _now(request: web.Request) -> datetime:
    from gateway.app import CLOCK

    now: datetime = request.app[CLOCK]()
    return now


def _engine(request: web.Request) -> Any:
    from gateway.app import ENGINE

    return request.app[ENGINE]


def _secure(request: web.Request) -> bool:
    from gateway.app import CONFIG

    return request.secure or request.app[CONFIG].public_url.startswith("https://")


def _session(request: web.Request) -> auth.Session | None:
    cookie = request.cookies.get(auth.SESSION_COOKIE)
    return auth.read_session(request.app[auth.SECRET], cookie, _now(request))


def _require(request: web.Request) -> auth.Session:
    session = _session(request)
    if session is None:
        raise web.HTTPFound("/dashboard/login")
    return session


# ---- sign in / out --------------------------------------------------------------------------


def _login_page(request: web.Request, *, error: str | None = None, status: int = 200) -> web.Response:
    nonce = request.cookies.get(auth.CSRF_COOKIE) or secrets.token_urlsafe(18)
    token = auth.csrf_token(request.app[auth.SECRET], nonce)
    response = render(request, "login.html", {"csrf": token, "error": error, "session": None}, status=status)
    response.set_cookie(
        auth.CSRF_COOKIE, nonce, httponly=True, samesite="Strict", secure=_secure(request), path="/dashboard/"
    )
    return response


async def login_form(request: web.Request) -> web.StreamResponse:
    if _session(request) is not None:
        raise web.HTTPFound("/dashboard/")
    return _login_page(request)


async def _form(request: web.Request) -> Any:
    if request.content_length is not None and request.content_length > MAX_FORM:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_FORM, actual_size=request.content_length)
    return await request.post()


async def login(request: web.Request) -> web.StreamResponse:
    form = await _form(request)
    secret = request.app[auth.SECRET]
    nonce = request.cookies.get(auth.CSRF_COOKIE)
    if not auth.check_csrf(secret, nonce, form.get("csrf")):
        return _login_page(request, error="csrf_failed", status=403)
    assert nonce is not None
    username, password = form.get("username"), form.get("password")
    if not isinstance(username, str) or not isinstance(password, str) or not username or not password:
        return _login_page(request, error="login_failed", status=401)
    result = await auth.attempt_login(
        _engine(request), username[:64], password[:256], now=_now(request), csrf_nonce=nonce
    )
    if result.locked:
        return _login_page(request, error="login_locked", status=429)
    if result.session is None:
        return _login_page(request, error="login_failed", status=401)
    response = web.HTTPFound("/dashboard/")
    response.set_cookie(
        auth.SESSION_COOKIE,
        auth.sign_session(secret, result.session),
        max_age=int(auth.SESSION_TTL.total_seconds()),
        httponly=True,
        samesite="Lax",
        secure=_secure(request),
        path="/",
    )
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    session = _session(request)
    form = await _form(request)
    if session is not None and not auth.check_csrf(request.app[auth.SECRET], session.csrf, form.get("csrf")):
        raise web.HTTPForbidden(text="CSRF token missing or wrong")
    response = web.HTTPFound("/dashboard/login")
    response.del_cookie(auth.SESSION_COOKIE, path="/")
    raise response


async def evidence(request: web.Request) -> web.StreamResponse:
    """A stored photo or document, for signed-in staff only: evidence can show faces, plates, homes."""
    from gateway.app import CONFIG
    from gateway.media import LOCAL_PREFIX, MediaStore

    if _session(request) is None:
        raise web.HTTPForbidden(text="sign in to see evidence")
    media = request.app[CONFIG].media
    url = f"{LOCAL_PREFIX}{request.match_info['folder']}/{request.match_info['name']}"
    path = MediaStore(media.directory, media.max_bytes).path_for(url)
    if path is None or not await asyncio.to_thread(path.is_file):
        raise web.HTTPNotFound()
    response = web.FileResponse(path)
    response.headers.update({"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"})
    return response


