"""Carrier SMS through a Kannel-style HTTP gateway: the usual way a short code like 1708 is connected.

Inbound (`GET|POST /webhooks/kannel`): Kannel's sms-service calls our URL with its escape codes
substituted, e.g.

    get-url = "https://lapor.example/webhooks/kannel?token=SECRET&from=%p&to=%P&text=%a&id=%I&ts=%T&smsc=%i"

or posts the text as the body (`post-url`, with X-Kannel-From / X-Kannel-To headers). Kannel cannot
sign requests, so a shared `token` in the URL authenticates it (compared in constant time). Set
`max-messages = 0` (or `omit-empty = true`) in the sms-service: replies go out through sendsms, and
the empty 200 we answer must not become an SMS.

Outbound: `sendsms` with the text fitted into the SMS budget (GSM-7 / UCS-2 aware, adapters/sms/
segments.py), `coding=2` when the text needs UCS-2, and a `dlr-url` back to the same route carrying
our own reference (Kannel's sendsms returns no message id), so delivery reports (`%d`) update the
outbox row. The short code is the sender and is kept raw (never turned into a phone number).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import ClassVar
from urllib.parse import parse_qsl, urlencode

import aiohttp
from multidict import MultiDict, MultiDictProxy

from adapters.addresses import normalize_phone
from adapters.base import (
    AddressKind,
    DeliveryStatus,
    InboundMessage,
    Medium,
    OutboundMessage,
    Route,
    SendError,
    SendResult,
    StatusUpdate,
    WebhookRejected,
    WebhookRequest,
    WebhookResponse,
    WebhookResult,
)
from adapters.sms.segments import UCS2, encoding, fit
from gateway.config import KannelConfig
from gateway.logs import register_secret

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

CHANNEL = "kannel"
WEBHOOK_PATH = "/webhooks/kannel"
MAX_TEXT = 2000
"""Longer inbound text is not an SMS (Kannel reassembles at most a few hundred characters)."""

DLR_MASK = 1 | 2 | 4 | 8 | 16
STATUS_MAP: Mapping[str, DeliveryStatus] = {
    "1": DeliveryStatus.DELIVERED,  # delivered to the phone
    "2": DeliveryStatus.UNDELIVERED,  # the SMSC gave up delivering it to the phone
    "4": DeliveryStatus.SENT,  # buffered at the SMSC (phone off, out of coverage): still on its way
    "8": DeliveryStatus.SENT,  # accepted by the SMSC
    "16": DeliveryStatus.FAILED,  # rejected by the SMSC: it will never be delivered
}
"""Kannel's dlr-mask values (the `%d` of a delivery report)."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


class KannelAdapter:
    name = CHANNEL
    medium = Medium.SMS
    STATUS_MAP: ClassVar[Mapping[str, DeliveryStatus]] = STATUS_MAP

    def __init__(
        self,
        config: KannelConfig,
        public_url: str,
        default_region: str = "ID",
        *,
        clock: Clock = _utcnow,
        timeout: float = 15.0,
        max_segments: int = 2,
    ) -> None:
        self.config = config
        self.public_url = public_url.rstrip("/")
        self.default_region = default_region
        self.clock = clock
        self.max_segments = max_segments
        self._token = config.inbound_token.reveal().encode()
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        register_secret(config.inbound_token.reveal())
        register_secret(config.password.reveal())

    # -- webhooks

    def routes(self) -> Sequence[Route]:
        return [Route("GET", WEBHOOK_PATH, self.handle), Route("POST", WEBHOOK_PATH, self.handle)]

    def params(self, request: WebhookRequest) -> tuple[MultiDictProxy[str], str | None]:
        """The query (and a urlencoded POST body) as parameters, plus a post-url text body if any."""
        merged: MultiDict[str] = MultiDict(request.query)
        body_text: str | None = None
        if request.method == "POST" and request.body:
            media_type = request.content_type.split(";", 1)[0].strip().lower()
            charset = (
                request.headers.get("X-Kannel-Charset")
                or _charset(request.headers.get("Content-Type", ""))
                or "utf-8"
            )
            try:
                decoded = request.body.decode(charset if charset.lower() != "ucs-2" else "utf-16-be")
            except (LookupError, UnicodeDecodeError):
                raise WebhookRejected(400, f"body is not valid {charset[:20]}") from None
            if media_type == "application/x-www-form-urlencoded":
                merged.extend(parse_qsl(decoded, keep_blank_values=True))
            elif media_type in ("text/plain", "application/octet-stream", ""):
                body_text = decoded
            else:
                raise WebhookRejected(415, f"expected text/plain or a form, got {media_type}")
        for header, key in (("X-Kannel-From", "from"), ("X-Kannel-To", "to"), ("X-Kannel-Time", "ts"),
                            ("X-Kannel-SMSC", "smsc")):  # fmt: skip
            if key not in merged and request.headers.get(header):
                merged[key] = request.headers[header]
        return MultiDictProxy(merged), body_text

    def verify(self, params: Mapping[str, str]) -> None:
        if not self._token:
            raise WebhookRejected(403, "channels.kannel.inbound_token is not configured")
        given = params.get("token")
        if not given:
            raise WebhookRejected(403, "missing token")
        if not hmac.compare_digest(given.encode(), self._token):
            raise WebhookRejected(403, "token does not match")

    async def handle(self, request: WebhookRequest) -> WebhookResult:
        params, body_text = self.params(request)
        self.verify(params)
        if params.get("type") == "dlr":
            update = self.parse_dlr(params)
            return WebhookResult([update] if update else [], WebhookResponse(200, "", "text/plain"))
        message = self.parse_mo(params, body_text)
        return WebhookResult([message], WebhookResponse(200, "", "text/plain"))

    def parse_mo(self, params: Mapping[str, str], body_text: str | None) -> InboundMessage:
        raw_from = params.get("from", "").strip()
        if not raw_from:
            raise WebhookRejected(400, "missing from (%p)")
        text = body_text if body_text is not None else params.get("text")
        if text is None:
            raise WebhookRejected(400, "missing text (%a)")
        if len(text) > MAX_TEXT:
            raise WebhookRejected(400, f"text longer than {MAX_TEXT} characters")
        to = params.get("to", "").strip() or self.config.shortcode
        try:
            sender = normalize_phone(raw_from, self.default_region)
        except ValueError:
            raise WebhookRejected(400, "from is not an address") from None
        message_id = params.get("id", "").strip()
        if not message_id:
            # No %I in the get-url: the same SMS redelivered must still get the same id.
            basis = "\x1f".join((raw_from, to, params.get("ts", ""), text))
            message_id = "k-" + hashlib.sha256(basis.encode()).hexdigest()[:32]
        extra = {key: params[key] for key in ("smsc", "ts", "coding", "charset") if params.get(key)}
        return InboundMessage(
            channel=CHANNEL,
            medium=Medium.SMS,
            provider_message_id=message_id[:128],
            sender=sender,
            received_at=self.clock(),
            text=text if text.strip() else None,
            recipient=to,  # the short code, raw: "1708"
            extra=extra,
        )

    def parse_dlr(self, params: Mapping[str, str]) -> StatusUpdate | None:
        ref = params.get("ref", "").strip()
        if not ref:
            raise WebhookRejected(400, "delivery report without ref")
        value = params.get("status", "").strip()
        status = STATUS_MAP.get(value)
        if status is None:
            # Kannel sends one documented value per report; anything else is logged and acknowledged
            # (a 4xx would only make Kannel retry it).
            log.warning("kannel delivery report for %s: unknown value %r ignored", ref, value[:20])
            return None
        answer = params.get("answer", "").strip()
        failed = status.is_final_failure
        return StatusUpdate(
            channel=CHANNEL,
            provider_message_id=ref,
            status=status,
            at=self.clock(),
            raw_status=value,
            error_code=value if failed else None,
            error_message=answer[:300] if failed and answer else None,
        )

    # -- sending

    def dlr_url(self, ref: str) -> str:
        # %d (report value), %A (SMSC answer) and %T are Kannel escape codes, substituted by Kannel.
        query = urlencode({"token": self.config.inbound_token.reveal(), "type": "dlr", "ref": ref})
        return f"{self.public_url}{WEBHOOK_PATH}?{query}&status=%d&answer=%A&ts=%T"

    def prepare_text(self, message: OutboundMessage) -> str:
        suffix = message.metadata.get("sms_suffix")
        if isinstance(suffix, str) and suffix:
            try:
                return fit(message.text, self.max_segments, suffix=suffix)
            except ValueError:
                return fit(message.text + " " + suffix, self.max_segments)
        return fit(message.text, self.max_segments)

    async def send(self, message: OutboundMessage) -> SendResult:
        if message.to.kind != AddressKind.PHONE:
            raise SendError(
                f"kannel cannot send to a {message.to.kind} address", retryable=False, code="address"
            )
        text = self.prepare_text(message)
        if not text.strip():
            raise SendError("nothing to send: empty text", retryable=False, code="empty_body")
        ref = f"lpr-{message.id}-{secrets.token_hex(4)}"
        params = {
            "username": self.config.username,
            "password": self.config.password.reveal(),
            "from": self.config.shortcode,
            "to": message.to.value,
            "text": text,
            "charset": "UTF-8",
            "dlr-mask": str(DLR_MASK),
            "dlr-url": self.dlr_url(ref),
        }
        if encoding(text) == UCS2:
            params["coding"] = "2"
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.get(self.config.sendsms_url, params=params) as response:
                answer = (await response.text(errors="replace")).strip()[:200]
                status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise SendError(
                f"kannel unreachable: {type(exc).__name__}", retryable=True, code="network"
            ) from None
        return _outcome(status, answer, ref)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        self._session = None


def _outcome(status: int, answer: str, ref: str) -> SendResult:
    """Kannel answers sendsms with an HTTP status and `<code>: <text>` ("0: Accepted for delivery",
    "3: Queued for later delivery", "4: Temporal failure, try again later")."""
    if 200 <= status < 300:
        return SendResult(ref, DeliveryStatus.QUEUED)
    code = answer.split(":", 1)[0].strip() if ":" in answer else ""
    reason = f"kannel HTTP {status}: {answer or 'no answer'}"
    if status in (401, 403):
        raise SendError(
            reason + " (check channels.kannel.username/password)", retryable=False, code=str(status)
        )
    retryable = status >= 500 or status == 429 or code == "4"
    raise SendError(reason, retryable=retryable, code=str(status))


def _charset(content_type: str) -> str | None:
    for part in content_type.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "charset" and value:
            return value.strip('"')
    return None
