"""Twilio SMS adapter: every fixture through the real route handler, and sending through a fake Twilio.

Fixtures (adapters/sms/fixtures/*.json) are webhooks shaped as Twilio documents them plus the
expected outcome; each is signed here with a test auth token (or deliberately not) the way Twilio
signs, then handed to the handler the adapter declares for the fixture's route.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlencode

import pytest
from multidict import CIMultiDict, CIMultiDictProxy
from twilio.request_validator import RequestValidator

from adapters.base import (
    Address,
    AddressKind,
    ChannelAdapter,
    DeliveryStatus,
    InboundMessage,
    Medium,
    OutboundMessage,
    SendError,
    StatusUpdate,
    WebhookRejected,
    WebhookRequest,
    WebhookResponse,
)
from adapters.sms.segments import segment_count
from adapters.sms.twilio import (
    EMPTY_TWIML,
    STATUS_MAP,
    TWILIO_ERRORS,
    ErrorRule,
    TwilioMessagingAdapter,
    TwilioSmsAdapter,
    parse_inbound_form,
    parse_retry_after,
)
from adapters.testing import (
    FIXED_NOW,
    FORM,
    Outcome,
    assert_expected,
    assert_secrets_hidden,
    closing,
    count_outcomes,
    form_request,
    load_fixtures,
    route_handler,
    run_route,
    send_error,
    webhook_request,
)
from gateway.config import Secret, TwilioConfig
from tests.fakes.twilio import FakeTwilio
from tests.fakes.twilio_webhooks import sign, sms_params

PUBLIC_URL = "https://lapor.semarangkota.go.id"
AUTH_TOKEN = "test-auth-token-9f8e7d6c5b4a"
ACCOUNT_SID = "AC1f0e8a9d4c2b7a6e5d4c3b2a19081726"
SMS_FROM = "+14155550123"
SMS_ROUTE = "/webhooks/twilio/sms"
CONFIRMATION = "Laporan diterima. Kode: LPR-7K3M9Q"
FIXTURES = load_fixtures(Path(__file__).parent / "fixtures")

DOCUMENTED_STATUSES = {
    "accepted", "scheduled", "queued", "sending", "sent", "receiving", "received", "delivered",
    "undelivered", "failed", "read", "canceled", "partially_delivered",
}  # fmt: skip


def make_adapter(**config: Any) -> TwilioSmsAdapter:
    settings: dict[str, Any] = {
        "account_sid": ACCOUNT_SID,
        "auth_token": Secret(AUTH_TOKEN),
        "sms_from": SMS_FROM,
    }
    settings.update(config)
    return TwilioSmsAdapter(TwilioConfig(**settings), PUBLIC_URL + "/", clock=lambda: FIXED_NOW)


def fixture_signature(kind: str, url: str, params: dict[str, str]) -> str | None:
    """The X-Twilio-Signature header a fixture asks for: right, wrong in some way, or none."""
    if kind == "valid":
        return sign(url, params, AUTH_TOKEN)
    if kind == "wrong":
        return "dGhpcyBpcyBub3QgYSBzaWduYXR1cmU="
    if kind == "other_token":
        return sign(url, params, "someone-elses-token")
    if kind == "other_url":
        return sign(PUBLIC_URL + "/webhooks/twilio/whatsapp", params, AUTH_TOKEN)
    assert kind == "missing", kind
    return None


def build_request(fixture: dict[str, Any]) -> WebhookRequest:
    """The WebhookRequest the gateway would build from Twilio's POST of this fixture."""
    url = PUBLIC_URL + fixture["route"]
    params: dict[str, str] = dict(fixture["params"])
    headers: dict[str, str] = dict(fixture.get("headers", {}))
    signature = fixture_signature(fixture["signature"], url, params)
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    params.update(fixture.get("tamper", {}))
    content_type = fixture["content_type"]
    is_form = content_type == FORM
    raw_body = fixture.get("raw_body")
    if raw_body is not None:
        body = raw_body.encode()
    else:
        body = (urlencode(params) if is_form else json.dumps(params)).encode()
    return webhook_request(
        "POST", url, headers={"Content-Type": content_type, **headers}, body=body, content_type=content_type,
        form=params if is_form and raw_body is None else None,
    )  # fmt: skip


async def run_fixture(adapter: TwilioSmsAdapter, fixture: dict[str, Any]) -> Outcome:
    """Through the handler the adapter declares for the fixture's route (inbound SMS or status)."""
    return await run_route(route_handler(adapter, path=fixture["route"]), build_request(fixture))


@pytest.mark.parametrize("name", sorted(FIXTURES))
async def test_fixture(name: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    expect = FIXTURES[name]["expect"]
    outcome = await run_fixture(make_adapter(), FIXTURES[name])
    assert_expected(outcome, expect)
    if "warning" in expect:
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any(expect["warning"] in w for w in warnings), warnings
    # Whatever happened, the auth token shows up nowhere.
    assert_secrets_hidden(outcome, caplog.records, AUTH_TOKEN)


def test_fixture_table_is_balanced() -> None:
    """As many ways to fail as to succeed: the forgiving parser must also be a strict gate."""
    failures, _ = count_outcomes(FIXTURES)
    assert failures >= 20
    assert set(FIXTURES) >= {f"status_{s}" for s in DOCUMENTED_STATUSES}


def test_status_map_covers_every_documented_value() -> None:
    assert set(STATUS_MAP) == DOCUMENTED_STATUSES
    assert TwilioSmsAdapter.STATUS_MAP is STATUS_MAP
    failing = {k for k, v in STATUS_MAP.items() if v.is_final_failure}
    assert failing == {"undelivered", "failed", "canceled"}


def test_adapter_satisfies_protocol_and_declares_routes() -> None:
    adapter = make_adapter()
    assert isinstance(adapter, ChannelAdapter)
    assert (adapter.name, adapter.medium) == ("twilio_sms", Medium.SMS)
    assert [(r.method, r.path, r.form) for r in adapter.routes()] == [
        ("POST", "/webhooks/twilio/sms", True),
        ("POST", "/webhooks/twilio/status", True),
    ]


async def test_inbound_uses_injected_clock_and_sid_is_stable_for_dedup() -> None:
    adapter = make_adapter()
    fixture = FIXTURES["inbound_plain_text"]
    first = await adapter.handle_sms(build_request(fixture))
    again = await adapter.handle_sms(build_request(fixture))
    [a], [b] = first.events, again.events
    assert isinstance(a, InboundMessage) and isinstance(b, InboundMessage)
    assert a.received_at == FIXED_NOW
    assert a.provider_message_id == b.provider_message_id == fixture["params"]["MessageSid"]
    assert first.response.body == EMPTY_TWIML and first.response.content_type == "text/xml"
    assert (
        first.response
        == again.response
        == WebhookResponse(status=200, body=EMPTY_TWIML, content_type="text/xml")
    )


async def test_unsigned_request_accepted_only_when_validation_is_off() -> None:
    params = sms_params(Body="tanpa tanda tangan")
    fixture = {"route": SMS_ROUTE, "content_type": FORM, "signature": "missing", "params": params}
    assert (await run_fixture(make_adapter(), fixture)).status == 403
    relaxed = await run_fixture(make_adapter(validate_signatures=False), fixture)
    assert relaxed.status == 200
    assert relaxed.event_dicts()[0]["text"] == "tanpa tanda tangan"


async def test_signature_over_url_with_query_string() -> None:
    adapter = make_adapter()
    params = sms_params(Body="LaporHendi got")
    url = PUBLIC_URL + "/webhooks/twilio/sms?source=1708"
    unsigned = build_request(
        {"route": "/webhooks/twilio/sms", "content_type": FORM, "signature": "missing", "params": params}
    )
    headers = CIMultiDictProxy(CIMultiDict({"X-Twilio-Signature": sign(url, params, AUTH_TOKEN)}))
    signed = dataclasses.replace(unsigned, public_url=url, headers=headers)
    result = await adapter.handle_sms(signed)
    assert len(result.events) == 1


def test_whatsapp_form_reuses_parser_with_location_profile_and_reply() -> None:
    form = sms_params(
        From="whatsapp:+6281234567890",
        To="whatsapp:+14155238886",
        Body="",
        Latitude="-6.9840",
        Longitude="110.4094",
        Address="Simpang Lima, Semarang",
        Label="Simpang Lima",
        ProfileName="Sri Wahyuni",
        OriginalRepliedMessageSid="SM0123456789abcdef0123456789abcdef",
        WaId="6281234567890",
    )
    message = parse_inbound_form(
        form, channel="twilio_whatsapp", medium=Medium.WHATSAPP, received_at=FIXED_NOW
    )
    assert message.sender == Address(AddressKind.PHONE, "+6281234567890")
    assert message.location is not None
    assert (message.location.latitude, message.location.longitude) == (-6.984, 110.4094)
    assert message.location.address == "Simpang Lima, Semarang"
    assert message.profile_name == "Sri Wahyuni"
    assert message.reply_to == "SM0123456789abcdef0123456789abcdef"
    assert message.extra["WaId"] == "6281234567890"
    assert message.text is None


@pytest.mark.parametrize(("latitude", "longitude"), [("utara", "110.4"), ("-6.98", ""), ("123.0", "110.4")])
def test_unusable_location_is_dropped_not_the_message(latitude: str, longitude: str) -> None:
    form = sms_params(Body="banjir", Latitude=latitude, Longitude=longitude)
    message = parse_inbound_form(form, channel="twilio_sms", medium=Medium.SMS, received_at=FIXED_NOW)
    assert message.location is None
    assert message.text == "banjir"


@pytest.mark.parametrize(
    ("header", "expected"),
    [("7", 7.0), ("0.5", 0.5), ("-3", 0.0), (None, None), ("soon", None),
     (format_datetime(FIXED_NOW + timedelta(seconds=30), usegmt=True), 30.0)],
)  # fmt: skip
def test_retry_after_header_forms(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, now=FIXED_NOW) == expected


# --------------------------------------------------------------------------- sending


@pytest.fixture
async def fake() -> AsyncIterator[FakeTwilio]:
    async with FakeTwilio() as server:
        yield server


def sending_adapter(fake: FakeTwilio, **config: Any) -> TwilioSmsAdapter:
    settings: dict[str, Any] = {
        "account_sid": fake.account_sid,
        "auth_token": Secret(fake.auth_token),
        "sms_from": SMS_FROM,
        "api_base": fake.base_url,
    }
    settings.update(config)
    timeout = settings.pop("timeout", 5.0)
    return TwilioSmsAdapter(TwilioConfig(**settings), PUBLIC_URL, timeout=timeout)


def outbound(text: str = CONFIRMATION, to: str = "+6281234567890", **kw: Any) -> OutboundMessage:
    return OutboundMessage(id=1, channel="twilio_sms", to=Address(AddressKind.PHONE, to), text=text, **kw)


async def test_send_reaches_twilio_with_callback(fake: FakeTwilio) -> None:
    async with closing(sending_adapter(fake)) as adapter:
        result = await adapter.send(outbound())
    [sent] = await fake.wait_for_messages(1, timeout=2)
    assert result.provider_message_id == sent["sid"] and sent["sid"].startswith("SM")
    assert result.status == DeliveryStatus.QUEUED
    assert (sent["to"], sent["from"], sent["body"]) == ("+6281234567890", SMS_FROM, CONFIRMATION)
    assert sent["status_callback"] == PUBLIC_URL + "/webhooks/twilio/status"


async def test_send_through_messaging_service(fake: FakeTwilio) -> None:
    async with closing(sending_adapter(fake, sms_from="", messaging_service_sid="MG" + "1" * 32)) as adapter:
        await adapter.send(outbound())
    [sent] = fake.sent
    assert sent["from"] is None and sent["messaging_service_sid"] == "MG" + "1" * 32


async def test_long_text_is_fitted_and_suffix_kept(fake: FakeTwilio) -> None:
    note = "Petugas DPU sudah meninjau lokasi dan menjadwalkan perbaikan saluran. " * 10
    link = "https://lapor.semarangkota.go.id/lacak/LPR-7K3M9Q"
    async with closing(sending_adapter(fake)) as adapter:
        await adapter.send(outbound(note, metadata={"sms_suffix": link}))
        await adapter.send(outbound("Terima kasih 🙏 " * 40))
    first, second = fake.sent
    assert first["body"].endswith("... " + link)
    assert segment_count(first["body"]) == 2
    assert second["body"].endswith("…") and segment_count(second["body"]) == 2


async def test_empty_text_is_not_sent(fake: FakeTwilio) -> None:
    err = await send_error(sending_adapter(fake), outbound("   "))
    assert not err.retryable and fake.requests == []


@pytest.mark.parametrize(
    ("status", "code", "retryable", "unreachable"),
    [
        (400, 21211, False, True),
        (400, 21610, False, True),
        (400, 21408, False, False),
        (400, 21612, False, False),
        (400, 21614, False, True),
        (400, 99999, False, False),
        (404, None, False, False),
        (500, None, True, False),
        (503, 20503, True, False),
        (429, None, True, False),
    ],
)
async def test_send_failures_are_classified(
    fake: FakeTwilio, status: int, code: int | None, retryable: bool, unreachable: bool
) -> None:
    fake.fail_next(1, status=status, code=code)
    async with closing(sending_adapter(fake)) as adapter:
        with pytest.raises(SendError) as err:
            await adapter.send(outbound())
        # The failure was the provider's, once: the next send goes through.
        assert (await adapter.send(outbound())).provider_message_id.startswith("SM")
    assert (err.value.retryable, err.value.unreachable) == (retryable, unreachable)
    assert err.value.code == str(code if code is not None else status)
    assert err.value.retry_after is None


async def test_429_carries_retry_after(fake: FakeTwilio) -> None:
    fake.fail_next(1, status=429, code=20429, retry_after=7)
    err = await send_error(sending_adapter(fake), outbound())
    assert err.retryable and err.retry_after == 7.0 and err.code == "20429"


async def test_retry_after_is_per_task_under_concurrency(fake: FakeTwilio) -> None:
    fake.fail_next(1, status=429, code=20429, retry_after=11)
    async with closing(sending_adapter(fake)) as adapter:
        results = await asyncio.gather(
            *(adapter.send(outbound(f"balasan {i}")) for i in range(6)), return_exceptions=True
        )
    errors = [r for r in results if isinstance(r, SendError)]
    assert len(errors) == 1 and errors[0].retry_after == 11.0
    assert len(fake.sent) == 5


async def test_wrong_credentials_fail_without_leaking_the_token(fake: FakeTwilio) -> None:
    err = await send_error(sending_adapter(fake, auth_token=Secret("not-the-token-abc123")), outbound())
    assert not err.retryable and err.code == "20003"
    assert "not-the-token-abc123" not in repr(err) and "not-the-token-abc123" not in str(err)
    assert fake.sent == []


async def test_connection_refused_is_retryable() -> None:
    gone = await FakeTwilio().start_and_stop()  # the port is now closed
    err = await send_error(sending_adapter(gone), outbound())
    assert err.retryable and err.code == "network"


async def test_timeout_is_retryable_and_find_sent_resolves_the_doubt(fake: FakeTwilio) -> None:
    fake.response_delay = 1.0  # Twilio took the message but answers too late
    since = datetime.now(UTC)
    message = outbound("Status laporan LPR-7K3M9Q: diteruskan ke DPU")
    async with closing(sending_adapter(fake, timeout=0.2)) as adapter:
        with pytest.raises(SendError) as err:
            await adapter.send(message)
        assert err.value.retryable
        [accepted] = await fake.wait_for_messages(1, timeout=2)
        fake.response_delay = 0.0
        found = await adapter.find_sent(message, since)
    assert found is not None and found.provider_message_id == accepted["sid"]


async def test_find_sent(fake: FakeTwilio) -> None:
    since = datetime.now(UTC)
    message = outbound("Mohon kirim lokasi kejadian")
    async with closing(sending_adapter(fake)) as adapter:
        assert await adapter.find_sent(message, since) is None
        await adapter.send(outbound("pesan lain"))
        await adapter.send(outbound("Mohon kirim lokasi kejadian", to="+6289876543210"))
        assert await adapter.find_sent(message, since) is None
        sent = await adapter.send(message)
        found = await adapter.find_sent(message, since)
        later = await adapter.find_sent(message, since + timedelta(minutes=5))
    assert found is not None and found.provider_message_id == sent.provider_message_id
    assert found.status == DeliveryStatus.SENT
    assert later is None


async def test_find_sent_reads_past_the_first_page(fake: FakeTwilio) -> None:
    since = datetime.now(UTC)
    target = outbound("balasan pertama")
    async with closing(sending_adapter(fake)) as adapter:
        sent = await adapter.send(target)
        await asyncio.gather(*(adapter.send(outbound(f"balasan {i}")) for i in range(120)))
        found = await adapter.find_sent(target, since)
    assert found is not None and found.provider_message_id == sent.provider_message_id


async def test_find_sent_failure_is_a_send_error(fake: FakeTwilio) -> None:
    async with closing(sending_adapter(fake, auth_token=Secret("wrong-token"))) as adapter:
        with pytest.raises(SendError) as err:
            await adapter.find_sent(outbound(), datetime.now(UTC))
    assert not err.value.retryable


async def test_close_releases_session_and_client_is_rebuilt(fake: FakeTwilio) -> None:
    adapter = sending_adapter(fake)
    await adapter.send(outbound())
    await adapter.close()
    await adapter.close()  # idempotent
    await adapter.send(outbound())
    await adapter.close()
    assert len(fake.sent) == 2


async def test_fake_status_callback_round_trip(fake: FakeTwilio) -> None:
    """The fake's signed status callback is accepted by the adapter's own status route."""
    async with closing(sending_adapter(fake)) as adapter:
        result = await adapter.send(outbound())
    sid = result.provider_message_id
    url, form, headers = fake.status_callback_request(sid, "undelivered", error_code="30003")
    request = form_request(url, form, headers)
    assert request.path == "/webhooks/twilio/status"
    [update] = (await adapter.handle_status(request)).events
    assert isinstance(update, StatusUpdate)
    assert (update.provider_message_id, update.status, update.error_code) == (
        result.provider_message_id, DeliveryStatus.UNDELIVERED, "30003",
    )  # fmt: skip


async def test_fake_wait_for_messages_times_out(fake: FakeTwilio) -> None:
    with pytest.raises(TimeoutError, match="0 message"):
        await fake.wait_for_messages(1, timeout=0.05)


class _WhatsAppLike(TwilioMessagingAdapter):
    """What adapters/whatsapp/ builds on: same verification, parsing and sending, other names."""

    name = "twilio_whatsapp"
    medium = Medium.WHATSAPP
    INBOUND_PATH = "/webhooks/twilio/whatsapp"
    ADDRESS_PREFIX = "whatsapp:"
    SERVES_STATUS_CALLBACKS = False
    ERROR_RULES: ClassVar[Mapping[int, ErrorRule]] = {
        **TWILIO_ERRORS,
        63016: ErrorRule(False, meaning="outside the 24-hour window"),
    }

    def sender(self) -> str | None:
        return "whatsapp:" + self.config.whatsapp_from


async def test_shared_twilio_pieces_serve_a_whatsapp_adapter(fake: FakeTwilio) -> None:
    config = TwilioConfig(
        account_sid=fake.account_sid,
        auth_token=Secret(fake.auth_token),
        whatsapp_from="+14155238886",
        api_base=fake.base_url,
    )
    adapter = _WhatsAppLike(config, PUBLIC_URL)
    assert [r.path for r in adapter.routes()] == ["/webhooks/twilio/whatsapp"]
    params = sms_params(From="whatsapp:+6281234567890", To="whatsapp:+14155238886", Body="Halo")
    url = PUBLIC_URL + "/webhooks/twilio/whatsapp"
    request = form_request(url, params, {"X-Twilio-Signature": sign(url, params, fake.auth_token)})
    [message] = (await adapter.handle_inbound(request)).events
    assert isinstance(message, InboundMessage)
    assert (message.channel, message.sender.value) == ("twilio_whatsapp", "+6281234567890")
    long_text = "Laporan Anda sedang ditindaklanjuti oleh dinas terkait. " * 8
    async with closing(adapter):
        await adapter.send(outbound(long_text))  # not shortened: WhatsApp has no SMS budget
        fake.fail_next(1, status=400, code=63016)
        with pytest.raises(SendError) as err:
            await adapter.send(outbound())
    [sent] = fake.sent
    assert (sent["to"], sent["from"], sent["body"]) == (
        "whatsapp:+6281234567890", "whatsapp:+14155238886", long_text,
    )  # fmt: skip
    assert not err.value.retryable and err.value.code == "63016"


@pytest.mark.parametrize(
    ("signed_url", "algorithm", "accepted"),
    [
        (PUBLIC_URL + ":443" + SMS_ROUTE, None, True),  # Twilio signed the URL with the default port
        (PUBLIC_URL + SMS_ROUTE, "HMAC_SHA256", True),  # signature settings header asks for SHA-256
        (PUBLIC_URL + ":8443" + SMS_ROUTE, None, False),  # another port is another URL
        ("http://lapor.semarangkota.go.id" + SMS_ROUTE, None, False),  # http is not https
    ],
)
async def test_signature_url_and_algorithm_variants(
    signed_url: str, algorithm: str | None, accepted: bool
) -> None:
    params = sms_params(Body="LaporHendi trotoar rusak")
    signature = str(RequestValidator(AUTH_TOKEN).compute_signature(signed_url, params, algorithm))
    headers = {"X-Twilio-Signature": signature}
    if algorithm:
        headers["X-Twilio-Webhooks-Signature-Settings"] = f"key=webhooks_sharedkey_1,algorithm={algorithm}"
    request = dataclasses.replace(
        build_request({"route": SMS_ROUTE, "content_type": FORM, "signature": "missing", "params": params}),
        headers=CIMultiDictProxy(CIMultiDict(headers)),
    )
    if accepted:
        assert len((await make_adapter().handle_sms(request)).events) == 1
    else:
        with pytest.raises(WebhookRejected) as err:
            await make_adapter().handle_sms(request)
        assert err.value.status == 403
