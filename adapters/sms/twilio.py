"""Twilio Programmable Messaging: SMS now, and the shared pieces Twilio WhatsApp reuses.

Twilio speaks the same dialect for SMS and WhatsApp: the same signed form webhooks, the same
Messages REST resource, the same status callbacks; only the address prefix (`whatsapp:`), the sender
and the channel name differ. So everything Twilio-specific lives here once:

- `verify_twilio_request` / `parse_inbound_form` / `parse_status_form`: webhook side;
- `TwilioMessaging`: sending and looking up messages through twilio's own REST client, on a lean
  aiohttp transport (`TwilioTransport`: never a blocking call on the event loop), pointed at
  `api_base` so a local fake can stand in for Twilio;
- `TwilioMessagingAdapter`: the ChannelAdapter built from those, subclassed by `TwilioSmsAdapter` here
  and by the WhatsApp adapter in adapters/whatsapp/.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import email.utils
import functools
import hmac
import logging
import operator
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import aiohttp
from multidict import MultiDict, MultiDictProxy
from twilio.base import values as twilio_values
from twilio.base.exceptions import TwilioException
from twilio.http import AsyncHttpClient
from twilio.http.response import Response as TwilioResponse
from twilio.request_validator import HMAC_SHA1, RequestValidator, get_signature_algorithm
from twilio.rest import Client

from adapters.addresses import normalize_phone, strip_channel_prefix
from adapters.base import (
    Address,
    DeliveryStatus,
    GeoPoint,
    InboundMessage,
    MediaRef,
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
    make_inbound_message,
    make_webhook_result,
)
from adapters.sms.segments import fit
from gateway.config import TwilioConfig

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
SIGNATURE_HEADER = "X-Twilio-Signature"
SIGNATURE_SETTINGS_HEADER = "X-Twilio-Webhooks-Signature-Settings"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
STATUS_PATH = "/webhooks/twilio/status"
MAX_MEDIA = 10
"""Twilio attaches at most ten media to one message; a larger NumMedia is not trusted further."""

CLOCK_SKEW_TOLERANCE = timedelta(seconds=30)
"""How much earlier than `since` find_sent still accepts a message's date_created."""

WHATSAPP_PREFIX = "whatsapp:"
SMS_CHANNEL = "twilio_sms"
WHATSAPP_CHANNEL = "twilio_whatsapp"

STATUS_MAP: Mapping[str, DeliveryStatus] = {
    # Still with Twilio: nothing the citizen could have seen yet.
    "accepted": DeliveryStatus.QUEUED,
    "scheduled": DeliveryStatus.QUEUED,
    "queued": DeliveryStatus.QUEUED,
    "sending": DeliveryStatus.QUEUED,
    # Handed to the carrier / WhatsApp.
    "sent": DeliveryStatus.SENT,
    # Inbound-message states; they only reach us if someone points a number's callback here.
    "receiving": DeliveryStatus.QUEUED,
    "received": DeliveryStatus.DELIVERED,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.READ,
    # Some segments arrived, some did not: not a failure to resend (the citizen got most of it), not a
    # confirmed delivery either.
    "partially_delivered": DeliveryStatus.SENT,
    "undelivered": DeliveryStatus.UNDELIVERED,
    "failed": DeliveryStatus.FAILED,
    # We (or Twilio's validity period) cancelled a queued message: it will never arrive.
    "canceled": DeliveryStatus.FAILED,
}
"""Every MessageStatus Twilio documents, mapped to the gateway's delivery statuses."""


# --------------------------------------------------------------------------- webhook side


EMPTY_TWIML_RESPONSE = WebhookResponse(status=200, body=EMPTY_TWIML, content_type="text/xml")
"""Twilio waits for TwiML; an empty <Response> means "no reply here, we answer through REST". One
for every webhook: it is frozen, and building it was a frozen dataclass's __init__ a message."""


def verify_twilio_request(
    request: WebhookRequest, auth_token: str, *, validate_signatures: bool = True
) -> MultiDictProxy[str]:
    """The request's form, once it is known to be a well-formed form signed by Twilio.

    Twilio signs the URL it called (our public URL, query included) plus the sorted form parameters
    with the account's auth token (HMAC-SHA1), so the check needs the public URL, not the one the
    gateway sees behind a proxy.
    """
    media_type = request.content_type
    if media_type != FORM_CONTENT_TYPE:  # the gateway's router hands it over bare and lowercase
        media_type = media_type.split(";", 1)[0].strip().lower()
    if media_type != FORM_CONTENT_TYPE:
        raise WebhookRejected(415, f"expected {FORM_CONTENT_TYPE}, got {media_type or 'no content type'}")
    if request.form is None:
        raise WebhookRejected(400, "body is not a readable urlencoded form")
    form = request.form
    if validate_signatures:
        signature = request.headers.get(SIGNATURE_HEADER, "").strip()
        if not signature:
            raise WebhookRejected(403, f"missing {SIGNATURE_HEADER} header")
        settings = request.headers.get(SIGNATURE_SETTINGS_HEADER)
        # Without the header it is the Auth Token's HMAC_SHA1, as get_signature_algorithm answers.
        algorithm = get_signature_algorithm(settings) if settings else HMAC_SHA1
        if not _signature_matches(auth_token, request.public_url, form, signature, algorithm):
            raise WebhookRejected(403, f"{SIGNATURE_HEADER} does not match the request")
    return form


class FormRequestValidator(RequestValidator):  # type: ignore[misc]  # twilio ships no types
    """twilio's RequestValidator, computing the very same signatures for our parsed forms faster.

    twilio builds the signed string field by field (a set and a sort per field name, a string
    concatenation per value), which cost a fifth of a webhook's parsing. The signed sequence is the
    names in order, each name's distinct values in order: for a form without a repeated name that is
    its fields ordered by name (`_signed_fields`), otherwise its distinct (name, value) pairs sorted.
    `hmac.digest` is the same HMAC in one call. Anything else goes to twilio.
    """

    DIGESTS: ClassVar[Mapping[str, str]] = {"HMAC_SHA1": "sha1", "HMAC_SHA256": "sha256"}

    def compute_signature(self, uri: str, params: Any, algorithm: str | None = None) -> str:
        digest = self.DIGESTS.get((algorithm or "HMAC_SHA1").upper())
        if digest is None or not isinstance(params, MultiDictProxy | MultiDict):
            return str(super().compute_signature(uri, params, algorithm))
        signed = uri + _signed_fields(params)
        return (
            base64.b64encode(hmac.digest(self.token, signed.encode("utf-8"), digest)).decode("utf-8").strip()
        )


_FIELD_ORDERS: dict[tuple[str, ...], tuple[list[str], Callable[[Sequence[str]], tuple[str, ...]]]] = {}
"""For each sequence of distinct field names seen: the names sorted, each followed by a place for its
value, and a getter that puts a form's values (in the form's order) in that order. Twilio posts each
kind of webhook with its fields in one order, so a handful of entries serve every request and the
sort is done once per shape."""
MAX_FIELD_ORDERS = 256
MAX_ORDERED_FIELDS = 64
"""Bounds on what `_FIELD_ORDERS` keeps: the names come from the request, before its signature is
checked, so anyone can send new ones."""


def _signed_fields(form: MultiDictProxy[str] | MultiDict[str]) -> str:
    """The part of the signed string after the URL: each name followed by each of its distinct
    values, names in order and a name's values in order (twilio's `compute_signature`)."""
    names = tuple(form.keys())  # multidict 7 lists each name once, older versions each field
    order = _FIELD_ORDERS.get(names) if len(names) == len(form) else None
    if order is None:
        if len(names) != len(form) or len(names) < 2 or len(set(names)) != len(names):
            return "".join(name + value for name, value in sorted(set(form.items())))
        index = sorted(range(len(names)), key=names.__getitem__)
        order = ([part for i in index for part in (names[i], "")], operator.itemgetter(*index))
        if len(_FIELD_ORDERS) < MAX_FIELD_ORDERS and len(names) <= MAX_ORDERED_FIELDS:
            _FIELD_ORDERS[names] = order
    template, values_in_order = order
    parts = template.copy()
    parts[1::2] = values_in_order(tuple(form.values()))
    return "".join(parts)


@functools.lru_cache(maxsize=16)
def _validator(auth_token: str) -> FormRequestValidator:
    """One validator per token (it keeps nothing but the token's bytes)."""
    return FormRequestValidator(auth_token)


def _signature_matches(
    auth_token: str, url: str, form: MultiDictProxy[str], signature: str, algorithm: str
) -> bool:
    """RequestValidator.validate, with a fast path for the usual case.

    `validate` always computes two HMACs (the URL with and without its port, since Twilio is not
    consistent about which it signs). The exact URL is always one of those two, and it is the one
    Twilio signed almost every time, so it is tried first; anything else goes to `validate`, which
    then decides exactly as it always would.
    """
    validator = _validator(auth_token)
    try:
        expected = validator.compute_signature(url, form, algorithm)
    except ValueError:  # an algorithm twilio does not know: validate() refuses it (and logs why)
        return bool(validator.validate(url, form, signature, algorithm))
    if hmac.compare_digest(str(expected).encode(), signature.encode()):
        return True
    return bool(validator.validate(url, form, signature, algorithm))


def require(form: Mapping[str, str], *names: str) -> str:
    """The first non-empty field among `names` (Twilio's aliases), or a 400 naming the field."""
    for name in names:
        value = form.get(name, "").strip()
        if value:
            return value
    raise WebhookRejected(400, f"missing required field {names[0]}")


def parse_inbound_form(
    form: Mapping[str, str],
    *,
    channel: str,
    medium: Medium,
    received_at: datetime,
    default_region: str = "ID",
) -> InboundMessage:
    """One Twilio inbound message webhook (SMS or WhatsApp) as an InboundMessage."""
    message_sid = require(form, "MessageSid", "SmsMessageSid", "SmsSid")
    raw_from = require(form, "From")
    try:
        sender = normalize_phone(raw_from, default_region)
    except ValueError:
        raise WebhookRejected(400, "field From is not an address") from None
    body = form.get("Body", "")
    extra = {
        key: form[key]
        for key in ("AccountSid", "NumSegments", "WaId", "ButtonText", "ButtonPayload", "MessageType")
        if form.get(key)
    }
    return make_inbound_message(
        channel=channel,
        medium=medium,
        provider_message_id=message_sid,
        sender=sender,
        received_at=received_at,
        text=body if body.strip() else None,
        media=_media(form),
        location=_location(form, message_sid),
        recipient=form.get("To") or None,
        reply_to=form.get("OriginalRepliedMessageSid") or None,
        profile_name=form.get("ProfileName") or None,
        thread_id=None,
        extra=extra,
    )


def _media(form: Mapping[str, str]) -> tuple[MediaRef, ...]:
    raw_count = form.get("NumMedia", "0").strip() or "0"
    try:
        count = int(raw_count)
    except ValueError:
        raise WebhookRejected(400, f"field NumMedia is not a number: {raw_count[:20]!r}") from None
    if count < 0:
        raise WebhookRejected(400, "field NumMedia is negative")
    refs = []
    for index in range(min(count, MAX_MEDIA)):
        url = form.get(f"MediaUrl{index}", "").strip()
        if not url:
            # Forgiving: a missing URL loses one attachment, never the citizen's text.
            log.warning("twilio webhook: NumMedia=%d but MediaUrl%d is missing", count, index)
            continue
        content_type = form.get(f"MediaContentType{index}") or None
        refs.append(MediaRef(url=url, content_type=content_type, provider_id=url.rsplit("/", 1)[-1]))
    return tuple(refs)


def _location(form: Mapping[str, str], message_sid: str) -> GeoPoint | None:
    lat_raw, lon_raw = form.get("Latitude", "").strip(), form.get("Longitude", "").strip()
    if not (lat_raw and lon_raw):
        return None
    try:
        lat, lon = float(lat_raw), float(lon_raw)
    except ValueError:
        log.warning("twilio webhook %s: unreadable Latitude/Longitude, location dropped", message_sid)
        return None
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        log.warning("twilio webhook %s: Latitude/Longitude out of range, location dropped", message_sid)
        return None
    return GeoPoint(
        latitude=lat,
        longitude=lon,
        address=form.get("Address") or None,
        label=form.get("Label") or None,
    )


def status_channel(form: Mapping[str, str]) -> str:
    """Which adapter a status callback is about: Twilio uses one callback shape for SMS and WhatsApp."""
    for key in ("To", "From"):
        if form.get(key, "").lower().startswith(WHATSAPP_PREFIX):
            return WHATSAPP_CHANNEL
    return SMS_CHANNEL


def parse_status_form(form: Mapping[str, str], *, at: datetime) -> StatusUpdate | None:
    """A status callback as a StatusUpdate; None for a MessageStatus Twilio has not documented.

    An unknown status is acknowledged (a 4xx would make Twilio retry it forever) but produces no event;
    it is logged so the table can be extended.
    """
    message_sid = require(form, "MessageSid", "SmsSid")
    raw_status = require(form, "MessageStatus", "SmsStatus").lower()
    status = STATUS_MAP.get(raw_status)
    if status is None:
        log.warning(
            "twilio status callback for %s: unknown MessageStatus %r ignored", message_sid, raw_status
        )
        return None
    return StatusUpdate(
        channel=status_channel(form),
        provider_message_id=message_sid,
        status=status,
        at=at,
        raw_status=raw_status,
        error_code=form.get("ErrorCode") or None,
        error_message=form.get("ErrorMessage") or None,
    )


# --------------------------------------------------------------------------- REST side


@dataclass(frozen=True, slots=True)
class ErrorRule:
    retryable: bool
    unreachable: bool = False
    meaning: str = ""


TWILIO_ERRORS: Mapping[int, ErrorRule] = {
    20003: ErrorRule(False, meaning="authentication failed (check account_sid / auth_token)"),
    20404: ErrorRule(False, meaning="resource not found"),
    20429: ErrorRule(True, meaning="too many requests"),
    20500: ErrorRule(True, meaning="Twilio internal error"),
    20503: ErrorRule(True, meaning="Twilio service unavailable"),
    21211: ErrorRule(False, unreachable=True, meaning="invalid 'To' phone number"),
    21408: ErrorRule(False, meaning="sending to this region is not enabled on the account"),
    21602: ErrorRule(False, meaning="message body is required"),
    21606: ErrorRule(False, meaning="'From' number cannot send SMS"),
    21610: ErrorRule(False, unreachable=True, meaning="recipient unsubscribed (replied STOP)"),
    21611: ErrorRule(True, meaning="'From' number has too many queued messages"),
    21612: ErrorRule(False, meaning="'To' number cannot be reached from this 'From' number"),
    21614: ErrorRule(False, unreachable=True, meaning="'To' number is not a mobile number"),
    21617: ErrorRule(False, meaning="message body exceeds 1600 characters"),
    21635: ErrorRule(False, unreachable=True, meaning="'To' number cannot receive SMS"),
    30001: ErrorRule(True, meaning="queue overflow"),
}
"""Twilio error codes on message creation, by what the outbox should do about them.

Extended per channel: the WhatsApp adapter adds its 63xxx codes through `error_rules`.
"""


def classify_failure(
    status: int | None,
    code: int | None,
    detail: str,
    retry_after: float | None = None,
    rules: Mapping[int, ErrorRule] = TWILIO_ERRORS,
) -> SendError:
    """A SendError from what Twilio answered: the error code first, then the HTTP status."""
    rule = rules.get(code) if code is not None else None
    code_text = str(code) if code is not None else (str(status) if status is not None else None)
    prefix = f"twilio HTTP {status}" if status is not None else "twilio"
    if code is not None:
        prefix += f" error {code}"
    if rule is not None:
        reason = f"{prefix}: {rule.meaning}" + (f" ({detail})" if detail else "")
        return SendError(
            reason,
            retryable=rule.retryable,
            retry_after=retry_after if rule.retryable else None,
            code=code_text,
            unreachable=rule.unreachable,
        )
    reason = f"{prefix}: {detail}" if detail else prefix
    retryable = status is None or status == 429 or status >= 500 or status == 408
    return SendError(
        reason, retryable=retryable, retry_after=retry_after if retryable else None, code=code_text
    )


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header, which is either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, seconds)


_last_response: contextvars.ContextVar[TwilioResponse | None] = contextvars.ContextVar(
    "twilio_last_response", default=None
)
"""The HTTP response of the current task's last Twilio call.

twilio's exceptions carry status and code but not headers, and the client's own "last response" is
shared across tasks; a ContextVar keeps concurrent sends from reading each other's Retry-After.
"""


class TwilioTransport(AsyncHttpClient):  # type: ignore[misc]
    """The HTTP transport under twilio's REST client: its documented extension point
    (`Client(http_client=...)`, an `AsyncHttpClient` subclass), kept lean for an outbox that sends
    hundreds of messages a second.

    - one aiohttp session (connection pool) for the life of the adapter, made inside the event loop;
    - the form body urlencoded here as bytes (what Twilio's API takes), with repeated keys for list
      values (MediaUrl): aiohttp's FormData builds a multipart writer per request to get the same;
    - the basic-auth header computed once per credential pair;
    - a timeout on every request (twilio passes `timeout=None`, which would let a stalled connection
      hold an outbox row forever); no retries here (the outbox retries, with backoff and Retry-After);
    - the response kept per task in a ContextVar, so a failure's Retry-After can be read;
    - no request logging at INFO (twilio's own client logs recipients' phone numbers).
    """

    def __init__(self, timeout: float) -> None:
        super().__init__(log, True, timeout)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._auth: tuple[tuple[str, str], str] | None = None

    def _basic(self, auth: tuple[str, str]) -> str:
        if self._auth is None or self._auth[0] != auth:
            credentials = f"{auth[0]}:{auth[1]}".encode()
            self._auth = (auth, "Basic " + base64.b64encode(credentials).decode("ascii"))
        return self._auth[1]

    def _pool(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # No connection cap here (aiohttp's default is 100): the outbox bounds sends in flight.
            # No cookies: Twilio's API sets none that matter, and the jar costs on every response.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0),
                cookie_jar=aiohttp.DummyCookieJar(),
                timeout=self._timeout,
            )
        return self._session

    async def request(
        self,
        method: str,
        url: str,
        params: Mapping[str, object] | None = None,
        data: Mapping[str, object] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - twilio's HttpClient signature
        allow_redirects: bool = False,
    ) -> TwilioResponse:
        _last_response.set(None)
        send_headers = dict(headers) if headers else {}
        if auth is not None:
            send_headers["Authorization"] = self._basic(auth)
        body: bytes | None = None
        if data:
            body = form_body(_pairs(data))
            send_headers.setdefault("Content-Type", FORM_CONTENT_TYPE)
        async with self._pool().request(
            method.upper(),
            url,
            params=_pairs(params) if params else None,
            data=body,
            headers=send_headers,
            timeout=self._timeout if timeout is None else aiohttp.ClientTimeout(total=timeout),
            allow_redirects=allow_redirects,
        ) as raw:
            text = await raw.text()
        response = TwilioResponse(raw.status, text, raw.headers)
        log.debug("twilio %s %s -> %d", method.upper(), raw.url.path, raw.status)
        _last_response.set(response)
        return response

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        self._session = None


_FORM_SAFE = frozenset(string.ascii_letters + string.digits + "_.-~")
_FORM_QUOTE = {
    byte: chr(byte) if chr(byte) in _FORM_SAFE else "+" if byte == 0x20 else f"%{byte:02X}"
    for byte in range(256)
}
"""Each byte as `urllib.parse.quote_plus` writes it in a form body."""


def form_body(pairs: Sequence[tuple[str, str]]) -> bytes:
    """`urlencode(pairs)` as bytes, one `str.translate` per field instead of a Python loop per byte
    (the same output: UTF-8, `quote_plus`'s safe characters, `+` for a space)."""
    return "&".join(f"{_form_quote(key)}={_form_quote(value)}" for key, value in pairs).encode("ascii")


def _form_quote(text: str) -> str:
    return text.encode("utf-8").decode("latin-1").translate(_FORM_QUOTE)


def _pairs(values: Mapping[str, object]) -> list[tuple[str, str]]:
    """Form/query fields as (key, value) pairs, a list value becoming repeated keys as Twilio expects."""
    pairs: list[tuple[str, str]] = []
    for key, value in values.items():
        if isinstance(value, (list, tuple)):
            pairs.extend((key, str(item)) for item in value if item is not None)
        elif value is not None:
            pairs.append((key, str(value)))
    return pairs


class TwilioMessaging:
    """The Messages REST resource through twilio's client: create, and find what was created.

    The client and its aiohttp session are made on first use, inside the running event loop.
    """

    def __init__(
        self,
        config: TwilioConfig,
        *,
        status_callback: str | None,
        timeout: float = 15.0,
        error_rules: Mapping[int, ErrorRule] = TWILIO_ERRORS,
    ) -> None:
        self._config = config
        self._status_callback = status_callback
        self._timeout = timeout
        self._rules = error_rules
        self._client: Client | None = None
        self._http: TwilioTransport | None = None

    def _rest(self) -> Any:
        if self._client is None:
            self._http = TwilioTransport(self._timeout)
            client = Client(
                self._config.account_sid,
                self._config.auth_token.reveal(),
                http_client=self._http,
                # Not os.environ: TWILIO_REGION / TWILIO_EDGE there would rewrite api_base's host.
                environment={},
            )
            # Domain.absolute_url joins base_url and the version path: this is how every request
            # (create, list, next pages) goes to api_base instead of https://api.twilio.com.
            client.api.base_url = self._config.api_base.rstrip("/")
            self._client = client
        return self._client

    async def create(
        self, *, to: str, body: str, from_: str | None, media_urls: Sequence[str] = ()
    ) -> SendResult:
        client = self._rest()
        kwargs: dict[str, Any] = {"to": to, "body": body}
        if from_:
            kwargs["from_"] = from_
        if self._config.messaging_service_sid:
            kwargs["messaging_service_sid"] = self._config.messaging_service_sid
        if self._status_callback:
            kwargs["status_callback"] = self._status_callback
        if media_urls:
            kwargs["media_url"] = list(media_urls)
        try:
            instance = await client.messages.create_async(**kwargs)
        except _TRANSPORT_ERRORS as exc:
            raise self._failure(exc) from exc
        sid = instance.sid
        if not sid:
            raise SendError("twilio accepted the message but returned no sid", retryable=True)
        return SendResult(str(sid), STATUS_MAP.get(str(instance.status or ""), DeliveryStatus.SENT))

    async def find(
        self, *, to: str, body: str, from_: str | None, since: datetime, limit: int = 200
    ) -> SendResult | None:
        """The newest outbound message to `to` with exactly `body`, created at or after `since`.

        Filters on To/From only and compares creation times here: Twilio's DateSent filters skip
        messages still queued (no date_sent yet), which are exactly the in-doubt ones.
        """
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        # Twilio's date_created has second resolution and Twilio's clock is not ours. Matching an
        # identical earlier message is the safe mistake: the citizen already has that exact text.
        floor = since.replace(microsecond=0) - CLOCK_SKEW_TOLERANCE
        client = self._rest()
        service = self._config.messaging_service_sid
        try:
            stream = await client.messages.stream_async(
                to=to, from_=from_ or twilio_values.unset, limit=limit, page_size=min(limit, 100)
            )
            async for record in stream:
                created = record.date_created
                if not isinstance(created, datetime) or created < floor:
                    continue
                if not str(record.direction or "outbound").startswith("outbound"):
                    continue
                if not from_ and service and record.messaging_service_sid != service:
                    continue
                if _same_body(record.body, body):
                    return SendResult(
                        str(record.sid), STATUS_MAP.get(str(record.status or ""), DeliveryStatus.SENT)
                    )
        except _TRANSPORT_ERRORS as exc:
            raise self._failure(exc) from exc
        return None

    def _failure(self, exc: Exception) -> SendError:
        response = _last_response.get()
        retry_after = parse_retry_after(response.headers.get("Retry-After")) if response else None
        if isinstance(exc, (aiohttp.ClientError, asyncio.TimeoutError, OSError)):
            # The request may or may not have reached Twilio: retryable, and the outbox can ask
            # find_sent before resending.
            detail = str(exc)[:200]
            reason = f"twilio unreachable: {type(exc).__name__}" + (f" ({detail})" if detail else "")
            return SendError(reason, retryable=True, code="network")
        status = getattr(exc, "status", None)
        if not isinstance(status, int):
            status = response.status_code if response is not None else None
        code = getattr(exc, "code", None)
        if not isinstance(code, int) or code == status:
            code = None
        error = classify_failure(status, code, _error_detail(exc), retry_after, self._rules)
        if error.retryable and response is not None:
            # Verbatim too: the outbox reads an HTTP-date Retry-After against its own clock.
            error.retry_after_header = response.headers.get("Retry-After")
        return error

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
        self._http = None
        self._client = None


_TRANSPORT_ERRORS = (TwilioException, aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError)
"""What a Twilio call fails with: API errors, network trouble, an unreadable answer. Anything else is
a bug in this code and propagates as such."""


def _error_detail(exc: Exception) -> str:
    """Twilio's human message, short. Never the request (it carries no secret, but keep it small)."""
    for attr in ("msg", "detail", "title"):
        value = getattr(exc, attr, None)
        if isinstance(value, str) and value:
            return value[:300]
    return type(exc).__name__


def _same_body(sent: str | None, body: str) -> bool:
    if sent is None:
        return False
    # Trial accounts prefix "Sent from your Twilio trial account - ".
    return sent == body or sent.endswith(" - " + body)


# --------------------------------------------------------------------------- the adapters


def _utcnow() -> datetime:
    return datetime.now(UTC)


class TwilioMessagingAdapter:
    """A Twilio messaging channel; subclasses name the channel, sender, prefix and inbound path."""

    # Plain annotations, not ClassVar: the ChannelAdapter protocol declares them as attributes.
    name: str
    medium: Medium
    STATUS_MAP: ClassVar[Mapping[str, DeliveryStatus]] = STATUS_MAP
    INBOUND_PATH: ClassVar[str]
    ADDRESS_PREFIX: ClassVar[str] = ""
    ERROR_RULES: ClassVar[Mapping[int, ErrorRule]] = TWILIO_ERRORS
    SERVES_STATUS_CALLBACKS: ClassVar[bool] = True
    """The status route is shared by all Twilio channels; exactly one adapter mounts it."""

    def __init__(
        self,
        config: TwilioConfig,
        public_url: str,
        default_region: str = "ID",
        *,
        clock: Clock = _utcnow,
        timeout: float = 15.0,
    ) -> None:
        self.config = config
        self.public_url = public_url.rstrip("/")
        self.default_region = default_region
        self.clock = clock
        self.messaging = TwilioMessaging(
            config,
            status_callback=self.public_url + STATUS_PATH,
            timeout=timeout,
            error_rules=self.ERROR_RULES,
        )
        if not config.validate_signatures:
            log.warning("%s: X-Twilio-Signature checking is OFF; anyone can post webhooks", self.name)

    # -- webhooks

    def routes(self) -> Sequence[Route]:
        routes = [Route("POST", self.INBOUND_PATH, self.handle_inbound, form=True)]
        if self.SERVES_STATUS_CALLBACKS:
            routes.append(Route("POST", STATUS_PATH, self.handle_status, form=True))
        return routes

    def verify(self, request: WebhookRequest) -> MultiDictProxy[str]:
        return verify_twilio_request(
            request, self.config.auth_token.reveal(), validate_signatures=self.config.validate_signatures
        )

    def parse(self, form: Mapping[str, str]) -> InboundMessage:
        return parse_inbound_form(
            form,
            channel=self.name,
            medium=self.medium,
            received_at=self.clock(),
            default_region=self.default_region,
        )

    def parse_status(self, form: Mapping[str, str]) -> StatusUpdate | None:
        return parse_status_form(form, at=self.clock())

    async def handle_inbound(self, request: WebhookRequest) -> WebhookResult:
        form = self.verify(request)
        return make_webhook_result(events=[self.parse(form)], response=EMPTY_TWIML_RESPONSE)

    async def handle_status(self, request: WebhookRequest) -> WebhookResult:
        form = self.verify(request)
        update = self.parse_status(form)
        return WebhookResult(events=[update] if update else [], response=WebhookResponse(status=200))

    # -- sending

    def sender(self) -> str | None:
        """The `From` to send with; None lets the Messaging Service pick from its pool."""
        raise NotImplementedError

    def destination(self, to: Address) -> str:
        return self.ADDRESS_PREFIX + strip_channel_prefix(to.value)

    def prepare_text(self, message: OutboundMessage) -> str:
        return message.text

    async def send(self, message: OutboundMessage) -> SendResult:
        text = self.prepare_text(message)
        if not text.strip() and not message.media_urls:
            raise SendError("nothing to send: empty text", retryable=False, code="empty_body")
        return await self.messaging.create(
            to=self.destination(message.to),
            body=text,
            from_=self.sender(),
            media_urls=self.media_urls(message),
        )

    def media_urls(self, message: OutboundMessage) -> Sequence[str]:
        return message.media_urls

    async def find_sent(self, message: OutboundMessage, since: datetime) -> SendResult | None:
        """Whether an in-doubt send of `message` reached Twilio after `since` (the outbox asks this
        after a crash, so a reply that did go out is not sent twice)."""
        return await self.messaging.find(
            to=self.destination(message.to),
            body=self.prepare_text(message),
            from_=self.sender(),
            since=since,
        )

    async def close(self) -> None:
        await self.messaging.close()


class TwilioSmsAdapter(TwilioMessagingAdapter):
    """SMS through a Twilio number (or Messaging Service): `POST /webhooks/twilio/sms`.

    Outbound text is fitted into `max_segments` SMS. A suffix that must survive shortening (the
    tracking link) can be passed as `message.metadata["sms_suffix"]`; it is appended to the text.
    """

    name = SMS_CHANNEL
    medium = Medium.SMS
    INBOUND_PATH = "/webhooks/twilio/sms"

    def __init__(
        self,
        config: TwilioConfig,
        public_url: str,
        default_region: str = "ID",
        *,
        clock: Clock = _utcnow,
        timeout: float = 15.0,
        max_segments: int = 2,
    ) -> None:
        super().__init__(config, public_url, default_region, clock=clock, timeout=timeout)
        self.max_segments = max_segments

    # Kept under the names the gateway and the brief use.
    async def handle_sms(self, request: WebhookRequest) -> WebhookResult:
        return await self.handle_inbound(request)

    def routes(self) -> Sequence[Route]:
        return [
            Route("POST", self.INBOUND_PATH, self.handle_sms, form=True),
            Route("POST", STATUS_PATH, self.handle_status, form=True),
        ]

    def sender(self) -> str | None:
        return self.config.sms_from or None

    def media_urls(self, message: OutboundMessage) -> Sequence[str]:
        # MMS does not exist on Indonesian networks; a photo link belongs in the text.
        return ()

    def prepare_text(self, message: OutboundMessage) -> str:
        suffix = message.metadata.get("sms_suffix")
        if not isinstance(suffix, str) or not suffix:
            return fit(message.text, self.max_segments)
        try:
            return fit(message.text, self.max_segments, suffix=suffix)
        except ValueError:
            # A suffix longer than the whole budget: better a shortened message than none.
            log.warning("sms_suffix of outbox row %s does not fit in %d SMS", message.id, self.max_segments)
            return fit(message.text + " " + suffix, self.max_segments)
