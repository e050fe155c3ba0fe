"""gateway.webhooks.parse_form answers exactly as urllib's parse_qsl(keep_blank_values=True)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.webhooks import _parse_fields, _parse_whole, parse_form
from tests.fakes.twilio_webhooks import sms_params

PIECES = st.sampled_from(
    [
        *["&", "=", "%", "+", "%2", "%20", "%zz", "%E2%9C%85", "%C3", ";", " ", "a", "é", "🙏"],
        *["%26", "%3D", "%3d", "%2B", "%F0%9F", "%E2%9C", "%80", "%C3%A9", "%25", "a=b"],
    ]
)
FIELD_TEXT = st.text(
    st.sampled_from(["a", "Z", " ", "+", "&", "=", "%", "é", "🙏", "\x00", "\x7f"]), max_size=6
)
ENCODED_FORMS = st.lists(st.tuples(FIELD_TEXT, FIELD_TEXT), max_size=8).map(urlencode)
"""Forms as an encoder writes them: the shape the whole-text path takes."""


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(PIECES, st.text(max_size=4)), max_size=30).map("".join))
def test_any_text_parses_as_parse_qsl_parses_it(text: str) -> None:
    expected = parse_qsl(text, keep_blank_values=True)
    assert parse_form(text) == expected
    assert _parse_fields(text) == expected
    assert _parse_whole(text) in (None, expected)


@settings(max_examples=400, deadline=None)
@given(ENCODED_FORMS | st.lists(st.one_of(PIECES, st.text(max_size=4)), max_size=30).map("".join))
def test_the_whole_text_path_answers_as_parse_qsl_or_not_at_all(text: str) -> None:
    assert _parse_whole(text) in (None, parse_qsl(text, keep_blank_values=True))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(FIELD_TEXT, FIELD_TEXT), max_size=8))
def test_an_encoded_form_without_escaped_separators_takes_the_whole_text_path(
    pairs: list[tuple[str, str]],
) -> None:
    text = urlencode(pairs)
    if "%26" not in text and "%3D" not in text:
        assert _parse_whole(text) == parse_qsl(text, keep_blank_values=True)
    else:
        assert _parse_whole(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "&&",
        "a",
        "a=",
        "=b",
        "a=1&a=2",
        "Body=Lampu+mati+di+Jl.+Pemuda%2C+depan+Paragon+%F0%9F%99%8F",
        "Body=100%25+rusak&Bad=%zz&Half=%E2%9C",
        urlencode(sms_params(From="+6281234567890", Body="LaporHendi jalan rusak & berlubang = bahaya")),
    ],
)
def test_provider_forms_and_odd_ones(text: str) -> None:
    assert parse_form(text) == parse_qsl(text, keep_blank_values=True)


@pytest.mark.parametrize(
    ("text", "whole"),
    [
        (urlencode(sms_params(From="+6281234567890", Body="Lampu mati, 100% gelap 🙏")), True),
        ("Body=a%26b&From=x", False),  # an escaped & would split the field in two
        ("a=b%26c=d", False),  # ... into two that look well formed
        ("Body%3Dx=1", False),  # an escaped = in a name would move the split
        ("a%3Dx&b=c", False),  # ... and make a field without one look like name=value
        ("a%3dx&b=c", False),
        ("Body=caf\u00e9", False),  # raw non-ASCII: parse_qsl keeps it as is, field by field
        ("a=b=c&d", False),  # not one name=value a field: joined back it is another text
        ("a=1&&b=2", False),
        ("a=%E2%9C&b=%85", True),  # half a character on each side of a &: two U+FFFD either way
    ],
)
def test_which_forms_take_the_whole_text_path(text: str, whole: bool) -> None:
    expected = parse_qsl(text, keep_blank_values=True)
    assert parse_form(text) == expected
    assert _parse_whole(text) == (expected if whole else None)
