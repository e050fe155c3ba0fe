"""Turning the sender strings providers give us into stable identities.

One phone number is one person across SMS and WhatsApp, so every spelling of it (`0812...`,
`62812...`, `+62 812-...`, `whatsapp:+62812...`) must become the same E.164 string, or the same
citizen would appear as several reporters. Short codes (`1708`) and alphanumeric sender ids
(`TELKOMSEL`) are not phone numbers; they are kept as given so they still identify something.
"""

from __future__ import annotations

import functools
import re

import phonenumbers

from adapters.base import Address, AddressKind, make_address

CHANNEL_PREFIXES = ("whatsapp:", "sms:", "tel:", "mms:")
"""Prefixes providers put in front of a number to name the channel; the number is the identity."""

MAX_SHORTCODE_DIGITS = 6
"""Short codes are 3-6 digits in Indonesia (and almost everywhere); longer digit strings are numbers."""

_LETTER = re.compile(r"[A-Za-z]")
_NON_DIGIT = re.compile(r"\D")


def strip_channel_prefix(raw: str) -> str:
    """`whatsapp:+62812...` -> `+62812...` (case-insensitive); anything else unchanged but trimmed."""
    value = raw.strip()
    lowered = value.lower()
    for prefix in CHANNEL_PREFIXES:
        if lowered.startswith(prefix):
            return value[len(prefix) :].strip()
    return value


def normalize_phone(raw: str, default_region: str = "ID") -> Address:
    """The identity behind a sender string: E.164 for phone numbers, the raw value otherwise.

    Raises ValueError only for an empty value: anything else is some sender, and refusing it would
    lose a citizen's message. Cached: phonenumbers' validation costs 30-60 µs, as much as the rest
    of a webhook's parsing, it runs on every inbound message, and the same citizens write again and
    again (a conversation is several messages within minutes). 32k entries are about 8 MB: the
    senders of a busy day. The cache keeps (kind, value) pairs of strings, which the garbage
    collector stops tracking, rather than the `Address` objects: those it traversed on every
    collection of the older generations, 32k of them, a pause on the webhooks every few seconds.
    """
    kind, value = _normalized(raw, default_region)
    return make_address(kind=_KINDS[kind], value=value)


_KINDS = {kind.value: kind for kind in AddressKind}
_PHONE, _SHORTCODE = AddressKind.PHONE.value, AddressKind.SHORTCODE.value


@functools.lru_cache(maxsize=32768)
def _normalized(raw: str, default_region: str) -> tuple[str, str]:
    value = strip_channel_prefix(raw)
    if not value:
        raise ValueError("empty sender address")
    if _LETTER.search(value):
        return _SHORTCODE, value
    digits = _NON_DIGIT.sub("", value)
    international = value.startswith("+")
    if not digits:
        return _SHORTCODE, value
    if not international and len(digits) <= MAX_SHORTCODE_DIGITS:
        return _SHORTCODE, digits

    parsed = _parse(value, default_region)
    if international:
        # Valid or not, a possible international number is kept in its E.164 spelling (a range newer
        # than phonenumbers' metadata is still one stable spelling), and every valid number is a
        # possible one: the validity check (~10 µs of a first contact) can decide nothing here.
        if parsed is not None and phonenumbers.is_possible_number(parsed):
            return _PHONE, _e164(parsed)
        return _SHORTCODE, value
    if parsed is not None and phonenumbers.is_valid_number(parsed):
        return _PHONE, _e164(parsed)
    # `62812...` typed without the plus: try it as an international number.
    with_plus = _parse("+" + digits, default_region)
    if with_plus is not None and phonenumbers.is_valid_number(with_plus):
        return _PHONE, _e164(with_plus)
    return _SHORTCODE, value


def _parse(value: str, region: str) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return None


def _e164(number: phonenumbers.PhoneNumber) -> str:
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
