"""WhatsApp Cloud API (Meta): `GET|POST /webhooks/whatsapp`, replies and media through the Graph API.

- GET answers Meta's subscription check (`hub.mode=subscribe`, `hub.verify_token`, `hub.challenge`).
- POST is authenticated by `X-Hub-Signature-256`: HMAC-SHA256 of the raw body with the app secret,
  compared in constant time before the body is even parsed.
- Sending is a JSON POST to `{api_base}/{phone_number_id}/messages` with the access token as bearer:
  text, reply buttons for yes/no questions (the ids are the words the conversation understands),
  images, and templates (see adapters/whatsapp/window.py for when).
- Media arrive as ids; `fetch_media` resolves an id to its short-lived URL and downloads it, both
  with the access token, and checks the sha256 Meta gives.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

import aiohttp

from adapters.base import (
    QUICK_REPLIES,
    AddressKind,
    DeliveryStatus,
    InboundMessage,
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
from adapters.whatsapp.cloud_parse import CHANNEL, STATUS_MAP, media_id_of, parse_webhook
from adapters.whatsapp.window import (
    SessionWindows,
    needs_template,
    parse_templates,
    template_for,
    template_variables,
)
from gateway.config import WhatsAppCloudConfig
from gateway.logs import register_secret

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

WEBHOOK_PATH = "/webhooks/whatsapp"
SIGNATURE_HEADER = "X-Hub-Signature-256"
MAX_TEXT = 4096
MAX_BUTTON_BODY = 1024
MAX_BUTTONS = 3


@dataclass(frozen=True, slots=True)
class GraphError:
    retryable: bool
    unreachable: bool = False
    window: bool = False
    meaning: str = ""


GRAPH_ERRORS: Mapping[int, GraphError] = {
    0: GraphError(False, meaning="authentication failed (check access_token)"),
    1: GraphError(True, meaning="unknown API error"),
    2: GraphError(True, meaning="API service temporarily unavailable"),
    3: GraphError(False, meaning="the app lacks the capability"),
    4: GraphError(True, meaning="too many API calls for the app"),
    10: GraphError(False, meaning="permission denied"),
    100: GraphError(False, meaning="invalid parameter"),
    190: GraphError(False, meaning="access token expired or invalid"),
    200: GraphError(False, meaning="permission denied"),
    368: GraphError(False, meaning="temporarily blocked for policy violations"),
    80007: GraphError(True, meaning="WhatsApp Business Account rate limit"),
    130429: GraphError(True, meaning="throughput limit reached"),
    130472: GraphError(False, meaning="recipient's number is part of an experiment"),
    131000: GraphError(True, meaning="something went wrong at WhatsApp"),
    131005: GraphError(False, meaning="access denied"),
    131008: GraphError(False, meaning="required parameter missing"),
    131009: GraphError(False, meaning="parameter value invalid"),
    131016: GraphError(True, meaning="WhatsApp service unavailable"),
    131021: GraphError(False, meaning="recipient cannot be the sender"),
    131026: GraphError(False, unreachable=True, meaning="message undeliverable (not on WhatsApp?)"),
    131031: GraphError(False, meaning="business account locked"),
    131042: GraphError(False, meaning="business payment problem"),
    131045: GraphError(False, meaning="phone number not registered (certificate)"),
    131047: GraphError(False, window=True, meaning="more than 24 hours since the citizen last wrote"),
    131048: GraphError(True, meaning="spam rate limit hit"),
    131049: GraphError(False, meaning="WhatsApp chose not to deliver (ecosystem limits)"),
    131050: GraphError(False, meaning="recipient stopped marketing messages"),
    131051: GraphError(False, meaning="unsupported message type"),
    131052: GraphError(False, meaning="media download error"),
    131053: GraphError(False, meaning="media upload error"),
    131056: GraphError(True, meaning="too many messages to this citizen (pair rate limit)"),
    131057: GraphError(True, meaning="business account in maintenance mode"),
    132000: GraphError(False, meaning="template parameter count mismatch"),
    132001: GraphError(False, meaning="template does not exist in this language"),
    132005: GraphError(False, meaning="template text too long"),
    132007: GraphError(False, meaning="template format character policy violated"),
    132012: GraphError(False, meaning="template parameter format mismatch"),
    132015: GraphError(False, meaning="template paused"),
    132016: GraphError(False, meaning="template disabled"),
    132018: GraphError(False, meaning="template parameter has newlines or tabs"),
    133010: GraphError(False, meaning="phone number not registered"),
    135000: GraphError(False, meaning="generic user error"),
}
"""Graph API / Cloud API error codes by what the outbox should do about them. Unknown codes fall back
on the HTTP status (429 and 5xx retry, other 4xx do not)."""

WINDOW_ERROR_CODES = frozenset({"131047"})
"""Codes meaning "free-form text outside the 24-hour window"; also arrive in failed status callbacks."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


def signature_matches(app_secret: bytes, body: bytes, header: str) -> bool:
    algorithm, _, given = header.strip().partition("=")
    if algorithm.lower() != "sha256" or not given:
        return False
    expected = hmac.new(app_secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), given.strip().lower().encode())


class WhatsAppCloudAdapter:
    name = CHANNEL
    medium = Medium.WHATSAPP
    STATUS_MAP: ClassVar[Mapping[str, DeliveryStatus]] = STATUS_MAP

    def __init__(
        self,
        config: WhatsAppCloudConfig,
        default_region: str = "ID",
        *,
        clock: Clock = _utcnow,
        timeout: float = 15.0,
        max_media_bytes: int = 10 * 1024 * 1024,
    ) -> None:
        self.config = config
        self.default_region = default_region
        self.clock = clock
        self.templates = parse_templates(config.templates, "channels.whatsapp_cloud.templates")
        self.windows = SessionWindows(clock)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._max_media = max_media_bytes
        self._app_secret = config.app_secret.reveal().encode()
        self._verify_token = config.verify_token.reveal().encode()
        self._token = config.access_token.reveal()
        self._session: aiohttp.ClientSession | None = None
        for secret in (config.access_token, config.app_secret, config.verify_token):
            register_secret(secret.reveal())

    # -- webhooks

    def routes(self) -> Sequence[Route]:
        return [
            Route("GET", WEBHOOK_PATH, self.handle_verify),
            Route("POST", WEBHOOK_PATH, self.handle_events),
        ]

    async def handle_verify(self, request: WebhookRequest) -> WebhookResult:
        """Meta's subscription handshake: echo hub.challenge iff the verify token is ours."""
        mode = request.query.get("hub.mode")
        token = request.query.get("hub.verify_token")
        challenge = request.query.get("hub.challenge")
        if not mode or token is None or not challenge:
            raise WebhookRejected(400, "expected hub.mode, hub.verify_token and hub.challenge")
        if mode != "subscribe":
            raise WebhookRejected(400, f"hub.mode must be subscribe, got {mode[:20]!r}")
        if not self._verify_token:
            raise WebhookRejected(403, "channels.whatsapp_cloud.verify_token is not configured")
        if not hmac.compare_digest(token.encode(), self._verify_token):
            raise WebhookRejected(403, "hub.verify_token does not match")
        if len(challenge) > 256:
            raise WebhookRejected(400, "hub.challenge is too long")
        return WebhookResult(events=[], response=WebhookResponse(200, challenge, "text/plain"))

    def verify(self, request: WebhookRequest) -> None:
        header = request.headers.get(SIGNATURE_HEADER)
        if not header:
            raise WebhookRejected(403, f"missing {SIGNATURE_HEADER} header")
        if not signature_matches(self._app_secret, request.body, header):
            raise WebhookRejected(403, f"{SIGNATURE_HEADER} does not match the body")

    async def handle_events(self, request: WebhookRequest) -> WebhookResult:
        self.verify(request)
        media_type = request.content_type.split(";", 1)[0].strip().lower()
        if media_type != "application/json":
            raise WebhookRejected(415, f"expected application/json, got {media_type or 'no content type'}")
        try:
            payload = json.loads(request.body)
        except (UnicodeDecodeError, ValueError):
            raise WebhookRejected(400, "body is not valid JSON") from None
        parsed = parse_webhook(
            payload,
            phone_number_id=self.config.phone_number_id,
            received_at=self.clock(),
            default_region=self.default_region,
        )
        for event in parsed.events:
            if isinstance(event, InboundMessage):
                self.windows.saw(event.sender)
        if parsed.ignored:
            log.info("whatsapp webhook: acknowledged without events: %s", "; ".join(parsed.ignored[:5]))
        return WebhookResult(events=parsed.events, response=WebhookResponse(200, "", "text/plain"))

    # -- HTTP

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, headers={"Authorization": f"Bearer {self._token}"}
            )
        return self._session

    @property
    def messages_url(self) -> str:
        return f"{self.config.api_base.rstrip('/')}/{self.config.phone_number_id}/messages"

    # -- sending

    async def send(self, message: OutboundMessage) -> SendResult:
        if message.to.kind != AddressKind.PHONE:
            raise SendError(
                f"whatsapp cannot send to a {message.to.kind} address", retryable=False, code="address"
            )
        if not message.text.strip() and not message.media_urls and not message.template:
            raise SendError("nothing to send: empty text", retryable=False, code="empty_body")
        to = message.to.value.lstrip("+")
        if needs_template(message, self.templates, self.windows):
            template = template_for(message, self.templates)
            if template is not None:
                return await self._post(self._template_body(to, template, message))
        try:
            return await self._post(self._free_form_body(to, message))
        except SendError as exc:
            fallback = template_for(message, self.templates, fallback=True)
            if exc.code not in WINDOW_ERROR_CODES or fallback is None:
                raise
            log.info("outbox row %s: outside the 24-hour window, sending template %s", message.id, fallback)
            return await self._post(self._template_body(to, fallback, message))

    def _free_form_body(self, to: str, message: OutboundMessage) -> dict[str, Any]:
        base: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to}
        text = message.text if len(message.text) <= MAX_TEXT else message.text[: MAX_TEXT - 1].rstrip() + "…"
        if message.media_urls:
            image: dict[str, Any] = {"link": message.media_urls[0]}
            if text.strip():
                image["caption"] = text[:MAX_BUTTON_BODY]
            return {**base, "type": "image", "image": image}
        words = QUICK_REPLIES.get(message.kind, ())
        if words and len(words) <= MAX_BUTTONS and len(text) <= MAX_BUTTON_BODY:
            buttons = [{"type": "reply", "reply": {"id": word, "title": word}} for word in words]
            interactive = {"type": "button", "body": {"text": text}, "action": {"buttons": buttons}}
            return {**base, "type": "interactive", "interactive": interactive}
        return {**base, "type": "text", "text": {"preview_url": False, "body": text}}

    def _template_body(self, to: str, template: str, message: OutboundMessage) -> dict[str, Any]:
        variables = template_variables(message)
        ordered = [variables[key] for key in sorted(variables, key=lambda k: (len(k), k))]
        return {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            "type": "template",
            "template": {
                "name": template,
                "language": {"code": self.config.template_language},
                "components": [
                    {"type": "body", "parameters": [{"type": "text", "text": v} for v in ordered]}
                ],
            },
        }

    async def _post(self, body: dict[str, Any]) -> SendResult:
        try:
            async with self._http().post(self.messages_url, json=body) as response:
                data = await _json(response)
                if response.status >= 400:
                    raise classify(response.status, data, response.headers.get("Retry-After"))
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise SendError(
                f"graph API unreachable: {type(exc).__name__}", retryable=True, code="network"
            ) from None
        messages = data.get("messages") if isinstance(data, dict) else None
        if not isinstance(messages, list) or not messages or not isinstance(messages[0], dict):
            raise SendError("graph API accepted the message but returned no id", retryable=True, code="no_id")
        return SendResult(str(messages[0].get("id")), DeliveryStatus.QUEUED)

    # -- media

    async def fetch_media(self, ref: MediaRef) -> tuple[bytes, str]:
        media_id = media_id_of(ref.url) or ref.provider_id
        if not media_id or "/" in media_id:
            raise MediaFetchError("not a WhatsApp media reference", retryable=False)
        url = f"{self.config.api_base.rstrip('/')}/{media_id}"
        try:
            async with self._http().get(
                url, params={"phone_number_id": self.config.phone_number_id}
            ) as response:
                info = await _json(response)
                if response.status >= 400:
                    error = classify(response.status, info, None)
                    raise MediaFetchError(f"media {media_id}: {error.reason}", retryable=error.retryable)
            if not isinstance(info, dict) or not isinstance(info.get("url"), str):
                raise MediaFetchError(f"media {media_id}: no download URL", retryable=True)
            size = info.get("file_size")
            if isinstance(size, int) and size > self._max_media:
                raise MediaFetchError(f"media {media_id}: {size} bytes is over the limit", retryable=False)
            async with self._http().get(info["url"]) as download:
                if download.status >= 400:
                    raise MediaFetchError(
                        f"media {media_id}: download answered {download.status}",
                        retryable=download.status >= 500 or download.status == 429,
                    )
                data = await download.content.read(self._max_media + 1)
                content_type = download.headers.get("Content-Type", "")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise MediaFetchError(f"media {media_id}: {type(exc).__name__}", retryable=True) from None
        if len(data) > self._max_media:
            raise MediaFetchError(f"media {media_id}: larger than {self._max_media} bytes", retryable=False)
        digest = info.get("sha256")
        if isinstance(digest, str) and digest and hashlib.sha256(data).hexdigest() != digest.lower():
            raise MediaFetchError(f"media {media_id}: sha256 mismatch (truncated download?)", retryable=True)
        mime = info.get("mime_type") if isinstance(info.get("mime_type"), str) else None
        return data, (mime or ref.content_type or content_type.split(";")[0] or "application/octet-stream")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        self._session = None


async def _json(response: aiohttp.ClientResponse) -> Any:
    try:
        return await response.json(content_type=None)
    except (ValueError, aiohttp.ContentTypeError):
        return None


def classify(status: int, data: Any, retry_after_header: str | None) -> SendError:
    """A SendError from a Graph API error answer: the error code first, then the HTTP status."""
    error = data.get("error") if isinstance(data, dict) else None
    error = error if isinstance(error, dict) else {}
    code = error.get("code") if isinstance(error.get("code"), int) else None
    detail = ""
    if isinstance(error.get("error_data"), dict):
        detail = str(error["error_data"].get("details") or "")
    detail = (detail or str(error.get("message") or ""))[:300]
    retry_after = _seconds(retry_after_header)
    rule = GRAPH_ERRORS.get(code) if code is not None else None
    prefix = f"graph HTTP {status}" + (f" error {code}" if code is not None else "")
    code_text = str(code) if code is not None else str(status)
    if rule is not None:
        reason = f"{prefix}: {rule.meaning}" + (f" ({detail})" if detail else "")
        return SendError(
            reason,
            retryable=rule.retryable,
            retry_after=retry_after if rule.retryable else None,
            code=code_text,
            unreachable=rule.unreachable,
            retry_after_header=retry_after_header if rule.retryable else None,
        )
    retryable = status == 429 or status >= 500
    return SendError(
        f"{prefix}: {detail}" if detail else prefix,
        retryable=retryable,
        retry_after=retry_after if retryable else None,
        code=code_text,
        retry_after_header=retry_after_header if retryable else None,
    )


def _seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


__all__ = ["GRAPH_ERRORS", "WINDOW_ERROR_CODES", "WhatsAppCloudAdapter", "classify", "signature_matches"]
