"""X adapter: every fixture through the real route handler or the poller's parser, text weighing, and
the public/private split.

Fixtures (adapters/twitter/fixtures/):
- `webhook_*.json`: Account Activity payloads (v1.1 shapes, as X documents them) with how to sign them
  (`valid`, `wrong`, `missing`, `other_secret`, `no_prefix`, `tampered`) and the expected outcome;
- `search_*.json`: recent-search pages (API v2: `data`, `includes.users`, `includes.media`,
  `includes.places`, `meta`) with, per tweet, the event it becomes or why it is ignored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from multidict import CIMultiDict, CIMultiDictProxy, MultiDict, MultiDictProxy

from adapters.base import ChannelAdapter, InboundMessage, WebhookRejected, WebhookRequest
from adapters.twitter import TwitterAdapter
from adapters.twitter.adapter import crc_response_token, signature_of
from adapters.twitter.parse import index_includes, to_event, tweet_from_v2
from adapters.twitter.public import CODE_TEMPLATES, QUESTIONS, dm_closed_text, public_text
from adapters.twitter.text import fit, scrub, weighted_length
from gateway.config import Secret, TwitterConfig

SECRET = "consumer-secret-for-tests-0123456789"
ACCOUNT = "1700000000000000001"
FIXED_NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
FIXTURE_DIR = Path(__file__).parent / "fixtures"
WEBHOOKS = {p.stem: json.loads(p.read_text("utf-8")) for p in sorted(FIXTURE_DIR.glob("webhook_*.json"))}
SEARCHES = {p.stem: json.loads(p.read_text("utf-8")) for p in sorted(FIXTURE_DIR.glob("search_*.json"))}
PUBLIC_URL = "https://lapor.semarangkota.go.id"


def make_adapter(**config: Any) -> TwitterAdapter:
    settings: dict[str, Any] = {
        "bearer_token": Secret("bearer"),
        "consumer_key": "ck",
        "consumer_secret": Secret(SECRET),
        "access_token": "at",
        "access_token_secret": Secret("ats"),
        "account_id": ACCOUNT,
        "account_handle": "LaporHendi1708",
    }
    settings.update(config)
    return TwitterAdapter(TwitterConfig(**settings), PUBLIC_URL, clock=lambda: FIXED_NOW)


def build_request(fixture: dict[str, Any]) -> WebhookRequest:
    body = fixture["raw_body"].encode() if "raw_body" in fixture else json.dumps(fixture["payload"]).encode()
    headers = {"Content-Type": fixture["content_type"]}
    how = fixture["signature"]
    if how != "missing":
        signed = {"other_secret": "another-apps-secret", "tampered": SECRET}.get(how, SECRET)
        signature = signature_of(signed, body + (b" " if how == "tampered" else b""))
        if how == "wrong":
            signature = "sha256=" + base64.b64encode(b"x" * 32).decode()
        if how == "no_prefix":
            signature = signature.removeprefix("sha256=")
        headers["x-twitter-webhooks-signature"] = signature
    return WebhookRequest(
        method="POST",
        public_url=PUBLIC_URL + "/webhooks/twitter",
        path="/webhooks/twitter",
        headers=CIMultiDictProxy(CIMultiDict(headers)),
        query=MultiDictProxy(MultiDict()),
        body=body,
        content_type=fixture["content_type"],
    )


def event_view(event: InboundMessage) -> dict[str, Any]:
    loc = event.location
    return {
        "provider_message_id": event.provider_message_id,
        "sender": str(event.sender),
        "text": event.text,
        "media": [{"url": m.url, "content_type": m.content_type} for m in event.media],
        "location": None
        if loc is None
        else {
            "latitude": loc.latitude,
            "longitude": loc.longitude,
            "address": loc.address,
            "label": loc.label,
        },
        "reply_to": event.reply_to,
        "thread_id": event.thread_id,
        "profile_name": event.profile_name,
        "extra": dict(event.extra),
    }


def test_adapter_is_a_channel_adapter() -> None:
    adapter = make_adapter()
    assert isinstance(adapter, ChannelAdapter)
    assert [(r.method, r.path) for r in adapter.routes()] == [
        ("GET", "/webhooks/twitter"),
        ("POST", "/webhooks/twitter"),
    ]


@pytest.mark.parametrize("name", sorted(WEBHOOKS))
async def test_webhook_fixture(name: str, caplog: pytest.LogCaptureFixture) -> None:
    fixture = WEBHOOKS[name]
    expect = fixture["expect"]
    caplog.set_level(logging.DEBUG)
    adapter = make_adapter()
    post = adapter.routes()[1]
    try:
        result = await post.handler(build_request(fixture))
    except WebhookRejected as exc:
        assert exc.status == expect["status"], exc.reason
        assert expect["reason"] in exc.reason, exc.reason
        assert SECRET not in exc.reason
        return
    assert "reason" not in expect, f"accepted, expected {expect['status']}"
    assert result.response.status == expect["status"] == 200
    views = [event_view(e) for e in result.events if isinstance(e, InboundMessage)]
    assert len(views) == len(expect["events"]), views
    for got, want in zip(views, expect["events"], strict=True):
        assert {k: got[k] for k in want} == want
    for event in result.events:
        assert isinstance(event, InboundMessage) and event.received_at == FIXED_NOW
        assert event.channel == "twitter" and event.medium == "twitter"
    assert all(SECRET not in r.getMessage() for r in caplog.records)


def test_webhook_table_is_balanced() -> None:
    failures = sum(1 for f in WEBHOOKS.values() if f["expect"]["status"] >= 400)
    ignored = sum(1 for f in WEBHOOKS.values() if f["expect"]["status"] == 200 and not f["expect"]["events"])
    assert failures >= 15 and failures + ignored >= len(WEBHOOKS) - failures - ignored


@pytest.mark.parametrize("name", sorted(SEARCHES))
def test_search_fixture(name: str) -> None:
    fixture = SEARCHES[name]
    adapter = make_adapter()
    page = fixture["page"]
    users, media, places = index_includes(page.get("includes"))
    outcomes: dict[str, Any] = {}
    for data in page.get("data", []):
        try:
            parsed = to_event(tweet_from_v2(data, users, media, places), adapter.rules, FIXED_NOW)
        except ValueError as exc:
            outcomes[data["id"]] = f"malformed: {exc}"
            continue
        outcomes[parsed.source_id] = parsed
    expected_ids = {e["id"] for e in fixture["expect"]}
    for want in fixture["expect"]:
        got = outcomes[want["id"]]
        if "ignored" in want:
            assert got.event is None and want["ignored"] in (got.ignored or ""), got
            continue
        assert got.event is not None, got.ignored
        view = event_view(got.event)
        assert view["provider_message_id"] == want["id"]
        assert {k: view[k] for k in want["event"]} == want["event"]
    # Anything not listed must be a malformed tweet the poller skips, never an event.
    for tweet_id, got in outcomes.items():
        if tweet_id not in expected_ids:
            assert isinstance(got, str) and got.startswith("malformed"), got


def test_the_same_tweet_from_both_dialects_is_the_same_message() -> None:
    """Webhook (v1.1) and search (v2) must agree on channel and id, or a tweet would be filed twice."""
    adapter = make_adapter()
    hook = WEBHOOKS["webhook_tweet_hashtag_first"]["payload"]["tweet_create_events"][0]
    [from_hook] = adapter.parse_activity({"for_user_id": ACCOUNT, "tweet_create_events": [hook]})
    v2 = {"id": hook["id_str"], "text": hook["text"], "author_id": hook["user"]["id_str"]}
    from_search = to_event(tweet_from_v2(v2, {}, {}, {}), adapter.rules, FIXED_NOW)
    assert from_hook.event is not None and from_search.event is not None
    assert (from_hook.event.channel, from_hook.event.provider_message_id) == (
        from_search.event.channel,
        from_search.event.provider_message_id,
    )
    assert from_hook.event.sender == from_search.event.sender
    assert from_hook.event.text == from_search.event.text


# -- CRC


def _request(method: str, query: dict[str, str]) -> WebhookRequest:
    return WebhookRequest(
        method=method,
        public_url=PUBLIC_URL + "/webhooks/twitter",
        path="/webhooks/twitter",
        headers=CIMultiDictProxy(CIMultiDict()),
        query=MultiDictProxy(MultiDict(query)),
        body=b"",
        content_type="",
    )


async def test_crc_answers_with_the_hmac_of_the_token() -> None:
    result = await make_adapter().handle_crc(_request("GET", {"crc_token": "MTIzNDU2Nzg5MA"}))
    expected = base64.b64encode(
        hmac.new(SECRET.encode(), b"MTIzNDU2Nzg5MA", hashlib.sha256).digest()
    ).decode()
    assert json.loads(result.response.body) == {"response_token": "sha256=" + expected}
    assert result.response.content_type == "application/json" and result.events == []
    assert crc_response_token(SECRET, "MTIzNDU2Nzg5MA") == "sha256=" + expected


@pytest.mark.parametrize(
    ("config", "query", "status", "reason"),
    [
        ({}, {}, 400, "missing crc_token"),
        ({}, {"crc_token": ""}, 400, "missing crc_token"),
        ({"consumer_secret": Secret("")}, {"crc_token": "abc"}, 403, "consumer_secret"),
    ],
)
async def test_crc_refusals(config: dict[str, Any], query: dict[str, str], status: int, reason: str) -> None:
    with pytest.raises(WebhookRejected) as err:
        await make_adapter(**config).handle_crc(_request("GET", query))
    assert err.value.status == status and reason in err.value.reason


async def test_without_consumer_secret_every_post_is_refused() -> None:
    adapter = make_adapter(consumer_secret=Secret(""))
    with pytest.raises(WebhookRejected) as err:
        await adapter.handle_events(build_request(WEBHOOKS["webhook_tweet_hashtag_first"]))
    assert err.value.status == 403


# -- weighing and fitting


@pytest.mark.parametrize(
    ("text", "weight"),
    [
        ("", 0),
        ("Halo Semarang", 13),
        ("é ñ ü", 5),  # Latin-1 and Latin Extended weigh 1
        ("日本語", 6),  # CJK weighs 2
        ("안녕", 4),  # Hangul weighs 2
        ("ꦱꦼꦩꦫꦁ", 10),  # Javanese script weighs 2
        ("😀", 2),
        ("👍🏽", 2),  # emoji with a skin tone: one sequence
        ("👨‍👩‍👧", 2),  # ZWJ family: one sequence
        ("🇮🇩", 2),  # a flag: two regional indicators, one emoji
        ("❤️", 2),  # with the variation selector
        ("https://lapor.semarangkota.go.id/lacak/LPR-7K3M9Q", 23),
        ("http://127.0.0.1:8080/x", 23),
        ("Pantau di lapor.semarangkota.go.id/lacak/LPR-7K3M9Q ya", 10 + 23 + 3),
        ("a\u0301", 1),  # NFC: a + combining acute is one á
        ("“kutip” — dan…", 13 + 2),  # general punctuation 2010-201F weighs 1; the ellipsis 2026 weighs 2
    ],
)
def test_weighted_length(text: str, weight: int) -> None:
    assert weighted_length(text) == weight


@pytest.mark.parametrize(
    "text",
    [
        "kata " * 100,
        "日本 " * 200,
        "😀" * 200,
        "x" * 400,
        "Pantau di https://lapor.semarangkota.go.id/lacak/LPR-7K3M9Q " * 20,
    ],
)
def test_fit_stays_within_280(text: str) -> None:
    fitted = fit(text)
    assert weighted_length(fitted) <= 280
    assert fitted.endswith("…")
    assert "https://lapor.semarangkota.go.id/lacak/LPR-7K3M9" not in fitted.replace(
        "https://lapor.semarangkota.go.id/lacak/LPR-7K3M9Q", ""
    )  # a link is kept whole or dropped, never cut


def test_fit_leaves_short_text_alone() -> None:
    assert fit("  Terima kasih  ") == "Terima kasih"


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("WA 081234567890", "081234567890"),
        ("telp +62 812-3456-7890", "812-3456-7890"),
        ("hubungi 62 812 3456 7890", "3456"),
        ("email budi.santoso@gmail.com", "budi.santoso"),
        ("NIK 3374012345678901", "3374012345678901"),
    ],
)
def test_scrub_hides_personal_data(text: str, hidden: str) -> None:
    assert hidden not in scrub(text) and "***" in scrub(text)


def test_scrub_keeps_tracking_links_whole() -> None:
    link = "http://127.0.0.1:8080/lacak/LPR-7K3M9Q"
    assert scrub(f"Pantau di {link}") == f"Pantau di {link}"


# -- what goes public


PRIVATE = (
    "Kami catat: lampu mati di Gg. Kenanga depan rumah Bu Sri, WA 081234567890, sri@mail.id. "
    "Balas YA. LPR-7K3M9Q"
)


@pytest.mark.parametrize("kind", sorted({*CODE_TEMPLATES, *QUESTIONS, "status_changed", "unknown_kind"}))
def test_public_text_never_carries_the_private_wording(kind: str) -> None:
    for private in (PRIVATE, PRIVATE.replace(" LPR-7K3M9Q", "")):
        text = public_text(kind, private, PUBLIC_URL)
        assert weighted_length(text) <= 280
        for word in ("Kenanga", "Sri", "0812", "sri@mail.id", "Kami catat"):
            assert word not in text, (kind, text)
        if "LPR-" in private and kind not in QUESTIONS:
            assert "LPR-7K3M9Q" in text and f"{PUBLIC_URL}/lacak/LPR-7K3M9Q" in text


def test_receipt_is_the_fixed_text_with_code_and_link() -> None:
    text = public_text(
        "submitted_url", "Aduan diterima, kode LPR-7K3M9Q. Pantau di x atau balas STATUS", PUBLIC_URL
    )
    assert text == f"Terima kasih, aduan Anda tercatat: LPR-7K3M9Q. Pantau di {PUBLIC_URL}/lacak/LPR-7K3M9Q"


def test_dm_closed_fallback_has_only_the_code() -> None:
    assert (
        dm_closed_text(PRIVATE, PUBLIC_URL)
        == f"Aduan Anda: LPR-7K3M9Q. Pantau di {PUBLIC_URL}/lacak/LPR-7K3M9Q"
    )
    assert "LPR-" not in dm_closed_text("Di mana lokasinya?", PUBLIC_URL)


def test_public_questions_have_no_slots() -> None:
    for text in QUESTIONS.values():
        assert "{" not in text and weighted_length(text) <= 280


def test_reply_mode_is_validated() -> None:
    from gateway.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="reply_mode"):
        load_config(environ={"LAPOR_CHANNELS__TWITTER__REPLY_MODE": "tweet"})
