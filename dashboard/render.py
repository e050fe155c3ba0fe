"""Jinja2 rendering for the dashboard and tracking pages (autoescaped, templates in dashboard/templates).

Plain Jinja2 rather than aiohttp-jinja2: one small function is all the glue needed, and it keeps the
dependency list short.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
from aiohttp import web

from dashboard import i18n

TEMPLATES = Path(__file__).parent / "templates"

try:
    JAKARTA: timezone | ZoneInfo = ZoneInfo("Asia/Jakarta")
except ZoneInfoNotFoundError:  # a slim container without tzdata; WIB has had no DST since 1964
    JAKARTA = timezone(timedelta(hours=7), "WIB")

_MONTHS = {
    "id": ("Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des"),
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
}

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def jakarta_time(value: datetime | None, lang: str = "id") -> str:
    """`16 Mei 2025 14:05 WIB`: officers and citizens think in local time, the store keeps UTC."""
    if value is None:
        return "—"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    local = value.astimezone(JAKARTA)
    month = _MONTHS.get(lang, _MONTHS["id"])[local.month - 1]
    return f"{local.day} {month} {local.year} {local:%H:%M} WIB"


def category_label(slug: str | None, lang: str) -> str:
    """The category's display name from the conversation's table, or the slug when it is unknown."""
    if not slug:
        return "—"
    try:
        from conversation.categories import BY_SLUG
    except ImportError:
        return slug
    category = BY_SLUG.get(slug)
    return category.name(lang) if category is not None else slug


_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=jinja2.select_autoescape(default=True),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["jakarta"] = jakarta_time


def render(request: web.Request, name: str, context: dict[str, Any], *, status: int = 200) -> web.Response:
    """Render `name` in the request's language; stores the language cookie when it was just chosen."""
    lang, chosen = i18n.request_language(request)
    other = "en" if lang == "id" else "id"
    full = {
        "lang": lang,
        "t": i18n.TEXT[lang],
        "status_label": lambda s: i18n.status_label(s, lang),
        "medium_label": lambda m: i18n.medium_label(m, lang),
        "category_label": lambda c: category_label(c, lang),
        "switch_url": str(request.rel_url.update_query(lang=other)),
        "session": None,
        "csrf": "",
        "unread": 0,
        **context,
    }
    html = _env.get_template(name).render(full)
    response = web.Response(text=html, content_type="text/html", charset="utf-8", status=status)
    response.headers.update(SECURITY_HEADERS)
    response.headers["Cache-Control"] = "no-store"
    if chosen:
        i18n.remember_language(response, lang)
    return response
