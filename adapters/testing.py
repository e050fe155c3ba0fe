"""The shared harness of the adapters' table-driven tests: fixtures first, one-line tests (as Zulip does).

Each adapter folder keeps `fixtures/*.json`: a request shaped as the provider documents it, plus an
`expect` block: `status`, then `reason` (a part of the rejection's reason) for a request that must be
refused, or `events` (the fields to compare of each event, in order) and optionally `body` and
`content_type` for one that must be accepted. How a fixture becomes a signed request, and how the
adapter is built, is the provider's business and stays in the adapter's test file. Loading the table,
running a request through the handler the adapter declares, comparing with `expect` and looking for
leaked secrets is the same for every channel and lives here: every channel is held to the same bar,
and a new channel gets it by writing one `build_request`.

Nothing here is mocked: requests go through the adapter's real route handlers, as the gateway's
router hands them over (tests/fakes/ plays the providers' side of sending, on loopback).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import urlencode, urlsplit

from multidict import CIMultiDict, CIMultiDictProxy, MultiDict, MultiDictProxy

from adapters.base import (
    ChannelAdapter,
    Event,
    InboundMessage,
    OutboundMessage,
    SendError,
    WebhookHandler,
    WebhookRejected,
    WebhookRequest,
)

FORM = "application/x-www-form-urlencoded"
FIXED_NOW = datetime(2025, 10, 21, 3, 15, tzinfo=UTC)
"""Every fixture test runs at the same instant, so `received_at` and time windows are comparable."""


class Clock:
    """A clock for adapters that take `clock=`: time moves only when the test moves `now`, so windows
    (WhatsApp's 24 hours) open and close exactly where a test says."""

    def __init__(self, now: datetime = FIXED_NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


# --------------------------------------------------------------------------- the fixture table


def load_fixtures(folder: Path) -> dict[str, dict[str, Any]]:
    """Every `*.json` in `folder` by file name without `.json`, sorted: the names become the test ids,
    so a failing case names its fixture."""
    return {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in sorted(folder.glob("*.json"))}


def count_outcomes(fixtures: Mapping[str, Mapping[str, Any]]) -> tuple[int, int]:
    """(failures, successes) of a fixture table. A forgiving parser must also be a strict gate, so
    each table keeps about as many ways to be refused as to be accepted, and says so in a test."""
    failures = sum(1 for fixture in fixtures.values() if fixture["expect"]["status"] >= 400)
    return failures, len(fixtures) - failures


# --------------------------------------------------------------------------- requests and handlers


def webhook_request(
    method: str,
    public_url: str,
    *,
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
    body: bytes = b"",
    content_type: str = "application/octet-stream",
    form: Mapping[str, str] | None = None,
) -> WebhookRequest:
    """The WebhookRequest the gateway's router would hand over, built without a server: the fixture
    tests are about the adapter, the router has its own tests. The path is the URL's; `query` may
    repeat a name, as a real query string may."""
    return WebhookRequest(
        method=method,
        public_url=public_url,
        path=urlsplit(public_url).path,
        headers=CIMultiDictProxy(CIMultiDict(headers or {})),
        query=MultiDictProxy(MultiDict(query or {})),
        body=body,
        content_type=content_type,
        form=None if form is None else MultiDictProxy(MultiDict(form)),
    )


def form_request(public_url: str, params: Mapping[str, str], headers: Mapping[str, str]) -> WebhookRequest:
    """A form POST as Twilio sends its webhooks: the body and the parsed form say the same."""
    return webhook_request(
        "POST", public_url, headers=headers, body=urlencode(params).encode(), content_type=FORM, form=params
    )


def route_handler(
    adapter: ChannelAdapter, *, method: str | None = None, path: str | None = None
) -> WebhookHandler:
    """The one handler the adapter declares for `method` and `path` (either may be left open): the
    fixture tests reach handlers through `routes()`, as the gateway mounts them, not `handle_*`."""
    [handler] = [
        route.handler
        for route in adapter.routes()
        if method in (None, route.method) and path in (None, route.path)
    ]
    return handler


@dataclass(frozen=True)
class Outcome:
    """What became of one request: a rejection (`reason` set, no events) or the response and events."""

    status: int
    reason: str | None = None
    body: str = ""
    content_type: str = ""
    events: Sequence[Event] = ()

    def event_dicts(self) -> list[dict[str, Any]]:
        return [event_as_dict(event) for event in self.events]


async def run_route(handler: WebhookHandler, request: WebhookRequest) -> Outcome:
    """Hand `request` to `handler`. A rejection is an outcome like any other, because half of every
    fixture table is requests that must be refused (with a 4xx, never a 500)."""
    try:
        result = await handler(request)
    except WebhookRejected as exc:
        return Outcome(exc.status, reason=exc.reason)
    response = result.response
    return Outcome(response.status, None, response.body, response.content_type, tuple(result.events))


def event_as_dict(event: Event) -> dict[str, Any]:
    """An event as plain data, every field a fixture may name. Fixtures list only the fields they care
    about, so this may hold more than any one channel fills in."""
    if isinstance(event, InboundMessage):
        loc = event.location
        return {
            "kind": "inbound",
            "channel": event.channel,
            "medium": str(event.medium),
            "provider_message_id": event.provider_message_id,
            "sender": str(event.sender),
            "recipient": event.recipient,
            "text": event.text,
            "media": [{"url": m.url, "content_type": m.content_type} for m in event.media],
            "location": None
            if loc is None
            else {
                "latitude": loc.latitude,
                "longitude": loc.longitude,
                "address": loc.address,
                "label": loc.label,
            },
            "reply_to": event.reply_to,
            "profile_name": event.profile_name,
            "extra": dict(event.extra),
        }
    return {
        "kind": "status",
        "channel": event.channel,
        "provider_message_id": event.provider_message_id,
        "status": str(event.status),
        "raw_status": event.raw_status,
        "error_code": event.error_code,
        "error_message": event.error_message,
    }


# --------------------------------------------------------------------------- comparing


def assert_expected(outcome: Outcome, expect: Mapping[str, Any]) -> None:
    """`outcome` is what the fixture's `expect` block says: the status; for a rejection a 4xx whose
    reason contains `reason`; for an acceptance `body` and `content_type` where given, and exactly the
    expected events in order, each matching on the fields the fixture names."""
    assert outcome.status == expect["status"], outcome
    if "reason" in expect:
        assert outcome.reason is not None, f"accepted, expected {expect['status']}: {outcome}"
        assert expect["reason"] in outcome.reason, outcome.reason
        assert 400 <= outcome.status < 500, outcome
    else:
        assert outcome.reason is None, f"rejected: {outcome.reason}"
    for key in ("body", "content_type"):
        if key in expect:
            assert getattr(outcome, key) == expect[key], outcome
    got, wanted = outcome.event_dicts(), expect.get("events", [])
    assert len(got) == len(wanted), got
    for event, want in zip(got, wanted, strict=True):
        assert {key: event[key] for key in want} == want


def assert_secrets_hidden(outcome: Outcome, records: Iterable[logging.LogRecord], *secrets: str) -> None:
    """No configured secret shows in what the adapter answered, the events it made, or anything it
    logged: responses go back to whoever called, and logs go to places secrets must not."""
    said = json.dumps([outcome.reason, outcome.body, outcome.event_dicts()])
    logged = [record.getMessage() for record in records]
    for secret in secrets:
        assert secret not in said
        assert all(secret not in message for message in logged)


# --------------------------------------------------------------------------- sending


class Closable(Protocol):
    async def close(self) -> None: ...


C = TypeVar("C", bound=Closable)


@asynccontextmanager
async def closing(adapter: C) -> AsyncIterator[C]:
    """`async with closing(adapter) as adapter:` closes the adapter's HTTP client however the test
    ends, so no test leaves an unclosed session (and its warning) to the next."""
    try:
        yield adapter
    finally:
        await adapter.close()


async def send_error(adapter: ChannelAdapter, message: OutboundMessage) -> SendError:
    """Send `message` once, expecting the adapter to refuse or the provider to fail it, and close the
    adapter: the error's `retryable`, `unreachable` and `code` are what the outbox acts on."""
    async with closing(adapter):
        try:
            result = await adapter.send(message)
        except SendError as exc:
            return exc
    raise AssertionError(f"sent, expected a SendError: {result}")
