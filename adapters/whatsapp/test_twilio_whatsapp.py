"""Twilio WhatsApp adapter: fixtures through the real route handler; sending, templates and media
through a fake Twilio (twilio's own client pointed at it)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from adapters.base import (
    Address,
    AddressKind,
    ChannelAdapter,
    FetchesMedia,
    MediaFetchError,
    MediaRef,
    Medium,
    OutboundMessage,
    WebhookRequest,
)
from adapters.testing import (
    FORM,
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
from adapters.whatsapp.twilio import TwilioWhatsAppAdapter
from gateway.config import Secret, TwilioConfig
from tests.channels.fake_twilio_whatsapp import FakeTwilioMedia, FakeTwilioWhatsApp
from tests.fakes.twilio_webhooks import sign, sms_params

PUBLIC_URL = "https://lapor.semarangkota.go.id"
AUTH_TOKEN = "test-auth-token-9f8e7d6c5b4a"
ACCOUNT_SID = "AC1f0e8a9d4c2b7a6e5d4c3b2a19081726"
WHATSAPP_FROM = "whatsapp:+14155238886"
FIXTURES = load_fixtures(Path(__file__).parent / "fixtures" / "twilio")
CITIZEN = Address(AddressKind.PHONE, "+6281234567890")


def make_adapter(clock: Clock | None = None, **config: Any) -> TwilioWhatsAppAdapter:
    settings: dict[str, Any] = {
        "account_sid": ACCOUNT_SID,
        "auth_token": Secret(AUTH_TOKEN),
        "whatsapp_from": WHATSAPP_FROM,
    }
    settings.update(config)
    timeout = settings.pop("timeout", 5.0)
    return TwilioWhatsAppAdapter(
        TwilioConfig(**settings), PUBLIC_URL, clock=clock or Clock(), timeout=timeout
    )


def build_request(fixture: dict[str, Any], token: str = AUTH_TOKEN) -> WebhookRequest:
    """Twilio's POST of the fixture's params, signed (or not) as the fixture asks, then tampered with."""
    url = PUBLIC_URL + fixture["route"]
    params: dict[str, str] = dict(fixture["params"])
    headers: dict[str, str] = {"Content-Type": fixture["content_type"]}
    kind = fixture["signature"]
    if kind == "valid":
        headers["X-Twilio-Signature"] = sign(url, params, token)
    elif kind == "wrong":
        headers["X-Twilio-Signature"] = "dGhpcyBpcyBub3QgYSBzaWduYXR1cmU="
    elif kind == "other_url":
        headers["X-Twilio-Signature"] = sign(PUBLIC_URL + "/webhooks/twilio/sms", params, token)
    elif kind == "other_token":
        headers["X-Twilio-Signature"] = sign(url, params, "another-account-token")
    params.update(fixture.get("tamper", {}))
    is_form = fixture["content_type"] == FORM
    body = (urlencode(params) if is_form else json.dumps(params)).encode()
    return webhook_request(
        "POST", url, headers=headers, body=body, content_type=fixture["content_type"],
        form=params if is_form else None,
    )  # fmt: skip


@pytest.mark.parametrize("name", sorted(FIXTURES))
async def test_fixture(name: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    outcome = await run_route(route_handler(make_adapter()), build_request(FIXTURES[name]))
    assert_expected(outcome, FIXTURES[name]["expect"])
    assert_secrets_hidden(outcome, caplog.records, AUTH_TOKEN)


def test_fixture_table_is_balanced() -> None:
    failures, successes = count_outcomes(FIXTURES)
    assert failures >= 12 and failures >= successes - 2
    # Every accepted fixture says which content type Twilio gets back (TwiML, or nothing).
    assert all("content_type" in f["expect"] for f in FIXTURES.values() if "reason" not in f["expect"])


def test_adapter_shape() -> None:
    adapter = make_adapter()
    assert isinstance(adapter, ChannelAdapter) and isinstance(adapter, FetchesMedia)
    assert (adapter.name, adapter.medium) == ("twilio_whatsapp", Medium.WHATSAPP)
    # The status route is shared and served by the SMS adapter; it knows WhatsApp callbacks by prefix.
    assert [(r.method, r.path) for r in adapter.routes()] == [("POST", "/webhooks/twilio/whatsapp")]
    assert adapter.sender() == "whatsapp:+14155238886"
    assert make_adapter(whatsapp_from="+14155238886").sender() == "whatsapp:+14155238886"


# --------------------------------------------------------------------------- against the fake


@pytest.fixture
async def fake() -> AsyncIterator[FakeTwilioWhatsApp]:
    async with FakeTwilioWhatsApp() as server:
        yield server


def live_adapter(
    fake: FakeTwilioWhatsApp, clock: Clock | None = None, **config: Any
) -> TwilioWhatsAppAdapter:
    settings = {
        "account_sid": fake.account_sid,
        "auth_token": Secret(fake.auth_token),
        "api_base": fake.base_url,
    }
    return make_adapter(clock, **{**settings, **config})


def outbound(
    text: str = "Aduan diterima, kode LPR-7K3M9Q", kind: str = "submitted", **kw: Any
) -> OutboundMessage:
    return OutboundMessage(id=3, channel="twilio_whatsapp", to=CITIZEN, text=text, kind=kind, **kw)


async def test_send_free_form(fake: FakeTwilioWhatsApp) -> None:
    async with closing(live_adapter(fake)) as adapter:
        result = await adapter.send(outbound("x" * 2000))
    [sent] = fake.sent
    assert (sent["to"], sent["from"]) == ("whatsapp:+6281234567890", WHATSAPP_FROM)
    assert len(sent["body"]) == 1600 and sent["body"].endswith("…")
    assert sent["status_callback"] == PUBLIC_URL + "/webhooks/twilio/status"
    assert result.provider_message_id == sent["sid"]


async def test_status_update_goes_as_content_template_outside_the_window(fake: FakeTwilioWhatsApp) -> None:
    clock = Clock()
    templates = ["status_update=HXb5b62575e6e4ff6129ad7c8efe1f983e"]
    update = outbound("Aduan LPR-7K3M9Q:\n\nditeruskan ke DPU", kind="status_update")
    async with closing(live_adapter(fake, clock, whatsapp_templates=templates)) as adapter:
        await adapter.send(update)  # unknown window: template
        params = sms_params(From="whatsapp:+6281234567890", To=WHATSAPP_FROM, Body="STATUS")
        adapter.parse(params)  # the citizen writes: window open
        await adapter.send(update)
        clock.now += timedelta(hours=23, minutes=45)  # too close to the end to risk free-form
        await adapter.send(update)
    [first, third] = fake.templates
    assert first["content_sid"] == "HXb5b62575e6e4ff6129ad7c8efe1f983e"
    assert json.loads(first["content_variables"]) == {"1": "Aduan LPR-7K3M9Q: diteruskan ke DPU"}
    assert third == first
    assert [m["body"].startswith("[HX") for m in fake.sent] == [True, False, True]


async def test_63016_falls_back_to_the_default_template(fake: FakeTwilioWhatsApp) -> None:
    fake.closed_windows.add("whatsapp:+6281234567890")
    async with closing(
        live_adapter(fake, whatsapp_templates=["*=HX00000000000000000000000000000001"])
    ) as adapter:
        result = await adapter.send(outbound("Laporan selesai", kind="resolved"))
    [template] = fake.templates
    assert template["content_sid"] == "HX00000000000000000000000000000001"
    assert result.provider_message_id == fake.sent[0]["sid"]


@pytest.mark.parametrize(
    ("code", "retryable", "unreachable"),
    [(63016, False, False), (63003, False, True), (63024, False, True), (63018, True, False),
     (63038, True, False), (63007, False, False), (63049, False, False), (21211, False, True)],
)  # fmt: skip
async def test_whatsapp_errors_are_classified(
    fake: FakeTwilioWhatsApp, code: int, retryable: bool, unreachable: bool
) -> None:
    fake.fail_next(1, status=400 if not retryable else 429, code=code)
    err = await send_error(live_adapter(fake), outbound())
    assert (err.retryable, err.unreachable, err.code) == (retryable, unreachable, str(code))


async def test_button_payload_is_the_text() -> None:
    adapter = make_adapter()
    message = adapter.parse(sms_params(From="whatsapp:+6281234567890", Body="Ya, kirim", ButtonPayload="YA"))
    assert message.text == "YA" and message.extra["ButtonPayload"] == "YA"


async def test_fetch_media_with_basic_auth_and_redirect(fake: FakeTwilioWhatsApp) -> None:
    async with FakeTwilioMedia(fake.account_sid, fake.auth_token) as media:
        url = media.add("MM" + "a" * 32, b"\xff\xd8\xffjpeg", "image/jpeg")
        async with closing(live_adapter(fake, api_base=media.base_url)) as adapter:
            data, content_type = await adapter.fetch_media(MediaRef(url, "image/jpeg"))
    assert (data, content_type) == (b"\xff\xd8\xffjpeg", "image/jpeg")


@pytest.mark.parametrize(("failure", "retryable"), [(500, True), (404, False), (None, False)])
async def test_fetch_media_failures(fake: FakeTwilioWhatsApp, failure: int | None, retryable: bool) -> None:
    async with FakeTwilioMedia(fake.account_sid, fake.auth_token) as media:
        url = media.add("MM" + "b" * 32, b"bytes")
        if failure is not None:
            media.failures.append(failure)
        else:
            url = url.replace(media.base_url, media.base_url.replace("127.0.0.1", "localhost"))
        # Without a failure: a host that is not Twilio's gets no credentials, and is refused (401).
        async with closing(live_adapter(fake, api_base=media.base_url)) as adapter:
            with pytest.raises(MediaFetchError) as err:
                await adapter.fetch_media(MediaRef(url))
    assert err.value.retryable is retryable and fake.auth_token not in err.value.reason
