"""Request helpers every dashboard handler shares: the app's clock and engine, the signed-in officer.

Kept apart from the handlers so the officer pages, the tracking page, Open311 and open data all read
sessions and time the same way (one clock: tests move it, deadlines follow).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from dashboard import auth
from workflow.access import Actor

MAX_FORM = 4096


def now(request: web.Request) -> datetime:
    from gateway.app import CLOCK

    moment: datetime = request.app[CLOCK]()
    return moment


def engine(request: web.Request) -> Any:
    from gateway.app import ENGINE

    return request.app[ENGINE]


def database(request: web.Request) -> Any:
    from gateway.app import DATABASE

    return request.app[DATABASE]


def secure(request: web.Request) -> bool:
    from gateway.app import CONFIG

    return request.secure or request.app[CONFIG].public_url.startswith("https://")


def session(request: web.Request) -> auth.Session | None:
    cookie = request.cookies.get(auth.SESSION_COOKIE)
    return auth.read_session(request.app[auth.SECRET], cookie, now(request))


def require(request: web.Request) -> auth.Session:
    """The signed-in officer, or a redirect to the login form."""
    current = session(request)
    if current is None:
        raise web.HTTPFound("/dashboard/login")
    return current


def actor(current: auth.Session) -> Actor:
    return Actor(current.username, current.role, current.department)


def csrf(request: web.Request, current: auth.Session) -> str:
    return auth.csrf_token(request.app[auth.SECRET], current.csrf)


def check_csrf(request: web.Request, current: auth.Session, form: Any) -> None:
    """Every state-changing form carries the token derived from the session's nonce."""
    if not auth.check_csrf(request.app[auth.SECRET], current.csrf, form.get("csrf")):
        raise web.HTTPForbidden(text="CSRF token missing or wrong")
