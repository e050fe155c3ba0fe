"""`/dashboard/record`: a complaint that reached the city off-line (walk-in, letter, phone call, radio,
e-mail), typed in by a city admin so it joins the same workflow as a WhatsApp or SMS report.

The form is checked field by field before anything is stored, so a mistake comes back as the same
form with the officer's input kept and one clear message per field, and the database is untouched.
Only roles that may SUBMIT a complaint (workflow.access: city admins) see or use it. The citizen's
number goes through `dashboard.intake.record_complaint`, which stores it like every channel's
identity (encrypted, found by keyed hash) and queues the acknowledgement with the tracking code on
the chosen channel; later status messages follow on that channel through the outbox.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from sqlalchemy import update
from sqlalchemy.engine import Connection

from dashboard import common, queries
from dashboard.intake import OFFLINE_MEDIA, NewComplaint, e164, readable, record_complaint
from dashboard.render import render
from store import models
from workflow.access import Action, Forbidden, can
from workflow.lifecycle import TransitionError

REPLY_CHANNELS: Mapping[str, str] = {
    "twilio_sms": "SMS",
    "kannel": "SMS (Kannel)",
    "whatsapp_cloud": "WhatsApp",
    "twilio_whatsapp": "WhatsApp (Twilio)",
    "simulator": "Simulator (demo)",
}
"""Adapters that reach a phone number, in the order offered; only the configured ones are shown."""
NO_CONTACT = "none"
LIMITS = {"description": 4000, "location": 500, "name": 200, "phone": 40}


def add_record_routes(app: web.Application) -> None:
    app.router.add_get("/dashboard/record", record_form)
    app.router.add_post("/dashboard/record", record)


def reply_channels(request: web.Request) -> list[tuple[str, str]]:
    """(adapter, label) for every configured channel that can text a phone number."""
    from gateway.app import ADAPTERS

    configured = request.app[ADAPTERS]
    return [(name, label) for name, label in REPLY_CHANNELS.items() if name in configured]


@dataclass
class Checked:
    """The form as typed (to show it again) and, per field, what is wrong with it."""

    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    complaint: NewComplaint | None = None
    kecamatan: str | None = None
    """The kecamatan the officer chose, stored as the complaint's own (not re-read from the text)."""


def _text(form: Any, name: str) -> str:
    value = form.get(name)
    if not isinstance(value, str):
        return ""
    return value.replace("\x00", "").strip()[: LIMITS.get(name, 100)]


def _coordinate(text: str, low: float, high: float) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if low <= number <= high else None


def check(
    form: Any,
    *,
    channels: Mapping[str, str],
    categories: Mapping[str, str],
    kecamatan: frozenset[str],
    region: str,
) -> Checked:
    """Every field of the record form, validated; `complaint` is set only when nothing is wrong."""
    from conversation.places import kecamatan_of

    names = ("medium", "description", "location", "category", "kecamatan", "reply_by", "phone", "name",
             "language", "latitude", "longitude")
    values = {name: _text(form, name) for name in names}
    errors: dict[str, str] = {}
    medium = values["medium"]
    if medium not in OFFLINE_MEDIA:
        errors["medium"] = "err_medium"
    if not readable(values["description"]):
        errors["description"] = "err_description"
    if not values["location"]:
        errors["location"] = "err_location"
    if values["category"] and values["category"] not in categories:
        errors["category"] = "err_category"
    if values["kecamatan"] and values["kecamatan"] not in kecamatan:
        errors["kecamatan"] = "err_kecamatan"
    language = values["language"] or "id"
    if language not in ("id", "en"):
        errors["language"] = "err_language"
    reply_by = values["reply_by"] or NO_CONTACT
    phone: str | None = None
    if reply_by != NO_CONTACT and reply_by not in channels:
        errors["reply_by"] = "err_reply_by"
    elif reply_by != NO_CONTACT and not values["phone"]:
        errors["phone"] = "err_phone_missing"
    elif values["phone"] and reply_by == NO_CONTACT:
        errors["reply_by"] = "err_reply_by_missing"
    elif values["phone"]:
        try:
            phone = e164(values["phone"], region)
        except TransitionError:
            errors["phone"] = "err_phone"
        else:
            if _landline(phone):
                errors["phone"] = "err_phone_landline"
    latitude = longitude = None
    if values["latitude"] or values["longitude"]:
        latitude = _coordinate(values["latitude"], -90, 90)
        longitude = _coordinate(values["longitude"], -180, 180)
        if latitude is None or longitude is None:
            errors["latitude"] = "err_coordinates"
    if errors:
        return Checked(values, errors)
    place = values["location"]
    chosen = values["kecamatan"]
    if chosen and kecamatan_of(place) != chosen:
        place = f"{place}, Kec. {chosen}"  # so whoever reads the place (a department, Open311) sees it
    new = NewComplaint(
        medium=medium,
        description=values["description"],
        channel=reply_by if phone is not None else None,
        phone=phone,
        name=values["name"] or None,
        category=values["category"] or None,
        location_text=place,
        latitude=latitude,
        longitude=longitude,
        language=language,
        region=region,
    )
    return Checked(values, errors, new, chosen or None)


def record_with_kecamatan(conn: Connection, *, kecamatan: str | None, **recording: Any) -> str:
    """`record_complaint`, then the officer's kecamatan over the one read from the text, in the same
    transaction (a place naming another kecamatan first would otherwise win)."""
    code = record_complaint(conn, **recording)
    if kecamatan:
        complaints = models.complaints
        conn.execute(update(complaints).where(complaints.c.tracking_code == code).values(kecamatan=kecamatan))
    return code


def _landline(number: str) -> bool:
    """A fixed line cannot receive SMS or WhatsApp: the citizen would never hear from us."""
    import phonenumbers

    kind = phonenumbers.number_type(phonenumbers.parse(number))
    return bool(kind == phonenumbers.PhoneNumberType.FIXED_LINE)


def _kecamatan() -> list[str]:
    from conversation.places import KECAMATAN

    return sorted(KECAMATAN)


async def _page(
    request: web.Request,
    session: Any,
    *,
    checked: Checked | None = None,
    message: str | None = None,
    status: int = 200,
) -> web.Response:
    from dashboard.officer import unread_count

    engine = common.engine(request)
    allowed = can(common.actor(session), Action.SUBMIT)
    return render(
        request,
        "record.html",
        {
            "session": session,
            "csrf": common.csrf(request, session),
            "allowed": allowed,
            "message": message,
            "values": checked.values if checked else {"reply_by": NO_CONTACT, "language": "id"},
            "errors": checked.errors if checked else {},
            "media": list(OFFLINE_MEDIA),
            "channels": reply_channels(request),
            "choices": await queries.choices(engine),
            "kecamatan": _kecamatan(),
            "unread": await unread_count(request, session.user_id),
        },
        status=status,
    )


async def record_form(request: web.Request) -> web.StreamResponse:
    session = common.require(request)
    if not can(common.actor(session), Action.SUBMIT):
        return await _page(request, session, message="record_forbidden", status=403)
    return await _page(request, session)


async def record(request: web.Request) -> web.StreamResponse:
    from dashboard.live import notify_change
    from dashboard.officer import read_form, store_photo
    from gateway.app import CONFIG, DISPATCHER, WORKFLOW
    from gateway.media import MediaRejected

    session = common.require(request)
    form = await read_form(request)
    common.check_csrf(request, session, form)
    actor = common.actor(session)
    if not can(actor, Action.SUBMIT):
        return await _page(request, session, message="record_forbidden", status=403)
    choices = await queries.choices(common.engine(request))
    checked = check(
        form,
        channels=dict(reply_channels(request)),
        categories=dict(choices["categories"]),
        kecamatan=frozenset(_kecamatan()),
        region=request.app[CONFIG].intake.default_region,
    )
    if checked.complaint is None:
        return await _page(request, session, checked=checked, status=400)
    new = checked.complaint
    upload: Any = form.get("photo")
    if isinstance(upload, web.FileField) and upload.filename:
        try:
            photo = await store_photo(request, upload)
        except (MediaRejected, TransitionError) as exc:
            checked.errors["photo"] = "err_photo"
            checked.values["photo_reason"] = str(exc)
            return await _page(request, session, checked=checked, status=400)
        new = dataclasses.replace(new, media=(photo,))
        gps = photo.get("gps")
        if new.latitude is None and isinstance(gps, dict):  # the photo knows where it was taken
            new = dataclasses.replace(new, latitude=gps["latitude"], longitude=gps["longitude"])
    workflow = request.app[WORKFLOW]
    try:
        code = await common.database(request).run(
            functools.partial(
                record_with_kecamatan,
                kecamatan=checked.kecamatan,
                new=new,
                actor=actor,
                settings=workflow.settings,
                now=common.now(request),
            )
        )
    except Forbidden:
        return await _page(request, session, message="record_forbidden", status=403)
    except TransitionError as exc:
        checked.values["problem"] = str(exc)
        return await _page(request, session, checked=checked, message="record_failed", status=400)
    request.app[DISPATCHER].wake()
    notify_change(request.app)
    raise web.HTTPSeeOther(f"/dashboard/complaints/{code}?recorded=1")
