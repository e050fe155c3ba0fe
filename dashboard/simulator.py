"""The simulator page: a phone in the browser that talks to the gateway through the simulator channel."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import literal, select, union_all

from adapters.base import Address, Medium, WebhookRejected
from adapters.web.simulator import CHANNEL, SimulatorAdapter
from gateway.addressbook import AddressBook
from store import models

STATIC = Path(__file__).parent / "static"
MEDIA_TYPES = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}
MAX_PHOTO = 10 * 1024 * 1024
HISTORY = 200
IDLE_RECHECK = 2.0
WOKEN_RECHECK = 0.05
STOPPING = web.AppKey("simulator_stopping", asyncio.Event)


def add_simulator_routes(app: web.Application) -> None:
    app.router.add_get("/simulator", to_page)
    app.router.add_get("/simulator/", page)
    app.router.add_get("/simulator/api/messages", messages)
    app.router.add_post("/simulator/api/media", upload)
    app.router.add_get("/simulator/media/{name}", media)
    app[STOPPING] = asyncio.Event()
    app.on_shutdown.append(_release_long_polls)


async def _release_long_polls(app: web.Application) -> None:
    """Answer open long-polls at shutdown: aiohttp waits for running handlers, and a page holding a
    25-second poll would otherwise hold up every restart by that long."""
    from gateway.app import ADAPTERS

    app[STOPPING].set()
    adapter = app[ADAPTERS].get(CHANNEL)
    if isinstance(adapter, SimulatorAdapter):
        await adapter.close()  # close() only wakes the waiters; the adapter keeps working


async def to_page(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/simulator/")


def _adapter(request: web.Request) -> SimulatorAdapter:
    from gateway.app import ADAPTERS

    adapter = request.app[ADAPTERS][CHANNEL]
    assert isinstance(adapter, SimulatorAdapter)
    return adapter


def _media_dir(request: web.Request) -> Path:
    from gateway.app import CONFIG

    return Path(request.app[CONFIG].media.directory) / "simulator"


async def page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "simulator.html")


async def messages(request: web.Request) -> web.Response:
    """The thread of one simulated user; long-polls up to `wait` seconds when nothing new came."""
    from gateway.app import ENGINE

    adapter = _adapter(request)
    try:
        medium = Medium(request.query.get("medium", "sms"))
        address = adapter.sender_address(medium, request.query.get("from", ""))
        seen = int(request.query.get("seen", "-1"))
        wait = min(25.0, max(0.0, float(request.query.get("wait", "0"))))
    except (ValueError, WebhookRejected) as exc:
        reason = exc.reason if isinstance(exc, WebhookRejected) else "bad query"
        return web.json_response({"error": reason}, status=400)
    engine, stopping = request.app[ENGINE], request.app[STOPPING]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    thread = await _thread(engine, address.kind.value, address.value, _key(request, address))
    step = IDLE_RECHECK
    while len(thread) == seen and not stopping.is_set() and not _gone(request):
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        # The adapter wakes us when it hands a reply over, just *before* the dispatcher marks the
        # outbox row delivered, and a wake can fall between our query and our wait: so after a wake
        # look again soon, and never trust a single wait for the whole long-poll.
        woke = await adapter.wait_for_change(min(remaining, step))
        step = WOKEN_RECHECK if woke else IDLE_RECHECK
        thread = await _thread(engine, address.kind.value, address.value, _key(request, address))
    return web.json_response({"address": str(address), "messages": thread})


def _key(request: web.Request, address: Address) -> str:
    from gateway.app import WORKFLOW

    return AddressBook(request.app[WORKFLOW].settings.vault).key(address.kind.value, address.value)


def _gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def _thread(
    engine: Any, kind: str, address: str, stored_key: str | None = None
) -> list[dict[str, Any]]:
    """The simulated user's messages both ways. `stored_key` is the identity's stored address (a
    keyed hash when contacts are encrypted), which outbox rows carry too."""
    inbound = models.inbound_messages
    outbox = models.outbox
    ident = models.channel_identities
    incoming = (
        select(
            literal("in").label("direction"),
            inbound.c.id,
            inbound.c.text,
            inbound.c.media,
            inbound.c.location,
            inbound.c.received_at.label("at"),
            literal(None).label("status"),
        )
        .join(ident, ident.c.id == inbound.c.identity_id)
        .where(inbound.c.channel == CHANNEL, ident.c.kind == kind, ident.c.address == (stored_key or address))
    )
    outgoing = select(
        literal("out").label("direction"),
        outbox.c.id,
        outbox.c.text,
        outbox.c.media,
        literal(None).label("location"),
        outbox.c.created_at.label("at"),
        outbox.c.status,
    ).where(
        outbox.c.channel == CHANNEL,
        outbox.c.to_kind == kind,
        outbox.c.to_address == (stored_key or address),
        outbox.c.status.in_(["sent", "delivered", "read"]),
    )
    union = union_all(incoming, outgoing).subquery()
    query = select(union).order_by(union.c.at, union.c.direction, union.c.id).limit(HISTORY)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    return [
        {
            "direction": row["direction"],
            "text": row["text"],
            "media": row["media"] or [],
            "location": row["location"],
            "at": row["at"].isoformat() if hasattr(row["at"], "isoformat") else str(row["at"]),
        }
        for row in rows
    ]


async def upload(request: web.Request) -> web.Response:
    """A photo from the simulated phone, stored like evidence so the officer can see it."""
    content_type = request.content_type
    if content_type not in MEDIA_TYPES:
        return web.json_response({"error": "send a JPEG, PNG or WebP image"}, status=415)
    if request.content_length is not None and request.content_length > MAX_PHOTO:
        return web.json_response({"error": "photo larger than 10 MB"}, status=413)
    data = await request.read()
    if len(data) > MAX_PHOTO:
        return web.json_response({"error": "photo larger than 10 MB"}, status=413)
    folder = _media_dir(request)
    folder.mkdir(parents=True, exist_ok=True)
    name = uuid.uuid4().hex + MEDIA_TYPES[content_type]
    await asyncio.to_thread((folder / name).write_bytes, data)
    return web.json_response({"url": f"/simulator/media/{name}", "content_type": content_type})


async def media(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if "/" in name or name.startswith(".") or Path(name).suffix not in MEDIA_TYPES.values():
        raise web.HTTPNotFound()
    path = _media_dir(request) / name
    if not path.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(path)
