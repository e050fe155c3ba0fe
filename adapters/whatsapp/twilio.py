"""WhatsApp through Twilio: `POST /webhooks/twilio/whatsapp`, replies through the Messages API.

Everything Twilio-shaped (signature check, form parsing, REST client, status callbacks on the shared
`/webhooks/twilio/status` route served by the SMS adapter) comes from adapters/sms/twilio.py. What
WhatsApp adds:

- the `whatsapp:` address prefix and sender;
- the 24-hour window: kinds of message with a configured Content template (`whatsapp_templates`) go
  out as `ContentSid` + `ContentVariables` unless the citizen wrote recently (adapters/whatsapp/window);
- the 63xxx error codes, most of which mean "do not retry";
- `fetch_media`: Twilio media URLs need the account's credentials (basic auth) and redirect to
  short-lived storage URLs.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

import aiohttp

from adapters.addresses import strip_channel_prefix
from adapters.base import (
    InboundMessage,
    MediaFetchError,
    MediaRef,
    Medium,
    OutboundMessage,
    SendError,
    SendResult,
)
from adapters.sms.twilio import (
    _TRANSPORT_ERRORS,
    STATUS_MAP,
    TWILIO_ERRORS,
    WHATSAPP_CHANNEL,
    Clock,
    ErrorRule,
    TwilioMessaging,
    TwilioMessagingAdapter,
)
from adapters.whatsapp.window import (
    SessionWindows,
    needs_template,
    parse_templates,
    template_for,
    template_variables,
)
from gateway.config import TwilioConfig

log = logging.getLogger(__name__)

WHATSAPP_ERRORS: Mapping[int, ErrorRule] = {
    **TWILIO_ERRORS,
    63001: ErrorRule(False, meaning="WhatsApp could not authenticate the request (sender setup)"),
    63003: ErrorRule(False, unreachable=True, meaning="the recipient is not on WhatsApp"),
    63005: ErrorRule(False, meaning="WhatsApp did not accept the content"),
    63007: ErrorRule(False, meaning="no WhatsApp sender with this From address (check whatsapp_from)"),
    63013: ErrorRule(False, meaning="WhatsApp policy violation"),
    63015: ErrorRule(False, meaning="sandbox: the recipient has not joined the sandbox"),
    63016: ErrorRule(False, meaning="outside the 24-hour window: only a template can be sent"),
    63018: ErrorRule(True, meaning="WhatsApp rate limit for this sender"),
    63024: ErrorRule(False, unreachable=True, meaning="invalid WhatsApp recipient"),
    63027: ErrorRule(False, meaning="template does not exist for this language"),
    63028: ErrorRule(False, meaning="template parameter count mismatch"),
    63030: ErrorRule(False, meaning="unsupported template parameter"),
    63032: ErrorRule(False, meaning="WhatsApp limitation: cannot send to this user"),
    63038: ErrorRule(True, meaning="daily WhatsApp message limit reached"),
    63049: ErrorRule(False, meaning="Meta chose not to deliver this message"),
}
"""Twilio's codes plus the WhatsApp (63xxx) ones. Most arrive in failed status callbacks rather than
at creation; the same codes are then in StatusUpdate.error_code."""

WINDOW_ERROR_CODES = frozenset({"63016"})
MAX_BODY = 1600
"""Twilio refuses longer bodies (21617)."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


class TwilioWhatsAppMessaging(TwilioMessaging):
    """The Messages resource, plus creating a message from a Content template."""

    async def create_content(
        self, *, to: str, from_: str | None, content_sid: str, variables: Mapping[str, str]
    ) -> SendResult:
        client = self._rest()
        kwargs: dict[str, Any] = {
            "to": to,
            "content_sid": content_sid,
            "content_variables": json.dumps(dict(variables), ensure_ascii=False),
        }
        if from_:
            kwargs["from_"] = from_
        if self._config.messaging_service_sid:
            kwargs["messaging_service_sid"] = self._config.messaging_service_sid
        if self._status_callback:
            kwargs["status_callback"] = self._status_callback
        try:
            instance = await client.messages.create_async(**kwargs)
        except _TRANSPORT_ERRORS as exc:
            raise self._failure(exc) from exc
        if not instance.sid:
            raise SendError("twilio accepted the template but returned no sid", retryable=True)
        return SendResult(str(instance.sid), STATUS_MAP.get(str(instance.status or ""), STATUS_MAP["sent"]))


class TwilioWhatsAppAdapter(TwilioMessagingAdapter):
    name = WHATSAPP_CHANNEL
    medium = Medium.WHATSAPP
    INBOUND_PATH = "/webhooks/twilio/whatsapp"
    ADDRESS_PREFIX = "whatsapp:"
    SERVES_STATUS_CALLBACKS = False
    ERROR_RULES: ClassVar[Mapping[int, ErrorRule]] = WHATSAPP_ERRORS

    def __init__(
        self,
        config: TwilioConfig,
        public_url: str,
        default_region: str = "ID",
        *,
        clock: Clock = _utcnow,
        timeout: float = 15.0,
        max_media_bytes: int = 10 * 1024 * 1024,
    ) -> None:
        super().__init__(config, public_url, default_region, clock=clock, timeout=timeout)
        self.messaging: TwilioWhatsAppMessaging = TwilioWhatsAppMessaging(
            config,
            status_callback=self.messaging._status_callback,
            timeout=timeout,
            error_rules=self.ERROR_RULES,
        )
        self.templates = parse_templates(config.whatsapp_templates, "channels.twilio.whatsapp_templates")
        self.windows = SessionWindows(clock)
        self._http_timeout = aiohttp.ClientTimeout(total=timeout * 2)
        self._max_media = max_media_bytes
        self._session: aiohttp.ClientSession | None = None

    def sender(self) -> str | None:
        number = strip_channel_prefix(self.config.whatsapp_from)
        return self.ADDRESS_PREFIX + number if number else None

    def parse(self, form: Mapping[str, str]) -> InboundMessage:
        message = super().parse(form)
        self.windows.saw(message.sender)
        payload = form.get("ButtonPayload", "").strip()
        if payload:
            # A quick-reply tap: Body is the label the citizen saw, ButtonPayload the id we chose.
            message = dataclasses.replace(message, text=payload)
        return message

    def prepare_text(self, message: OutboundMessage) -> str:
        text = message.text
        return text if len(text) <= MAX_BODY else text[: MAX_BODY - 1].rstrip() + "…"

    async def send(self, message: OutboundMessage) -> SendResult:
        if needs_template(message, self.templates, self.windows):
            template = template_for(message, self.templates)
            if template is not None:
                return await self._send_template(message, template)
        try:
            return await super().send(message)
        except SendError as exc:
            fallback = template_for(message, self.templates, fallback=True)
            if exc.code not in WINDOW_ERROR_CODES or fallback is None:
                raise
            log.info("outbox row %s: outside the 24-hour window, sending template %s", message.id, fallback)
            return await self._send_template(message, fallback)

    async def _send_template(self, message: OutboundMessage, content_sid: str) -> SendResult:
        return await self.messaging.create_content(
            to=self.destination(message.to),
            from_=self.sender(),
            content_sid=content_sid,
            variables=template_variables(message),
        )

    # -- media

    def _auth_for(self, url: str) -> dict[str, str]:
        """Account credentials go only to Twilio (or the configured api_base host), never elsewhere;
        aiohttp drops the header when Twilio redirects to the (pre-signed) storage URL."""
        host = (urlsplit(url).hostname or "").lower()
        api_host = (urlsplit(self.config.api_base).hostname or "").lower()
        if host == api_host or host == "twilio.com" or host.endswith(".twilio.com"):
            credentials = aiohttp.encode_basic_auth(self.config.account_sid, self.config.auth_token.reveal())
            return {"Authorization": credentials}
        return {}

    async def fetch_media(self, ref: MediaRef) -> tuple[bytes, str]:
        if not ref.url.startswith(("https://", "http://")):
            raise MediaFetchError("not a Twilio media URL", retryable=False)
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._http_timeout)
        try:
            async with self._session.get(ref.url, headers=self._auth_for(ref.url)) as response:
                if response.status >= 400:
                    retryable = response.status >= 500 or response.status == 429
                    raise MediaFetchError(
                        f"twilio media answered HTTP {response.status}", retryable=retryable
                    )
                data = await response.content.read(self._max_media + 1)
                content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise MediaFetchError(f"twilio media unreachable: {type(exc).__name__}", retryable=True) from None
        if len(data) > self._max_media:
            raise MediaFetchError(f"twilio media larger than {self._max_media} bytes", retryable=False)
        return data, (ref.content_type or content_type or "application/octet-stream")

    async def close(self) -> None:
        await super().close()
        if self._session is not None:
            await self._session.close()
        self._session = None
