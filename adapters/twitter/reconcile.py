"""Did an in-doubt send reach X? What `TwitterAdapter.find_sent` looks for, and how it compares.

The outbox marks a row `send_started_at` before `send`; if the process dies before the outcome is
recorded, the next dispatcher asks `find_sent(message, since)` before sending again (gateway/outbox.py).

`send` does not post `message.text` as it is: it chooses between a DM and a public reply, fills a fixed
public text (public.py), shortens to X's weighted length (text.py), falls back (target deleted, DMs
closed) and adjusts a duplicate once with a ` (ref N)` suffix (adapter.py). So `possible_posts` walks the
same decisions and lists every post `send` could have made for the message, in the order it would have
tried them, and the adapter looks for each in what X lists:

- a DM: `GET /2/dm_conversations/with/:citizen/dm_events` (newest first), an event of type
  MessageCreate whose `sender_id` is our account;
- a tweet: `GET /2/users/:our_id/tweets?start_time=...` with `referenced_tweets`, a reply to the same
  tweet (`replied_to` id) or, for the fallback tweet, no reply at all.

Both must be created at or after `since` minus `CLOCK_SKEW_TOLERANCE` (X's clock is not ours) and carry
the same text: NFC, HTML entities decoded (v2 returns `&amp;`), whitespace collapsed and every URL
masked, because X answers with the t.co form of the tracking link we posted.
"""

from __future__ import annotations

import html
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.twitter.text import MAX_DM, URL_RE, fit

CLOCK_SKEW_TOLERANCE = timedelta(seconds=30)
"""How much earlier than `since` a tweet's or DM's `created_at` is still accepted. Matching an
identical earlier post is the safe mistake: the citizen already has that exact text."""

DUPLICATE_ADJUST_BUDGET = 280 - 16
"""`TwitterAdapter._tweet` refits a duplicate to this weight before appending ` (ref N)`."""


@dataclass(frozen=True, slots=True)
class Post:
    """One thing `send` may have posted: a DM to the citizen, or a tweet (a reply or not)."""

    dm: bool
    text: str
    in_reply_to: str | None = None


def dm_post(text: str) -> Post:
    return Post(dm=True, text=fit(text, MAX_DM))


def tweet_posts(text: str, in_reply_to: str | None, message_id: int) -> list[Post]:
    """The tweet as first posted, then as adjusted after a duplicate-content refusal."""
    adjusted = fit(text, DUPLICATE_ADJUST_BUDGET) + f" (ref {message_id % 1_000_000})"
    return [Post(False, fit(text), in_reply_to), Post(False, fit(adjusted), in_reply_to)]


def comparable(text: str) -> str:
    """Text as both sides can agree on it: NFC, entities decoded, URLs masked, whitespace collapsed."""
    text = unicodedata.normalize("NFC", html.unescape(text))
    return " ".join(URL_RE.sub("<url>", text).split())


def floor_of(since: datetime) -> datetime:
    if since.tzinfo is None:  # SQLite hands back naive UTC
        since = since.replace(tzinfo=UTC)
    return since.replace(microsecond=0) - CLOCK_SKEW_TOLERANCE


def created_at(item: Mapping[str, Any]) -> datetime | None:
    """`created_at` of a v2 object (`2026-11-23T02:00:00.000Z`), or None when absent or unreadable."""
    value = item.get("created_at")
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def replied_to(tweet: Mapping[str, Any]) -> str | None:
    refs = tweet.get("referenced_tweets")
    if not isinstance(refs, list):
        return None
    for ref in refs:
        if isinstance(ref, dict) and ref.get("type") == "replied_to" and ref.get("id") is not None:
            return str(ref["id"])
    return None


def dm_matches(post: Post, event: Mapping[str, Any], account_id: str, floor: datetime) -> bool:
    if event.get("event_type", "MessageCreate") != "MessageCreate":
        return False
    if str(event.get("sender_id", "")) != account_id:
        return False
    when = created_at(event)
    if when is None or when < floor:
        return False
    return comparable(str(event.get("text", ""))) == comparable(post.text)


def tweet_matches(post: Post, tweet: Mapping[str, Any], floor: datetime) -> bool:
    when = created_at(tweet)
    if when is None or when < floor:
        return False
    if replied_to(tweet) != post.in_reply_to:
        return False
    return comparable(str(tweet.get("text", ""))) == comparable(post.text)
