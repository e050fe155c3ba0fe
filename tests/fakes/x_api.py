"""A fake X API v2: a real aiohttp server on loopback that tweepy's AsyncClient (our `XClient`) talks to.

It serves what the gateway uses, in the shapes X documents:
- `GET /2/tweets/search/recent` (bearer): `since_id`, `start_time`, `max_results`, `next_token`
  pagination; `data` newest first, `includes.users`, `includes.media`, `includes.places`, `meta`
  (`newest_id`, `oldest_id`, `result_count`, `next_token`); `x-rate-limit-*` headers.
- `POST /2/tweets` (OAuth 1.0a user context): `{"data": {"id", "text"}}` with 201; refuses a text it
  already posted (403 duplicate content) and a reply to a deleted tweet, as X does.
- `POST /2/dm_conversations/with/:participant_id/messages`: `{"data": {"dm_conversation_id",
  "dm_event_id"}}`; 403 for a citizen whose DMs are closed.
- `GET /2/dm_events`: the account's DM events, newest first.
- `GET /2/dm_conversations/with/:participant_id/dm_events` (user context): the 1-1 conversation with
  one user, newest first: what they sent us (`add_dm`) and what the gateway sent them, each with `id`,
  `event_type`, `text`, `sender_id`, `dm_conversation_id`, `created_at`; `max_results`,
  `pagination_token` -> `meta.next_token`, `meta.result_count`.
- `GET /2/users/:id/tweets` (user context or bearer): the account's own tweets (what the gateway
  posted), newest first, with `start_time`/`end_time`, `max_results` (5-100), `pagination_token`;
  `created_at`, `referenced_tweets` (`replied_to`), `in_reply_to_user_id`, `conversation_id`;
  `meta` (`result_count`, `newest_id`, `oldest_id`, `next_token`).
- `GET /media/<name>`: photo bytes, standing in for pbs.twimg.com.

Tests add citizen tweets (`add_tweet`), script failures (`fail_next`, `rate_limit_next`), push Account
Activity payloads to the gateway's webhook signed with the consumer secret (`push_activity`), and wait
for what the gateway posted (`wait_for_tweets`, `wait_for_dms`) on a Condition, never a sleep.
Posts are stamped `created_at` with `clock` (a test's ManualClock, or the real time). `stall_next`
makes the next create request hang (after recording it, or before) until `release()`: a process
killed mid-send, with or without its message having reached X.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

ACCOUNT_ID = "1700000000000000001"
ACCOUNT_HANDLE = "LaporHendi1708"
BEARER = "AAAAfake-bearer-token-0123456789"
CONSUMER_KEY = "fake-consumer-key"
CONSUMER_SECRET = "fake-consumer-secret-0123456789abcdef"
ACCESS_TOKEN = "1700000000000000001-fakeAccessToken"
ACCESS_TOKEN_SECRET = "fake-access-token-secret-0123456789"

DUPLICATE_DETAIL = "You are not allowed to create a Tweet with duplicate content."
DELETED_DETAIL = "You attempted to reply to a Tweet that is deleted or not visible to you."
DM_CLOSED_DETAIL = "You cannot send messages to this user."


@dataclass
class ScriptedFailure:
    route: str
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def problem(status: int, title: str, detail: str) -> dict[str, Any]:
    """An API v2 error body ("problem" shape)."""
    return {"title": title, "detail": detail, "type": "about:blank", "status": status}


class FakeXAPI:
    """X API v2 on 127.0.0.1. `posted` holds every tweet the gateway created, `dms` every DM sent,
    `calls` every request as (method, path, query)."""

    def __init__(self, page_size: int = 100) -> None:
        self.page_size = page_size
        self.tweets: list[dict[str, Any]] = []
        self.users: dict[str, dict[str, Any]] = {
            ACCOUNT_ID: {"id": ACCOUNT_ID, "name": "Lapor Hendi 1708", "username": ACCOUNT_HANDLE}
        }
        self.media: dict[str, dict[str, Any]] = {}
        self.places: dict[str, dict[str, Any]] = {}
        self.dm_events: list[dict[str, Any]] = []
        self.files: dict[str, bytes] = {}
        self.posted: list[dict[str, Any]] = []
        self.dms: list[dict[str, Any]] = []
        self.calls: list[tuple[str, str, dict[str, str]]] = []
        self.deleted: set[str] = set()
        self.dms_closed: set[str] = set()
        self.rate_remaining: dict[str, tuple[int, int]] = {}
        """route -> (remaining, reset epoch) to report on the next successful answer."""
        self._failures: deque[ScriptedFailure] = deque()
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        """Stamps `created_at` on what the gateway posts."""
        self._stalls: dict[str, bool] = {}
        """route -> record first: the next request to it hangs until `release()`."""
        self._released = asyncio.Event()
        self.stalled = 0
        """Requests that reached a stall (they hang until `release()`)."""
        self._ids = itertools.count(1_850_000_000_000_000_000, 1_000_000)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.base_url = ""

    # -- lifecycle

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/2/tweets/search/recent", self._search)
        app.router.add_post("/2/tweets", self._create_tweet)
        app.router.add_post("/2/dm_conversations/with/{participant}/messages", self._create_dm)
        app.router.add_get("/2/dm_events", self._dm_events)
        app.router.add_get("/2/dm_conversations/with/{participant}/dm_events", self._conversation_events)
        app.router.add_get("/2/users/{user_id}/tweets", self._user_tweets)
        app.router.add_get("/media/{name}", self._file)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    async def stop(self) -> None:
        self.release()
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeXAPI:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def settings(self, **overrides: str) -> dict[str, str]:
        """`make_config` overrides (CHANNELS__TWITTER__*) for a gateway talking to this fake."""
        values = {
            "CHANNELS__TWITTER__BEARER_TOKEN": BEARER,
            "CHANNELS__TWITTER__CONSUMER_KEY": CONSUMER_KEY,
            "CHANNELS__TWITTER__CONSUMER_SECRET": CONSUMER_SECRET,
            "CHANNELS__TWITTER__ACCESS_TOKEN": ACCESS_TOKEN,
            "CHANNELS__TWITTER__ACCESS_TOKEN_SECRET": ACCESS_TOKEN_SECRET,
            "CHANNELS__TWITTER__ACCOUNT_ID": ACCOUNT_ID,
            "CHANNELS__TWITTER__ACCOUNT_HANDLE": ACCOUNT_HANDLE,
            "CHANNELS__TWITTER__API_BASE": self.base_url,
        }
        values.update({f"CHANNELS__TWITTER__{k.upper()}": v for k, v in overrides.items()})
        return values

    # -- world building

    def next_id(self) -> str:
        return str(next(self._ids))

    def add_user(self, user_id: str, username: str, name: str | None = None) -> dict[str, Any]:
        self.users[user_id] = {"id": user_id, "name": name or username, "username": username}
        return self.users[user_id]

    def add_photo(self, content: bytes, name: str = "photo.jpg") -> str:
        """A photo the citizen attached; returns its media_key."""
        key = f"3_{self.next_id()}"
        self.files[name] = content
        self.media[key] = {"media_key": key, "type": "photo", "url": f"{self.base_url}/media/{name}"}
        return key

    def add_tweet(
        self,
        author_id: str,
        text: str,
        *,
        reply_to: str | None = None,
        media_keys: list[str] | None = None,
        coordinates: tuple[float, float] | None = None,
        retweet_of: str | None = None,
        quote_of: str | None = None,
    ) -> dict[str, Any]:
        """A tweet someone posted; it is found by recent search from now on."""
        tweet_id = self.next_id()
        tweet: dict[str, Any] = {
            "id": tweet_id,
            "text": text,
            "author_id": author_id,
            "created_at": "2026-11-23T02:00:00.000Z",
            "edit_history_tweet_ids": [tweet_id],
            "conversation_id": tweet_id,
            "entities": _entities(text, self.users),
        }
        refs = []
        if reply_to is not None:
            parent = next(t for t in self.tweets + self.posted if t["id"] == reply_to)
            tweet["conversation_id"] = parent.get("conversation_id", reply_to)
            tweet["in_reply_to_user_id"] = parent.get("author_id", ACCOUNT_ID)
            refs.append({"type": "replied_to", "id": reply_to})
        if retweet_of is not None:
            refs.append({"type": "retweeted", "id": retweet_of})
        if quote_of is not None:
            refs.append({"type": "quoted", "id": quote_of})
        if refs:
            tweet["referenced_tweets"] = refs
        if media_keys:
            tweet["attachments"] = {"media_keys": media_keys}
        if coordinates is not None:
            tweet["geo"] = {"coordinates": {"type": "Point", "coordinates": [coordinates[1], coordinates[0]]}}
        self.tweets.append(tweet)
        return tweet

    def add_dm(self, sender_id: str, text: str) -> dict[str, Any]:
        event = {
            "id": self.next_id(),
            "event_type": "MessageCreate",
            "text": text,
            "sender_id": sender_id,
            "dm_conversation_id": f"{sender_id}-{ACCOUNT_ID}",
            "created_at": "2026-11-23T02:00:00.000Z",
        }
        self.dm_events.append(event)
        return event

    def fail_next(
        self, route: str, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        """The next request to `route` ("GET /2/tweets/search/recent", "POST /2/tweets", "POST /2/dm")
        fails with `status` and `body`."""
        self._failures.append(ScriptedFailure(route, status, body, headers or {}))

    def rate_limit_next(self, route: str, reset_epoch: int) -> None:
        self.fail_next(
            route,
            429,
            problem(429, "Too Many Requests", "Too Many Requests"),
            {
                "x-rate-limit-limit": "450",
                "x-rate-limit-remaining": "0",
                "x-rate-limit-reset": str(reset_epoch),
            },
        )

    def stall_next(self, route: str, *, after_recording: bool = True) -> None:
        """The next request to `route` ("POST /2/tweets", "POST /2/dm") never answers until
        `release()`: recorded first (X has it, the sender never learns) or not at all."""
        self._stalls[route] = after_recording
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    async def _stall(self, route: str, *, recorded: bool) -> bool:
        """Hang here if `route` is stalled at this point (before or after recording); True if it was."""
        if route not in self._stalls or self._stalls[route] != recorded:
            return False
        del self._stalls[route]
        async with self._changed:
            self.stalled += 1
            self._changed.notify_all()
        await self._released.wait()
        return True

    @staticmethod
    def _gone() -> web.Response:
        """Released after a stall before recording: the sender is long gone, nothing is recorded."""
        return web.json_response(problem(503, "Service Unavailable", "Service Unavailable"), status=503)

    async def wait_for_stall(self, count: int = 1, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: self.stalled >= count), timeout)

    def _stamp(self) -> str:
        return self.clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")

    # -- waiting

    async def wait_for_tweets(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:  # noqa: ASYNC109
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(self.posted) >= count), timeout)
            return self.posted[:count]

    async def wait_for_dms(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:  # noqa: ASYNC109
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(self.dms) >= count), timeout)
            return self.dms[:count]

    # -- Account Activity towards the gateway

    async def push_activity(
        self,
        url: str,
        payload: dict[str, Any],
        *,
        secret: str = CONSUMER_SECRET,
        signature: str | None = None,
    ) -> tuple[int, str]:
        body = json.dumps(payload).encode()
        sign = signature if signature is not None else sign_body(secret, body)
        headers = {"Content-Type": "application/json", "x-twitter-webhooks-signature": sign}
        session = await self._client()
        async with session.post(url, data=body, headers=headers) as response:
            return response.status, await response.text()

    async def crc(self, url: str, token: str) -> tuple[int, Any]:
        session = await self._client()
        async with session.get(url, params={"crc_token": token}) as response:
            text = await response.text()
            try:
                return response.status, json.loads(text)
            except ValueError:
                return response.status, text

    async def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    # -- handlers

    def _scripted(self, route: str) -> web.Response | None:
        if self._failures and self._failures[0].route == route:
            failure = self._failures.popleft()
            return web.json_response(failure.body, status=failure.status, headers=failure.headers)
        return None

    def _limits(self, route: str) -> dict[str, str]:
        remaining, reset = self.rate_remaining.pop(route, (449, 4_102_444_800))
        return {
            "x-rate-limit-limit": "450",
            "x-rate-limit-remaining": str(remaining),
            "x-rate-limit-reset": str(reset),
        }

    @staticmethod
    def _auth(request: web.Request, user: bool) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        ok = (f'oauth_consumer_key="{CONSUMER_KEY}"' in header and header.startswith("OAuth ")) if user else (
            header == f"Bearer {BEARER}"
        )  # fmt: skip
        if ok:
            return None
        return web.json_response(problem(401, "Unauthorized", "Unauthorized"), status=401)

    async def _search(self, request: web.Request) -> web.Response:
        route = "GET /2/tweets/search/recent"
        self.calls.append((request.method, request.path, dict(request.query)))
        denied = self._auth(request, user=False) or self._scripted(route)
        if denied is not None:
            return denied
        query = request.query.get("query", "")
        if not query:
            return web.json_response(problem(400, "Invalid Request", "query is required"), status=400)
        since = int(request.query.get("since_id", "0") or 0)
        size = min(int(request.query.get("max_results", "10")), self.page_size)
        offset = int(request.query.get("next_token", "0") or 0)
        matching = [t for t in self.tweets if int(t["id"]) > since and _matches(query, t)]
        matching.sort(key=lambda t: int(t["id"]), reverse=True)
        page = matching[offset : offset + size]
        body: dict[str, Any] = {"meta": {"result_count": len(page)}}
        if page:
            body["data"] = page
            body["meta"].update({"newest_id": page[0]["id"], "oldest_id": page[-1]["id"]})
            body["includes"] = self._includes(page)
        if offset + size < len(matching):
            body["meta"]["next_token"] = str(offset + size)
        return web.json_response(body, headers=self._limits(route))

    def _includes(self, page: list[dict[str, Any]]) -> dict[str, Any]:
        users = {t["author_id"]: self.users[t["author_id"]] for t in page if t["author_id"] in self.users}
        keys = [k for t in page for k in t.get("attachments", {}).get("media_keys", [])]
        includes: dict[str, Any] = {"users": list(users.values())}
        media = [self.media[k] for k in keys if k in self.media]
        if media:
            includes["media"] = media
        return includes

    async def _create_tweet(self, request: web.Request) -> web.Response:
        route = "POST /2/tweets"
        self.calls.append((request.method, request.path, {}))
        denied = self._auth(request, user=True) or self._scripted(route)
        if denied is not None:
            return denied
        body = await request.json()
        text = body.get("text", "")
        target = (body.get("reply") or {}).get("in_reply_to_tweet_id")
        if any(p["text"] == text for p in self.posted):
            return web.json_response(problem(403, "Forbidden", DUPLICATE_DETAIL), status=403)
        if target is not None and (
            target in self.deleted or not any(t["id"] == target for t in self.tweets + self.posted)
        ):
            return web.json_response(problem(403, "Forbidden", DELETED_DETAIL), status=403)
        if await self._stall(route, recorded=False):
            return self._gone()
        tweet_id = self.next_id()
        parent = next((t for t in self.tweets + self.posted if t["id"] == target), None)
        record = {
            "id": tweet_id,
            "text": text,
            "author_id": ACCOUNT_ID,
            "in_reply_to_tweet_id": target,
            "conversation_id": (parent or {}).get("conversation_id", tweet_id),
            "created_at": self._stamp(),
        }
        async with self._changed:
            self.posted.append(record)
            self._changed.notify_all()
        await self._stall(route, recorded=True)
        return web.json_response(
            {"data": {"id": tweet_id, "text": text, "edit_history_tweet_ids": [tweet_id]}},
            status=201,
            headers=self._limits(route),
        )

    async def _create_dm(self, request: web.Request) -> web.Response:
        route = "POST /2/dm"
        participant = request.match_info["participant"]
        self.calls.append((request.method, request.path, {}))
        denied = self._auth(request, user=True) or self._scripted(route)
        if denied is not None:
            return denied
        body = await request.json()
        if participant in self.dms_closed:
            return web.json_response(
                {"errors": [{"code": 349, "message": DM_CLOSED_DETAIL}], "title": "Forbidden", "status": 403,
                 "detail": DM_CLOSED_DETAIL, "type": "about:blank"},
                status=403,
            )  # fmt: skip
        if await self._stall(route, recorded=False):
            return self._gone()
        event_id = self.next_id()
        async with self._changed:
            self.dms.append({"to": participant, "text": body.get("text", ""), "dm_event_id": event_id,
                             "created_at": self._stamp()})  # fmt: skip
            self._changed.notify_all()
        await self._stall(route, recorded=True)
        return web.json_response(
            {"data": {"dm_conversation_id": f"{participant}-{ACCOUNT_ID}", "dm_event_id": event_id}},
            status=201,
            headers=self._limits(route),
        )

    async def _dm_events(self, request: web.Request) -> web.Response:
        route = "GET /2/dm_events"
        self.calls.append((request.method, request.path, dict(request.query)))
        denied = self._auth(request, user=True) or self._scripted(route)
        if denied is not None:
            return denied
        size = min(int(request.query.get("max_results", "100")), self.page_size)
        offset = int(request.query.get("pagination_token", "0") or 0)
        events = sorted(self.dm_events, key=lambda e: int(e["id"]), reverse=True)
        page = events[offset : offset + size]
        body: dict[str, Any] = {"meta": {"result_count": len(page)}}
        if page:
            body["data"] = page
            senders = {e["sender_id"] for e in page}
            body["includes"] = {"users": [self.users[s] for s in senders if s in self.users]}
        if offset + size < len(events):
            body["meta"]["next_token"] = str(offset + size)
        return web.json_response(body, headers=self._limits(route))

    async def _conversation_events(self, request: web.Request) -> web.Response:
        route = "GET /2/dm_conversations/with/:participant_id/dm_events"
        participant = request.match_info["participant"]
        self.calls.append((request.method, request.path, dict(request.query)))
        denied = self._auth(request, user=True) or self._scripted(route)
        if denied is not None:
            return denied
        conversation = f"{participant}-{ACCOUNT_ID}"
        events = [e for e in self.dm_events if e["sender_id"] == participant]
        events += [
            {"id": d["dm_event_id"], "event_type": "MessageCreate", "text": d["text"],
             "sender_id": ACCOUNT_ID, "dm_conversation_id": conversation, "created_at": d["created_at"]}
            for d in self.dms if d["to"] == participant
        ]  # fmt: skip
        types = request.query.get("event_types")
        if types:
            events = [e for e in events if e["event_type"] in types.split(",")]
        fields = set(request.query.get("dm_event.fields", "").split(",")) | {"id", "event_type", "text"}
        events = [{k: v for k, v in e.items() if k in fields} for e in events]
        return self._page(route, request, events, default_size=100)

    async def _user_tweets(self, request: web.Request) -> web.Response:
        route = "GET /2/users/:id/tweets"
        self.calls.append((request.method, request.path, dict(request.query)))
        header = request.headers.get("Authorization", "")
        denied = self._auth(request, user=not header.startswith("Bearer ")) or self._scripted(route)
        if denied is not None:
            return denied
        user_id = request.match_info["user_id"]
        start = _moment(request.query.get("start_time"))
        end = _moment(request.query.get("end_time"))
        own = [t for t in self.posted if t["author_id"] == user_id]
        own += [t for t in self.tweets if t["author_id"] == user_id]
        tweets = []
        for t in own:
            when = _moment(t.get("created_at"))
            if (start is not None and when is not None and when < start) or (
                end is not None and when is not None and when >= end
            ):
                continue
            tweets.append(self._tweet_view(t, request.query.get("tweet.fields", "")))
        return self._page(route, request, tweets, default_size=10)

    def _tweet_view(self, tweet: dict[str, Any], fields: str) -> dict[str, Any]:
        """A stored tweet as v2 answers it: `id`, `text`, `edit_history_tweet_ids`, + the fields asked."""
        view = dict(tweet)
        target = view.pop("in_reply_to_tweet_id", None)
        if target is not None:
            parent = next((t for t in self.tweets + self.posted if t["id"] == target), None)
            view["referenced_tweets"] = [{"type": "replied_to", "id": target}]
            view["in_reply_to_user_id"] = (parent or {}).get("author_id", ACCOUNT_ID)
        view.setdefault("edit_history_tweet_ids", [view["id"]])
        wanted = set(fields.split(",")) | {"id", "text", "edit_history_tweet_ids"}
        return {k: v for k, v in view.items() if k in wanted}

    def _page(
        self, route: str, request: web.Request, items: list[dict[str, Any]], *, default_size: int
    ) -> web.Response:
        """Newest first, `max_results` per page (capped at `page_size`), `pagination_token` an offset."""
        size = min(int(request.query.get("max_results", str(default_size))), self.page_size)
        offset = int(request.query.get("pagination_token", "0") or 0)
        items = sorted(items, key=lambda item: int(item["id"]), reverse=True)
        page = items[offset : offset + size]
        body: dict[str, Any] = {"meta": {"result_count": len(page)}}
        if page:
            body["data"] = page
            body["meta"].update({"newest_id": page[0]["id"], "oldest_id": page[-1]["id"]})
        if offset + size < len(items):
            body["meta"]["next_token"] = str(offset + size)
        return web.json_response(body, headers=self._limits(route))

    async def _file(self, request: web.Request) -> web.Response:
        content = self.files.get(request.match_info["name"])
        if content is None:
            return web.Response(status=404)
        return web.Response(body=content, content_type="image/jpeg")


def sign_body(secret: str, body: bytes) -> str:
    return "sha256=" + base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _moment(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _entities(text: str, users: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """hashtags and mentions with start/end, as X computes them."""
    import re

    entities: dict[str, Any] = {}
    tags = [{"start": m.start(), "end": m.end(), "tag": m.group(1)} for m in re.finditer(r"#(\w+)", text)]
    if tags:
        entities["hashtags"] = tags
    mentions = []
    for m in re.finditer(r"@(\w{1,15})", text):
        found = next((u for u in users.values() if u["username"].lower() == m.group(1).lower()), None)
        mention = {"start": m.start(), "end": m.end(), "username": m.group(1)}
        if found is not None:
            mention["id"] = found["id"]
        mentions.append(mention)
    if mentions:
        entities["mentions"] = mentions
    return entities


def _matches(query: str, tweet: dict[str, Any]) -> bool:
    """Enough of X's query language for `(#A OR #B OR @handle) -is:retweet`."""
    text = tweet["text"].lower()
    if "-is:retweet" in query and any(r["type"] == "retweeted" for r in tweet.get("referenced_tweets", [])):
        return False
    inner = query.split(")")[0].lstrip("(")
    terms = [t.strip().lower() for t in inner.split(" OR ") if t.strip()]
    return any(term in text for term in terms)
