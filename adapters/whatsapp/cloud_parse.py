"""WhatsApp Cloud API webhook payloads as provider-neutral events.

The payload (https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/components) is
`entry[].changes[].value` with `messages`, `statuses`, `contacts` and `errors` arrays. Meta retries a
webhook that is not answered 200 for days, and holds nothing back meanwhile, so:

- a payload that is not a WhatsApp webhook at all (wrong `object`, no `entry`, broken structure) is
  a 400: nothing can ever come of retrying it;
- things we do not use (another `field` such as template status updates, reactions, messages for
  another phone number of the same business account, types Meta adds later) are acknowledged with
  no events and logged, so they can be added to the table deliberately;
- media the citizen sends that is not evidence (voice, video, stickers) still produces a message,
  marked `extra["unsupported"]`, so the conversation answers instead of leaving the citizen in silence.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from adapters.addresses import normalize_phone
from adapters.base import (
    DeliveryStatus,
    Event,
    GeoPoint,
    InboundMessage,
    MediaRef,
    Medium,
    StatusUpdate,
    WebhookRejected,
)

log = logging.getLogger(__name__)

CHANNEL = "whatsapp_cloud"
MEDIA_SCHEME = "whatsapp-media:"
"""MediaRef URLs look like `whatsapp-media:<media id>`: the id resolves to a short-lived download URL
only through the Graph API with our access token."""

STATUS_MAP: Mapping[str, DeliveryStatus] = {
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.READ,
    "played": DeliveryStatus.READ,  # voice messages: listened to
    "failed": DeliveryStatus.FAILED,
}
"""Every status the Cloud API documents for messages we send."""

EVIDENCE_TYPES = ("image", "document")
UNSUPPORTED_TYPES = ("audio", "video", "sticker", "contacts")
IGNORED_TYPES = ("reaction", "system", "order", "unsupported", "unknown", "request_welcome")
"""Not a citizen's turn in the conversation: a reaction emoji, a number-change notice, a type WhatsApp
itself could not deliver to us."""


@dataclass
class ParsedWebhook:
    events: list[Event] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def media_ref(media_id: str) -> str:
    return MEDIA_SCHEME + media_id


def media_id_of(url: str) -> str | None:
    return url[len(MEDIA_SCHEME) :] if url.startswith(MEDIA_SCHEME) and len(url) > len(MEDIA_SCHEME) else None


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise WebhookRejected(400, f"{where} must be an object")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise WebhookRejected(400, f"{where} must be a list")
    return value


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise WebhookRejected(400, f"missing {where}")
    return value.strip()


def parse_webhook(
    payload: Any, *, phone_number_id: str, received_at: datetime, default_region: str = "ID"
) -> ParsedWebhook:
    body = _obj(payload, "the webhook body")
    if body.get("object") != "whatsapp_business_account":
        raise WebhookRejected(
            400, f"object is {str(body.get('object'))[:40]!r}, not whatsapp_business_account"
        )
    entries = _list(body.get("entry"), "entry")
    if not entries:
        raise WebhookRejected(400, "entry is empty")
    parsed = ParsedWebhook()
    for entry in entries:
        for change in _list(_obj(entry, "entry[]").get("changes"), "entry[].changes"):
            change = _obj(change, "changes[]")
            if change.get("field") != "messages":
                parsed.ignored.append(f"field {change.get('field')!r}")
                continue
            value = _obj(change.get("value"), "changes[].value")
            metadata: dict[str, Any] = value["metadata"] if isinstance(value.get("metadata"), dict) else {}
            if str(metadata.get("phone_number_id", "")) != phone_number_id:
                parsed.ignored.append(f"phone_number_id {metadata.get('phone_number_id')!r} is not ours")
                continue
            _parse_value(value, parsed, received_at, default_region)
    return parsed


def _parse_value(value: dict[str, Any], parsed: ParsedWebhook, received_at: datetime, region: str) -> None:
    names = {}
    for contact in _list(value.get("contacts"), "contacts"):
        if isinstance(contact, dict) and isinstance(contact.get("profile"), dict):
            names[str(contact.get("wa_id", ""))] = contact["profile"].get("name")
    for raw in _list(value.get("messages"), "messages"):
        message = _message(_obj(raw, "messages[]"), names, received_at, region, parsed)
        if message is not None:
            parsed.events.append(message)
    for raw in _list(value.get("statuses"), "statuses"):
        status = _status(_obj(raw, "statuses[]"), received_at, parsed)
        if status is not None:
            parsed.events.append(status)
    for error in _list(value.get("errors"), "errors"):
        if isinstance(error, dict):
            log.warning("whatsapp webhook error %s: %s", error.get("code"), str(error.get("title", ""))[:200])


def _message(
    raw: dict[str, Any], names: Mapping[str, Any], received_at: datetime, region: str, parsed: ParsedWebhook
) -> InboundMessage | None:
    message_id = _str(raw.get("id"), "messages[].id")
    wa_id = _str(raw.get("from"), "messages[].from")
    kind = _str(raw.get("type"), "messages[].type")
    if kind in IGNORED_TYPES:
        parsed.ignored.append(f"message type {kind}")
        return None
    sender = normalize_phone("+" + wa_id.lstrip("+"), region)
    text: str | None = None
    media: tuple[MediaRef, ...] = ()
    location: GeoPoint | None = None
    extra: dict[str, str] = {"wa_id": wa_id}
    if kind == "text":
        text = _obj(raw.get("text"), "text").get("body")
    elif kind in EVIDENCE_TYPES:
        item = _obj(raw.get(kind), kind)
        media_id = _str(item.get("id"), f"{kind}.id")
        media = (MediaRef(media_ref(media_id), item.get("mime_type") or None, media_id),)
        text = item.get("caption")
        if kind == "document" and item.get("filename"):
            extra["filename"] = str(item["filename"])[:200]
    elif kind == "location":
        location = _location(_obj(raw.get("location"), "location"), message_id)
        if location is None:
            raise WebhookRejected(400, "location needs numeric latitude and longitude in range")
    elif kind == "interactive":
        text, extra["button"] = _interactive(_obj(raw.get("interactive"), "interactive"))
    elif kind == "button":
        # A quick-reply button under a template: payload is what we set, text what the citizen saw.
        button = _obj(raw.get("button"), "button")
        text = button.get("payload") or button.get("text")
        extra["button"] = str(text or "")
    elif kind in UNSUPPORTED_TYPES:
        extra["unsupported"] = kind
        attachment = raw.get(kind)
        if isinstance(attachment, dict) and isinstance(attachment.get("caption"), str):
            text = attachment["caption"]
    else:
        parsed.ignored.append(f"undocumented message type {kind[:40]!r}")
        log.warning(
            "whatsapp message %s has an undocumented type %r; acknowledged, not stored", message_id, kind
        )
        return None
    context: dict[str, Any] = raw["context"] if isinstance(raw.get("context"), dict) else {}
    profile = names.get(wa_id)
    return InboundMessage(
        channel=CHANNEL,
        medium=Medium.WHATSAPP,
        provider_message_id=message_id,
        sender=sender,
        received_at=received_at,
        text=text if isinstance(text, str) and text.strip() else None,
        media=media,
        location=location,
        reply_to=str(context["id"]) if context.get("id") else None,
        profile_name=profile if isinstance(profile, str) and profile else None,
        extra=extra,
    )


def _interactive(item: dict[str, Any]) -> tuple[str, str]:
    """A tapped reply button or list row: its id is the word we put there (YA, TIDAK, a category)."""
    kind = item.get("type")
    if kind not in ("button_reply", "list_reply"):
        raise WebhookRejected(400, f"interactive type {str(kind)[:40]!r} is not button_reply or list_reply")
    reply = _obj(item.get(kind), f"interactive.{kind}")
    choice = reply.get("id") or reply.get("title")
    return _str(choice, f"interactive.{kind}.id"), str(reply.get("title") or choice)


def _location(item: dict[str, Any], message_id: str) -> GeoPoint | None:
    try:
        lat, lon = float(item["latitude"]), float(item["longitude"])
    except (KeyError, TypeError, ValueError):
        return None
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        return None
    address = item.get("address")
    name = item.get("name")
    return GeoPoint(
        lat,
        lon,
        address=address if isinstance(address, str) and address else None,
        label=name if isinstance(name, str) and name else None,
    )


def _status(raw: dict[str, Any], received_at: datetime, parsed: ParsedWebhook) -> StatusUpdate | None:
    message_id = _str(raw.get("id"), "statuses[].id")
    raw_status = _str(raw.get("status"), "statuses[].status").lower()
    status = STATUS_MAP.get(raw_status)
    if status is None:
        parsed.ignored.append(f"status {raw_status[:40]!r}")
        log.warning("whatsapp status for %s: undocumented status %r ignored", message_id, raw_status)
        return None
    code = message = None
    errors = raw.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        code = str(first.get("code")) if first.get("code") is not None else None
        details = (
            first.get("error_data", {}).get("details") if isinstance(first.get("error_data"), dict) else None
        )
        message = str(details or first.get("message") or first.get("title") or "")[:300] or None
    return StatusUpdate(
        channel=CHANNEL,
        provider_message_id=message_id,
        status=status,
        at=received_at,
        raw_status=raw_status,
        error_code=code,
        error_message=message,
    )
