"""`create_app(config)`: the whole gateway as one aiohttp application.

Resources (engine, adapters, ingest writers, outbox dispatcher, timers) are opened and closed by
`cleanup_ctx` in dependency order, so a test can run the real app in-process and a shutdown finishes
owed work before closing the database.
"""

from __future__ import annotations

import itertools
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from adapters.base import ChannelAdapter
from adapters.registry import build_adapters
from conversation import api as conv
from dashboard.queries import VERIFYING, complaints, overdue_condition
from gateway.addressbook import AddressBook
from gateway.config import Config
from gateway.effects import Stepper
from gateway.logs import REQUEST_ID
from gateway.media import MediaFetcher, MediaStore
from gateway.metrics import Metrics
from gateway.outbox import Dispatcher
from gateway.pipeline import Ingestor
from gateway.ratelimit import SenderLimiter
from gateway.timers import ConversationTimers
from gateway.upstream import UpstreamForwarder
from gateway.webhooks import mount
from store import models
from store.db import Database, make_sessionmaker
from store.migrate import current_revision, head_revision, upgrade
from store.models import OutboxStatus
from workflow.escalation import Escalator
from workflow.feedback import answer_in
from workflow.lifecycle import Workflow
from workflow.setup import settings_from_config

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

CONFIG = web.AppKey("config", Config)
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
DATABASE = web.AppKey("database", Database)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONS = web.AppKey("sessions", async_sessionmaker[AsyncSession])
ADAPTERS: web.AppKey[dict[str, ChannelAdapter]] = web.AppKey("adapters")
INGESTOR = web.AppKey("ingestor", Ingestor)
DISPATCHER = web.AppKey("dispatcher", Dispatcher)
TIMERS = web.AppKey("timers", ConversationTimers)
MEDIA_FETCHER = web.AppKey("media_fetcher", MediaFetcher)
METRICS = web.AppKey("metrics", Metrics)
WORKFLOW = web.AppKey("workflow", Workflow)
ESCALATOR = web.AppKey("escalator", Escalator)
UPSTREAM: web.AppKey[UpstreamForwarder] = web.AppKey("upstream")
"""Present only when `[open311_upstream]` is configured."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


def handler_options(config: Config) -> dict[str, Any]:
    """aiohttp's per-connection settings for `lapor serve`: an idle or header-stalled connection is
    dropped after the request timeout (aiohttp's default is 75 s, which lets a slow-loris client hold
    sockets for over a minute each)."""
    return {"keepalive_timeout": config.server.request_timeout_seconds}


def conversation_settings(config: Config) -> conv.Settings:
    return conv.Settings(
        keywords=tuple(config.intake.keywords),
        reminder_after=timedelta(minutes=config.intake.reminder_minutes),
        expire_after=timedelta(hours=config.intake.expire_hours),
        tracking_url=f"{config.public_url}/lacak/",
    )


def create_app(
    config: Config,
    *,
    clock: Clock = _utcnow,
    adapters: Mapping[str, ChannelAdapter] | None = None,
    background: bool = True,
) -> web.Application:
    """Build the app. `adapters` replaces the configured set (tests); `background=False` leaves the
    dispatcher and timers for the caller to drive (`drain()`, `run_due()`), for deterministic tests."""
    from conversation.machine import step

    app = web.Application(
        middlewares=[request_middleware],
        client_max_size=max(config.server.max_body_bytes, 1024 * 1024 * 12),
    )
    app[CONFIG] = config
    app[CLOCK] = clock
    app[METRICS] = Metrics()
    channel_adapters = dict(adapters) if adapters is not None else build_adapters(config)
    app[ADAPTERS] = channel_adapters
    db = Database(
        config.database.url,
        sqlite_synchronous=config.database.sqlite_synchronous,
        pool_size=config.database.pool_size,
    )
    engine = db.engine
    app[DATABASE] = db
    app[ENGINE] = engine
    app[SESSIONS] = make_sessionmaker(engine)
    stepper = Stepper(step, conversation_settings(config))
    sqlite = db.sqlite
    # Contacts are stored encrypted and found by keyed hash (workflow/privacy.py holds the keys).
    workflow_settings = settings_from_config(config)
    addresses = AddressBook(workflow_settings.vault)

    def answer_feedback(conn: Connection, reporter_id: int, text: str, now: datetime) -> str | None:
        answered = answer_in(conn, reporter_id, text, now, workflow_settings)
        return answered.code if answered is not None else None

    ingestor = Ingestor(
        db,
        stepper,
        clock=clock,
        writers=config.intake.writers,
        max_batch=config.intake.max_batch,
        limiter=SenderLimiter(config.intake.sender_per_minute, config.intake.sender_burst),
        addresses=addresses,
        feedback=answer_feedback,
    )
    dispatcher = Dispatcher(
        db,
        channel_adapters,
        config.outbox,
        clock=clock,
        single_process=sqlite,
        metrics=app[METRICS],
        addresses=addresses,
        pacer=config.outbox.pacer(),
    )
    ingestor.on_committed.append(dispatcher.wake)
    app[INGESTOR] = ingestor
    app[DISPATCHER] = dispatcher
    app[TIMERS] = ConversationTimers(
        db, stepper, clock=clock, on_committed=dispatcher.wake, addresses=addresses
    )

    # Provider media (photos) are downloaded into the evidence store in the background, woken by
    # every ingest commit; `run_once()` drives it by hand when background=False.
    media_fetcher = MediaFetcher(
        engine, channel_adapters, MediaStore(config.media.directory, config.media.max_bytes), clock=clock
    )
    ingestor.on_committed.append(media_fetcher.wake)
    app[MEDIA_FETCHER] = media_fetcher

    # The complaint workflow: the service the dashboard calls for transitions, and the deadline job
    # (reminders, escalation, auto-close) that `lapor serve` / `lapor worker` run in the background.
    app[WORKFLOW] = Workflow(db, workflow_settings, clock=clock, on_committed=dispatcher.wake)
    app[ESCALATOR] = Escalator(
        db,
        workflow_settings,
        clock=clock,
        on_committed=dispatcher.wake,
        poll_seconds=config.workflow.escalation_poll_seconds,
    )

    # Forwarding complaints to an upstream Open311 server and pulling their status back (gateway/upstream.py).
    upstream: UpstreamForwarder | None = None
    if config.open311_upstream.enabled:
        upstream = app[UPSTREAM] = UpstreamForwarder(
            db,
            config.open311_upstream,
            config.outbox,
            workflow_settings,
            clock=clock,
            public_url=config.public_url if config.dashboard.enabled else "",
            single_process=sqlite,
            on_committed=dispatcher.wake,
        )

    # X/Twitter recent-search polling (the webhook needs no task); None when the channel is off.
    from adapters.twitter.poller import make_poller

    twitter_poller = make_poller(channel_adapters.get("twitter"), engine, ingestor.ingest, clock=clock)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await _prepare_schema(engine, sqlite)
        await ingestor.start()
        if background and config.worker.enabled:
            await dispatcher.start()
            await app[TIMERS].start()
            if media_fetcher.fetchable():
                await media_fetcher.start()
            if twitter_poller is not None:
                await twitter_poller.start()
            await app[ESCALATOR].start()
            if upstream is not None:
                await upstream.start()
        yield
        if upstream is not None:
            await upstream.stop()
        await app[ESCALATOR].stop()
        if twitter_poller is not None:
            await twitter_poller.stop()
        await media_fetcher.stop()
        await ingestor.stop()
        await app[TIMERS].stop()
        await dispatcher.stop()
        for adapter in app[ADAPTERS].values():
            await adapter.close()
        await db.dispose()

    app.cleanup_ctx.append(lifecycle)
    mount(
        app,
        app[ADAPTERS].values(),
        ingestor,
        app[METRICS],
        public_url=config.public_url,
        max_body=config.server.max_body_bytes,
        body_timeout=config.server.request_timeout_seconds,
    )
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/", index)
    if config.simulator.enabled and "simulator" in app[ADAPTERS]:
        from dashboard.simulator import add_simulator_routes

        add_simulator_routes(app)
    if config.dashboard.enabled:
        from dashboard.views import add_dashboard_routes

        add_dashboard_routes(app)
    return app


async def _prepare_schema(engine: AsyncEngine, sqlite: bool) -> None:
    """Embedded SQLite migrates itself; a shared PostgreSQL is migrated on purpose with `lapor migrate`."""
    if sqlite:
        await upgrade(engine)
        return
    current, head = await current_revision(engine), head_revision()
    if current != head:
        raise RuntimeError(f"database schema is at {current}, code expects {head}: run `lapor migrate` first")


_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_ID_PREFIX = secrets.token_hex(3)
_ID_COUNTER = itertools.count(1)
"""Request ids: a random prefix per process, then a counter. Ids only need to be distinct (in the
logs of several processes); drawing random bytes per request was a getrandom() call, and any call
that lets go of the GIL can wait out the ingest writer's turn (measured: 77 µs a request)."""


@web.middleware
async def request_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every request gets an id and is timed, in one middleware: each one is a layer of coroutines
    every request goes through (a tenth of a webhook's instructions outside the handler for two).

    The id is the proxy's X-Request-Id when sane, else a new one; every log line of the request
    carries it, and so does the response. The time goes to the latency histogram under the route
    pattern: `/lacak/{code}`, never a tracking code or a number.
    """
    given = request.headers.get("X-Request-Id", "")
    request_id = given if given and _SAFE_ID.match(given) else f"{_ID_PREFIX}{next(_ID_COUNTER):010x}"
    token = REQUEST_ID.set(request_id)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
    except web.HTTPException as exc:
        status = exc.status
        exc.headers["X-Request-Id"] = request_id
        raise
    finally:
        observe = request.app[METRICS].http_observer(
            request.match_info.route.resource, request.method, status, STREAMING_ROUTES
        )
        if observe is not None:
            observe(time.perf_counter() - started)
        REQUEST_ID.reset(token)
    response.headers["X-Request-Id"] = request_id
    return response


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


STREAMING_ROUTES = frozenset({"/dashboard/events"})
"""Long-lived responses whose duration says nothing about how fast the gateway is."""


async def readyz(request: web.Request) -> web.Response:
    try:
        async with request.app[ENGINE].connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:
        return web.json_response({"status": "unavailable", "database": type(exc).__name__}, status=503)
    channels: list[str] = sorted(request.app[ADAPTERS].keys())
    return web.json_response({"status": "ready", "channels": channels})


async def metrics(request: web.Request) -> web.Response:
    app_metrics = request.app[METRICS]
    table = models.outbox
    async with request.app[ENGINE].connect() as conn:
        rows = await conn.execute(
            select(table.c.channel, func.count(), func.min(table.c.created_at))
            .where(table.c.status.in_([OutboxStatus.PENDING.value, OutboxStatus.SENDING.value]))
            .group_by(table.c.channel)
        )
        app_metrics.outbox_depth.clear()
        oldest: datetime | None = None
        for channel, count, first in rows:
            app_metrics.outbox_depth.labels(channel).set(count)
            if first is not None:
                first = first if first.tzinfo else first.replace(tzinfo=UTC)
                oldest = first if oldest is None else min(oldest, first)
        now = request.app[CLOCK]()
        age = (now - oldest).total_seconds() if oldest else 0.0
        app_metrics.outbox_oldest.set(max(0.0, age))
        overdue = await conn.execute(
            select(complaints.c.status, func.count())
            .where(overdue_condition(now))
            .group_by(complaints.c.status)
        )
        counts = {"verification": 0, "handling": 0}
        for status, count in overdue:
            counts["verification" if status in VERIFYING else "handling"] += count
        for stage, count in counts.items():
            app_metrics.overdue.labels(stage).set(count)
    return web.Response(body=app_metrics.render(), content_type="text/plain", charset="utf-8")


async def index(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    target = "/simulator/" if config.simulator.enabled else "/dashboard/"
    raise web.HTTPFound(target)
