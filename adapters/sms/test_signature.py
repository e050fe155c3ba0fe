"""FormRequestValidator computes exactly twilio's RequestValidator signatures, only faster."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import MultiDict, MultiDictProxy
from twilio.request_validator import RequestValidator

from adapters.sms.twilio import FormRequestValidator
from tests.fakes.twilio_webhooks import sms_params

TOKEN = "12345678901234567890123456789012"
URL = "https://lapor.example.go.id/webhooks/twilio/sms?x=1"
NAMES = st.sampled_from(["Body", "From", "To", "MediaUrl0", "body", "B", "Bodyx", "", "Ä", "MessageSid"])
VALUES = st.text(max_size=12) | st.sampled_from(["", "a", "ab", "+6281234567890", "é🙏"])


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.tuples(NAMES, VALUES), max_size=12),
    st.sampled_from([None, "HMAC_SHA1", "HMAC_SHA256", "hmac_sha256"]),
)
def test_the_same_signature_as_twilio_for_any_form(
    pairs: list[tuple[str, str]], algorithm: str | None
) -> None:
    form = MultiDictProxy(MultiDict(pairs))
    ours = FormRequestValidator(TOKEN).compute_signature(URL, form, algorithm)
    assert ours == RequestValidator(TOKEN).compute_signature(URL, form, algorithm)


def test_a_real_webhook_validates_and_a_changed_one_does_not() -> None:
    params = sms_params(From="+6281234567890", Body="LaporHendi lampu mati di Jl. Pemuda")
    signature = RequestValidator(TOKEN).compute_signature(URL, params)
    form = MultiDictProxy(MultiDict(params))
    assert FormRequestValidator(TOKEN).validate(URL, form, signature)
    changed = MultiDictProxy(MultiDict({**params, "Body": "LaporHendi lampu mati di Jl. Pandanaran"}))
    assert not FormRequestValidator(TOKEN).validate(URL, changed, signature)


def test_other_inputs_and_unknown_algorithms_go_to_twilio() -> None:
    plain = {"Body": "halo", "From": "+6281234567890"}
    assert FormRequestValidator(TOKEN).compute_signature(URL, plain) == RequestValidator(
        TOKEN
    ).compute_signature(URL, plain)
    with pytest.raises(ValueError, match="Unsupported"):
        FormRequestValidator(TOKEN).compute_signature(URL, MultiDictProxy(MultiDict(plain)), "HMAC_MD5")
