"""Polling intake: recent search for the hashtags and the account's mentions, and the account's DMs.

Each pass asks `GET /2/tweets/search/recent` for `(#Tag1 OR #Tag2 OR @handle) -is:retweet` with
`since_id` = the newest tweet id in the store (see cursor.py), follows `next_token` through every page,
and only then hands the whole batch, oldest first, to the gateway's `Ingestor.ingest`. Fetching all
pages before ingesting anything is what makes a failure mid-way (a 429 on page 3) harmless: nothing is
stored, the cursor does not move, the next pass asks again from the same `since_id`. Ingesting a page
at a time would store the newest page first and move the cursor past the pages not yet read.

DMs (`GET /2/dm_events`, user context) have no `since_id`; pages are read newest first until an id
at or below the newest stored DM. Only when user credentials are set (DMs need them anyway).

Rate limits: the `x-rate-limit-remaining`/`x-rate-limit-reset` of every answer are kept by the
client; a pass that used the window up, or got a 429, sleeps until the reset rather than spin.
The first pass on an empty store looks back `FIRST_LOOKBACK` only: answering week-old tweets from
strangers on the day of deployment would be noise, not service.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine
from tweepy.errors import HTTPException, TooManyRequests

from adapters.base import ChannelAdapter, Event
from adapters.twitter import cursor
from adapters.twitter.adapter import TwitterAdapter
from adapters.twitter.client import error_detail, route_key
from adapters.twitter.parse import (
    Parsed,
    PayloadError,
    dm_event_from_v2,
    index_includes,
    to_event,
    tweet_from_v2,
)

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Ingest = Callable[[Sequence[Event]], Awaitable[None]]

SEARCH = route_key("GET", "/2/tweets/search/recent")
DM_EVENTS = route_key("GET", "/2/dm_events")
MAX_PAGES = 20
"""100 tweets a page: 2,000 tweets in one pass is a flood; more waits for the next pass."""
FIRST_LOOKBACK = timedelta(hours=24)
TWEET_FIELDS = [
    "author_id", "conversation_id", "created_at", "entities", "geo", "in_reply_to_user_id",
    "referenced_tweets", "attachments", "note_tweet",
]  # fmt: skip
EXPANSIONS = ["author_id", "attachments.media_keys", "geo.place_id", "referenced_tweets.id"]


@dataclass(frozen=True, slots=True)
class PollOutcome:
    ingested: int
    ignored: int
    next_delay: float
    """Seconds until the next pass: the configured interval, or until the rate-limit window resets."""
    error: str | None = None


class TwitterPoller:
    """A background task that runs `poll_once` every `poll_seconds`; tests call `poll_once` directly."""

    def __init__(
        self,
        adapter: TwitterAdapter,
        engine: AsyncEngine,
        ingest: Ingest,
        *,
        clock: Clock,
        poll_dms: bool | None = None,
    ) -> None:
        self.adapter = adapter
        self.engine = engine
        self.ingest = ingest
        self.clock = clock
        self.interval = float(adapter.config.poll_seconds)
        self.poll_dms = adapter.can_send if poll_dms is None else poll_dms
        self._tweet_cursor: int | None = None
        self._dm_cursor: int | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.passes = 0
        adapter.attach(engine, clock)

    @property
    def query(self) -> str:
        terms = [f"#{tag.lstrip('#')}" for tag in self.adapter.rules.hashtags]
        if self.adapter.rules.account_handle:
            terms.append(f"@{self.adapter.rules.account_handle}")
        return f"({' OR '.join(terms)}) -is:retweet"

    # -- lifecycle

    async def start(self) -> None:
        if self.interval <= 0:
            log.info("twitter polling off (poll_seconds = 0): webhook intake only")
            return
        self._stop.clear()
        self._task = asyncio.create_task(self._run(), name="twitter-poller")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                outcome = await self.poll_once()
                delay = outcome.next_delay
            except Exception:  # the poller must outlive any one bad pass
                log.exception("twitter poll failed")
                delay = self.interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=max(1.0, delay))

    # -- one pass

    async def poll_once(self) -> PollOutcome:
        self.passes += 1
        wait = self._window_wait(SEARCH)
        if wait > 0:
            return PollOutcome(0, 0, wait, "search rate limit used up")
        try:
            tweets = await self._search()
            dms = await self._dms() if self.poll_dms and self._window_wait(DM_EVENTS) <= 0 else []
        except TooManyRequests as exc:
            reset = getattr(exc, "reset_time", None)
            delay = max(1.0, reset - self.clock().timestamp()) if reset is not None else self.interval
            log.warning("twitter poll rate limited; next pass in %.0f s", delay)
            return PollOutcome(0, 0, delay, "429")
        except (HTTPException, aiohttp.ClientError, TimeoutError) as exc:
            detail = error_detail(exc) if isinstance(exc, HTTPException) else type(exc).__name__
            log.warning("twitter poll failed: %s", detail)
            return PollOutcome(0, 0, self.interval, detail)
        parsed = [*tweets, *dms]
        events: list[Event] = [p.event for p in parsed if p.event is not None]
        for item in parsed:
            if item.event is None:
                log.info("twitter %s not taken in: %s", item.source_id, item.ignored)
        await self.ingest(events)  # raises IngestUnavailable: the cursors stay, the next pass retries
        self._advance(parsed)
        return PollOutcome(len(events), len(parsed) - len(events), self._next_delay())

    def _advance(self, parsed: Sequence[Parsed]) -> None:
        """Remember ignored tweets too, so a retweet is not fetched again every pass (until restart)."""
        for item in parsed:
            if item.source_id.isdigit():
                self._tweet_cursor = max(self._tweet_cursor or 0, int(item.source_id))
            elif item.source_id.startswith("dm:") and item.source_id[3:].isdigit():
                self._dm_cursor = max(self._dm_cursor or 0, int(item.source_id[3:]))

    def _window_wait(self, key: str) -> float:
        limit = self.adapter.client.rate_limits.get(key)
        if limit is None or limit.remaining is None or limit.reset is None or limit.remaining > 0:
            return 0.0
        return max(0.0, limit.reset - self.clock().timestamp())

    def _next_delay(self) -> float:
        return max(self.interval, self._window_wait(SEARCH))

    async def _search(self) -> list[Parsed]:
        stored = await cursor.newest_tweet_id(self.engine, self.adapter.name)
        since = max(filter(None, (stored, self._tweet_cursor)), default=None)
        params: dict[str, Any] = {
            "max_results": 100,
            "tweet_fields": TWEET_FIELDS,
            "expansions": EXPANSIONS,
            "media_fields": ["media_key", "type", "url", "preview_image_url"],
            "place_fields": ["full_name", "name", "place_type", "geo"],
            "user_fields": ["username", "name"],
        }
        if since is not None:
            params["since_id"] = str(since)
        else:
            params["start_time"] = self.clock() - FIRST_LOOKBACK
        pages: list[dict[str, Any]] = []
        token: str | None = None
        for _ in range(MAX_PAGES):
            page = await self.adapter.client.search_recent_tweets(self.query, next_token=token, **params)
            if not isinstance(page, dict):
                break
            pages.append(page)
            token = _next_token(page)
            if token is None:
                break
        else:
            log.warning("twitter poll: more than %d pages new; the rest waits for the next pass", MAX_PAGES)
        now = self.clock()
        found: dict[str, Parsed] = {}
        for page in pages:
            users, media, places = index_includes(page.get("includes"))
            for data in page.get("data") or []:
                if not isinstance(data, dict):
                    continue
                try:
                    item = to_event(tweet_from_v2(data, users, media, places), self.adapter.rules, now)
                except PayloadError as exc:
                    log.warning("twitter poll: skipped a malformed tweet: %s", exc)
                    continue
                found.setdefault(item.source_id, item)
        return sorted(found.values(), key=lambda p: int(p.source_id))

    async def _dms(self) -> list[Parsed]:
        stored = await cursor.newest_dm_id(self.engine, self.adapter.name)
        floor = max(filter(None, (stored, self._dm_cursor)), default=None)
        oldest_wanted = self.clock() - FIRST_LOOKBACK
        found: dict[str, Parsed] = {}
        token: str | None = None
        now = self.clock()
        for _ in range(MAX_PAGES):
            page = await self.adapter.client.get_direct_message_events(
                event_types="MessageCreate",
                dm_event_fields=["id", "text", "event_type", "sender_id", "created_at", "attachments"],
                expansions=["sender_id", "attachments.media_keys"],
                media_fields=["media_key", "type", "url", "preview_image_url"],
                user_fields=["username", "name"],
                max_results=100,
                pagination_token=token,
                user_auth=True,
            )
            if not isinstance(page, dict):
                break
            users, media, _places = index_includes(page.get("includes"))
            reached_old = False
            for item in page.get("data") or []:
                if not isinstance(item, dict) or not str(item.get("id", "")).isdigit():
                    continue
                if floor is not None and int(item["id"]) <= floor:
                    reached_old = True
                    continue
                if floor is None and _created(item) is not None and _created(item) < oldest_wanted:  # type: ignore[operator]
                    reached_old = True
                    continue
                try:
                    parsed = dm_event_from_v2(item, users, media, self.adapter.rules, now)
                except PayloadError as exc:
                    log.warning("twitter poll: skipped a malformed DM event: %s", exc)
                    continue
                found.setdefault(parsed.source_id, parsed)
            token = _next_token(page)
            if reached_old or token is None:
                break
        return sorted(found.values(), key=lambda p: int(p.source_id[3:]))


def _next_token(page: dict[str, Any]) -> str | None:
    meta = page.get("meta")
    token = meta.get("next_token") if isinstance(meta, dict) else None
    return token if isinstance(token, str) and token else None


def _created(item: dict[str, Any]) -> datetime | None:
    value = item.get("created_at")
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def make_poller(
    adapter: ChannelAdapter | None, engine: AsyncEngine, ingest: Ingest, *, clock: Clock
) -> TwitterPoller | None:
    """The poller for the app's lifecycle, or None when the X channel is off."""
    if not isinstance(adapter, TwitterAdapter):
        return None
    return TwitterPoller(adapter, engine, ingest, clock=clock)
