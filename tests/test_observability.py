"""What an operator watches: Prometheus metrics (inbound, outbox, overdue complaints, request latency by
route), `/readyz` that really asks the database, and JSON log lines that carry the request id and no
phone number."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import AsyncIterator

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.app import DISPATCHER, ESCALATOR
from tests.fakes.twilio import FakeTwilio
from tests.fakes.twilio_webhooks import sms_params
from tests.harness import (
    GatewayProcess,
    ManualClock,
    RunningGateway,
    bound_socket,
    make_config,
    migrate,
    sms_in,
    start_twilio_gateway,
)

CITIZEN = "+6281234567890"
SMS_PATH = "/webhooks/twilio/sms"


@pytest.fixture
async def gateway(
    database_url: str, fake_twilio: FakeTwilio, clock: ManualClock
) -> AsyncIterator[RunningGateway]:
    running = await start_twilio_gateway(database_url, fake_twilio, clock=clock, background=False)
    yield running
    await running.stop()


async def scrape(gw: RunningGateway) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics as {(name, sorted labels): value}."""
    async with gw.session.get(gw.url + "/metrics") as response:
        assert response.status == 200
        text = await response.text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_follow_a_complaint_from_inbound_to_overdue(
    gateway: RunningGateway, fake_twilio: FakeTwilio, clock: ManualClock
) -> None:
    for body in ("LaporHendi lampu jalan mati", "di Jl. Pemuda depan Paragon"):
        await sms_in(gateway, fake_twilio, CITIZEN, body)
    samples = await scrape(gateway)
    assert value(samples, "lapor_inbound_events_total", channel="twilio_sms", kind="InboundMessage") == 2
    assert value(samples, "lapor_outbox_pending", channel="twilio_sms") == 2, "two replies owed"
    assert value(samples, "lapor_complaints_overdue", stage="verification") == 0

    await gateway.app[DISPATCHER].drain()
    await fake_twilio.wait_for_messages(2)
    await sms_in(gateway, fake_twilio, CITIZEN, "ya")
    await gateway.app[DISPATCHER].drain()
    samples = await scrape(gateway)
    assert value(samples, "lapor_outbox_pending", channel="twilio_sms") == 0
    assert value(samples, "lapor_outbox_sends_total", channel="twilio_sms", outcome="sent", code="") == 3

    # Verification is due within 3 working days (stamped by the deadline round); two weeks later
    # nobody has looked at it.
    await gateway.app[ESCALATOR].run_once()
    clock.advance(days=14)
    samples = await scrape(gateway)
    assert value(samples, "lapor_complaints_overdue", stage="verification") == 1
    assert value(samples, "lapor_complaints_overdue", stage="handling") == 0

    # Latency is recorded under the route pattern: never a tracking code in a label.
    async with gateway.session.get(gateway.url + "/lacak/LPR-7K3M9Q") as response:
        await response.read()
    samples = await scrape(gateway)
    webhook = value(
        samples, "lapor_http_request_seconds_count", route=SMS_PATH, method="POST", status="2xx"
    )
    assert webhook == 3
    routes = {dict(labels).get("route", "") for name, labels in samples if name.startswith("lapor_http")}
    assert not any("LPR-" in route for route in routes)
    assert any(route.startswith("/lacak/{") for route in routes)


async def test_readyz_asks_the_database(gateway: RunningGateway) -> None:
    async with gateway.session.get(gateway.url + "/readyz") as response:
        assert response.status == 200
        assert (await response.json())["status"] == "ready"


async def test_readyz_is_503_while_the_database_is_unreachable(unused_tcp_port: int) -> None:
    """A PostgreSQL that refuses connections: the process stays up, /readyz says so, /healthz is fine."""
    sock = bound_socket()
    config = make_config(
        f"postgresql+asyncpg://root@127.0.0.1:{unused_tcp_port}/nowhere", sock.getsockname()[1]
    )
    from aiohttp import web

    from gateway.app import create_app

    app = create_app(config, background=False)
    app.cleanup_ctx.clear()  # the schema check at start would (rightly) refuse to start
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    try:
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{sock.getsockname()[1]}"
            async with session.get(url + "/readyz") as response:
                assert response.status == 503
                assert (await response.json())["status"] == "unavailable"
            async with session.get(url + "/healthz") as response:
                assert response.status == 200
    finally:
        await runner.cleanup()


async def test_json_logs_carry_the_request_id_and_no_phone_number(database_url: str) -> None:
    """A real `lapor serve` with JSON logs: a webhook with a bad signature from a citizen's number is
    refused, and the log line about it names the request id the response gave, and no number."""
    sock = bound_socket()
    port = sock.getsockname()[1]
    sock.close()
    await migrate(database_url)
    with tempfile.TemporaryDirectory() as folder:
        env = {
            "LAPOR_DATABASE__URL": database_url,
            "LAPOR_SERVER__PUBLIC_URL": f"http://127.0.0.1:{port}",
            "LAPOR_LOGGING__JSON": "true",
            "LAPOR_LOGGING__LEVEL": "INFO",
            "LAPOR_CHANNELS__TWILIO__ACCOUNT_SID": "AC" + "0" * 32,
            "LAPOR_CHANNELS__TWILIO__AUTH_TOKEN": "observability-token",
            "LAPOR_CHANNELS__TWILIO__SMS_FROM": "+15005550006",
            "LAPOR_WORKER__ENABLED": "false",
            "PYTHONUNBUFFERED": "1",
            "PATH": os.environ.get("PATH", ""),
        }
        process = GatewayProcess(env, port, folder)
        await process.start()
        try:
            params = sms_params(From=CITIZEN, Body=f"tolong hubungi {CITIZEN}")
            async with aiohttp.ClientSession() as session, session.post(
                f"http://127.0.0.1:{port}{SMS_PATH}",
                data=params,
                headers={"X-Twilio-Signature": "bm90LWEtc2lnbmF0dXJl", "X-Request-Id": "obs-test-42"},
            ) as response:
                assert response.status == 403
                assert response.headers["X-Request-Id"] == "obs-test-42"
            line = await process.wait_for_output("obs-test-42")
        finally:
            await process.terminate()
    record = json.loads(line)
    assert record["request_id"] == "obs-test-42"
    assert record["level"] in {"INFO", "WARNING"}
    every_line = "".join(process.output)
    assert CITIZEN not in every_line and CITIZEN[1:] not in every_line
    assert "observability-token" not in every_line
    for raw in process.output:
        if raw.strip():
            json.loads(raw)  # every line is JSON, start-up banner included
