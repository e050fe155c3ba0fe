"""Open311 GeoReport v2 at /open311/v2/: the city's complaints for apps, SP4N-LAPOR! and the province.

Everything served is public (as on the tracking page): no reporter, redacted text, nothing of a
confidential complaint beyond category, status and dates, and points rounded to about 10 m.
Responses are JSON or XML by the path's extension, errors are the spec's `[{code, description}]`.
Statuses are the spec's `open`/`closed`; with `extensions=true` a request also carries
`extended_attributes.status` as FixMyStreet publishes it (investigating, action scheduled, fixed...),
so "fixed" and "closed without a fix" stay apart for clients that care.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from aiohttp import web
from sqlalchemy import String, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from dashboard import common
from dashboard.intake import NewComplaint, record_complaint
from store import models
from workflow.access import Actor
from workflow.lifecycle import TransitionError
from workflow.privacy import redact

BASE = "/open311/v2"
FORMATS = {"json": "application/json", "xml": "text/xml"}
CLOSED = frozenset({"resolved", "closed", "rejected", "duplicate"})
EXTENDED_STATUS = {
    "submitted": "open",
    "verified": "investigating",
    "forwarded": "action scheduled",
    "in_progress": "in progress",
    "reopened": "open",
    "resolved": "fixed",
    "rejected": "not councils responsibility",
    "duplicate": "duplicate",
}
"""Our statuses as FixMyStreet's Open311 extension names them; `closed` depends on the fix."""
MAX_RESULTS = 1000
MAX_BODY = 64 * 1024
"""Largest POST body: a service request is a short form (photos come as `media_url`), so far less
than the app-wide 12 MiB that dashboard photo uploads need. More is refused with an Open311 413."""
DEFAULT_WINDOW = timedelta(days=90)
OPENAPI = Path(__file__).parent / "static" / "open311-openapi.json"
VISIBLE = (
    r"[^\u0000-\u0020\u007f-\u00a0\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u1680\u180e"
    r"\u2000-\u200f\u2028-\u202f\u205f-\u2064\u2066-\u206f\u3000\ufeff\ufff9-\ufffb]"
)
"""One character someone can read: not whitespace (what `str.strip` removes), not a control or
format character (Unicode Cc and Cf: NUL, U+001C..U+001F, zero-width space, BOM, bidi marks...).
A description or address made only of those says nothing, so it is refused, and the OpenAPI
document serves this same pattern: clients and fuzzers are told exactly what is accepted. Only
characters of the BMP are listed, as `\\uXXXX` escapes, which ECMA-262, Python and Rust regexes read
alike (an ECMA regex without the u flag sees a character past the BMP as two surrogates: outside
the class too, so visible everywhere)."""
_VISIBLE = re.compile(VISIBLE)


def add_open311_routes(app: web.Application) -> None:
    router = app.router
    router.add_get(f"{BASE}/discovery.{{fmt}}", discovery)
    router.add_get(f"{BASE}/services.{{fmt}}", services)
    router.add_get(f"{BASE}/services/{{code}}.{{fmt}}", service_definition)
    router.add_get(f"{BASE}/requests.{{fmt}}", list_requests)
    router.add_post(f"{BASE}/requests.{{fmt}}", create_request)
    router.add_get(f"{BASE}/requests/{{id}}.{{fmt}}", get_request)
    router.add_get(f"{BASE}/tokens/{{token}}.{{fmt}}", get_token)
    router.add_get(f"{BASE}/openapi.json", openapi)


class Open311Error(Exception):
    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


# ---- formats ----------------------------------------------------------------------------------


def _fmt(request: web.Request) -> str:
    fmt = request.match_info.get("fmt", "json")
    if fmt not in FORMATS:
        raise web.HTTPNotFound(text=f"format {fmt!r}: use .json or .xml")
    return fmt


def _xml_value(parent: ET.Element, key: str, value: Any) -> None:
    node = ET.SubElement(parent, key)
    if isinstance(value, Mapping):
        for k, v in value.items():
            _xml_value(node, k, v)
    elif isinstance(value, list | tuple):
        singular = key[:-1] if key.endswith("s") else "item"
        for item in value:
            _xml_value(node, singular, item)
    elif isinstance(value, bool):
        node.text = "true" if value else "false"
    elif value is not None:
        node.text = str(value)


def to_xml(root: str, item: str, rows: Sequence[Mapping[str, Any]]) -> str:
    """The spec's XML: `<service_requests><request>...</request></service_requests>` and so on."""
    top = ET.Element(root)
    for row in rows:
        node = ET.SubElement(top, item)
        for key, value in row.items():
            _xml_value(node, key, value)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(top, encoding="unicode")


def respond(fmt: str, root: str, item: str, rows: Any, status: int = 200) -> web.Response:
    if fmt == "xml":
        body = to_xml(root, item, rows if isinstance(rows, list) else [rows])
        return web.Response(text=body, content_type="text/xml", charset="utf-8", status=status)
    return _json_response(json.dumps(rows, ensure_ascii=False), status)


def _json_response(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, content_type="application/json", status=status)


def error(fmt: str, status: int, description: str) -> web.Response:
    return respond(fmt, "errors", "error", [{"code": status, "description": description}], status)


def _guarded(handler: Any) -> Any:
    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        fmt = _fmt(request)
        try:
            result: web.StreamResponse = await handler(request, fmt)
        except Open311Error as exc:
            response = error(fmt, exc.status, exc.description)
            if exc.status == 413:
                response.force_close()  # the rest of the body is not worth reading to keep the connection
            return response
        return result

    return wrapper


# ---- discovery and services -------------------------------------------------------------------


@_guarded
async def discovery(request: web.Request, fmt: str) -> web.Response:
    from gateway.app import CONFIG

    url = request.app[CONFIG].public_url + BASE + "/"
    body: dict[str, Any] = {
        "changeset": "2025-01-01T00:00:00Z",
        "contact": "Lapor Semarang, Pemerintah Kota Semarang",
        "key_service": "Ask the city's complaint team for an API key",
        "endpoints": [
            {
                "specification": "http://wiki.open311.org/GeoReport_v2",
                "url": url,
                "changeset": "2025-01-01T00:00:00Z",
                "type": "production",
                "formats": ["application/json", "text/xml"],
            }
        ],
    }
    if fmt == "xml":
        top = ET.Element("discovery")
        for key in ("changeset", "contact", "key_service"):
            ET.SubElement(top, key).text = str(body[key])
        endpoints = ET.SubElement(top, "endpoints")
        endpoint = ET.SubElement(endpoints, "endpoint")
        for key, value in body["endpoints"][0].items():
            if key == "formats":
                formats = ET.SubElement(endpoint, "formats")
                for f in value:
                    ET.SubElement(formats, "format").text = f
            else:
                ET.SubElement(endpoint, key).text = value
        text = '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(top, encoding="unicode")
        return web.Response(text=text, content_type="text/xml", charset="utf-8")
    return web.json_response(body)


def _services(conn: Connection) -> list[dict[str, Any]]:
    cats, deps = models.categories, models.departments
    rows = conn.execute(
        select(cats.c.slug, cats.c.name_id, cats.c.name_en, deps.c.name.label("department"))
        .outerjoin(deps, deps.c.code == cats.c.department)
        .where(cats.c.active.is_(True))
        .order_by(cats.c.slug)
    )
    return [
        {
            "service_code": r.slug,
            "service_name": r.name_id,
            "description": r.name_en or r.name_id,
            "metadata": False,
            "type": "realtime",
            "keywords": r.slug.replace("_", ","),
            "group": r.department or "",
        }
        for r in rows
    ]


@_guarded
async def services(request: web.Request, fmt: str) -> web.Response:
    rows = await common.database(request).run(_services)
    return respond(fmt, "services", "service", rows)


@_guarded
async def service_definition(request: web.Request, fmt: str) -> web.Response:
    code = request.match_info["code"]
    rows = await common.database(request).run(_services)
    if not any(r["service_code"] == code for r in rows):
        raise Open311Error(404, f"service_code {code} not found")
    return respond(fmt, "service_definition", "service_definition", {"service_code": code, "attributes": []})


# ---- requests ----------------------------------------------------------------------------------


class utc_text(FunctionElement[str]):
    """A timestamp column as GeoReport v2's text, made by the database: "2026-11-20T00:30:15Z" (UTC,
    seconds cut), what `datetime.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")` gives for the stored
    value. A 1,000-request answer has 3,000 of them: decoding each into a datetime, converting it
    through the column type and formatting it cost a third of the answer's Python time."""

    type = String()
    inherit_cache = True
    name = "utc_text"


@compiles(utc_text, "postgresql")
def _utc_text_postgresql(element: utc_text, compiler: Any, **kw: Any) -> str:
    # FM: the year without padding, as glibc's %Y writes it; the other fields are padded as strftime pads.
    column = compiler.process(element.clauses, **kw)
    return f"""to_char({column} AT TIME ZONE 'UTC', 'FMYYYY-MM-DD"T"HH24:MI:SS"Z"')"""


@compiles(utc_text, "sqlite")
def _utc_text_sqlite(element: utc_text, compiler: Any, **kw: Any) -> str:
    # Stored as UTC text, "2026-11-20 00:30:15.999999" (store.models.UTCDateTime): cut, not parsed.
    column = compiler.process(element.clauses, **kw)
    return f"substr({column}, 1, 10) || 'T' || substr({column}, 12, 8) || 'Z'"


def extended_status(status: str, resolved: bool) -> str:
    if status == "closed":
        return "fixed" if resolved else "closed"
    return EXTENDED_STATUS.get(status, "open")


def _request_columns() -> tuple[Any, ...]:
    """What a request's representation reads, as plain values in `_requests`'s order: the timestamps
    as text, whether it was resolved, and its newest public note (one index probe per row, in the
    same query: one query per row made a 1,000-request answer take half a second at a million
    complaints, and a second query with 1,000 bound ids cost 5 ms to compile)."""
    table, events = models.complaints, models.status_events
    newest_note = (
        select(events.c.note)
        .where(events.c.complaint_id == table.c.id, events.c.public.is_(True), events.c.note.is_not(None))
        .order_by(events.c.id.desc())
        .limit(1)
        .correlate(table)
        .scalar_subquery()
    )
    return (
        table.c.tracking_code, table.c.status, table.c.confidential, table.c.category, table.c.description,
        table.c.department, utc_text(table.c.created_at), utc_text(table.c.updated_at),
        utc_text(table.c.due_at), table.c.resolved_at.is_not(None), table.c.location_text,
        table.c.latitude, table.c.longitude, table.c.origin_medium, newest_note,
    )  # fmt: skip


_string = json.encoder.encode_basestring  # what json.dumps(..., ensure_ascii=False) quotes strings with


def _text(value: str | None) -> str:
    return "null" if value is None else _string(value)


def _number(value: float | None) -> str:
    if value is None:
        return "null"
    rounded = round(value, 4)
    return repr(rounded) if rounded - rounded == 0 else json.dumps(rounded)  # NaN and infinities


def requests_json(rows: Iterable[Sequence[Any]], names: Mapping[str, str], extensions: bool) -> str:
    """The spec's JSON list of requests for rows of `_request_columns()`. Only the citizen's and
    officers' texts can hold personal data, so only they are redacted; a confidential request shows
    none of them (and no point)."""
    answer = []
    for (
        code, status, confidential, category, description, department, requested, updated, expected,
        resolved, place, latitude, longitude, medium, note,
    ) in rows:  # fmt: skip
        service = category or ""
        if confidential:
            notes = text = address = lat = lon = "null"
        else:
            notes = _string(redact(note)) if note else "null"
            text = _text(None if description is None else redact(description))
            address = _string(redact(place)) if place else "null"
            lat, lon = _number(latitude), _number(longitude)
        extended = (
            f', "extended_attributes": {{"status": {_string(extended_status(status, resolved))}, '
            f'"channel": {_text(medium)}}}'
            if extensions
            else ""
        )
        # json.dumps(..., ensure_ascii=False) of the spec's representation, keys in the spec's order,
        # written out: a third of the time of building 1,000 dicts and encoding them
        # (tests/open311/test_list_json.py holds the two equal).
        answer.append(
            f'{{"service_request_id": {_text(code)}, "status": "{"closed" if status in CLOSED else "open"}", '
            f'"status_notes": {notes}, "service_name": {_string(names.get(service, service))}, '
            f'"service_code": {_string(service)}, "description": {text}, '
            f'"agency_responsible": {_string(department or "")}, "service_notice": "", '
            f'"requested_datetime": {_text(requested)}, "updated_datetime": {_text(updated)}, '
            f'"expected_datetime": {_text(expected)}, "address": {address}, "address_id": "", '
            f'"zipcode": "", "lat": {lat}, "long": {lon}, "media_url": ""{extended}}}'
        )
    return "[" + ", ".join(answer) + "]"


def _names(conn: Connection) -> dict[str, str]:
    cats = models.categories
    return {slug: name for slug, name in conn.execute(select(cats.c.slug, cats.c.name_id))}


def _parse_time(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Open311Error(400, f"{name} must be a W3C date-time, e.g. 2025-05-01T00:00:00Z") from None
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # within a day of year 1 or 9999 with an offset: before or after everything
        return datetime.min.replace(tzinfo=UTC) if parsed.year == 1 else datetime.max.replace(tzinfo=UTC)


def query_requests(conn: Connection, params: Mapping[str, str], now: datetime) -> str:
    """GET requests: by ids, or by service_code/status/date window (default: the last 90 days), as
    the spec's JSON list."""
    table = models.complaints
    query = select(*_request_columns()).where(table.c.status != "draft")
    extensions = params.get("extensions", "").lower() == "true"
    ids = [i.strip().upper() for i in params.get("service_request_id", "").split(",") if i.strip()]
    if ids:
        query = query.where(table.c.tracking_code.in_(ids[:MAX_RESULTS]))
    else:
        start = _parse_time(params.get("start_date"), "start_date")
        end = _parse_time(params.get("end_date"), "end_date")
        if start is None and end is None:
            start = now - DEFAULT_WINDOW
        if start is not None:
            query = query.where(table.c.created_at >= start)
        if end is not None:
            query = query.where(table.c.created_at <= end)
        codes = [c.strip() for c in params.get("service_code", "").split(",") if c.strip()]
        if codes:
            query = query.where(table.c.category.in_(codes))
        statuses = {s.strip().lower() for s in params.get("status", "").split(",") if s.strip()}
        if statuses - {"open", "closed"}:
            raise Open311Error(400, "status must be open, closed or both")
        if statuses == {"open"}:
            query = query.where(table.c.status.not_in(CLOSED))
        elif statuses == {"closed"}:
            query = query.where(table.c.status.in_(CLOSED))
    rows = conn.execute(query.order_by(table.c.created_at.desc(), table.c.id.desc()).limit(MAX_RESULTS)).all()
    return requests_json(rows, _names(conn), extensions)


def _requests_response(fmt: str, listed: str) -> web.Response:
    """A list of requests as JSON text goes out as it is; XML is made from the same values."""
    if fmt == "json":
        return _json_response(listed)
    return respond(fmt, "service_requests", "request", json.loads(listed))


def _query_params(request: web.Request) -> dict[str, str]:
    return {k: v for k, v in request.query.items()}


@_guarded
async def list_requests(request: web.Request, fmt: str) -> web.Response:
    params, now = _query_params(request), common.now(request)
    listed = await common.database(request).run(functools.partial(query_requests, params=params, now=now))
    return _requests_response(fmt, listed)


@_guarded
async def get_request(request: web.Request, fmt: str) -> web.Response:
    params = {**_query_params(request), "service_request_id": request.match_info["id"]}
    now = common.now(request)
    listed = await common.database(request).run(functools.partial(query_requests, params=params, now=now))
    if listed == "[]":
        raise Open311Error(404, f"service_request_id {request.match_info['id']} not found")
    return _requests_response(fmt, listed)


@_guarded
async def get_token(request: web.Request, fmt: str) -> web.Response:
    """Requests are created synchronously, so the token is the request id itself."""
    token = request.match_info["token"].upper()
    table = models.complaints

    def find(conn: Connection) -> Any:
        return conn.execute(select(table.c.id).where(table.c.tracking_code == token)).first()

    if await common.database(request).run(find) is None:
        raise Open311Error(404, f"token {token} not found")
    return respond(fmt, "service_requests", "request", [{"service_request_id": token, "token": token}])


def client_for(api_keys: Sequence[str], given: str) -> str | None:
    """The client name for an API key (`name=key` entries; a bare key is client `open311`)."""
    for entry in api_keys:
        name, _, key = entry.rpartition("=")
        if key and hmac.compare_digest(key.encode(), given.encode()):
            return name or "open311"
    return None


def _float(form: Mapping[str, Any], name: str, low: float, high: float) -> float | None:
    value = form.get(name)
    if value in (None, ""):
        return None
    try:
        number = float(str(value))
    except ValueError:
        raise Open311Error(400, f"{name} must be a number") from None
    if not low <= number <= high:
        raise Open311Error(400, f"{name} is out of range")
    return number


@_guarded
async def create_request(request: web.Request, fmt: str) -> web.Response:
    from gateway.app import CONFIG, WORKFLOW

    config = request.app[CONFIG].open311
    too_large = f"the request body is over the {MAX_BODY}-byte limit"
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise Open311Error(413, too_large)  # refused before reading a byte of it
    # PostgreSQL text cannot hold NUL; a client sending one gets it dropped, not a 500.
    try:
        # A chunked body has no Content-Length: the limit then stops the read once it is passed.
        posted = await request.clone(client_max_size=MAX_BODY).post()
    except web.HTTPRequestEntityTooLarge:
        raise Open311Error(413, too_large) from None
    except (UnicodeDecodeError, ValueError):
        raise Open311Error(400, "body is not a readable form") from None
    form = {k: (v.replace("\x00", "") if isinstance(v, str) else v) for k, v in posted.items()}
    client = client_for(config.api_keys, str(form.get("api_key") or ""))
    if client is None:
        raise Open311Error(403, "api_key is missing or not valid")
    service_code = str(form.get("service_code") or "")
    if not service_code:
        raise Open311Error(400, "service_code is required")
    lat = _float(form, "lat", -90, 90)
    lon = _float(form, "long", -180, 180)
    place = str(form.get("address_string") or "").strip()[:500]
    address = place if _VISIBLE.search(place) else None
    if (lat is None or lon is None) and address is None:
        raise Open311Error(400, "a location is required: lat and long, or address_string")
    description = str(form.get("description") or "").strip()[:4000]
    if not _VISIBLE.search(description):
        raise Open311Error(400, "description is required: something to read, not only spaces or controls")
    phone = str(form.get("phone") or "").strip() or None
    name = " ".join(str(form.get(k) or "").strip() for k in ("first_name", "last_name")).strip() or None
    media_url = str(form.get("media_url") or "").strip()
    new = NewComplaint(
        medium="open311",
        description=description,
        channel=config.notify_channel or None,
        phone=phone if config.notify_channel else None,
        name=name,
        category=service_code,
        location_text=address,
        latitude=lat,
        longitude=lon,
        media=({"url": media_url, "source": "open311"},) if media_url.startswith("https://") else (),
    )
    workflow = request.app[WORKFLOW]
    actor = Actor(f"open311:{client}"[:64], "system")
    try:
        code = await common.database(request).run(
            functools.partial(
                record_complaint, new=new, actor=actor, settings=workflow.settings, now=common.now(request)
            )
        )
    except TransitionError as exc:
        raise Open311Error(400, str(exc)) from None
    workflow_wake = getattr(workflow, "_on_committed", None)
    if phone and workflow_wake is not None:
        workflow_wake()
    return respond(
        fmt,
        "service_requests",
        "request",
        [{"service_request_id": code, "service_notice": "", "account_id": None}],
    )


async def openapi(request: web.Request) -> web.StreamResponse:
    """The OpenAPI document, with today's service codes as the enum a client may send."""
    document = json.loads(await asyncio.to_thread(OPENAPI.read_text, encoding="utf-8"))
    codes = [s["service_code"] for s in await common.database(request).run(_services)]
    form = document["paths"]["/requests.{fmt}"]["post"]["requestBody"]["content"]
    fields = form["application/x-www-form-urlencoded"]["schema"]["properties"]
    fields["service_code"]["enum"] = codes
    for name in ("description", "address_string"):
        fields[name]["pattern"] = VISIBLE  # what create_request checks, whatever the file says
    return web.json_response(document)
