"""Tweets and DMs as provider-neutral events, from both intake modes.

Two payload dialects reach us: API v2 objects (recent search, DM events: `data` + `includes.users`,
`includes.media`, `includes.places`) and the Account Activity webhook's v1.1 objects
(`tweet_create_events`, `direct_message_events`). Both become the same `InboundMessage`, and a tweet's
`provider_message_id` is its id in both, so a tweet seen by the poller *and* the webhook is one message
(the pipeline dedups on channel + id). DMs get `dm:<event id>` so they never collide with tweet ids
and never move the polling cursor.

What is intake and what is not (and why):
- retweets: the same words again from someone who did not write them; a complaint is filed once.
- the account's own tweets and DMs: our replies would otherwise answer themselves forever.
- quote-spam: a quote tweet that adds no words of its own (just the hashtag over someone else's post)
  is attention-farming, not a report; a quote with real words of its own is a complaint.
- tweets with neither a configured hashtag, a mention of the account nor a reply to it: the webhook
  delivers everything around the account, the search only what matched; neither is a complaint.

The sender is `Address(TWITTER, <author id>)`: usernames change, ids do not.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from adapters.base import Address, AddressKind, GeoPoint, InboundMessage, MediaRef, Medium
from conversation.keywords import strip_keyword

log = logging.getLogger(__name__)

CHANNEL = "twitter"
DM_PREFIX = "dm:"
MIN_QUOTE_WORDS = 3
"""Words of its own a quote tweet needs to count as a complaint rather than quote-spam."""
FINE_PLACE_TYPES = frozenset({"poi", "neighborhood"})
"""Places precise enough to be a complaint's location; a city or a country is not."""

_LEADING_MENTIONS = re.compile(r"^(?:\s*@\w{1,15})+\s*")
_TCO = re.compile(r"https?://t\.co/\w+")
_WORD = re.compile(r"[^\W\d_]{2,}")


@dataclass(frozen=True, slots=True)
class Rules:
    """What the adapter was configured with that decides intake."""

    hashtags: tuple[str, ...]
    account_id: str = ""
    account_handle: str = ""

    @property
    def folded_tags(self) -> frozenset[str]:
        return frozenset(tag.lstrip("#").casefold() for tag in self.hashtags)


@dataclass(frozen=True, slots=True)
class Parsed:
    """One tweet or DM: an event, or the reason it is not one (logged, never an error)."""

    source_id: str
    event: InboundMessage | None = None
    ignored: str | None = None


@dataclass(frozen=True, slots=True)
class _Tweet:
    """The facts intake needs, whichever dialect they came in."""

    id: str
    author_id: str
    username: str | None
    name: str | None
    text: str
    hashtags: tuple[str, ...]
    mention_ids: tuple[str, ...]
    mention_names: tuple[str, ...]
    media: tuple[MediaRef, ...]
    location: GeoPoint | None
    conversation_id: str | None
    in_reply_to_user_id: str | None
    replied_to: str | None
    retweet: bool
    quote: bool
    created_at: str | None
    place_name: str | None = None
    media_links: tuple[str, ...] = field(default_factory=tuple)


class PayloadError(ValueError):
    """A payload that is not what the API documents; the reason names the field."""


def _str(value: Any) -> str | None:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _point(coordinates: Any) -> tuple[float, float] | None:
    """GeoJSON order is [longitude, latitude]."""
    pair = _list(_dict(coordinates).get("coordinates"))
    if len(pair) != 2:
        return None
    try:
        lon, lat = float(pair[0]), float(pair[1])
    except (TypeError, ValueError):
        return None
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        return None
    return lat, lon


def _photo(url: str | None, provider_id: str | None, kind: str) -> MediaRef | None:
    if not url or not url.startswith(("https://", "http://")):
        return None
    lowered = url.lower().split("?", 1)[0]
    content_type = "image/png" if lowered.endswith(".png") else "image/jpeg"
    return MediaRef(url=url, content_type=content_type, provider_id=provider_id or kind)


# --------------------------------------------------------------------------------------------- v2


def index_includes(includes: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """users by id, media by media_key, places by id."""
    inc = _dict(includes)
    users = {str(u["id"]): u for u in _list(inc.get("users")) if isinstance(u, dict) and _str(u.get("id"))}
    media = {
        str(m["media_key"]): m
        for m in _list(inc.get("media"))
        if isinstance(m, dict) and _str(m.get("media_key"))
    }
    places = {str(p["id"]): p for p in _list(inc.get("places")) if isinstance(p, dict) and _str(p.get("id"))}
    return users, media, places


def tweet_from_v2(
    data: Mapping[str, Any], users: Mapping[str, Any], media: Mapping[str, Any], places: Mapping[str, Any]
) -> _Tweet:
    tweet_id, author_id = _str(data.get("id")), _str(data.get("author_id"))
    if tweet_id is None or not tweet_id.isdigit():
        raise PayloadError("tweet without a numeric id")
    if author_id is None:
        raise PayloadError(f"tweet {tweet_id} without author_id (ask for expansions=author_id)")
    note = _dict(data.get("note_tweet"))
    text = _str(note.get("text")) or (data.get("text") if isinstance(data.get("text"), str) else "")
    entities = _dict(note.get("entities")) or _dict(data.get("entities"))
    refs = [_dict(r) for r in _list(data.get("referenced_tweets"))]
    ref_types = {r.get("type") for r in refs}
    replied_to = next((_str(r.get("id")) for r in refs if r.get("type") == "replied_to"), None)
    refs_media: list[MediaRef] = []
    for key in _list(_dict(data.get("attachments")).get("media_keys")):
        item = _dict(media.get(str(key)))
        kind = item.get("type")
        url = item.get("url") if kind == "photo" else item.get("preview_image_url")
        ref = _photo(_str(url), str(key), str(kind))
        if ref is not None:
            refs_media.append(ref)
    geo = _dict(data.get("geo"))
    place = _dict(places.get(str(geo.get("place_id")))) if geo.get("place_id") else {}
    location, place_name = _location(_point(geo.get("coordinates")), place, _v2_bbox(place))
    author = _dict(users.get(author_id))
    return _Tweet(
        id=tweet_id,
        author_id=author_id,
        username=_str(author.get("username")),
        name=_str(author.get("name")),
        text=html.unescape(str(text)),
        hashtags=tuple(str(h.get("tag", "")) for h in map(_dict, _list(entities.get("hashtags")))),
        mention_ids=tuple(str(m.get("id", "")) for m in map(_dict, _list(entities.get("mentions")))),
        mention_names=tuple(str(m.get("username", "")) for m in map(_dict, _list(entities.get("mentions")))),
        media=tuple(refs_media),
        location=location,
        conversation_id=_str(data.get("conversation_id")),
        in_reply_to_user_id=_str(data.get("in_reply_to_user_id")),
        replied_to=replied_to,
        retweet="retweeted" in ref_types,
        quote="quoted" in ref_types,
        created_at=_str(data.get("created_at")),
        place_name=place_name,
        media_links=_media_links(entities),
    )


def _v2_bbox(place: Mapping[str, Any]) -> tuple[float, float] | None:
    bbox = _list(_dict(place.get("geo")).get("bbox"))
    if len(bbox) != 4:
        return None
    try:
        west, south, east, north = (float(v) for v in bbox)
    except (TypeError, ValueError):
        return None
    return round((south + north) / 2, 6), round((west + east) / 2, 6)


def _media_links(entities: Mapping[str, Any]) -> tuple[str, ...]:
    """t.co links that stand for attached media or a quoted tweet, not for something the citizen linked."""
    links = []
    for url in map(_dict, _list(entities.get("urls")) + _list(entities.get("media"))):
        expanded = str(url.get("expanded_url", ""))
        display = str(url.get("display_url", ""))
        if url.get("media_key") or "/photo/" in expanded or "/video/" in expanded or "/status/" in expanded \
                or display.startswith(("pic.x.com", "pic.twitter.com")):  # fmt: skip
            short = _str(url.get("url"))
            if short:
                links.append(short)
    return tuple(links)


def _location(
    point: tuple[float, float] | None, place: Mapping[str, Any], center: tuple[float, float] | None
) -> tuple[GeoPoint | None, str | None]:
    name = _str(place.get("full_name")) or _str(place.get("name"))
    if point is not None:
        return GeoPoint(point[0], point[1], label=name), name
    if place and place.get("place_type") in FINE_PLACE_TYPES and center is not None:
        return GeoPoint(center[0], center[1], address=name, label=_str(place.get("name"))), name
    return None, name


# ------------------------------------------------------------------------------------------- v1.1


def tweet_from_v1(data: Mapping[str, Any]) -> _Tweet:
    tweet_id = _str(data.get("id_str")) or _str(data.get("id"))
    user = _dict(data.get("user"))
    author_id = _str(user.get("id_str")) or _str(user.get("id"))
    if tweet_id is None or not tweet_id.isdigit():
        raise PayloadError("tweet_create_events item without a numeric id_str")
    if author_id is None:
        raise PayloadError(f"tweet {tweet_id} without user.id_str")
    extended = _dict(data.get("extended_tweet"))
    text = _str(extended.get("full_text")) or _str(data.get("full_text")) or _str(data.get("text")) or ""
    entities = _dict(extended.get("entities")) or _dict(data.get("entities"))
    ext_entities = _dict(extended.get("extended_entities")) or _dict(data.get("extended_entities"))
    refs_media: list[MediaRef] = []
    for item in map(_dict, _list(ext_entities.get("media")) or _list(entities.get("media"))):
        kind = str(item.get("type", "photo"))
        ref = _photo(_str(item.get("media_url_https")), _str(item.get("id_str")), kind)
        if ref is not None:
            refs_media.append(ref)
    place = _dict(data.get("place"))
    location, place_name = _location(_point(data.get("coordinates")), place, _v1_bbox(place))
    replied_to = _str(data.get("in_reply_to_status_id_str"))
    return _Tweet(
        id=tweet_id,
        author_id=author_id,
        username=_str(user.get("screen_name")),
        name=_str(user.get("name")),
        text=html.unescape(text),
        hashtags=tuple(str(h.get("text", "")) for h in map(_dict, _list(entities.get("hashtags")))),
        mention_ids=tuple(str(m.get("id_str", "")) for m in map(_dict, _list(entities.get("user_mentions")))),
        mention_names=tuple(
            str(m.get("screen_name", "")) for m in map(_dict, _list(entities.get("user_mentions")))
        ),
        media=tuple(refs_media),
        location=location,
        # v1.1 payloads carry no conversation id: replies go to the tweet itself, which is in the thread.
        conversation_id=None,
        in_reply_to_user_id=_str(data.get("in_reply_to_user_id_str")),
        replied_to=replied_to,
        retweet=bool(data.get("retweeted_status")),
        quote=bool(data.get("is_quote_status")) or bool(data.get("quoted_status")),
        created_at=_str(data.get("created_at")),
        place_name=place_name,
        media_links=_media_links(ext_entities) + _media_links(entities),
    )


def _v1_bbox(place: Mapping[str, Any]) -> tuple[float, float] | None:
    ring = _list(_list(_dict(place.get("bounding_box")).get("coordinates"))[:1] or [[]])
    points = [p for p in (ring[0] if ring else []) if isinstance(p, list) and len(p) == 2]
    try:
        lons = [float(p[0]) for p in points]
        lats = [float(p[1]) for p in points]
    except (TypeError, ValueError):
        return None
    if not points:
        return None
    return round((min(lats) + max(lats)) / 2, 6), round((min(lons) + max(lons)) / 2, 6)


# ------------------------------------------------------------------------------------- decisions


def to_event(tweet: _Tweet, rules: Rules, received_at: datetime) -> Parsed:
    """The intake decision for one tweet (see the module docstring for what is ignored and why)."""
    own = (rules.account_id and tweet.author_id == rules.account_id) or (
        rules.account_handle and (tweet.username or "").casefold() == rules.account_handle.casefold()
    )
    if own:
        return Parsed(tweet.id, ignored="the account's own tweet")
    if tweet.retweet or tweet.text.startswith("RT @"):
        return Parsed(tweet.id, ignored="retweet")
    tagged = bool(rules.folded_tags & {h.casefold() for h in tweet.hashtags}) or _has_tag_in_text(
        tweet.text, rules
    )
    handle = rules.account_handle.casefold()
    mentioned = (bool(rules.account_id) and rules.account_id in tweet.mention_ids) or (
        bool(handle) and handle in {n.casefold() for n in tweet.mention_names}
    )
    reply_to_us = bool(rules.account_id) and tweet.in_reply_to_user_id == rules.account_id
    if not (tagged or mentioned or reply_to_us):
        return Parsed(tweet.id, ignored="neither a configured hashtag nor a mention of the account")
    text = clean_text(tweet.text, rules, tweet.media_links)
    if tweet.quote and len(_WORD.findall(text)) < MIN_QUOTE_WORDS and not tweet.media:
        return Parsed(tweet.id, ignored="quote tweet without words of its own (quote-spam)")
    extra: dict[str, str] = {"kind": "reply" if tweet.replied_to else "tweet"}
    if tweet.username:
        extra["username"] = tweet.username
    if tweet.created_at:
        extra["created_at"] = tweet.created_at
    if tweet.place_name and tweet.location is None:
        extra["place"] = tweet.place_name  # too coarse to be the location (a city), kept for officers
    if tweet.quote:
        extra["quote"] = "1"
    event = InboundMessage(
        channel=CHANNEL,
        medium=Medium.TWITTER,
        provider_message_id=tweet.id,
        sender=Address(AddressKind.TWITTER, tweet.author_id),
        received_at=received_at,
        text=text or None,
        media=tweet.media,
        location=tweet.location,
        recipient=rules.account_id or None,
        reply_to=tweet.replied_to,
        profile_name=tweet.name,
        thread_id=tweet.conversation_id,
        extra=extra,
    )
    return Parsed(tweet.id, event=event)


def _has_tag_in_text(text: str, rules: Rules) -> bool:
    """Entities can be missing (an edited payload, a fixture); the hashtag in the words still counts."""
    return any(
        re.search(r"(?<![\w#])#" + re.escape(tag) + r"(?!\w)", text, re.IGNORECASE) for tag in rules.hashtags
    )


def clean_text(text: str, rules: Rules, media_links: Sequence[str] = ()) -> str:
    """The complaint's words: without the reply's leading @mentions, the account's mention anywhere,
    the configured hashtags (any case, anywhere), and the t.co links X adds for photos and quotes."""
    for link in media_links:
        text = text.replace(link, " ")
    if media_links:
        text = _TCO.sub(lambda m: m.group(0) if m.group(0) not in media_links else " ", text)
    text = _LEADING_MENTIONS.sub("", text)
    if rules.account_handle:
        text = re.sub(r"(?<!\w)@" + re.escape(rules.account_handle) + r"\b", " ", text, flags=re.IGNORECASE)
    _keyword, text = strip_keyword(text, [tag.lstrip("#") for tag in rules.hashtags])
    return " ".join(text.split())


def dm_event_from_v1(
    item: Mapping[str, Any],
    users: Mapping[str, Any],
    rules: Rules,
    for_user_id: str | None,
    received_at: datetime,
) -> Parsed:
    """One `direct_message_events` item (Account Activity, v1.1 shape)."""
    event_id = _str(item.get("id"))
    if event_id is None:
        raise PayloadError("direct_message_events item without id")
    if item.get("type") != "message_create":
        return Parsed(DM_PREFIX + event_id, ignored=f"direct message event {item.get('type')!r}")
    create = _dict(item.get("message_create"))
    sender = _str(create.get("sender_id"))
    if sender is None:
        raise PayloadError(f"direct message {event_id} without message_create.sender_id")
    data = _dict(create.get("message_data"))
    media_item = _dict(_dict(data.get("attachment")).get("media"))
    ref = _photo(_str(media_item.get("media_url_https")), _str(media_item.get("id_str")), "dm")
    entities = _dict(data.get("entities"))
    user = _dict(users.get(sender))
    return _dm(
        event_id, sender, str(data.get("text") or ""), (ref,) if ref else (), _media_links(entities),
        _str(user.get("screen_name")), _str(user.get("name")), rules, for_user_id, received_at,
    )  # fmt: skip


def dm_event_from_v2(item: Mapping[str, Any], users: Mapping[str, Any], media: Mapping[str, Any],
                     rules: Rules, received_at: datetime) -> Parsed:  # fmt: skip
    """One `GET /2/dm_events` item (`event_type` MessageCreate)."""
    event_id = _str(item.get("id"))
    if event_id is None:
        raise PayloadError("dm event without id")
    if item.get("event_type") != "MessageCreate":
        return Parsed(DM_PREFIX + event_id, ignored=f"dm event {item.get('event_type')!r}")
    sender = _str(item.get("sender_id"))
    if sender is None:
        raise PayloadError(f"dm event {event_id} without sender_id")
    refs = []
    for key in _list(_dict(item.get("attachments")).get("media_keys")):
        found = _dict(media.get(str(key)))
        ref = _photo(_str(found.get("url")) or _str(found.get("preview_image_url")), str(key), "dm")
        if ref is not None:
            refs.append(ref)
    user = _dict(users.get(sender))
    return _dm(
        event_id, sender, str(item.get("text") or ""), tuple(refs), (),
        _str(user.get("username")), _str(user.get("name")), rules, None, received_at,
    )  # fmt: skip


def _dm(
    event_id: str,
    sender: str,
    text: str,
    media: tuple[MediaRef, ...],
    media_links: Sequence[str],
    username: str | None,
    name: str | None,
    rules: Rules,
    for_user_id: str | None,
    received_at: datetime,
) -> Parsed:
    provider_id = DM_PREFIX + event_id
    if sender in {rules.account_id, for_user_id} - {"", None}:
        return Parsed(provider_id, ignored="the account's own direct message")
    cleaned = clean_text(html.unescape(text), rules, media_links)
    extra = {"kind": "dm"}
    if username:
        extra["username"] = username
    event = InboundMessage(
        channel=CHANNEL,
        medium=Medium.TWITTER,
        provider_message_id=provider_id,
        sender=Address(AddressKind.TWITTER, sender),
        received_at=received_at,
        text=cleaned or None,
        media=media,
        recipient=rules.account_id or for_user_id,
        profile_name=name,
        # Replies to a DM go back by DM: the reply target names the sender, prefixed so the sender
        # of an outbox row can tell a private conversation from a public thread.
        thread_id=DM_PREFIX + sender,
        extra=extra,
    )
    return Parsed(provider_id, event=event)


def is_dm_target(reply_to: str | None) -> bool:
    return bool(reply_to) and str(reply_to).startswith(DM_PREFIX)
