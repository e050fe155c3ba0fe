"""The request middleware: every route's answer carries a request id and is timed under its route
pattern, whatever the handler does (answers, raises an HTTP error, fails, or nothing matched)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import METRICS, STREAMING_ROUTES, request_middleware
from gateway.logs import REQUEST_ID
from gateway.metrics import Metrics


async def ok(request: web.Request) -> web.Response:
    return web.Response(text=REQUEST_ID.get())  # the id is set while the handler runs


async def moved(request: web.Request) -> web.Response:
    raise web.HTTPFound("/ok")


async def forbidden(request: web.Request) -> web.Response:
    raise web.HTTPForbidden(text="no")


async def broken(request: web.Request) -> web.Response:
    raise RuntimeError("a bug")


@pytest.fixture
async def client() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = web.Application(middlewares=[request_middleware])
    app[METRICS] = Metrics()
    app.router.add_get("/ok", ok)
    app.router.add_post("/ok", ok)
    app.router.add_get("/lacak/{code}", ok)
    app.router.add_get("/moved", moved)
    app.router.add_get("/forbidden", forbidden)
    app.router.add_get("/broken", broken)
    app.router.add_get("/dashboard/events", ok)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


def count(client: TestClient[web.Request, web.Application], route: str, method: str, status: str) -> float:
    registry = client.app[METRICS].registry  # type: ignore[index]
    labels = {"route": route, "method": method, "status": status}
    return registry.get_sample_value("lapor_http_request_seconds_count", labels) or 0.0


@pytest.mark.parametrize(
    ("path", "method", "route", "status"),
    [
        ("/ok", "GET", "/ok", "2xx"),
        ("/ok", "POST", "/ok", "2xx"),
        ("/lacak/LPR-7K3M9Q", "GET", "/lacak/{code}", "2xx"),  # the pattern, never the code
        ("/moved", "GET", "/moved", "3xx"),
        ("/forbidden", "GET", "/forbidden", "4xx"),
        ("/nowhere", "GET", "unmatched", "4xx"),
        ("/ok", "DELETE", "unmatched", "4xx"),  # 405: the router matched no route either
        ("/broken", "GET", "/broken", "5xx"),
    ],
)
async def test_every_answer_is_timed_under_its_route_pattern(
    client: TestClient[web.Request, web.Application], path: str, method: str, route: str, status: str
) -> None:
    for times in (1, 2, 3):  # the second and later go through the remembered observer
        async with client.request(method, path, allow_redirects=False) as response:
            await response.read()
            assert str(response.status).startswith(status[0])
        assert count(client, route, method, status) == times
    registry = client.app[METRICS].registry  # type: ignore[index]
    labels = {"route": route, "method": method, "status": status, "le": "+Inf"}
    assert registry.get_sample_value("lapor_http_request_seconds_bucket", labels) == 3


async def test_a_streaming_route_is_not_timed(client: TestClient[web.Request, web.Application]) -> None:
    assert "/dashboard/events" in STREAMING_ROUTES
    async with client.get("/dashboard/events") as response:
        assert response.status == 200
    assert count(client, "/dashboard/events", "GET", "2xx") == 0
    assert count(client, "/ok", "GET", "2xx") == 0


@pytest.mark.parametrize("path", ["/ok", "/moved", "/forbidden", "/nowhere"])
async def test_every_answer_but_a_crash_carries_a_request_id(
    client: TestClient[web.Request, web.Application], path: str
) -> None:
    seen = set()
    for _ in range(3):
        async with client.get(path, allow_redirects=False) as response:
            request_id = response.headers["X-Request-Id"]
            if path == "/ok":
                assert await response.text() == request_id  # the one the handler's log lines carry
        seen.add(request_id)
    assert len(seen) == 3  # a new one each time
    async with client.get(path, allow_redirects=False, headers={"X-Request-Id": "proxy-id.42"}) as response:
        assert response.headers["X-Request-Id"] == "proxy-id.42"
    async with client.get(path, allow_redirects=False, headers={"X-Request-Id": "bad id\u00e9"}) as response:
        assert response.headers["X-Request-Id"] not in ("bad id\u00e9", "")
    assert REQUEST_ID.get() == "-"  # nothing leaks out of a request


def test_a_remembered_observer_is_the_plain_labels_lookup() -> None:
    metrics = Metrics()

    class Resource:
        canonical = "/webhooks/twilio/sms"

    resource = Resource()
    observe = metrics.http_observer(resource, "POST", 200)
    assert observe is not None
    assert metrics.http_observer(resource, "POST", 200) is observe
    observe(0.003)
    labels = {"route": "/webhooks/twilio/sms", "method": "POST", "status": "2xx"}
    assert metrics.registry.get_sample_value("lapor_http_request_seconds_sum", labels) == 0.003
    other = metrics.http_observer(resource, "POST", 201)
    assert other is not None and other is not observe  # another key, the same child
    other(0.5)
    assert metrics.registry.get_sample_value("lapor_http_request_seconds_count", labels) == 2
    assert metrics.http_observer(None, "GET", 404) is not None  # unmatched
    assert metrics.http_observer(Resource(), "GET", 200, skip={"/webhooks/twilio/sms"}) is None


def test_methods_outside_http_are_one_label_whatever_a_client_sends() -> None:
    """A client may send any token as its method: the histogram's labels must stay bounded."""
    metrics = Metrics()
    for method in ("FOO", "BAR", "PROPFIND-X", "get"):
        observe = metrics.http_observer(None, method, 405)
        assert observe is not None
        observe(0.001)
    labels = {"route": "unmatched", "method": "OTHER", "status": "4xx"}
    assert metrics.registry.get_sample_value("lapor_http_request_seconds_count", labels) == 4
    assert len(metrics._http_observers) == 1
