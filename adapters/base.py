"""The contract between channel adapters and the gateway.

Every provider speaks its own webhook dialect; an adapter turns one provider request into the
provider-neutral values below and sends `OutboundMessage`s back out. The gateway never looks at a
provider payload, and an adapter never touches the database: that split is what lets a new channel be
one folder plus one registry line.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

from multidict import CIMultiDictProxy, MultiDictProxy, MultiMapping

_T = TypeVar("_T")


class Medium(enum.StrEnum):
    """What the citizen holds in their hand; identities and message budgets depend on it."""

    SMS = "sms"
    WHATSAPP = "whatsapp"
    TELEGRAM = "telegram"
    TWITTER = "twitter"
    WEB = "web"


class AddressKind(enum.StrEnum):
    """How a sender is identified. One phone number on SMS and WhatsApp is one person."""

    PHONE = "phone"
    SHORTCODE = "shortcode"
    TELEGRAM = "telegram"
    TWITTER = "twitter"
    WEB = "web"


@dataclass(frozen=True, slots=True)
class Address:
    kind: AddressKind
    value: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


@dataclass(frozen=True, slots=True)
class MediaRef:
    """A picture or document the citizen attached, as the provider names it (URL or media id)."""

    url: str
    content_type: str | None = None
    provider_id: str | None = None


@dataclass(frozen=True, slots=True)
class GeoPoint:
    latitude: float | None = None
    longitude: float | None = None
    address: str | None = None
    label: str | None = None


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One thing a citizen sent, in any channel's words."""

    channel: str
    medium: Medium
    provider_message_id: str
    sender: Address
    received_at: datetime
    text: str | None = None
    media: tuple[MediaRef, ...] = ()
    location: GeoPoint | None = None
    recipient: str | None = None
    reply_to: str | None = None
    profile_name: str | None = None
    thread_id: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)


class DeliveryStatus(enum.StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    UNDELIVERED = "undelivered"

    @property
    def is_final_failure(self) -> bool:
        return self in (DeliveryStatus.FAILED, DeliveryStatus.UNDELIVERED)


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """A provider telling us what happened to something we sent."""

    channel: str
    provider_message_id: str
    status: DeliveryStatus
    at: datetime
    raw_status: str
    error_code: str | None = None
    error_message: str | None = None


Event = InboundMessage | StatusUpdate


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """A row of the outbox, as an adapter needs it to send."""

    id: int
    channel: str
    to: Address
    text: str
    media_urls: tuple[str, ...] = ()
    reply_to: str | None = None
    kind: str = "reply"
    template: str | None = None
    template_vars: Mapping[str, str] = field(default_factory=dict)
    attempt: int = 1
    metadata: Mapping[str, Any] = field(default_factory=dict)
    reporter_id: int | None = None
    """Who this is for, when known: lets an adapter find the person's own history (e.g. their last
    public tweet) without looking them up by address, which is stored only as a keyed hash."""


@dataclass(frozen=True, slots=True)
class SendResult:
    provider_message_id: str
    status: DeliveryStatus = DeliveryStatus.SENT


class SendError(Exception):
    """A send that did not happen. `retryable` decides between backoff and giving up.

    `retry_after` is the provider's wait in seconds, as the adapter read it; `retry_after_header` is
    the Retry-After header verbatim (delta-seconds or an HTTP date, RFC 9110 10.2.3) when there was
    one, so the outbox can read a date against its own clock rather than the adapter's.
    """

    def __init__(
        self,
        reason: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
        code: str | None = None,
        unreachable: bool = False,
        retry_after_header: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after
        self.code = code
        self.unreachable = unreachable
        self.retry_after_header = retry_after_header

    def __repr__(self) -> str:
        return (
            f"SendError({self.reason!r}, retryable={self.retryable}, code={self.code!r}, "
            f"retry_after={self.retry_after!r})"
        )


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """What an adapter gets to see of an HTTP request: already size-checked and read."""

    method: str
    public_url: str
    path: str
    headers: CIMultiDictProxy[str]
    query: MultiMapping[str]
    body: bytes
    content_type: str
    form: MultiDictProxy[str] | None = None


@dataclass(frozen=True, slots=True)
class WebhookResponse:
    status: int = 200
    body: str = ""
    content_type: str = "text/plain"


@dataclass(frozen=True, slots=True)
class WebhookResult:
    """Events to make durable, then the response the provider expects once they are."""

    events: Sequence[Event]
    response: WebhookResponse


def slots_constructor(cls: type[_T]) -> Callable[..., _T]:
    """A function building `cls(**fields)` with every field given by keyword, in half the time.

    A frozen dataclass's `__init__` sets each field through `object.__setattr__` (a lookup of the
    attribute through the class, then the slot's descriptor); an InboundMessage is thirteen of them,
    a twentieth of a webhook's parsing. This sets the same slots through their descriptors directly
    and builds the very same object (equal, hashed and frozen alike). Only for slotted frozen
    dataclasses without `__post_init__`; every field must be passed, so a field added later cannot
    be forgotten silently.
    """
    if not dataclasses.is_dataclass(cls) or hasattr(cls, "__post_init__") or "__slots__" not in vars(cls):
        raise TypeError(f"{cls.__name__} is not a slotted dataclass without __post_init__")
    names = [item.name for item in dataclasses.fields(cls)]
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    namespace.update({f"_set_{name}": getattr(cls, name).__set__ for name in names})
    lines = [f"def make(*, {', '.join(names)}):", "    self = _new(_cls)"]
    lines += [f"    _set_{name}(self, {name})" for name in names]
    lines.append("    return self")
    exec("\n".join(lines), namespace)  # noqa: S102 - the code is built from the class's own field names
    made: Callable[..., _T] = namespace["make"]
    made.__qualname__ = made.__name__ = f"make_{cls.__name__}"
    return made


make_address = slots_constructor(Address)
make_inbound_message = slots_constructor(InboundMessage)
make_webhook_request = slots_constructor(WebhookRequest)
make_webhook_result = slots_constructor(WebhookResult)


class WebhookRejected(Exception):
    """Bad signature (403), malformed payload (400), wrong verify token (403)...: never a 500."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


WebhookHandler = Callable[[WebhookRequest], Awaitable[WebhookResult]]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: WebhookHandler
    form: bool = False


@runtime_checkable
class ChannelAdapter(Protocol):
    """One provider connection. `routes` are declared as data; the gateway mounts them."""

    name: str
    medium: Medium
    STATUS_MAP: ClassVar[Mapping[str, DeliveryStatus]]

    def routes(self) -> Sequence[Route]: ...

    async def send(self, message: OutboundMessage) -> SendResult: ...

    async def close(self) -> None: ...


# --------------------------------------------------------------------------- optional capabilities
#
# An adapter may also implement any of the methods below; the gateway looks them up with getattr and
# copes without them. They are not part of ChannelAdapter so that a minimal adapter stays minimal.
#
# - `async find_sent(message: OutboundMessage, since: datetime) -> SendResult | None`: whether an
#   in-doubt send reached the provider (see gateway/outbox.py). Look for what `send` would actually
#   have posted (after shortening, templating, fallbacks), created at or after `since` less a clock-skew
#   allowance; answer a SendResult shaped as `send` answers, or None when the provider has none (then
#   it is sent). A lookup the provider does not answer raises `SendError`: the outbox cannot tell, and
#   sends again. Implemented by Twilio (sms/twilio.py) and X (twitter/reconcile.py).
# - `async fetch_media(ref: MediaRef) -> tuple[bytes, str]`: the bytes and content type of an
#   attachment the adapter produced in an InboundMessage, downloaded with the adapter's own
#   credentials (Twilio basic auth, a Graph API bearer token, a Telegram bot token). Raises
#   `MediaFetchError`. gateway/media.py calls it in the background and stores the result as evidence.


class MediaFetchError(Exception):
    """An attachment could not be downloaded. `retryable` separates a provider hiccup from a media
    id that will never resolve (expired, deleted, not ours)."""

    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


@runtime_checkable
class FetchesMedia(Protocol):
    async def fetch_media(self, ref: MediaRef) -> tuple[bytes, str]: ...


QUICK_REPLIES: Mapping[str, tuple[str, ...]] = {
    "confirm": ("YA", "BATAL"),
    "confirm_plain": ("YA", "BATAL"),
    "confirm_no_place": ("YA", "BATAL"),
    "photo_added": ("YA", "BATAL"),
    "remind_confirmation": ("YA", "BATAL"),
    "ask_duplicate": ("YA", "TIDAK"),
    "ask_duplicate_again": ("YA", "TIDAK"),
    "remind_duplicate": ("YA", "TIDAK"),
    "ask_photo": ("LEWATI",),
    "send_photo_now": ("LEWATI",),
    "remind_photo": ("LEWATI",),
}
"""Answers a citizen can tap instead of type, by outbox kind (the conversation's message key).

Channels with buttons (Telegram inline keyboards, WhatsApp interactive replies) show them; a tap comes
back as the same word typed, so the conversation never knows the difference. Channels without buttons
ignore this: the question's text already says what to answer.
"""
