"""adapters/addresses.py: every spelling of one number is one identity (tests kept beside the SMS
adapter, the first user of the module)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.addresses import normalize_phone, strip_channel_prefix
from adapters.base import Address, AddressKind

PHONE, SHORT = AddressKind.PHONE, AddressKind.SHORTCODE


@pytest.mark.parametrize(
    ("raw", "region", "kind", "value"),
    [
        ("+6281234567890", "ID", PHONE, "+6281234567890"),
        ("081234567890", "ID", PHONE, "+6281234567890"),
        ("6281234567890", "ID", PHONE, "+6281234567890"),
        ("0812-3456-7890", "ID", PHONE, "+6281234567890"),
        ("+62 812 3456 7890", "ID", PHONE, "+6281234567890"),
        ("(0812) 3456 7890", "ID", PHONE, "+6281234567890"),
        ("whatsapp:+6281234567890", "ID", PHONE, "+6281234567890"),
        ("WhatsApp:+6281234567890", "ID", PHONE, "+6281234567890"),
        ("sms:081234567890", "ID", PHONE, "+6281234567890"),
        ("  +6281234567890\n", "ID", PHONE, "+6281234567890"),
        ("024-3545678", "ID", PHONE, "+62243545678"),  # a Semarang landline
        ("+14155552671", "ID", PHONE, "+14155552671"),
        ("(415) 555-2671", "US", PHONE, "+14155552671"),
        ("1708", "ID", SHORT, "1708"),
        ("99899", "ID", SHORT, "99899"),
        ("TELKOMSEL", "ID", SHORT, "TELKOMSEL"),
        ("InfoPLN", "ID", SHORT, "InfoPLN"),
        ("12345678", "ID", SHORT, "12345678"),  # not a number anywhere: kept as given
        ("---", "ID", SHORT, "---"),
    ],
)
def test_normalize_phone(raw: str, region: str, kind: AddressKind, value: str) -> None:
    assert normalize_phone(raw, region) == Address(kind, value)


@pytest.mark.parametrize("raw", ["", "   ", "whatsapp:", "tel:  "])
def test_empty_address_is_an_error(raw: str) -> None:
    with pytest.raises(ValueError):
        normalize_phone(raw)


def test_same_person_same_identity_across_channels() -> None:
    spellings = ["081234567890", "whatsapp:+6281234567890", "6281234567890", "+62 812-3456-7890"]
    assert len({normalize_phone(s) for s in spellings}) == 1


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("whatsapp:+62812", "+62812"), ("TEL:+62812", "+62812"), ("+62812", "+62812"), (" 1708 ", "1708")],
)
def test_strip_channel_prefix(raw: str, expected: str) -> None:
    assert strip_channel_prefix(raw) == expected


def _as_it_was(raw: str) -> Address:
    """The rule before international numbers skipped the validity check: valid first, then
    possible. The same answers are what `normalize_phone` must give."""
    import phonenumbers

    value = raw.strip()
    try:
        parsed = phonenumbers.parse(value, "ID")
    except phonenumbers.NumberParseException:
        return Address(SHORT, value)
    if phonenumbers.is_valid_number(parsed) or phonenumbers.is_possible_number(parsed):
        return Address(PHONE, phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))
    return Address(SHORT, value)


@settings(max_examples=2000, deadline=None)
@given(
    st.sampled_from(["+62", "+628", "+6202", "+620", "+1", "+44", "+86", "+", "+9", "+39", "+7"]),
    st.text(alphabet="0123456789", min_size=0, max_size=14),
)
def test_international_numbers_answer_as_before(prefix: str, digits: str) -> None:
    raw = prefix + digits
    if not raw.strip("+"):
        return  # no digits at all: a short code either way (covered above)
    assert normalize_phone(raw, "ID") == _as_it_was(raw)


def test_the_cache_of_numbers_holds_nothing_the_garbage_collector_traverses() -> None:
    """Every collection of the older generations walks what it tracks: the senders of a busy day
    must not be in it (see `normalize_phone`)."""
    import gc

    def tracked_addresses() -> int:
        gc.collect()
        return sum(isinstance(obj, Address) for obj in gc.get_objects())

    before = tracked_addresses()
    numbers = [normalize_phone(f"0812{n:08d}") for n in range(2000)]
    assert normalize_phone("081200000007") == numbers[7]
    del numbers
    assert tracked_addresses() - before < 10
