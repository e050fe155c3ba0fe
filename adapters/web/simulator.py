"""The simulator channel: chat with the bot in a browser as an SMS, WhatsApp, Telegram or X user.

It is a real adapter, not a shortcut: messages go through the same pipeline, conversation, store and
outbox as any provider's. "Sending" to the simulator marks the outbox row delivered and wakes the
page's long-poll; the page reads the replies back from the outbox, so a reload shows the history.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from adapters.addresses import normalize_phone
from adapters.base import (
    Address,
    AddressKind,
    DeliveryStatus,
    GeoPoint,
    InboundMessage,
    MediaRef,
    Medium,
    OutboundMessage,
    Route,
    SendResult,
    WebhookRejected,
    WebhookRequest,
    WebhookResponse,
    WebhookResult,
)

CHANNEL = "simulator"
_HANDLE = re.compile(r"^@?[A-Za-z0-9_]{1,30}$")
MAX_TEXT = 4096


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SimulatorAdapter:
    name = CHANNEL
    medium = Medium.WEB
    STATUS_MAP: ClassVar[Mapping[str, DeliveryStatus]] = {"delivered": DeliveryStatus.DELIVERED}

    def __init__(self, default_region: str = "ID", clock: Callable[[], datetime] = _utcnow) -> None:
        self._region = default_region
        self._clock = clock
        self._changed = asyncio.Condition()
        self.delivered: list[OutboundMessage] = []

    def routes(self) -> Sequence[Route]:
        return (Route("POST", "/simulator/api/send", self.handle_send),)

    def sender_address(self, medium: Medium, who: str) -> Address:
        """The identity a simulated user has: a phone number for SMS/WhatsApp, a handle otherwise."""
        who = who.strip()
        if medium in (Medium.SMS, Medium.WHATSAPP):
            address = normalize_phone(who, self._region)
            if address.kind != AddressKind.PHONE:
                raise WebhookRejected(400, f"'{who}' is not a phone number")
            return address
        if medium == Medium.TELEGRAM:
            if not who.isdigit():
                raise WebhookRejected(400, "a Telegram user id is digits")
            return Address(AddressKind.TELEGRAM, who)
        if medium == Medium.TWITTER:
            if not _HANDLE.match(who):
                raise WebhookRejected(400, "an X handle is letters, digits and _")
            return Address(AddressKind.TWITTER, who.lstrip("@").lower())
        return Address(AddressKind.WEB, who[:64])

    async def handle_send(self, request: WebhookRequest) -> WebhookResult:
        if not request.content_type.startswith("application/json"):
            raise WebhookRejected(415, "send JSON")
        try:
            payload: Any = json.loads(request.body)
        except ValueError:
            raise WebhookRejected(400, "body is not valid JSON") from None
        if not isinstance(payload, dict):
            raise WebhookRejected(400, "body must be a JSON object")
        try:
            medium = Medium(str(payload.get("medium", "sms")))
        except ValueError:
            raise WebhookRejected(400, "medium must be sms, whatsapp, telegram, twitter or web") from None
        who = payload.get("from")
        if not isinstance(who, str) or not who:
            raise WebhookRejected(400, "missing 'from'")
        text = payload.get("text")
        if text is not None and (not isinstance(text, str) or len(text) > MAX_TEXT):
            raise WebhookRejected(400, f"'text' must be a string of at most {MAX_TEXT} characters")
        location = _location(payload.get("location"))
        media = _media(payload.get("media"))
        if not (text or "").strip() and location is None and not media:
            raise WebhookRejected(400, "a message needs text, a photo or a location")
        message_id = payload.get("id") or uuid.uuid4().hex
        if not isinstance(message_id, str) or len(message_id) > 64:
            raise WebhookRejected(400, "'id' must be a short string")
        message = InboundMessage(
            channel=CHANNEL,
            medium=medium,
            provider_message_id=message_id,
            sender=self.sender_address(medium, who),
            received_at=self._clock(),
            text=text or None,
            media=media,
            location=location,
            profile_name=payload.get("name") if isinstance(payload.get("name"), str) else None,
        )
        body = json.dumps({"id": message_id, "address": str(message.sender)})
        return WebhookResult([message], WebhookResponse(200, body, "application/json"))

    async def send(self, message: OutboundMessage) -> SendResult:
        async with self._changed:
            self.delivered.append(message)
            self._changed.notify_all()
        return SendResult(f"sim-{message.id}", DeliveryStatus.DELIVERED)

    async def wait_for_change(self, timeout: float) -> bool:  # noqa: ASYNC109 - a long-poll's bound
        """Long-poll support: True when something was delivered before `timeout` seconds."""
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait(), timeout)
            except TimeoutError:
                return False
            return True

    async def close(self) -> None:
        async with self._changed:
            self._changed.notify_all()


def _location(value: Any) -> GeoPoint | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise WebhookRejected(400, "'location' must be an object")
    try:
        lat = float(value["latitude"])
        lon = float(value["longitude"])
    except (KeyError, TypeError, ValueError):
        raise WebhookRejected(400, "'location' needs numeric latitude and longitude") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise WebhookRejected(400, "'location' is outside the globe")
    label = value.get("label")
    return GeoPoint(lat, lon, label=label if isinstance(label, str) else None)


def _media(value: Any) -> tuple[MediaRef, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > 5:
        raise WebhookRejected(400, "'media' must be a list of at most 5 items")
    refs = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("url"), str):
            raise WebhookRejected(400, "each media item needs a 'url'")
        refs.append(MediaRef(item["url"], item.get("content_type") or "image/jpeg"))
    return tuple(refs)
