"""Telegram updates as provider-neutral events.

Parsing is python-telegram-bot's (`Update.de_json`), so field names and optional parts follow the Bot
API exactly; this module only decides what an update *means* for intake.

What is acknowledged without events, and why: Telegram redelivers an update until the webhook answers
2xx and holds back everything after it meanwhile, so an update we merely do not use (an edit, a group
message, a channel post, a poll, the bot being added somewhere) must not be answered with a 4xx: that
would stall the citizen's next real message. Only requests that are forged or not updates at all get
a 4xx. Every ignored update is logged with its type so the table can grow.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from telegram import CallbackQuery, Message, Update, User

from adapters.addresses import normalize_phone
from adapters.base import (
    Address,
    AddressKind,
    Event,
    GeoPoint,
    InboundMessage,
    MediaRef,
    Medium,
    WebhookRejected,
)

log = logging.getLogger(__name__)

CHANNEL = "telegram"
FILE_SCHEME = "telegram-file:"
"""MediaRef URLs look like `telegram-file:<file_id>`: a file_id is only usable with our bot token,
through getFile, so the ref names the id rather than pretending to be a URL anyone could open."""

IMAGE_DOCUMENT_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/heic", "application/pdf"})
"""Documents kept as evidence: photos sent "as file" (uncompressed, EXIF intact) and PDFs."""


@dataclass(frozen=True, slots=True)
class ParsedUpdate:
    """What one update asks of the gateway: events to store, and an optional method call to make in
    the webhook response (Telegram executes a `{"method": ...}` body; used to stop a button's spinner
    without a second request)."""

    events: tuple[Event, ...]
    reply_method: Mapping[str, Any] | None = None
    ignored: str | None = None


def file_ref(file_id: str) -> str:
    return FILE_SCHEME + file_id


def file_id_of(url: str) -> str | None:
    return url[len(FILE_SCHEME) :] if url.startswith(FILE_SCHEME) and len(url) > len(FILE_SCHEME) else None


def sender_address(person: User) -> Address:
    return Address(AddressKind.TELEGRAM, str(person.id))


def parse_update(update: Update, *, received_at: datetime, default_region: str = "ID") -> ParsedUpdate:
    if update.message is not None:
        return _message(update.message, received_at, default_region)
    if update.callback_query is not None:
        return _callback(update.callback_query, received_at)
    if update.my_chat_member is not None:
        member = update.my_chat_member
        status = member.new_chat_member.status
        # "kicked" in a private chat: the citizen blocked the bot. Sends fail with 403 Forbidden from
        # now on, and that is where the outbox learns it (SendError(unreachable=True)).
        return ParsedUpdate((), ignored=f"my_chat_member:{status}")
    kind = next((name for name in _UPDATE_KINDS if getattr(update, name, None) is not None), "unknown")
    return ParsedUpdate((), ignored=kind)


_UPDATE_KINDS = (
    "edited_message", "channel_post", "edited_channel_post", "business_connection", "business_message",
    "edited_business_message", "deleted_business_messages", "message_reaction", "message_reaction_count",
    "inline_query", "chosen_inline_result", "shipping_query", "pre_checkout_query", "purchased_paid_media",
    "poll", "poll_answer", "chat_member", "chat_join_request", "chat_boost", "removed_chat_boost",
)  # fmt: skip


def _message(message: Message, received_at: datetime, default_region: str) -> ParsedUpdate:
    person = message.from_user
    if message.chat is None or message.date is None:
        raise WebhookRejected(400, "message without chat or date")
    if message.chat.type != "private":
        # Complaints are personal: a bot in a group would file the whole group's chatter.
        return ParsedUpdate((), ignored=f"message in {message.chat.type} chat")
    if person is None or person.is_bot:
        return ParsedUpdate((), ignored="message without a human sender")
    text = message.text if message.text is not None else message.caption
    extra: dict[str, str] = {}
    if person.username:
        extra["username"] = person.username
    if person.language_code:
        extra["language_code"] = person.language_code
    media = _media(message)
    location = _location(message)
    if message.contact is not None:
        phone = _own_contact_phone(message, default_region)
        if phone is not None:
            extra["contact_phone"] = phone
        else:
            log.info(
                "telegram message %s: a contact that is not the sender's own, not linked", message.message_id
            )
    unsupported = _unsupported_kind(message)
    if unsupported and not media:
        extra["unsupported"] = unsupported
    event = InboundMessage(
        channel=CHANNEL,
        medium=Medium.TELEGRAM,
        provider_message_id=f"{message.chat.id}:{message.message_id}",
        sender=sender_address(person),
        received_at=received_at,
        text=text if text and text.strip() else None,
        media=media,
        location=location,
        recipient=None,
        reply_to=(
            f"{message.chat.id}:{message.reply_to_message.message_id}" if message.reply_to_message else None
        ),
        profile_name=_name(person),
        extra=extra,
    )
    return ParsedUpdate((event,))


def _media(message: Message) -> tuple[MediaRef, ...]:
    if message.photo:
        # Telegram sends one PhotoSize per resolution; the last is the largest.
        largest = max(message.photo, key=lambda size: (size.width * size.height, size.file_size or 0))
        return (
            MediaRef(url=file_ref(largest.file_id), content_type="image/jpeg", provider_id=largest.file_id),
        )
    document = message.document
    if document is not None and (document.mime_type or "").lower() in IMAGE_DOCUMENT_TYPES:
        return (
            MediaRef(
                url=file_ref(document.file_id), content_type=document.mime_type, provider_id=document.file_id
            ),
        )
    return ()


def _unsupported_kind(message: Message) -> str | None:
    for kind in ("voice", "audio", "video", "video_note", "sticker", "animation", "document", "poll", "dice"):
        if getattr(message, kind, None) is not None:
            return kind
    return None


def _location(message: Message) -> GeoPoint | None:
    place = message.venue.location if message.venue is not None else message.location
    if place is None:
        return None
    try:
        lat, lon = float(place.latitude), float(place.longitude)
    except (TypeError, ValueError):
        log.warning("telegram message %s: unreadable location dropped", message.message_id)
        return None
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        log.warning("telegram message %s: location out of range dropped", message.message_id)
        return None
    if message.venue is not None:
        return GeoPoint(lat, lon, address=message.venue.address or None, label=message.venue.title or None)
    return GeoPoint(lat, lon)


def _name(person: User) -> str | None:
    """The sender's display name; python-telegram-bot passes whatever JSON it got, so check it is text."""
    parts = [part for part in (person.first_name, person.last_name) if isinstance(part, str) and part]
    return " ".join(parts)[:200] or None


def _own_contact_phone(message: Message, default_region: str) -> str | None:
    """The E.164 number of a contact the sender shared *of themselves* ("Share my phone number").

    Only then does Telegram vouch that the number belongs to this account (contact.user_id equals the
    sender). A contact card of someone else is just text someone typed into their address book, and
    linking on it would let anyone attach themselves to another person's complaints.
    """
    contact = message.contact
    person = message.from_user
    if contact is None or person is None or contact.user_id != person.id:
        return None
    # Telegram gives the number in international form, usually without the plus.
    raw = contact.phone_number.strip()
    try:
        address = normalize_phone(raw if raw.startswith("+") else "+" + raw, default_region)
    except ValueError:
        return None
    return address.value if address.kind == AddressKind.PHONE else None


def _callback(query: CallbackQuery, received_at: datetime) -> ParsedUpdate:
    if query.from_user is None or not query.id:
        raise WebhookRejected(400, "callback_query without id or from")
    answer = {"method": "answerCallbackQuery", "callback_query_id": query.id}
    data = (query.data or "").strip()
    if not data:
        return ParsedUpdate((), reply_method=answer, ignored="callback_query without data")
    keyboard_message = query.message
    # A fuzzed or very old update can carry the message without its chat: the tap still counts.
    keyboard_chat = getattr(keyboard_message, "chat", None)
    event = InboundMessage(
        channel=CHANNEL,
        medium=Medium.TELEGRAM,
        provider_message_id=f"cb:{query.id}",
        sender=sender_address(query.from_user),
        received_at=received_at,
        # A tap is the word on the button, exactly as if typed: the conversation needs no button logic.
        text=data,
        reply_to=(
            f"{keyboard_chat.id}:{keyboard_message.message_id}"
            if keyboard_message is not None and keyboard_chat is not None
            else None
        ),
        profile_name=_name(query.from_user),
        extra={"button": data},
    )
    return ParsedUpdate((event,), reply_method=answer)
