"""Kannel adapter: every fixture through the real route handlers; sendsms and delivery reports through a
fake Kannel."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest

from adapters.base import (
    Address,
    AddressKind,
    ChannelAdapter,
    DeliveryStatus,
    InboundMessage,
    Medium,
    OutboundMessage,
    StatusUpdate,
    WebhookRejected,
    WebhookRequest,
)
from adapters.kannel import KannelAdapter
from adapters.kannel.adapter import STATUS_MAP
from adapters.sms.segments import segment_count
from adapters.testing import (
    FIXED_NOW,
    assert_expected,
    assert_secrets_hidden,
    closing,
    count_outcomes,
    load_fixtures,
    route_handler,
    run_route,
    send_error,
    webhook_request,
)
from gateway.config import KannelConfig, Secret
from tests.fakes.kannel import FakeKannel

TOKEN = "kannel-shared-token-42"
PUBLIC_URL = "https://lapor.semarangkota.go.id"
WEBHOOK_URL = PUBLIC_URL + "/webhooks/kannel"
FIXTURES = load_fixtures(Path(__file__).parent / "fixtures")


def make_adapter(**config: Any) -> KannelAdapter:
    settings: dict[str, Any] = {
        "sendsms_url": "http://127.0.0.1:1/cgi-bin/sendsms",
        "username": "lapor",
        "password": Secret("pw-not-used"),
        "inbound_token": Secret(TOKEN),
    }
    settings.update(config)
    return KannelAdapter(KannelConfig(**settings), PUBLIC_URL, clock=lambda: FIXED_NOW)


def build_request(fixture: dict[str, Any]) -> WebhookRequest:
    swap = {"VALID": TOKEN, "UPPER": TOKEN.upper()}
    query = {k: swap.get(v, v) if k == "token" else v for k, v in fixture["query"].items()}
    if "body_hex" in fixture:
        body = bytes.fromhex(fixture["body_hex"].replace(" ", ""))
    else:
        body = fixture.get("body", "").encode()
    content_type = fixture.get("content_type", "application/octet-stream")
    headers = {"Content-Type": content_type, **fixture.get("headers", {})}
    return webhook_request(
        fixture["method"], WEBHOOK_URL, headers=headers, query=query, body=body,
        content_type=content_type.split(";")[0],
    )  # fmt: skip


@pytest.mark.parametrize("name", sorted(FIXTURES))
async def test_fixture(name: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fixture = FIXTURES[name]
    outcome = await run_route(route_handler(make_adapter(), method=fixture["method"]), build_request(fixture))
    assert_expected(outcome, fixture["expect"])
    assert_secrets_hidden(outcome, caplog.records, TOKEN)
    assert outcome.reason is not None or (outcome.status, outcome.body) == (200, "")  # Kannel reads no answer


def test_fixture_table_is_balanced() -> None:
    failures, successes = count_outcomes(FIXTURES)
    assert failures >= 14 and failures >= successes - 2


def test_every_dlr_value_is_mapped() -> None:
    assert set(STATUS_MAP) == {"1", "2", "4", "8", "16"}
    assert {k for k, v in STATUS_MAP.items() if v.is_final_failure} == {"2", "16"}


async def test_redelivered_mo_without_id_keeps_its_id() -> None:
    adapter = make_adapter()
    request = build_request(FIXTURES["mo_no_id"])
    [a] = (await adapter.handle(request)).events
    [b] = (await adapter.handle(request)).events
    assert isinstance(a, InboundMessage) and isinstance(b, InboundMessage)
    assert a.provider_message_id == b.provider_message_id


def test_shape() -> None:
    adapter = make_adapter()
    assert isinstance(adapter, ChannelAdapter)
    assert (adapter.name, adapter.medium) == ("kannel", Medium.SMS)
    assert [(r.method, r.path) for r in adapter.routes()] == [
        ("GET", "/webhooks/kannel"),
        ("POST", "/webhooks/kannel"),
    ]


async def test_without_configured_token_everything_is_refused() -> None:
    with pytest.raises(WebhookRejected) as err:
        await make_adapter(inbound_token=Secret("")).handle(build_request(FIXTURES["mo_laporhendi"]))
    assert err.value.status == 403


# --------------------------------------------------------------------------- against the fake Kannel


@pytest.fixture
async def fake() -> AsyncIterator[FakeKannel]:
    async with FakeKannel() as server:
        yield server


def live_adapter(fake: FakeKannel, **config: Any) -> KannelAdapter:
    settings = {"sendsms_url": fake.sendsms_url, "username": fake.username, "password": Secret(fake.password)}
    return make_adapter(**{**settings, **config})


def outbound(text: str = "Aduan diterima, kode LPR-7K3M9Q", **kw: Any) -> OutboundMessage:
    return OutboundMessage(
        id=7, channel="kannel", to=Address(AddressKind.PHONE, "+6281234567890"), text=text, **kw
    )


async def test_sendsms_with_dlr_url(fake: FakeKannel) -> None:
    async with closing(live_adapter(fake)) as adapter:
        result = await adapter.send(outbound())
    [sent] = fake.sent
    assert (sent["from"], sent["to"], sent["text"]) == (
        "1708",
        "+6281234567890",
        "Aduan diterima, kode LPR-7K3M9Q",
    )
    assert sent["dlr-mask"] == "31" and "coding" not in sent
    dlr = urlsplit(sent["dlr-url"])
    query = parse_qs(dlr.query)
    assert (
        dlr.path == "/webhooks/kannel"
        and query["type"] == ["dlr"]
        and query["ref"] == [result.provider_message_id]
    )
    assert "status=%d" in sent["dlr-url"]
    assert result.status == DeliveryStatus.QUEUED


async def test_budget_and_ucs2(fake: FakeKannel) -> None:
    async with closing(live_adapter(fake)) as adapter:
        await adapter.send(outbound("Petugas DPU sudah meninjau lokasi dan menjadwalkan perbaikan. " * 10))
        await adapter.send(outbound("Terima kasih 🙏 " * 20))
    gsm, ucs2 = fake.sent
    assert segment_count(gsm["text"]) == 2 and "coding" not in gsm
    assert segment_count(ucs2["text"]) == 2 and ucs2["coding"] == "2"


async def test_delivery_report_round_trip(fake: FakeKannel) -> None:
    async with closing(live_adapter(fake)) as adapter:
        result = await adapter.send(outbound())
    [sent] = fake.sent
    url = urlsplit(sent["dlr-url"].replace("%d", "16").replace("%A", "NACK").replace("%T", "1"))
    query = parse_qsl(url.query, keep_blank_values=True)
    [update] = (await adapter.handle(webhook_request("GET", WEBHOOK_URL, query=query))).events
    assert isinstance(update, StatusUpdate)
    assert (update.provider_message_id, update.status, update.error_code) == (
        result.provider_message_id, DeliveryStatus.FAILED, "16"
    )  # fmt: skip


@pytest.mark.parametrize(
    ("status", "answer", "retryable"),
    [
        (503, "4: Temporal failure, try again later", True),
        (500, "Internal error", True),
        (400, "Missing receiver number", False),
        (403, "Authorization failed for sendsms", False),
        (202, "0: Accepted for delivery", None),
    ],
)
async def test_sendsms_answers(fake: FakeKannel, status: int, answer: str, retryable: bool | None) -> None:
    fake.fail_next(1, status=status, answer=answer)
    if retryable is None:
        async with closing(live_adapter(fake)) as adapter:
            await adapter.send(outbound())
    else:
        err = await send_error(live_adapter(fake), outbound())
        assert err.retryable is retryable and err.code == str(status)
        assert fake.password not in str(err)


async def test_wrong_password_is_not_retried(fake: FakeKannel) -> None:
    err = await send_error(live_adapter(fake, password=Secret("wrong-password-xyz")), outbound())
    assert not err.retryable and "wrong-password-xyz" not in str(err)


async def test_unreachable_kannel_is_retryable() -> None:
    gone = await FakeKannel().start_and_stop()
    err = await send_error(live_adapter(gone), outbound())
    assert err.retryable and err.code == "network"
    assert gone.password not in str(err)
