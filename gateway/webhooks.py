"""Mounting adapters' routes: the size limit, body reading, form parsing and error mapping live here once.

The contract with providers: a malformed or forged request gets a 4xx with a reason (never a 500, so
nothing retries a request that can never succeed); a request we accept is answered only after its
events are durable; if the database cannot take them we answer 503 so the provider retries.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from urllib.parse import unquote_plus, unquote_to_bytes

from aiohttp import web
from multidict import MultiDict, MultiDictProxy

from adapters.base import ChannelAdapter, Route, WebhookRejected, WebhookRequest, make_webhook_request
from gateway.logs import REQUEST_ID
from gateway.metrics import Metrics
from gateway.pipeline import Ingestor, IngestUnavailable

log = logging.getLogger(__name__)

FORM_TYPE = "application/x-www-form-urlencoded"


def mount(
    app: web.Application,
    adapters: Iterable[ChannelAdapter],
    ingestor: Ingestor,
    metrics: Metrics,
    *,
    public_url: str,
    max_body: int,
    body_timeout: float = 30.0,
) -> None:
    """Add every adapter's declared routes to the app, wrapped in the shared webhook handling."""
    for adapter in adapters:
        for route in adapter.routes():
            handler = _wrap(adapter.name, route, ingestor, metrics, public_url, max_body, body_timeout)
            app.router.add_route(route.method, route.path, handler)


def _wrap(  # type: ignore[no-untyped-def]
    channel: str,
    route: Route,
    ingestor: Ingestor,
    metrics: Metrics,
    public_url: str,
    max_body: int,
    body_timeout: float,
):
    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            webhook_request = await _read(request, route, public_url, max_body, body_timeout)
            result = await route.handler(webhook_request)
        except WebhookRejected as exc:
            metrics.webhook_rejected.labels(channel, str(exc.status)).inc()
            log.info("rejected %s %s: %d %s", request.method, request.path, exc.status, exc.reason)
            refused = web.json_response({"error": exc.reason}, status=exc.status)
            if exc.status == 408:
                return await _answer_and_hang_up(request, refused)
            if exc.status == 413:
                refused.force_close()  # the rest of the body is still on the wire: end the connection
            return refused
        except Exception:
            # A payload our parser chokes on is still the sender's malformed input, not our outage.
            metrics.webhook_rejected.labels(channel, "400").inc()
            log.exception("could not parse %s %s", request.method, request.path)
            return web.json_response({"error": "malformed payload"}, status=400)
        try:
            await ingestor.ingest(result.events)
        except IngestUnavailable as exc:
            log.error("could not store %s webhook: %s", channel, exc)
            return web.json_response(
                {"error": "temporarily unavailable, retry"}, status=503, headers={"Retry-After": "5"}
            )
        for event in result.events:
            metrics.child(metrics.inbound, event.channel, type(event).__name__).inc()
        response = result.response
        return web.Response(status=response.status, text=response.body, content_type=response.content_type)

    return handle


async def _answer_and_hang_up(request: web.Request, response: web.Response) -> web.Response:
    """Send `response`, then drop the connection at once.

    `Response.force_close()` alone is not enough for a client that stalled its body: aiohttp first
    "lingers", reading the unfinished body for up to `lingering_time` (10 s) so that a client still
    sending can read the answer, and only then closes. The stalled client sends nothing, so it would
    hold the socket 10 s past the request timeout (measured: 11 s for a 1 s timeout). Nothing more is
    coming from it, so the answer is flushed and the connection closed here, which skips the lingering.
    """
    response.force_close()
    response.headers["X-Request-Id"] = REQUEST_ID.get()  # the middleware sees it only once sent
    await response.prepare(request)
    await response.write_eof()
    request.protocol.force_close()  # the transport flushes what is written, then closes
    return response


async def _read(
    request: web.Request, route: Route, public_url: str, max_body: int, body_timeout: float
) -> WebhookRequest:
    if request.content_length is not None and request.content_length > max_body:
        raise WebhookRejected(413, f"body larger than {max_body} bytes")
    if request.content.is_eof():
        # A provider's form usually arrives in the packet with the headers: nothing to wait for.
        body = request.content.read_nowait()
        if len(body) > max_body:
            raise WebhookRejected(413, f"body larger than {max_body} bytes")
    else:
        try:
            async with asyncio.timeout(body_timeout):
                body = await _read_limited(request, max_body)
        except TimeoutError:
            raise WebhookRejected(408, f"body not received within {body_timeout:g} s") from None
    content_type = request.content_type
    form: MultiDictProxy[str] | None = None
    if route.form and request.method == "POST":
        if content_type != FORM_TYPE:
            raise WebhookRejected(415, f"expected {FORM_TYPE}, got {content_type or 'nothing'}")
        try:
            pairs = parse_form(body.decode("utf-8"))
        except UnicodeDecodeError:
            raise WebhookRejected(400, "form body is not UTF-8") from None
        form = MultiDictProxy(MultiDict(pairs))
    return make_webhook_request(
        method=request.method,
        public_url=public_url + request.rel_url.raw_path_qs if public_url else str(request.url),
        path=request.path,
        headers=request.headers,
        query=request.query,
        body=body,
        content_type=content_type,
        form=form,
    )


def parse_form(text: str) -> list[tuple[str, str]]:
    """`urllib.parse.parse_qsl(text, keep_blank_values=True)`, answer for answer, in a third of the time.

    A Python loop over a provider's score of fields was a tenth of a webhook's CPU. The usual form is
    taken apart in a few calls that each run in C (`_parse_whole`); anything it cannot vouch for goes
    field by field, where only names and values with a `%` or a `+` go through `unquote_plus`.
    """
    pairs = _parse_whole(text)
    return pairs if pairs is not None else _parse_fields(text)


def _parse_whole(text: str) -> list[tuple[str, str]] | None:
    """The fields of a form unquoted all at once, or None when that could answer differently.

    Unquoting the whole text before splitting it is the same as unquoting each name and value when
    no escape turns into a separator (`%26` is `&`, `%3D` is `=`) and the text is ASCII (parse_qsl
    leaves raw non-ASCII characters alone; escapes never span a `&` or a `=`, so invalid UTF-8
    becomes the same U+FFFD either way). The split on both separators is right when every field is
    one `name=value`, which is when the pairs, joined back, are the text again.
    """
    if not text.isascii() or "%26" in text or "%3D" in text or "%3d" in text:
        return None
    if "+" in text:
        text = text.replace("+", " ")
    if "%" in text:
        text = unquote_to_bytes(text).decode("utf-8", "replace")
    parts = text.replace("&", "=").split("=")
    pairs = list(zip(parts[::2], parts[1::2], strict=False))  # an odd part is refused below
    return pairs if "&".join(map("=".join, pairs)) == text else None


def _parse_fields(text: str) -> list[tuple[str, str]]:
    pairs = []
    for field in text.split("&"):
        if not field:
            continue
        name, _, value = field.partition("=")
        pairs.append((_unquote(name), _unquote(value)))
    return pairs


def _unquote(part: str) -> str:
    return unquote_plus(part) if ("%" in part or "+" in part) else part


async def _read_limited(request: web.Request, max_body: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(16384):
        size += len(chunk)
        if size > max_body:
            raise WebhookRejected(413, f"body larger than {max_body} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
