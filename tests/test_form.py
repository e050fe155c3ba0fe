"""gateway.webhooks.parse_form answers exactly as urllib's parse_qsl(keep_blank_values=True)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.webhooks import parse_form
from tests.fakes.twilio_webhooks import sms_params

PIECES = st.sampled_from(
    ["&", "=", "%", "+", "%2", "%20", "%zz", "%E2%9C%85", "%C3", ";", " ", "a", "é", "🙏"]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(PIECES, st.text(max_size=4)), max_size=30).map("".join))
def test_any_text_parses_as_parse_qsl_parses_it(text: str) -> None:
    assert parse_form(text) == parse_qsl(text, keep_blank_values=True)


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
