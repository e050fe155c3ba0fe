"""The fast constructors build the very objects the dataclasses' own __init__ builds."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy, MultiDict, MultiDictProxy

from adapters.base import (
    Address,
    AddressKind,
    GeoPoint,
    InboundMessage,
    MediaRef,
    Medium,
    WebhookRequest,
    WebhookResponse,
    WebhookResult,
    make_inbound_message,
    make_webhook_request,
    make_webhook_result,
    slots_constructor,
)

TEXT = st.text(max_size=8)
OPTIONAL = st.none() | TEXT
INBOUND_FIELDS = st.fixed_dictionaries(
    {
        "channel": TEXT,
        "medium": st.sampled_from(Medium),
        "provider_message_id": TEXT,
        "sender": st.builds(Address, st.sampled_from(AddressKind), TEXT),
        "received_at": st.datetimes(timezones=st.just(UTC)),
        "text": OPTIONAL,
        "media": st.lists(st.builds(MediaRef, TEXT, OPTIONAL, OPTIONAL), max_size=2).map(tuple),
        "location": st.none() | st.builds(GeoPoint, st.none() | st.floats(-90, 90), st.none(), OPTIONAL),
        "recipient": OPTIONAL,
        "reply_to": OPTIONAL,
        "profile_name": OPTIONAL,
        "thread_id": OPTIONAL,
        "extra": st.dictionaries(TEXT, TEXT, max_size=3),
    }
)


@settings(max_examples=200, deadline=None)
@given(INBOUND_FIELDS)
def test_an_inbound_message_is_the_one_its_init_builds(fields: dict[str, Any]) -> None:
    fast, plain = make_inbound_message(**fields), InboundMessage(**fields)
    assert type(fast) is InboundMessage
    assert fast == plain and repr(fast) == repr(plain)
    assert dataclasses.astuple(fast) == dataclasses.astuple(plain)
    assert hash(dataclasses.replace(fast, extra=())) == hash(
        dataclasses.replace(plain, extra=())
    )  # dict: unhashable
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.text = "changed"  # type: ignore[misc]
    assert not hasattr(fast, "__dict__")


def test_a_webhook_request_is_the_one_its_init_builds() -> None:
    fields: dict[str, Any] = {
        "method": "POST",
        "public_url": "https://lapor.example.go.id/webhooks/twilio/sms",
        "path": "/webhooks/twilio/sms",
        "headers": CIMultiDictProxy(CIMultiDict({"X-Twilio-Signature": "abc"})),
        "query": MultiDictProxy(MultiDict()),
        "body": b"Body=halo",
        "content_type": "application/x-www-form-urlencoded",
        "form": MultiDictProxy(MultiDict({"Body": "halo"})),
    }
    assert make_webhook_request(**fields) == WebhookRequest(**fields)
    assert dataclasses.replace(make_webhook_request(**fields), form=None) == WebhookRequest(
        **{**fields, "form": None}
    )


def test_a_webhook_result_is_the_one_its_init_builds() -> None:
    response = WebhookResponse(status=200, body="<Response/>", content_type="text/xml")
    assert make_webhook_result(events=[], response=response) == WebhookResult(events=[], response=response)


def test_every_field_must_be_given() -> None:
    fields = {"channel": "c", "medium": Medium.SMS, "provider_message_id": "SM1"}
    with pytest.raises(TypeError):
        make_inbound_message(
            **fields, sender=Address(AddressKind.PHONE, "+62"), received_at=datetime.now(UTC)
        )
    with pytest.raises(TypeError):
        make_inbound_message(*fields.values())


def test_only_slotted_dataclasses_without_post_init() -> None:
    @dataclasses.dataclass(frozen=True)
    class Plain:
        a: int

    @dataclasses.dataclass(frozen=True, slots=True)
    class Checked:
        a: int

        def __post_init__(self) -> None:
            assert self.a > 0

    @dataclasses.dataclass(frozen=True, slots=True)
    class Fine:
        a: int
        b: str = "x"

    for cls in (Plain, Checked, int):
        with pytest.raises(TypeError):
            slots_constructor(cls)
    assert slots_constructor(Fine)(a=1, b="y") == Fine(1, "y")
