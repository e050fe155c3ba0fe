"""WhatsApp Cloud API adapter: every fixture through the real route handlers; sending, templates and
media through a fake Graph API.

Fixtures (adapters/whatsapp/fixtures/cloud/*.json) are webhooks shaped as Meta documents them plus the
expected outcome; each is signed here with a test app secret the way Meta signs (or deliberately not).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.base import (
    Address,
    AddressKind,
    ChannelAdapter,
    FetchesMedia,
    InboundMessage,
    MediaFetchError,
    MediaRef,
    Medium,
    OutboundMessage,
    SendError,
    WebhookRejected,
    WebhookRequest,
)
from adapters.testing import (
    Clock,
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
from adapters.whatsapp.cloud import GRAPH_ERRORS, WhatsAppCloudAdapter
from adapters.whatsapp.cloud_parse import STATUS_MAP
from gateway.config import Secret, WhatsAppCloudConfig
from tests.fakes.graph import FakeGraphAPI, inbound_payload, text_message

APP_SECRET = "test-app-secret-5f4e3d2c1b"
VERIFY_TOKEN = "test-verify-token-77"
ACCESS_TOKEN = "EAAtestAccessToken123"
PHONE_NUMBER_ID = "106540352242922"
WEBHOOK_URL = "https://lapor.semarangkota.go.id/webhooks/whatsapp"
FIXTURES = load_fixtures(Path(__file__).parent / "fixtures" / "cloud")
CITIZEN = Address(AddressKind.PHONE, "+6281234567890")


def make_adapter(clock: Clock | None = None, **config: Any) -> WhatsAppCloudAdapter:
    settings: dict[str, Any] = {
        "phone_number_id": PHONE_NUMBER_ID,
        "access_token": Secret(ACCESS_TOKEN),
        "app_secret": Secret(APP_SECRET),
        "verify_token": Secret(VERIFY_TOKEN),
    }
    settings.update(config)
    return WhatsAppCloudAdapter(WhatsAppCloudConfig(**settings), clock=clock or Clock())


def signature(kind: str, body: bytes) -> str | None:
    if kind == "valid":
        return "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    if kind == "wrong":
        return "sha256=" + "0" * 64
    if kind == "sha1":
        return "sha1=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha1).hexdigest()
    if kind == "other_secret":
        return "sha256=" + hmac.new(b"another-app", body, hashlib.sha256).hexdigest()
    assert kind == "missing"
    return None


def build_request(fixture: dict[str, Any]) -> WebhookRequest:
    """Meta's verification GET (with the real verify token where the fixture says VALID), or its signed
    POST (tampered with after signing where the fixture says so)."""
    if fixture["method"] == "GET":
        query = {k: (VERIFY_TOKEN if v == "VALID" else v) for k, v in fixture["query"].items()}
        return webhook_request("GET", WEBHOOK_URL, query=query)
    body = fixture["raw_body"].encode() if "raw_body" in fixture else json.dumps(fixture["payload"]).encode()
    headers = {"Content-Type": fixture["content_type"]}
    signed = signature(fixture["signature"], body)
    if signed is not None:
        headers["X-Hub-Signature-256"] = signed
    if "tamper" in fixture:
        payload = json.loads(body)
        payload["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = fixture["tamper"]["text"]
        body = json.dumps(payload).encode()
    return webhook_request(
        "POST", WEBHOOK_URL, headers=headers, body=body, content_type=fixture["content_type"]
    )


@pytest.mark.parametrize("name", sorted(FIXTURES))
async def test_fixture(name: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fixture = FIXTURES[name]
    outcome = await run_route(route_handler(make_adapter(), method=fixture["method"]), build_request(fixture))
    assert_expected(outcome, fixture["expect"])
    assert_secrets_hidden(outcome, caplog.records, APP_SECRET, VERIFY_TOKEN, ACCESS_TOKEN)


def test_fixture_table_is_balanced() -> None:
    failures, successes = count_outcomes(FIXTURES)
    assert failures >= 20 and failures >= successes - 5


def test_unsupported_media_is_marked() -> None:
    assert STATUS_MAP.keys() == {"sent", "delivered", "read", "played", "failed"}


async def test_voice_note_is_marked_unsupported() -> None:
    result = await make_adapter().handle_events(build_request(FIXTURES["voice"]))
    [event] = result.events
    assert isinstance(event, InboundMessage) and event.extra["unsupported"] == "audio"


async def test_verify_refused_without_configured_token() -> None:
    adapter = make_adapter(verify_token=Secret(""))
    with pytest.raises(WebhookRejected) as err:
        await adapter.handle_verify(build_request({**FIXTURES["verify_ok"], "query": {
            "hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"}}))  # fmt: skip
    assert err.value.status == 403


def test_adapter_satisfies_protocols() -> None:
    adapter = make_adapter()
    assert isinstance(adapter, ChannelAdapter) and isinstance(adapter, FetchesMedia)
    assert (adapter.name, adapter.medium) == ("whatsapp_cloud", Medium.WHATSAPP)
    assert [(r.method, r.path) for r in adapter.routes()] == [
        ("GET", "/webhooks/whatsapp"),
        ("POST", "/webhooks/whatsapp"),
    ]


def test_bad_template_config_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="templates"):
        make_adapter(templates=["status_update"])


# --------------------------------------------------------------------------- against the fake Graph API


@pytest.fixture
async def fake() -> AsyncIterator[FakeGraphAPI]:
    async with FakeGraphAPI(access_token=ACCESS_TOKEN, app_secret=APP_SECRET) as server:
        yield server


def live_adapter(fake: FakeGraphAPI, clock: Clock | None = None, **config: Any) -> WhatsAppCloudAdapter:
    return make_adapter(clock, api_base=fake.api_base, phone_number_id=fake.phone_number_id, **config)


def outbound(
    text: str = "Aduan diterima, kode LPR-7K3M9Q", kind: str = "submitted", **kw: Any
) -> OutboundMessage:
    return OutboundMessage(id=7, channel="whatsapp_cloud", to=CITIZEN, text=text, kind=kind, **kw)


async def test_send_text(fake: FakeGraphAPI) -> None:
    async with closing(live_adapter(fake)) as adapter:
        result = await adapter.send(outbound())
    [sent] = fake.sent
    assert sent["to"] == "6281234567890" and sent["type"] == "text"
    assert sent["text"] == {"preview_url": False, "body": "Aduan diterima, kode LPR-7K3M9Q"}
    assert result.provider_message_id == sent["id"]


async def test_yes_no_question_goes_as_reply_buttons(fake: FakeGraphAPI) -> None:
    async with closing(live_adapter(fake)) as adapter:
        await adapter.send(
            outbound("Sudah ada aduan serupa. Apakah ini sama? Balas YA/TIDAK", kind="ask_duplicate")
        )
    [sent] = fake.sent
    assert sent["type"] == "interactive" and sent["interactive"]["type"] == "button"
    assert [b["reply"]["id"] for b in sent["interactive"]["action"]["buttons"]] == ["YA", "TIDAK"]


async def test_status_update_goes_as_template_unless_the_window_is_open(fake: FakeGraphAPI) -> None:
    clock = Clock()
    update = outbound("Status LPR-7K3M9Q:\nditeruskan ke  DPU", kind="status_update")
    async with closing(live_adapter(fake, clock, templates=["status_update=lapor_status_update"])) as adapter:
        await adapter.send(update)  # nothing known about this citizen: template
        payload = inbound_payload(fake.phone_number_id, [text_message("6281234567890", "halo")])
        body = json.dumps(payload).encode()
        request = build_request({"method": "POST", "signature": "valid", "content_type": "application/json",
                                 "payload": payload})  # fmt: skip
        assert request.body == body
        await adapter.handle_events(request)  # the citizen writes: the window opens
        await adapter.send(update)
        clock.now += timedelta(hours=24)
        await adapter.send(update)  # closed again
    first, second, third = fake.sent
    assert first["type"] == "template" and first["template"]["name"] == "lapor_status_update"
    assert first["template"]["language"] == {"code": "id"}
    [component] = first["template"]["components"]
    assert component["parameters"] == [{"type": "text", "text": "Status LPR-7K3M9Q: diteruskan ke DPU"}]
    assert second["type"] == "text"
    assert third["type"] == "template"


async def test_window_error_falls_back_to_the_default_template(fake: FakeGraphAPI) -> None:
    fake.closed_windows.add("6281234567890")
    async with closing(live_adapter(fake, templates=["*=lapor_pemberitahuan"])) as adapter:
        result = await adapter.send(outbound("Laporan Anda selesai ditangani", kind="resolved"))
    [sent] = fake.sent
    assert sent["type"] == "template" and sent["template"]["name"] == "lapor_pemberitahuan"
    assert result.provider_message_id == sent["id"]


async def test_window_error_without_template_is_not_retried(fake: FakeGraphAPI) -> None:
    fake.closed_windows.add("6281234567890")
    err = await send_error(live_adapter(fake), outbound(kind="resolved"))
    assert not err.retryable and err.code == "131047"


async def test_row_template_with_variables(fake: FakeGraphAPI) -> None:
    message = outbound(
        "unused",
        kind="status_update",
        template="lapor_status_v2",
        template_vars={"2": "DPU", "1": "LPR-7K3M9Q"},
    )
    async with closing(live_adapter(fake)) as adapter:
        await adapter.send(message)
    [sent] = fake.sent
    params = sent["template"]["components"][0]["parameters"]
    assert [p["text"] for p in params] == ["LPR-7K3M9Q", "DPU"]


@pytest.mark.parametrize(
    ("status", "code", "retryable", "unreachable"),
    [
        (400, 131047, False, False),
        (400, 131026, False, True),
        (400, 131056, True, False),
        (429, 130429, True, False),
        (400, 80007, True, False),
        (400, 131048, True, False),
        (500, 131000, True, False),
        (503, 131016, True, False),
        (400, 132001, False, False),
        (400, 131009, False, False),
        (401, 190, False, False),
        (400, 999999, False, False),
        (502, 999999, True, False),
    ],
)
async def test_send_failures_are_classified(
    fake: FakeGraphAPI, status: int, code: int, retryable: bool, unreachable: bool
) -> None:
    fake.fail_next(1, status=status, code=code, message=f"(#{code}) error", details="detail text")
    async with closing(live_adapter(fake)) as adapter:
        with pytest.raises(SendError) as err:
            await adapter.send(outbound())
        assert (await adapter.send(outbound())).provider_message_id.startswith("wamid.")
    assert (err.value.retryable, err.value.unreachable, err.value.code) == (retryable, unreachable, str(code))
    assert ACCESS_TOKEN not in str(err.value)


def test_error_table_has_the_codes_the_issue_names() -> None:
    assert {130429, 131047, 131056, 131026, 131000} <= GRAPH_ERRORS.keys()
    assert not GRAPH_ERRORS[131047].retryable and GRAPH_ERRORS[131056].retryable


async def test_wrong_token_is_not_retried_and_not_leaked(fake: FakeGraphAPI) -> None:
    err = await send_error(live_adapter(fake, access_token=Secret("EAAwrong-token-xyz")), outbound())
    assert not err.retryable and err.code == "190" and "EAAwrong" not in str(err)


async def test_connection_refused_is_retryable() -> None:
    gone = await FakeGraphAPI(access_token=ACCESS_TOKEN).start_and_stop()
    err = await send_error(live_adapter(gone), outbound())
    assert err.retryable and err.code == "network"


async def test_fetch_media(fake: FakeGraphAPI) -> None:
    media_id = fake.add_media(b"\xff\xd8\xff\xe0photo-bytes", "image/jpeg")
    async with closing(live_adapter(fake)) as adapter:
        data, content_type = await adapter.fetch_media(MediaRef(f"whatsapp-media:{media_id}", "image/jpeg"))
    assert data == b"\xff\xd8\xff\xe0photo-bytes" and content_type == "image/jpeg"
    assert fake.downloads == [media_id]


@pytest.mark.parametrize(
    ("ref", "target", "status", "retryable"),
    [
        ("whatsapp-media:404404404", None, 0, False),  # unknown / expired media id
        ("https://example.com/x.jpg", None, 0, False),  # not ours
        ("whatsapp-media:KNOWN", "media", 500, True),
        ("whatsapp-media:KNOWN", "download", 503, True),
        ("whatsapp-media:KNOWN", "download", 404, False),
        ("whatsapp-media:KNOWN", "media", 429, True),
    ],
)
async def test_fetch_media_failures(
    fake: FakeGraphAPI, ref: str, target: str | None, status: int, retryable: bool
) -> None:
    media_id = fake.add_media(b"bytes")
    if target is not None:
        code = 130429 if status == 429 else 131000
        fake.fail_next(1, target=target, status=status, code=code, message="boom")
    async with closing(live_adapter(fake)) as adapter:
        with pytest.raises(MediaFetchError) as err:
            await adapter.fetch_media(MediaRef(ref.replace("KNOWN", media_id)))
    assert err.value.retryable is retryable
    assert ACCESS_TOKEN not in err.value.reason


async def test_fetch_media_over_the_limit_is_refused(fake: FakeGraphAPI) -> None:
    media_id = fake.add_media(b"x" * 2048)
    config = make_adapter(api_base=fake.api_base, phone_number_id=fake.phone_number_id).config
    async with closing(WhatsAppCloudAdapter(config, max_media_bytes=1024)) as adapter:
        with pytest.raises(MediaFetchError) as err:
            await adapter.fetch_media(MediaRef(f"whatsapp-media:{media_id}"))
    assert not err.value.retryable and fake.downloads == []
