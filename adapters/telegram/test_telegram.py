"""Telegram adapter: every fixture through the real route handler, sending and files through a fake Bot API.

Fixtures (adapters/telegram/fixtures/*.json) are updates shaped as the Bot API documents them plus the
expected outcome; the secret token header is added (right, wrong or not at all) as each fixture asks.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
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
from adapters.telegram import TelegramAdapter
from adapters.telegram.adapter import file_api_base
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
from gateway.config import Secret, TelegramConfig
from tests.fakes.telegram import FakeTelegramBotAPI

SECRET = "s3cret-Webhook-Token_42"
FIXTURES = load_fixtures(Path(__file__).parent / "fixtures")
CHAT = 5123456789


def make_adapter(**config: Any) -> TelegramAdapter:
    settings: dict[str, Any] = {"bot_token": Secret("123:webhook-only"), "secret_token": Secret(SECRET)}
    settings.update(config)
    return TelegramAdapter(TelegramConfig(**settings), clock=lambda: FIXED_NOW)


def build_request(fixture: dict[str, Any]) -> WebhookRequest:
    headers = {"Content-Type": fixture["content_type"]}
    secret = {"valid": SECRET, "wrong": "not-the-secret", "empty": "", "upper": SECRET.upper()}
    if fixture["secret"] != "missing":
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret[fixture["secret"]]
    if "raw_body_hex" in fixture:
        body = bytes.fromhex(fixture["raw_body_hex"])
    elif "raw_body" in fixture:
        body = fixture["raw_body"].encode()
    else:
        body = json.dumps(fixture["update"]).encode()
    return webhook_request(
        "POST", "https://lapor.semarangkota.go.id/webhooks/telegram",
        headers=headers, body=body, content_type=fixture["content_type"],
    )  # fmt: skip


@pytest.mark.parametrize("name", sorted(FIXTURES))
async def test_fixture(name: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    expect = FIXTURES[name]["expect"]
    outcome = await run_route(route_handler(make_adapter()), build_request(FIXTURES[name]))
    assert_expected(outcome, expect)
    assert_secrets_hidden(outcome, caplog.records, SECRET)
    assert outcome.reason is not None or outcome.status == 200
    if "reply_method" in expect:  # an answer in the webhook response saves a Bot API call
        assert json.loads(outcome.body) == expect["reply_method"]
        assert outcome.content_type == "application/json"
    assert all(isinstance(e, InboundMessage) and e.received_at == FIXED_NOW for e in outcome.events)


def test_fixture_table_is_balanced() -> None:
    failures, successes = count_outcomes(FIXTURES)
    assert failures >= 15 and failures >= successes - 3


async def test_without_configured_secret_every_webhook_is_refused() -> None:
    adapter = make_adapter(secret_token=Secret(""))
    request = build_request({**FIXTURES["message_text"], "secret": "empty"})
    with pytest.raises(WebhookRejected) as err:
        await adapter.handle_update(request)
    assert err.value.status == 403 and "secret_token" in err.value.reason


async def test_same_update_twice_has_the_same_id_for_dedup() -> None:
    adapter = make_adapter()
    first = await adapter.handle_update(build_request(FIXTURES["message_photo_caption"]))
    again = await adapter.handle_update(build_request(FIXTURES["message_photo_caption"]))
    [a], [b] = first.events, again.events
    assert isinstance(a, InboundMessage) and isinstance(b, InboundMessage)
    assert a.provider_message_id == b.provider_message_id


def test_adapter_satisfies_protocols() -> None:
    adapter = make_adapter()
    assert isinstance(adapter, ChannelAdapter) and isinstance(adapter, FetchesMedia)
    assert (adapter.name, adapter.medium) == ("telegram", Medium.TELEGRAM)
    assert [(r.method, r.path) for r in adapter.routes()] == [("POST", "/webhooks/telegram")]


@pytest.mark.parametrize(
    ("api_base", "expected"),
    [
        ("https://api.telegram.org/bot", "https://api.telegram.org/file/bot"),
        ("http://127.0.0.1:8081/bot/", "http://127.0.0.1:8081/file/bot"),
        ("https://tg.example/bot{token}", "https://tg.example/file/bot{token}"),
        ("https://tg.example/api", "https://tg.example/api/file/bot"),
    ],
)
def test_file_api_base(api_base: str, expected: str) -> None:
    assert file_api_base(api_base) == expected


# --------------------------------------------------------------------------- against the fake Bot API


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegramBotAPI]:
    async with FakeTelegramBotAPI() as server:
        yield server


def live_adapter(fake: FakeTelegramBotAPI, **config: Any) -> TelegramAdapter:
    settings: dict[str, Any] = {
        "bot_token": Secret(fake.token),
        "secret_token": Secret(SECRET),
        "api_base": fake.api_base,
    }
    settings.update(config)
    return TelegramAdapter(TelegramConfig(**settings), timeout=5.0)


def outbound(
    text: str = "Aduan diterima, kode LPR-7K3M9Q", kind: str = "submitted", **kw: Any
) -> OutboundMessage:
    return OutboundMessage(
        id=1, channel="telegram", to=Address(AddressKind.TELEGRAM, str(CHAT)), text=text, kind=kind, **kw
    )


async def test_send_text(fake: FakeTelegramBotAPI) -> None:
    async with closing(live_adapter(fake)) as adapter:
        result = await adapter.send(outbound())
    [sent] = await fake.wait_for("sendMessage", 1)
    assert (
        sent["params"]["chat_id"] == str(CHAT) and sent["params"]["text"] == "Aduan diterima, kode LPR-7K3M9Q"
    )
    assert "reply_markup" not in sent["params"]
    assert result.provider_message_id == f"{CHAT}:{sent['message']['message_id']}"


@pytest.mark.parametrize(
    ("kind", "buttons"),
    [("confirm", ["YA", "BATAL"]), ("ask_duplicate", ["YA", "TIDAK"]), ("ask_photo", ["LEWATI"])],
)
async def test_questions_get_inline_buttons(fake: FakeTelegramBotAPI, kind: str, buttons: list[str]) -> None:
    async with closing(live_adapter(fake)) as adapter:
        await adapter.send(outbound("Kami catat: ... Balas YA untuk kirim", kind=kind))
    [sent] = fake.sent
    keyboard = sent["params"]["reply_markup"]["inline_keyboard"]
    assert [[b["text"] for b in row] for row in keyboard] == [buttons]
    assert [[b["callback_data"] for b in row] for row in keyboard] == [buttons]


async def test_long_text_is_shortened_to_telegram_limit(fake: FakeTelegramBotAPI) -> None:
    async with closing(live_adapter(fake)) as adapter:
        await adapter.send(outbound("Tindak lanjut petugas. " * 300))
    [sent] = fake.sent
    assert len(sent["params"]["text"]) == 4096 and sent["params"]["text"].endswith("…")


async def test_photo_with_caption(fake: FakeTelegramBotAPI) -> None:
    async with closing(live_adapter(fake)) as adapter:
        await adapter.send(outbound("Perbaikan selesai", media_urls=("https://lapor.example/media/a.jpg",)))
    [sent] = fake.sent
    assert sent["method"] == "sendPhoto" and sent["params"]["caption"] == "Perbaikan selesai"


async def test_retry_after_is_honoured(fake: FakeTelegramBotAPI) -> None:
    fake.fail_next(
        1, method="sendMessage", status=429, description="Too Many Requests: retry after 17", retry_after=17
    )
    async with closing(live_adapter(fake)) as adapter:
        with pytest.raises(SendError) as err:
            await adapter.send(outbound())
        assert (await adapter.send(outbound())).provider_message_id.startswith(str(CHAT))
    assert err.value.retryable and err.value.retry_after == 17.0 and err.value.code == "429"


@pytest.mark.parametrize(
    ("status", "description", "retryable", "unreachable", "code"),
    [
        (403, "Forbidden: bot was blocked by the user", False, True, "403"),
        (403, "Forbidden: user is deactivated", False, True, "403"),
        (400, "Bad Request: chat not found", False, True, "400"),
        (400, "Bad Request: can't parse entities", False, False, "400"),
        (500, "Internal Server Error", True, False, "network"),
        (502, "Bad Gateway", True, False, "network"),
        (409, "Conflict: terminated by other getUpdates request", False, False, "telegram"),
    ],
)
async def test_send_failures_are_classified(
    fake: FakeTelegramBotAPI, status: int, description: str, retryable: bool, unreachable: bool, code: str
) -> None:
    fake.fail_next(1, method="sendMessage", status=status, description=description)
    err = await send_error(live_adapter(fake), outbound())
    assert (err.retryable, err.unreachable, err.code) == (retryable, unreachable, code)
    assert err.retry_after is None


async def test_wrong_token_fails_without_leaking_it(
    fake: FakeTelegramBotAPI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "987654:AAWrongTokenThatMustNotLeak"
    err = await send_error(live_adapter(fake, bot_token=Secret(wrong)), outbound())
    assert not err.retryable and err.code == "401"
    assert wrong not in repr(err) and wrong not in str(err)
    assert all(wrong not in r.getMessage() for r in caplog.records if r.levelno >= logging.INFO)


async def test_connection_refused_is_retryable() -> None:
    gone = await FakeTelegramBotAPI().start_and_stop()
    err = await send_error(live_adapter(gone), outbound())
    assert err.retryable


async def test_non_telegram_address_is_refused(fake: FakeTelegramBotAPI) -> None:
    message = OutboundMessage(
        id=1, channel="telegram", to=Address(AddressKind.PHONE, "+6281234567890"), text="x"
    )
    err = await send_error(live_adapter(fake), message)
    assert not err.retryable and fake.sent == []


async def test_fetch_media_through_get_file(fake: FakeTelegramBotAPI) -> None:
    content = b"\xff\xd8\xff\xe0 not really a jpeg"
    file_id = fake.add_file(content, "photos/file_7.jpg")
    async with closing(live_adapter(fake)) as adapter:
        data, content_type = await adapter.fetch_media(
            MediaRef(url=f"telegram-file:{file_id}", content_type=None)
        )
    assert data == content and content_type == "image/jpeg"
    assert fake.downloads == ["photos/file_7.jpg"]


@pytest.mark.parametrize(
    ("ref", "failure", "retryable"),
    [
        ("telegram-file:unknown-file-id", None, False),
        ("https://example.com/not-telegram.jpg", None, False),
        ("telegram-file:KNOWN", (500, "Internal Server Error"), True),
        ("telegram-file:KNOWN", (400, "Bad Request: file is too big"), False),
    ],
)
async def test_fetch_media_failures(
    fake: FakeTelegramBotAPI, ref: str, failure: tuple[int, str] | None, retryable: bool
) -> None:
    file_id = fake.add_file(b"data")
    if failure is not None:
        fake.fail_next(1, method="getFile", status=failure[0], description=failure[1])
    async with closing(live_adapter(fake)) as adapter:
        with pytest.raises(MediaFetchError) as err:
            await adapter.fetch_media(MediaRef(url=ref.replace("KNOWN", file_id)))
    assert err.value.retryable is retryable
    assert fake.token not in err.value.reason


async def test_set_webhook_registers_url_secret_and_updates(fake: FakeTelegramBotAPI) -> None:
    async with closing(live_adapter(fake)) as adapter:
        await adapter.set_webhook("https://lapor.semarangkota.go.id/webhooks/telegram")
    assert fake.webhook["url"] == "https://lapor.semarangkota.go.id/webhooks/telegram"
    assert fake.webhook["secret_token"] == SECRET
    assert fake.webhook["allowed_updates"] == ["message", "callback_query", "my_chat_member"]


async def test_set_webhook_needs_a_secret(fake: FakeTelegramBotAPI) -> None:
    async with closing(live_adapter(fake, secret_token=Secret(""))) as adapter:
        with pytest.raises(SendError):
            await adapter.set_webhook("https://lapor.semarangkota.go.id/webhooks/telegram")
    assert fake.webhook == {}
