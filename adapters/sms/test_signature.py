"""FormRequestValidator computes exactly twilio's RequestValidator signatures, only faster."""

from __future__ import annotations

import dataclasses
from random import Random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import MultiDict, MultiDictProxy
from twilio.request_validator import RequestValidator, get_signature_algorithm

from adapters.base import WebhookRejected
from adapters.sms import twilio
from adapters.sms.twilio import FormRequestValidator, verify_twilio_request
from adapters.testing import FORM, form_request
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


UNIQUE_FORMS = st.dictionaries(NAMES | st.text(max_size=6), VALUES, max_size=25)


@settings(max_examples=300, deadline=None)
@given(UNIQUE_FORMS, st.sampled_from([None, "HMAC_SHA256"]), st.randoms(use_true_random=False))
def test_forms_without_a_repeated_name_sign_as_twilio_signs_them_first_and_later_times(
    fields: dict[str, str], algorithm: str | None, rng: Random
) -> None:
    items = list(fields.items())
    rng.shuffle(items)
    form = MultiDictProxy(MultiDict(items))
    expected = RequestValidator(TOKEN).compute_signature(URL, form, algorithm)
    assert FormRequestValidator(TOKEN).compute_signature(URL, form, algorithm) == expected  # sorts
    assert FormRequestValidator(TOKEN).compute_signature(URL, form, algorithm) == expected  # remembered
    other = MultiDictProxy(MultiDict((name, value + "x") for name, value in items))
    assert FormRequestValidator(TOKEN).compute_signature(URL, other, algorithm) == RequestValidator(
        TOKEN
    ).compute_signature(URL, other, algorithm)


def test_a_repeated_name_is_not_taken_for_a_remembered_shape() -> None:
    """multidict 7 lists a repeated name once in `keys()`: the same names as a form seen before."""
    shape = MultiDictProxy(MultiDict([("Body", "a"), ("B", "1"), ("From", "x")]))
    repeated = MultiDictProxy(MultiDict([("Body", "a"), ("B", "1"), ("Body", "0"), ("From", "x")]))
    for form in (shape, repeated, shape, repeated):
        assert FormRequestValidator(TOKEN).compute_signature(URL, form) == RequestValidator(
            TOKEN
        ).compute_signature(URL, form)


def test_remembered_shapes_are_bounded_and_the_rest_still_sign_right(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(twilio, "_FIELD_ORDERS", {})
    monkeypatch.setattr(twilio, "MAX_FIELD_ORDERS", 3)
    for number in range(6):
        form = MultiDictProxy(MultiDict({f"F{number}": "1", "Body": "b", f"A{number}": "2"}))
        assert FormRequestValidator(TOKEN).compute_signature(URL, form) == RequestValidator(
            TOKEN
        ).compute_signature(URL, form)
    assert len(twilio._FIELD_ORDERS) == 3
    wide = MultiDictProxy(MultiDict({f"F{number}": "1" for number in range(twilio.MAX_ORDERED_FIELDS + 1)}))
    monkeypatch.setattr(twilio, "_FIELD_ORDERS", {})
    assert FormRequestValidator(TOKEN).compute_signature(URL, wide) == RequestValidator(
        TOKEN
    ).compute_signature(URL, wide)
    assert twilio._FIELD_ORDERS == {}


@pytest.mark.parametrize("settings_header", [None, "", "key=webhooks_sharedkey_1"])
def test_no_algorithm_in_the_settings_header_is_twilios_hmac_sha1(settings_header: str | None) -> None:
    assert get_signature_algorithm(settings_header) == "HMAC_SHA1"
    params = sms_params(Body="LaporHendi lampu mati")
    headers = {
        "Content-Type": FORM,
        "X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(URL, params),
    }
    if settings_header is not None:
        headers["X-Twilio-Webhooks-Signature-Settings"] = settings_header
    request = form_request(URL, params, headers)
    assert verify_twilio_request(request, TOKEN) == request.form


@pytest.mark.parametrize(
    ("content_type", "accepted"),
    [
        (FORM, True),
        (FORM + "; charset=utf-8", True),
        ("Application/X-WWW-Form-Urlencoded", True),
        (" " + FORM + " ;charset=UTF-8", True),
        ("application/json", False),
        ("", False),
    ],
)
def test_the_content_type_is_read_as_before(content_type: str, accepted: bool) -> None:
    params = sms_params(Body="LaporHendi lampu mati")
    headers = {"X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(URL, params)}
    request = dataclasses.replace(form_request(URL, params, headers), content_type=content_type)
    if accepted:
        assert verify_twilio_request(request, TOKEN) == request.form
    else:
        with pytest.raises(WebhookRejected) as err:
            verify_twilio_request(request, TOKEN)
        assert err.value.status == 415
