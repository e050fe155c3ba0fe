"""Telegram through the Bot API: `POST /webhooks/telegram`, replies through python-telegram-bot's `Bot`.

- Webhooks are authenticated by the `X-Telegram-Bot-Api-Secret-Token` header Telegram echoes back
  from setWebhook (`lapor telegram set-webhook` registers it), compared in constant time. Without a
  configured secret every webhook is refused: a forged update could speak for any Telegram user.
- The bot talks to `api_base` (…/bot, the token is appended by python-telegram-bot) and downloads
  files from the matching …/file/bot, so a local fake stands in for Telegram in tests.
- The bot token is in every API URL. It is registered with the log redactor, httpx's per-request
  INFO log is turned down, and error texts are scrubbed before they reach a SendError.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import mimetypes
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from adapters.base import (
    QUICK_REPLIES,
    AddressKind,
    DeliveryStatus,
    MediaFetchError,
    MediaRef,
    Medium,
    OutboundMessage,
    Route,
    SendError,
    SendResult,
    WebhookRejected,
    WebhookRequest,
    WebhookResponse,
    WebhookResult,
)
from adapters.telegram.parse import CHANNEL, file_id_of, parse_update
from gateway.config import TelegramConfig
from gateway.logs import register_secret

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

WEBHOOK_PATH = "/webhooks/telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
MAX_TEXT = 4096
MAX_CAPTION = 1024
ALLOWED_UPDATES = ("message", "callback_query", "my_chat_member")
"""What setWebhook asks Telegram for: everything else would only be acknowledged and dropped."""

STATUS_MAP: Mapping[str, DeliveryStatus] = {"sent": DeliveryStatus.SENT}
"""Telegram has no delivery receipts: a message the API accepted is as far as we ever know."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


def file_api_base(api_base: str) -> str:
    """`https://api.telegram.org/bot` -> `https://api.telegram.org/file/bot` (also for a fake or a
    self-hosted Bot API server, and for a `{token}` template)."""
    base = api_base.rstrip("/")
    converted, count = re.subn(r"/bot(\{token\})?$", r"/file/bot\1", base)
    return converted if count else base + "/file/bot"


class TelegramAdapter:
    name = CHANNEL
    medium = Medium.TELEGRAM
    STATUS_MAP: ClassVar[Mapping[str, DeliveryStatus]] = STATUS_MAP

    def __init__(
        self,
        config: TelegramConfig,
        default_region: str = "ID",
        *,
        clock: Clock = _utcnow,
        timeout: float = 15.0,
    ) -> None:
        self.config = config
        self.default_region = default_region
        self.clock = clock
        self._timeout = timeout
        self._token = config.bot_token.reveal()
        self._secret = config.secret_token.reveal().encode()
        self._bot: Bot | None = None
        self._bot_lock = asyncio.Lock()
        register_secret(self._token)
        register_secret(config.secret_token.reveal())
        # httpx logs every request URL at INFO, and Telegram's URLs carry the bot token.
        httpx_log = logging.getLogger("httpx")
        if httpx_log.getEffectiveLevel() < logging.WARNING:
            httpx_log.setLevel(logging.WARNING)
        if not self._secret:
            log.warning(
                "telegram: channels.telegram.secret_token is not set; every webhook will be refused "
                "(set it, then run `lapor telegram set-webhook`)"
            )

    # -- webhooks

    def routes(self) -> Sequence[Route]:
        return [Route("POST", WEBHOOK_PATH, self.handle_update)]

    def verify(self, request: WebhookRequest) -> None:
        if not self._secret:
            raise WebhookRejected(403, "channels.telegram.secret_token is not configured")
        given = request.headers.get(SECRET_HEADER)
        if given is None:
            raise WebhookRejected(403, f"missing {SECRET_HEADER} header")
        if not hmac.compare_digest(given.encode(), self._secret):
            raise WebhookRejected(403, f"{SECRET_HEADER} does not match")

    def decode(self, request: WebhookRequest) -> Update:
        media_type = request.content_type.split(";", 1)[0].strip().lower()
        if media_type != "application/json":
            raise WebhookRejected(415, f"expected application/json, got {media_type or 'no content type'}")
        try:
            data = json.loads(request.body)
        except (UnicodeDecodeError, ValueError):
            raise WebhookRejected(400, "body is not valid JSON") from None
        if not isinstance(data, dict):
            raise WebhookRejected(400, "an update is a JSON object")
        if not isinstance(data.get("update_id"), int) or isinstance(data.get("update_id"), bool):
            raise WebhookRejected(400, "missing or non-integer update_id")
        try:
            return Update.de_json(data, None)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise WebhookRejected(400, f"not a Telegram update: {type(exc).__name__}") from None

    async def handle_update(self, request: WebhookRequest) -> WebhookResult:
        self.verify(request)
        update = self.decode(request)
        parsed = parse_update(update, received_at=self.clock(), default_region=self.default_region)
        if parsed.ignored:
            log.info("telegram update %s acknowledged without events: %s", update.update_id, parsed.ignored)
        if parsed.reply_method is not None:
            response = WebhookResponse(200, json.dumps(dict(parsed.reply_method)), "application/json")
        else:
            response = WebhookResponse(200, "", "text/plain")
        return WebhookResult(events=list(parsed.events), response=response)

    # -- the Bot

    async def bot(self) -> Bot:
        """The initialized Bot (getMe done), made on first use inside the running loop."""
        async with self._bot_lock:
            if self._bot is None:
                request = HTTPXRequest(
                    connection_pool_size=32,
                    read_timeout=self._timeout,
                    write_timeout=self._timeout,
                    connect_timeout=self._timeout,
                    media_write_timeout=self._timeout * 2,
                )
                bot = Bot(
                    self._token,
                    base_url=self.config.api_base.rstrip("/"),
                    base_file_url=file_api_base(self.config.api_base),
                    request=request,
                )
                try:
                    await bot.initialize()
                except TelegramError as exc:
                    await _quiet_shutdown(bot)
                    raise self.classify(exc) from None
                self._bot = bot
            return self._bot

    # -- sending

    async def send(self, message: OutboundMessage) -> SendResult:
        if message.to.kind != AddressKind.TELEGRAM:
            raise SendError(
                f"telegram cannot send to a {message.to.kind} address", retryable=False, code="address"
            )
        try:
            chat_id = int(message.to.value)
        except ValueError:
            raise SendError("telegram chat id is not a number", retryable=False, code="address") from None
        text = _shorten(message.text, MAX_TEXT)
        if not text.strip() and not message.media_urls:
            raise SendError("nothing to send: empty text", retryable=False, code="empty_body")
        bot = await self.bot()
        markup = _keyboard(message.kind)
        try:
            if message.media_urls:
                first, *rest = message.media_urls
                caption_fits = len(text) <= MAX_CAPTION
                sent = await bot.send_photo(
                    chat_id, photo=first, caption=text if caption_fits and text else None, reply_markup=markup
                )
                for url in rest:
                    await bot.send_photo(chat_id, photo=url)
                if text.strip() and not caption_fits:
                    sent = await bot.send_message(chat_id, text, reply_markup=markup)
            else:
                sent = await bot.send_message(chat_id, text, reply_markup=markup)
        except TelegramError as exc:
            raise self.classify(exc) from None
        return SendResult(f"{sent.chat.id}:{sent.message_id}", DeliveryStatus.SENT)

    def classify(self, exc: TelegramError) -> SendError:
        """A SendError from what python-telegram-bot raised: what the outbox should do, no token."""
        detail = self._scrub(exc.message)
        if isinstance(exc, RetryAfter):
            return SendError(
                f"telegram flood control: {detail}", retryable=True, retry_after=_retry_after(exc), code="429"
            )
        if isinstance(exc, Forbidden):
            # Blocked by the citizen, or the account is gone: no retry will ever get through.
            return SendError(f"telegram 403: {detail}", retryable=False, code="403", unreachable=True)
        if isinstance(exc, InvalidToken):
            return SendError(
                "telegram rejected the bot token (check channels.telegram.bot_token)",
                retryable=False,
                code="401",
            )
        if isinstance(exc, ChatMigrated):
            return SendError("telegram chat migrated to a supergroup", retryable=False, code="chat_migrated")
        if isinstance(exc, BadRequest):
            lowered = detail.lower()
            unreachable = "chat not found" in lowered or "user is deactivated" in lowered
            return SendError(f"telegram 400: {detail}", retryable=False, code="400", unreachable=unreachable)
        if isinstance(exc, TimedOut):
            return SendError(f"telegram timed out: {detail}", retryable=True, code="timeout")
        if isinstance(exc, NetworkError):
            return SendError(f"telegram unreachable or failing: {detail}", retryable=True, code="network")
        return SendError(f"telegram error: {detail}", retryable=False, code="telegram")

    def _scrub(self, text: str) -> str:
        text = text.replace(self._token, "***") if self._token else text
        return text[:300]

    # -- media

    async def fetch_media(self, ref: MediaRef) -> tuple[bytes, str]:
        """getFile, then the download from the file API. Bot API files are limited to 20 MB."""
        file_id = file_id_of(ref.url) or ref.provider_id
        if not file_id:
            raise MediaFetchError("not a Telegram file reference", retryable=False)
        try:
            bot = await self.bot()
            tg_file = await bot.get_file(file_id)
            data = bytes(await tg_file.download_as_bytearray())
        except SendError as exc:  # from bot(): the bot could not even start
            raise MediaFetchError(exc.reason, retryable=exc.retryable) from None
        except TelegramError as exc:
            error = self.classify(exc)
            raise MediaFetchError(f"telegram file: {error.reason}", retryable=error.retryable) from None
        content_type = ref.content_type or mimetypes.guess_type(tg_file.file_path or "")[0]
        return data, content_type or "application/octet-stream"

    # -- webhook registration

    async def set_webhook(self, url: str, *, drop_pending_updates: bool = False) -> None:
        """Point Telegram at `url` with our secret token (`lapor telegram set-webhook`)."""
        if not self._secret:
            raise SendError(
                "set channels.telegram.secret_token first: Telegram must send it with every update",
                retryable=False,
                code="config",
            )
        bot = await self.bot()
        try:
            await bot.set_webhook(
                url,
                secret_token=self.config.secret_token.reveal(),
                allowed_updates=list(ALLOWED_UPDATES),
                drop_pending_updates=drop_pending_updates,
            )
        except TelegramError as exc:
            raise self.classify(exc) from None

    async def close(self) -> None:
        async with self._bot_lock:
            if self._bot is not None:
                await _quiet_shutdown(self._bot)
            self._bot = None


def _keyboard(kind: str) -> InlineKeyboardMarkup | None:
    words = QUICK_REPLIES.get(kind)
    if not words:
        return None
    return InlineKeyboardMarkup([[InlineKeyboardButton(word, callback_data=word) for word in words]])


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _retry_after(exc: RetryAfter) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value: Any = exc.retry_after
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)


async def _quiet_shutdown(bot: Bot) -> None:
    try:
        await bot.shutdown()
    except (TelegramError, RuntimeError, OSError):
        log.debug("telegram bot shutdown failed", exc_info=True)
