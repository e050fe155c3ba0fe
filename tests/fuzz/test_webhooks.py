"""Property-based fuzzing of every webhook endpoint, the simulator and the Open311 API.

Whatever arrives (random bodies and content types, broken UTF-8, huge fields, valid signatures over
garbage), the gateway must answer below 500, log no error or traceback, and leave the database as it
was when it refuses the request. Requests are signed with the configured secrets where the provider
signs, so the fuzz gets past the signature checks into the parsers.

Example counts are CI-sized (`LAPOR_FUZZ_EXAMPLES`, default 60 per test) and derandomized.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.support import (
    FUZZ,
    KANNEL_TOKEN,
    OPEN311_KEY,
    TG_SECRET,
    WA_PHONE_ID,
    WA_VERIFY,
    Target,
    broken_bytes,
    fuzz_target,
    header_text,
    json_body,
    json_values,
    meta_signature,
    mutated,
    nasty_text,
    twilio_signature,
    x_signature,
)


@pytest.fixture
async def target(database_url: str) -> AsyncIterator[Target]:
    async for running in fuzz_target(database_url):
        yield running


# --------------------------------------------------------------------------- Twilio (form posts)

TWILIO_KEYS = [
    "MessageSid",
    "SmsSid",
    "SmsMessageSid",
    "AccountSid",
    "From",
    "To",
    "Body",
    "NumMedia",
    "MediaUrl0",
    "MediaContentType0",
    "MediaUrl1",
    "Latitude",
    "Longitude",
    "Address",
    "Label",
    "ProfileName",
    "WaId",
    "ButtonText",
    "ButtonPayload",
    "OriginalRepliedMessageSid",
    "MessageStatus",
    "SmsStatus",
    "ErrorCode",
    "ErrorMessage",
    "NumSegments",
    "ApiVersion",
]
TWILIO_PATHS = ["/webhooks/twilio/sms", "/webhooks/twilio/whatsapp", "/webhooks/twilio/status"]

twilio_values = st.one_of(
    nasty_text,
    st.sampled_from(
        [
            "+6281234567890",
            "whatsapp:+6281234567890",
            "SM" + "a" * 32,
            "MM" + "b" * 32,
            "AC" + "0" * 32,
            "delivered",
            "failed",
            "undelivered",
            "read",
            "63016",
            "1",
            "11",
            "-3",
            "https://api.twilio.com/media/x.jpg",
            "image/jpeg",
            "-6.98",
            "110.41",
        ]
    ),
)
twilio_forms = st.lists(
    st.tuples(st.one_of(st.sampled_from(TWILIO_KEYS), st.text(max_size=10)), twilio_values), max_size=14
)


@given(
    path=st.sampled_from(TWILIO_PATHS),
    pairs=twilio_forms,
    signed=st.sampled_from(["valid", "valid", "valid", "none", "forged"]),
    content_type=st.sampled_from(
        [
            "application/x-www-form-urlencoded",
            "application/x-www-form-urlencoded; charset=utf-8",
            "application/json",
            "text/plain",
            "multipart/form-data; boundary=x",
            None,
        ]
    ),
    corrupt=st.booleans(),
    data=st.data(),
)
@FUZZ
async def test_twilio_webhooks(
    target: Target,
    path: str,
    pairs: list[tuple[str, str]],
    signed: str,
    content_type: str | None,
    corrupt: bool,
    data: st.DataObject,
) -> None:
    body = urlencode(pairs, encoding="utf-8", errors="surrogatepass").encode()
    if corrupt:
        body = data.draw(broken_bytes(body))
    headers = {"Content-Type": content_type} if content_type else {}
    if signed == "valid":
        headers["X-Twilio-Signature"] = twilio_signature(target.url + path, pairs)
    elif signed == "forged":
        headers["X-Twilio-Signature"] = data.draw(header_text)
    status, _ = await target.request("POST", path, body=body, headers=headers)
    if signed != "valid":
        assert status in (403, 415, 400)


# --------------------------------------------------------------------------- WhatsApp Cloud API

WA_KEYS = [
    "object",
    "entry",
    "id",
    "changes",
    "value",
    "field",
    "messaging_product",
    "metadata",
    "phone_number_id",
    "display_phone_number",
    "contacts",
    "profile",
    "name",
    "wa_id",
    "messages",
    "from",
    "timestamp",
    "type",
    "text",
    "body",
    "image",
    "mime_type",
    "sha256",
    "caption",
    "location",
    "latitude",
    "longitude",
    "address",
    "interactive",
    "button_reply",
    "title",
    "context",
    "statuses",
    "status",
    "recipient_id",
    "errors",
    "code",
    "error_data",
    "details",
    "conversation",
    "pricing",
    "referral",
    "button",
    "payload",
    "document",
    "audio",
    "video",
]


def wa_valid() -> dict[str, Any]:
    message = {
        "from": "6281234567890",
        "id": "wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABIYFjNFQjA",
        "timestamp": "1761016500",
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550783881",
                                "phone_number_id": WA_PHONE_ID,
                            },
                            "contacts": [{"profile": {"name": "Sri Wahyuni"}, "wa_id": "6281234567890"}],
                            "messages": [
                                {**message, "type": "text", "text": {"body": "LaporHendi jalan rusak"}},
                                {
                                    **message,
                                    "id": message["id"] + "B",
                                    "type": "location",
                                    "location": {
                                        "latitude": -6.98,
                                        "longitude": 110.41,
                                        "name": "Simpang Lima",
                                    },
                                },
                                {
                                    **message,
                                    "id": message["id"] + "C",
                                    "type": "image",
                                    "image": {
                                        "id": "1479537139650973",
                                        "mime_type": "image/jpeg",
                                        "caption": "ini",
                                    },
                                },
                                {
                                    **message,
                                    "id": message["id"] + "D",
                                    "type": "interactive",
                                    "interactive": {
                                        "type": "button_reply",
                                        "button_reply": {"id": "ya", "title": "Ya"},
                                    },
                                },
                            ],
                            "statuses": [
                                {
                                    "id": "wamid.out1",
                                    "status": "failed",
                                    "timestamp": "1761016600",
                                    "recipient_id": "6281234567890",
                                    "errors": [{"code": 131047, "title": "Re-engagement message"}],
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }


wa_payloads = st.one_of(mutated(wa_valid(), WA_KEYS), json_values(WA_KEYS))


@given(
    payload=wa_payloads,
    content_type=st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain", None]),
    forged=st.booleans(),
    corrupt=st.booleans(),
    data=st.data(),
)
@FUZZ
async def test_whatsapp_cloud_events(
    target: Target, payload: Any, content_type: str | None, forged: bool, corrupt: bool, data: st.DataObject
) -> None:
    body = json_body(payload)
    if corrupt:
        body = data.draw(broken_bytes(body))
    headers = {"X-Hub-Signature-256": data.draw(header_text) if forged else meta_signature(body)}
    if content_type:
        headers["Content-Type"] = content_type
    status, _ = await target.request("POST", "/webhooks/whatsapp", body=body, headers=headers)
    if forged:
        assert status == 403


@given(
    params=st.lists(
        st.tuples(
            st.sampled_from(["hub.mode", "hub.verify_token", "hub.challenge", "x"]),
            st.one_of(nasty_text, st.sampled_from(["subscribe", WA_VERIFY, "1158201444"])),
        ),
        max_size=5,
    )
)
@FUZZ
async def test_whatsapp_cloud_verification(target: Target, params: list[tuple[str, str]]) -> None:
    status, body = await target.request("GET", "/webhooks/whatsapp", params=params)
    query = dict(params)
    if status == 200:
        assert query.get("hub.verify_token") == WA_VERIFY and body == query["hub.challenge"]


# --------------------------------------------------------------------------- Telegram

TG_KEYS = [
    "update_id",
    "message",
    "edited_message",
    "callback_query",
    "my_chat_member",
    "message_id",
    "from",
    "chat",
    "id",
    "type",
    "private",
    "group",
    "date",
    "text",
    "caption",
    "photo",
    "file_id",
    "file_unique_id",
    "width",
    "height",
    "file_size",
    "location",
    "latitude",
    "longitude",
    "contact",
    "phone_number",
    "user_id",
    "first_name",
    "last_name",
    "is_bot",
    "language_code",
    "data",
    "entities",
    "offset",
    "length",
    "reply_to_message",
    "venue",
    "title",
    "address",
    "document",
    "new_chat_member",
    "status",
    "old_chat_member",
]


def tg_valid() -> dict[str, Any]:
    sender = {"id": 5123456789, "is_bot": False, "first_name": "Sri", "language_code": "id"}
    return {
        "update_id": 700001,
        "message": {
            "message_id": 17,
            "from": sender,
            "date": 1761016500,
            "chat": {"id": 5123456789, "first_name": "Sri", "type": "private"},
            "text": "/start LaporHendi lampu mati",
            "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
            "photo": [{"file_id": "AgAC", "file_unique_id": "AQAD", "width": 90, "height": 68}],
            "location": {"latitude": -6.98, "longitude": 110.41},
            "contact": {"phone_number": "+6281234567890", "first_name": "Sri", "user_id": 5123456789},
        },
    }


def tg_callback() -> dict[str, Any]:
    sender = {"id": 5123456789, "is_bot": False, "first_name": "Sri"}
    return {
        "update_id": 700002,
        "callback_query": {
            "id": "438200",
            "from": sender,
            "data": "ya",
            "chat_instance": "1",
            "message": {
                "message_id": 18,
                "date": 1761016500,
                "chat": {"id": 5123456789, "type": "private"},
                "text": "Benar?",
            },
        },
    }


tg_payloads = st.one_of(mutated(tg_valid(), TG_KEYS), mutated(tg_callback(), TG_KEYS), json_values(TG_KEYS))


@given(
    payload=tg_payloads,
    secret=st.sampled_from([TG_SECRET, TG_SECRET, None, "wrong"]),
    content_type=st.sampled_from(["application/json", "text/plain", None]),
    corrupt=st.booleans(),
    data=st.data(),
)
@FUZZ
async def test_telegram_updates(
    target: Target,
    payload: Any,
    secret: str | None,
    content_type: str | None,
    corrupt: bool,
    data: st.DataObject,
) -> None:
    body = json_body(payload)
    if corrupt:
        body = data.draw(broken_bytes(body))
    headers = {"Content-Type": content_type} if content_type else {}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    status, _ = await target.request("POST", "/webhooks/telegram", body=body, headers=headers)
    if secret != TG_SECRET:
        assert status == 403


# --------------------------------------------------------------------------- Kannel

KANNEL_KEYS = [
    "token",
    "from",
    "to",
    "text",
    "id",
    "ts",
    "smsc",
    "coding",
    "charset",
    "type",
    "ref",
    "status",
    "answer",
]
kannel_params = st.lists(
    st.tuples(
        st.one_of(st.sampled_from(KANNEL_KEYS), st.text(max_size=8)),
        st.one_of(
            nasty_text,
            st.sampled_from(
                [
                    KANNEL_TOKEN,
                    "dlr",
                    "1",
                    "2",
                    "8",
                    "16",
                    "081234567890",
                    "+6281234567890",
                    "1708",
                    "UTF-8",
                    "UCS-2",
                ]
            ),
        ),
    ),
    max_size=10,
).map(lambda pairs: [("token", KANNEL_TOKEN), *pairs])


@given(
    method=st.sampled_from(["GET", "POST"]),
    params=kannel_params,
    body=st.one_of(
        st.none(), st.binary(max_size=300), nasty_text.map(lambda t: t.encode("utf-8", "surrogatepass"))
    ),
    content_type=st.sampled_from(
        [
            "text/plain",
            "application/x-www-form-urlencoded",
            "application/octet-stream",
            "application/json",
            "text/plain; charset=ISO-8859-1",
            "text/plain; charset=bogus",
            None,
        ]
    ),
    charset=st.sampled_from([None, "UCS-2", "UTF-8", "ISO-8859-1", "x-unknown"]),
    headers=st.dictionaries(
        st.sampled_from(["X-Kannel-From", "X-Kannel-To", "X-Kannel-Time", "X-Kannel-SMSC"]),
        header_text,
        max_size=4,
    ),
)
@FUZZ
async def test_kannel(
    target: Target,
    method: str,
    params: list[tuple[str, str]],
    body: bytes | None,
    content_type: str | None,
    charset: str | None,
    headers: dict[str, str],
) -> None:
    headers = dict(headers)
    if content_type:
        headers["Content-Type"] = content_type
    if charset:
        headers["X-Kannel-Charset"] = charset
    await target.request(
        method, "/webhooks/kannel", params=params, body=body if method == "POST" else None, headers=headers
    )


# --------------------------------------------------------------------------- X (Twitter)

X_KEYS = [
    "for_user_id",
    "tweet_create_events",
    "direct_message_events",
    "users",
    "id_str",
    "id",
    "text",
    "full_text",
    "extended_tweet",
    "user",
    "screen_name",
    "name",
    "entities",
    "hashtags",
    "user_mentions",
    "media",
    "media_url_https",
    "type",
    "message_create",
    "sender_id",
    "target",
    "recipient_id",
    "message_data",
    "attachment",
    "created_timestamp",
    "in_reply_to_status_id_str",
    "coordinates",
    "place",
    "truncated",
    "display_text_range",
    "retweeted_status",
    "quoted_status",
    "indices",
]


def x_valid() -> dict[str, Any]:
    user = {"id_str": "2244994945", "screen_name": "warga_smg", "name": "Warga"}
    return {
        "for_user_id": "1500000000000000000",
        "tweet_create_events": [
            {
                "id_str": "1850000000000000001",
                "text": "#LaporHendi lampu mati di Jl. Pemuda",
                "user": user,
                "created_at": "Wed Oct 22 02:15:00 +0000 2025",
                "entities": {"hashtags": [{"text": "LaporHendi", "indices": [0, 11]}], "user_mentions": []},
                "coordinates": {"type": "Point", "coordinates": [110.41, -6.98]},
            }
        ],
        "direct_message_events": [
            {
                "type": "message_create",
                "id": "1850000000000000002",
                "created_timestamp": "1761099300000",
                "message_create": {
                    "target": {"recipient_id": "1500000000000000000"},
                    "sender_id": "2244994945",
                    "message_data": {"text": "jalan rusak", "entities": {}},
                },
            }
        ],
        "users": {"2244994945": user},
    }


x_payloads = st.one_of(mutated(x_valid(), X_KEYS), json_values(X_KEYS))


@given(
    payload=x_payloads,
    forged=st.booleans(),
    content_type=st.sampled_from(["application/json", "text/plain"]),
    corrupt=st.booleans(),
    data=st.data(),
)
@FUZZ
async def test_twitter_activity(
    target: Target, payload: Any, forged: bool, content_type: str, corrupt: bool, data: st.DataObject
) -> None:
    body = json_body(payload)
    if corrupt:
        body = data.draw(broken_bytes(body))
    signature = data.draw(header_text) if forged else x_signature(body)
    headers = {"Content-Type": content_type, "x-twitter-webhooks-signature": signature}
    status, _ = await target.request("POST", "/webhooks/twitter", body=body, headers=headers)
    if forged:
        assert status == 403


@given(params=st.lists(st.tuples(st.sampled_from(["crc_token", "nonce", ""]), nasty_text), max_size=3))
@FUZZ
async def test_twitter_crc(target: Target, params: list[tuple[str, str]]) -> None:
    await target.request("GET", "/webhooks/twitter", params=params)


# --------------------------------------------------------------------------- simulator

SIM_KEYS = [
    "medium",
    "from",
    "text",
    "location",
    "latitude",
    "longitude",
    "label",
    "media",
    "url",
    "content_type",
    "id",
    "name",
]
sim_valid = {
    "medium": "whatsapp",
    "from": "081234567890",
    "text": "LaporHendi jalan rusak",
    "id": "sim-1",
    "location": {"latitude": -6.98, "longitude": 110.41, "label": "Simpang Lima"},
    "media": [{"url": "https://example.org/a.jpg", "content_type": "image/jpeg"}],
    "name": "Sri",
}
sim_payloads = st.one_of(
    mutated(sim_valid, SIM_KEYS),
    json_values(SIM_KEYS),
    st.fixed_dictionaries(
        {
            "medium": st.sampled_from(["sms", "whatsapp", "telegram", "twitter", "web", "fax"]),
            "from": nasty_text,
            "text": nasty_text,
        }
    ),
)


@given(
    payload=sim_payloads,
    content_type=st.sampled_from(["application/json", "text/plain", None]),
    corrupt=st.booleans(),
    data=st.data(),
)
@FUZZ
async def test_simulator_send(
    target: Target, payload: Any, content_type: str | None, corrupt: bool, data: st.DataObject
) -> None:
    body = json_body(payload)
    if corrupt:
        body = data.draw(broken_bytes(body))
    headers = {"Content-Type": content_type} if content_type else {}
    await target.request("POST", "/simulator/api/send", body=body, headers=headers)


# --------------------------------------------------------------------------- Open311 GeoReport v2

OPEN311_FIELDS = [
    "api_key",
    "service_code",
    "lat",
    "long",
    "address_string",
    "description",
    "phone",
    "first_name",
    "last_name",
    "email",
    "media_url",
    "jurisdiction_id",
    "device_id",
    "account_id",
    "attribute[WHAT]",
]
open311_values = st.one_of(
    nasty_text,
    st.sampled_from(
        [
            OPEN311_KEY,
            "jalan_rusak",
            "lampu_pju",
            "-6.98",
            "110.41",
            "91",
            "nan",
            "inf",
            "1e308",
            "https://example.org/a.jpg",
            "semarangkota.go.id",
            "+6281234567890",
        ]
    ),
)


@given(
    pairs=st.lists(
        st.tuples(st.one_of(st.sampled_from(OPEN311_FIELDS), st.text(max_size=8)), open311_values),
        max_size=10,
    ),
    fmt=st.sampled_from(["json", "xml", "yaml"]),
    content_type=st.sampled_from(
        ["application/x-www-form-urlencoded", "application/json", "text/plain", None]
    ),
    corrupt=st.booleans(),
    data=st.data(),
)
@FUZZ
async def test_open311_post_requests(
    target: Target,
    pairs: list[tuple[str, str]],
    fmt: str,
    content_type: str | None,
    corrupt: bool,
    data: st.DataObject,
) -> None:
    body = urlencode(pairs, encoding="utf-8", errors="surrogatepass").encode()
    if corrupt:
        body = data.draw(broken_bytes(body))
    headers = {"Content-Type": content_type} if content_type else {}
    await target.request("POST", f"/open311/v2/requests.{fmt}", body=body, headers=headers)


@given(
    path=st.sampled_from(
        [
            "/open311/v2/requests.{fmt}",
            "/open311/v2/discovery.{fmt}",
            "/open311/v2/services.{fmt}",
            "/open311/v2/services/{word}.{fmt}",
            "/open311/v2/requests/{word}.{fmt}",
            "/open311/v2/tokens/{word}.{fmt}",
        ]
    ),
    fmt=st.sampled_from(["json", "xml", "csv"]),
    word=st.text(
        st.characters(exclude_characters="/?#%", exclude_categories=["Cs"]), min_size=1, max_size=30
    ),
    params=st.lists(
        st.tuples(
            st.sampled_from(
                [
                    "service_request_id",
                    "service_code",
                    "start_date",
                    "end_date",
                    "status",
                    "jurisdiction_id",
                    "page",
                    "page_size",
                    "lat",
                    "long",
                    "radius",
                    "q",
                ]
            ),
            open311_values,
        ),
        max_size=6,
    ),
)
@FUZZ
async def test_open311_reads(
    target: Target, path: str, fmt: str, word: str, params: list[tuple[str, str]]
) -> None:
    await target.request("GET", path.format(fmt=fmt, word=word), params=params)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", b"api_key=" + OPEN311_KEY.encode() + b"&description=\xff\xfe"),
        (
            "multipart/form-data; boundary=x",
            b"--x\r\nContent-Disposition: form-data\r\n\r\n\xff\r\n--x--\r\n",
        ),
        ("multipart/form-data", b"garbage"),
    ],
    ids=["urlencoded-not-utf8", "multipart-nameless-part", "multipart-without-boundary"],
)
async def test_open311_post_with_an_unreadable_form_is_a_400(
    target: Target, content_type: str, body: bytes
) -> None:
    """Found by the fuzzer: `create_request` reads `await request.post()` unguarded, and aiohttp raises
    (UnicodeDecodeError, ValueError...) on a form it cannot decode, which became a 500."""
    status, _ = await target.request(
        "POST", "/open311/v2/requests.json", body=body, headers={"Content-Type": content_type}
    )
    assert status == 400


@pytest.mark.parametrize("update", ["message", "callback_query"])
async def test_a_telegram_sender_whose_name_is_not_a_string_is_not_a_503(target: Target, update: str) -> None:
    """Found by the fuzzer: python-telegram-bot does not type-check `first_name`, `User.full_name` hands
    a list straight back when there is no last name, and `profile_name=[...]` reaches the INSERT: the
    database refuses it, the update is answered 503 and Telegram re-delivers it again and again."""
    payload = tg_valid() if update == "message" else tg_callback()
    sender = payload[update]["from"]
    sender["first_name"] = ["Sri", {"nested": True}]
    status, _ = await target.request(
        "POST",
        "/webhooks/telegram",
        body=json_body(payload),
        headers={"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": TG_SECRET},
    )
    assert status in (200, 400)
