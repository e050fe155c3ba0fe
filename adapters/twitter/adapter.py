"""X (Twitter) through API v2: Account Activity webhook in, replies and DMs out (polling: poller.py).

Webhook (`GET|POST /webhooks/twitter`):
- GET answers the CRC challenge: `{"response_token": "sha256=" + base64(HMAC-SHA256(consumer_secret,
  crc_token))}`. X repeats it hourly; a wrong answer disables the webhook.
- POST is authenticated by `x-twitter-webhooks-signature` (the same HMAC over the raw body), compared
  in constant time. `tweet_create_events` and `direct_message_events` become events; every other
  event type (favorites, follows, typing indicators, deletes...) is acknowledged without events, so X
  does not retry something we simply do not use.

Sending (the public/private split is in public.py):
- a message carrying a tracking code to a public thread -> a reply tweet with the fixed receipt text
  and the code only; status updates go to the complaint's original thread the same way;
- a question -> the full text by DM (`reply_mode = "dm"`) or a fixed public question (`"reply"`);
- anything in a DM conversation -> DM; a filing receipt also goes to the citizen's latest public tweet.
Fallbacks: reply target deleted/suspended -> DM, then a non-reply tweet with the code only; DMs
closed -> a public reply with the code only (or a request to open DMs). A 429 becomes
`SendError(retry_after=<seconds until x-rate-limit-reset>)`, so the outbox schedules the retry.
Duplicate content (X refuses the same text twice): on the first attempt the text is adjusted with a
short reference and sent again; on a later attempt, or if the adjusted text is a duplicate too, the
earlier attempt is what X saw, so the message counts as sent (`provider_message_id = duplicate:<id>`).

After a crash mid-send (`find_sent`, reconcile.py): every post `send` could have made for the message
(DM, fixed public reply, the duplicate-adjusted text, the fallbacks) is looked for in the DM conversation
with the citizen and the account's tweets since the send; found, it is recorded, not posted again.
What can still go out twice:
- a DM, when X does not answer the lookup (429, outage, 401): `find_sent` raises `SendError` and the
  outbox sends again, as its contract says. A tweet cannot double this way: X refuses the same text
  again, and a refusal on a retry counts as sent;
- a DM whose conversation got more than `LOOKUP_PAGES` x 100 events since the send (same path);
- the private copy of a filing receipt (the best-effort DM after the public reply): if the crash fell
  between the two, the reply is found and the copy is never sent (lost, not doubled).
A reply whose target thread changed meanwhile (`latest_public_tweet`) is not found, and the resend is
refused by X as duplicate content: counted as sent, not posted twice.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine
from tweepy.errors import (
    BadRequest,
    Forbidden,
    HTTPException,
    NotFound,
    TooManyRequests,
    TwitterServerError,
    Unauthorized,
)

from adapters.base import (
    AddressKind,
    DeliveryStatus,
    Event,
    MediaFetchError,
    MediaRef,
    Medium,
    OutboundMessage,
    Route,
    SendError,
    SendResult,
    WebhookRejected,
    WebhookRequest,
    WebhookResponse,
    WebhookResult,
)
from adapters.twitter import cursor, public, reconcile
from adapters.twitter.client import XClient, error_detail
from adapters.twitter.parse import (
    CHANNEL,
    Parsed,
    PayloadError,
    Rules,
    dm_event_from_v1,
    is_dm_target,
    to_event,
    tweet_from_v1,
)
from adapters.twitter.text import MAX_DM, fit
from gateway.config import TwitterConfig
from gateway.logs import register_secret

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

WEBHOOK_PATH = "/webhooks/twitter"
SIGNATURE_HEADER = "x-twitter-webhooks-signature"
STATUS_MAP: Mapping[str, DeliveryStatus] = {"sent": DeliveryStatus.SENT}
"""X has no delivery receipts for tweets or DMs: accepted by the API is as far as we know."""

_GONE_HINTS = ("deleted", "not visible", "does not exist", "suspended", "cannot reply", "could not find")
_DUPLICATE_HINTS = ("duplicate",)
MAX_MEDIA_BYTES = 20 * 1024 * 1024
LOOKUP_PAGES = 10
"""Pages of 100 `find_sent` reads (DMs with the citizen, our tweets since the send) before it gives
up and says it cannot tell."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


def crc_response_token(consumer_secret: str, crc_token: str) -> str:
    digest = hmac.new(consumer_secret.encode(), crc_token.encode(), hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(digest).decode()


def signature_of(consumer_secret: str, body: bytes) -> str:
    digest = hmac.new(consumer_secret.encode(), body, hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(digest).decode()


class _XFailure(Exception):
    """One failed API call, already understood: what X said and what it means for us."""

    def __init__(self, error: SendError, detail: str, status: int | None) -> None:
        super().__init__(detail)
        self.error = error
        self.detail = detail.lower()
        self.status = status

    @property
    def duplicate(self) -> bool:
        return self.status == 403 and any(h in self.detail for h in _DUPLICATE_HINTS)

    @property
    def target_gone(self) -> bool:
        return self.status in (400, 403, 404) and any(h in self.detail for h in _GONE_HINTS)

    @property
    def refused(self) -> bool:
        """403 that is not a duplicate: for a DM, the citizen does not accept DMs from us."""
        return self.status == 403 and not self.duplicate


class TwitterAdapter:
    name = CHANNEL
    medium = Medium.TWITTER
    STATUS_MAP: ClassVar[Mapping[str, DeliveryStatus]] = STATUS_MAP

    def __init__(
        self,
        config: TwitterConfig,
        public_url: str,
        *,
        clock: Clock = _utcnow,
        timeout: float = 20.0,
    ) -> None:
        self.config = config
        self.public_url = public_url.rstrip("/")
        self.clock = clock
        self.rules = Rules(
            hashtags=tuple(config.hashtags),
            account_id=config.account_id.strip(),
            account_handle=config.account_handle.strip().lstrip("@"),
        )
        self._consumer_secret = config.consumer_secret.reveal()
        for secret in (
            config.bearer_token.reveal(),
            config.consumer_secret.reveal(),
            config.access_token_secret.reveal(),
        ):
            register_secret(secret)
        self.client = XClient(
            config.api_base,
            timeout=timeout,
            bearer_token=config.bearer_token.reveal() or None,
            consumer_key=config.consumer_key or None,
            consumer_secret=self._consumer_secret or None,
            access_token=config.access_token or None,
            access_token_secret=config.access_token_secret.reveal() or None,
        )
        self.engine: AsyncEngine | None = None
        self._own_user_id: str | None = None
        self._media_session: aiohttp.ClientSession | None = None
        if not self._consumer_secret:
            log.warning(
                "twitter: channels.twitter.consumer_secret is not set; the webhook refuses everything"
            )
        if not self.rules.account_id:
            log.warning("twitter: channels.twitter.account_id is not set; the account's own tweets are "
                        "recognised by account_handle only")  # fmt: skip

    def attach(self, engine: AsyncEngine, clock: Clock | None = None) -> None:
        """Join the app: its store lets sends find the citizen's public thread when the conversation
        moved to DM, and its clock is the one rate-limit resets are measured against."""
        self.engine = engine
        if clock is not None:
            self.clock = clock

    @property
    def can_send(self) -> bool:
        """Tweets and DMs need user context (OAuth 1.0a); a bearer token only reads."""
        c = self.config
        return bool(c.consumer_key and c.consumer_secret and c.access_token and c.access_token_secret)

    # -- webhooks

    def routes(self) -> Sequence[Route]:
        return [Route("GET", WEBHOOK_PATH, self.handle_crc), Route("POST", WEBHOOK_PATH, self.handle_events)]

    async def handle_crc(self, request: WebhookRequest) -> WebhookResult:
        if not self._consumer_secret:
            raise WebhookRejected(403, "channels.twitter.consumer_secret is not configured")
        token = request.query.get("crc_token")
        if not token:
            raise WebhookRejected(400, "missing crc_token")
        body = json.dumps({"response_token": crc_response_token(self._consumer_secret, token)})
        return WebhookResult(events=[], response=WebhookResponse(200, body, "application/json"))

    def verify(self, request: WebhookRequest) -> None:
        if not self._consumer_secret:
            raise WebhookRejected(403, "channels.twitter.consumer_secret is not configured")
        given = request.headers.get(SIGNATURE_HEADER)
        if not given:
            raise WebhookRejected(403, f"missing {SIGNATURE_HEADER} header")
        expected = signature_of(self._consumer_secret, request.body)
        if not hmac.compare_digest(given.strip().encode(), expected.encode()):
            raise WebhookRejected(403, f"{SIGNATURE_HEADER} does not match")

    async def handle_events(self, request: WebhookRequest) -> WebhookResult:
        self.verify(request)
        media_type = request.content_type.split(";", 1)[0].strip().lower()
        if media_type != "application/json":
            raise WebhookRejected(415, f"expected application/json, got {media_type or 'no content type'}")
        try:
            data = json.loads(request.body)
        except (UnicodeDecodeError, ValueError):
            raise WebhookRejected(400, "body is not valid JSON") from None
        if not isinstance(data, dict):
            raise WebhookRejected(400, "an activity payload is a JSON object")
        try:
            parsed = self.parse_activity(data)
        except PayloadError as exc:
            raise WebhookRejected(400, str(exc)) from None
        events: list[Event] = []
        for item in parsed:
            if item.event is not None:
                events.append(item.event)
            else:
                log.info("twitter %s acknowledged without an event: %s", item.source_id, item.ignored)
        return WebhookResult(events=events, response=WebhookResponse(200, "", "text/plain"))

    def parse_activity(self, data: Mapping[str, Any]) -> list[Parsed]:
        """An Account Activity payload as parsed tweets and DMs; unknown event types yield nothing."""
        for_user = data.get("for_user_id")
        for_user_id = (
            str(for_user) if isinstance(for_user, (str, int)) and not isinstance(for_user, bool) else None
        )
        if for_user_id and self.rules.account_id and for_user_id != self.rules.account_id:
            return [Parsed(f"for_user_id:{for_user_id}", ignored="activity of another subscribed account")]
        now = self.clock()
        parsed: list[Parsed] = []
        tweets = data.get("tweet_create_events")
        if tweets is not None:
            if not isinstance(tweets, list) or not all(isinstance(t, dict) for t in tweets):
                raise PayloadError("tweet_create_events must be a list of tweet objects")
            rules = self.rules
            if for_user_id and not rules.account_id:
                rules = Rules(rules.hashtags, for_user_id, rules.account_handle)
            parsed.extend(to_event(tweet_from_v1(t), rules, now) for t in tweets)
        dms = data.get("direct_message_events")
        if dms is not None:
            if not isinstance(dms, list) or not all(isinstance(d, dict) for d in dms):
                raise PayloadError("direct_message_events must be a list of event objects")
            users = data.get("users") if isinstance(data.get("users"), dict) else {}
            assert isinstance(users, dict)
            parsed.extend(dm_event_from_v1(d, users, self.rules, for_user_id, now) for d in dms)
        if tweets is None and dms is None:
            kinds = ",".join(sorted(k for k in data if k.endswith("_events"))) or "no events"
            parsed.append(Parsed(kinds, ignored=f"event types not used for intake: {kinds}"))
        return parsed

    # -- sending

    async def send(self, message: OutboundMessage) -> SendResult:
        if message.to.kind != AddressKind.TWITTER or not message.to.value.isdigit():
            raise SendError(
                f"twitter cannot send to {message.to.kind} address", retryable=False, code="address"
            )
        if not self.can_send:
            raise SendError(
                "twitter sending needs consumer_key/secret and access_token/secret (user context)",
                retryable=False,
                code="config",
            )
        if not message.text.strip():
            raise SendError("nothing to send: empty text", retryable=False, code="empty_body")
        try:
            return await self._route(message)
        except _XFailure as failure:
            raise failure.error from None

    async def _route(self, message: OutboundMessage) -> SendResult:
        user_id = message.to.value
        target = message.reply_to if message.reply_to and message.reply_to.isdigit() else None
        has_code = bool(public.tracking_codes(message.text))
        if is_dm_target(message.reply_to) or target is None:
            if has_code and message.kind in public.FILING_KINDS and self.engine is not None:
                thread = await cursor.latest_public_tweet(self.engine, message.reporter_id)
                if thread is not None:
                    result = await self._public_reply(message, thread, public.public_text(
                        message.kind, message.text, self.public_url))  # fmt: skip
                    await self._dm_best_effort(user_id, message.text)
                    return result
            return await self._dm_with_fallback(message, user_id, target)
        if has_code or self.config.reply_mode == "reply":
            return await self._public_reply(
                message, target, public.public_text(message.kind, message.text, self.public_url)
            )
        return await self._dm_with_fallback(message, user_id, target)

    async def possible_posts(self, message: OutboundMessage) -> list[reconcile.Post]:
        """Every post `send(message)` could have made, in the order it tries them: `_route` and its
        fallbacks walked without calling X (reconcile.py). Keep the two in step."""
        posts: list[reconcile.Post] = []
        target = message.reply_to if message.reply_to and message.reply_to.isdigit() else None
        has_code = bool(public.tracking_codes(message.text))

        def tweet(text: str, in_reply_to: str | None) -> None:
            posts.extend(reconcile.tweet_posts(text, in_reply_to, message.id))

        def public_reply(thread: str, text: str, *, dm_fallback: bool = True) -> None:
            tweet(text, thread)
            if dm_fallback:
                posts.append(reconcile.dm_post(message.text))
            if has_code:
                tweet(public.dm_closed_text(message.text, self.public_url), None)

        def dm_with_fallback() -> None:
            posts.append(reconcile.dm_post(message.text))
            fallback = public.dm_closed_text(message.text, self.public_url)
            if target is not None:
                public_reply(target, fallback, dm_fallback=False)
            elif has_code:
                tweet(fallback, None)

        if is_dm_target(message.reply_to) or target is None:
            if has_code and message.kind in public.FILING_KINDS and self.engine is not None:
                thread = await cursor.latest_public_tweet(self.engine, message.reporter_id)
                if thread is not None:
                    public_reply(thread, public.public_text(message.kind, message.text, self.public_url))
                    return _unique(posts)
            dm_with_fallback()
        elif has_code or self.config.reply_mode == "reply":
            public_reply(target, public.public_text(message.kind, message.text, self.public_url))
        else:
            dm_with_fallback()
        return _unique(posts)

    async def find_sent(self, message: OutboundMessage, since: datetime) -> SendResult | None:
        """Whether an in-doubt send of `message` reached X at or after `since` (the outbox asks this
        after a crash, so a reply that did go out is not posted twice).

        Looks for every post `send` could have made (`possible_posts`) among the DMs of the
        conversation with the citizen and the account's own tweets since then, and answers with the
        first found, shaped as `send` answers (`dm:<event id>` or the tweet id). None: X has none of
        them, so sending is safe. A lookup X does not answer (rate limit, outage, credentials) raises
        `SendError`, as `send` would; the outbox then sends again (gateway/outbox.py `_find_sent`).
        """
        if message.to.kind != AddressKind.TWITTER or not message.to.value.isdigit() or not self.can_send:
            return None  # send() refuses these without calling X: nothing can have gone out
        if not message.text.strip():
            return None
        floor = reconcile.floor_of(since)
        try:
            posts = await self.possible_posts(message)
            account_id = await self._own_id()
            dms: list[dict[str, Any]] | None = None
            tweets: list[dict[str, Any]] | None = None
            for post in posts:
                if post.dm:
                    if dms is None:
                        dms = await self._sent_dms(message.to.value, floor)
                    found = next((e for e in dms if reconcile.dm_matches(post, e, account_id, floor)), None)
                    if found is not None:
                        return SendResult(f"dm:{found['id']}", DeliveryStatus.SENT)
                else:
                    if tweets is None:
                        tweets = await self._own_tweets(account_id, floor)
                    found = next((t for t in tweets if reconcile.tweet_matches(post, t, floor)), None)
                    if found is not None:
                        return SendResult(str(found["id"]), DeliveryStatus.SENT)
        except _XFailure as failure:
            raise failure.error from None
        return None

    async def _own_id(self) -> str:
        """Our account's user id: configured (`account_id`), else asked once (`GET /2/users/me`)."""
        if self.rules.account_id:
            return self.rules.account_id
        if self._own_user_id is None:
            me = await self._call(self.client.get_me(user_auth=True))
            user_id = _str_at(me, "data", "id")
            if user_id is None:
                raise _XFailure(
                    SendError("twitter: users/me answered without data.id", retryable=True, code="response"),
                    "no id",
                    None,
                )
            self._own_user_id = user_id
        return self._own_user_id

    async def _sent_dms(self, participant_id: str, floor: datetime) -> list[dict[str, Any]]:
        """DM events of the 1-1 conversation with the citizen, newest first, back to `floor`."""

        def fetch(token: str | None) -> Any:
            return self.client.get_direct_message_events(
                participant_id=participant_id,
                dm_event_fields=["id", "text", "created_at", "sender_id", "event_type"],
                event_types="MessageCreate",
                max_results=100,
                pagination_token=token,
                user_auth=True,
            )

        def reaches_floor(items: list[dict[str, Any]]) -> bool:
            older = [when for e in items if (when := reconcile.created_at(e)) is not None]
            return bool(older) and min(older) < floor

        return await self._pages(fetch, "DMs", reaches_floor)

    async def _own_tweets(self, account_id: str, floor: datetime) -> list[dict[str, Any]]:
        """The account's tweets created since `floor` (X filters on `start_time`), every page."""

        def fetch(token: str | None) -> Any:
            return self.client.get_users_tweets(
                account_id,
                start_time=floor,
                tweet_fields=["created_at", "in_reply_to_user_id", "referenced_tweets", "text"],
                max_results=100,
                pagination_token=token,
                user_auth=True,
            )

        return await self._pages(fetch, "tweets", lambda _items: False)

    async def _pages(
        self,
        fetch: Callable[[str | None], Any],
        what: str,
        enough: Callable[[list[dict[str, Any]]], bool],
    ) -> list[dict[str, Any]]:
        """Items with an id from up to LOOKUP_PAGES pages; stops at the last page or once `enough`
        says the page reached back far enough. More pages than that: the lookup cannot tell."""
        found: list[dict[str, Any]] = []
        token: str | None = None
        for _ in range(LOOKUP_PAGES):
            page = await self._call(fetch(token))
            items = [item for item in _list_at(page, "data") if item.get("id") is not None]
            found.extend(items)
            token = _str_at(page, "meta", "next_token")
            if token is None or enough(items):
                return found
        raise _XFailure(
            SendError(f"twitter: too many {what} since the send to tell whether it went out",
                      retryable=True, code="lookup"),
            "lookup incomplete",
            None,
        )  # fmt: skip

    async def _dm_with_fallback(
        self, message: OutboundMessage, user_id: str, target: str | None
    ) -> SendResult:
        try:
            return await self._dm(user_id, message.text)
        except _XFailure as failure:
            if not failure.refused:
                raise
            log.info("twitter: DMs to a citizen are closed (%s); falling back to public", failure.detail[:80])
        fallback = public.dm_closed_text(message.text, self.public_url)
        if target is not None:
            return await self._public_reply(message, target, fallback, dm_fallback=False)
        if public.tracking_codes(message.text):
            return await self._tweet(message, fallback, None)
        raise SendError("twitter: DMs closed and no public thread to answer in", retryable=False,
                        code="dm_closed", unreachable=True)  # fmt: skip

    async def _public_reply(
        self, message: OutboundMessage, target: str, text: str, *, dm_fallback: bool = True
    ) -> SendResult:
        try:
            return await self._tweet(message, text, target)
        except _XFailure as failure:
            if not failure.target_gone:
                raise
            log.info("twitter: reply target %s is gone (%s); falling back", target, failure.detail[:80])
        if dm_fallback:
            try:
                return await self._dm(message.to.value, message.text)
            except _XFailure as failure:
                if not failure.refused:
                    raise
        if public.tracking_codes(message.text):
            return await self._tweet(message, public.dm_closed_text(message.text, self.public_url), None)
        raise SendError("twitter: reply target gone and the citizen cannot be reached privately",
                        retryable=False, code="target_gone", unreachable=True)  # fmt: skip

    async def _tweet(self, message: OutboundMessage, text: str, in_reply_to: str | None) -> SendResult:
        """Post a tweet; duplicate content is adjusted once, then counted as sent (module docstring)."""
        try:
            return await self._post_tweet(text, in_reply_to)
        except _XFailure as failure:
            if not failure.duplicate:
                raise
            if message.attempt > 1:
                log.info("twitter: outbox row %s is a duplicate of an earlier attempt: sent", message.id)
                return SendResult(f"duplicate:{message.id}", DeliveryStatus.SENT)
        adjusted = fit(text, 280 - 16) + f" (ref {message.id % 1_000_000})"
        try:
            return await self._post_tweet(adjusted, in_reply_to)
        except _XFailure as failure:
            if not failure.duplicate:
                raise
            return SendResult(f"duplicate:{message.id}", DeliveryStatus.SENT)

    async def _post_tweet(self, text: str, in_reply_to: str | None) -> SendResult:
        response = await self._call(
            self.client.create_tweet(text=fit(text), in_reply_to_tweet_id=in_reply_to, user_auth=True)
        )
        tweet_id = _str_at(response, "data", "id")
        if tweet_id is None:
            raise _XFailure(
                SendError("twitter: create tweet answered without data.id", retryable=False, code="response"),
                "no id",
                None,
            )
        return SendResult(tweet_id, DeliveryStatus.SENT)

    async def _dm(self, user_id: str, text: str) -> SendResult:
        response = await self._call(
            self.client.create_direct_message(participant_id=user_id, text=fit(text, MAX_DM), user_auth=True)
        )
        event_id = _str_at(response, "data", "dm_event_id")
        if event_id is None:
            raise _XFailure(
                SendError("twitter: DM answered without data.dm_event_id", retryable=False, code="response"),
                "no id",
                None,
            )
        return SendResult(f"dm:{event_id}", DeliveryStatus.SENT)

    async def _dm_best_effort(self, user_id: str, text: str) -> None:
        try:
            await self._dm(user_id, text)
        except _XFailure as failure:
            log.info("twitter: the private copy of a receipt was not delivered: %s", failure.detail[:120])

    async def _call(self, awaitable: Any) -> Any:
        try:
            return await awaitable
        except TooManyRequests as exc:
            reset = getattr(exc, "reset_time", None)
            wait = max(1.0, reset - self.clock().timestamp()) if reset is not None else 60.0
            raise _XFailure(
                SendError(
                    f"twitter rate limited: {error_detail(exc)}", retryable=True, retry_after=wait, code="429"
                ),
                error_detail(exc),
                429,
            ) from None
        except Unauthorized as exc:
            raise _XFailure(
                SendError(
                    "twitter rejected the credentials (check channels.twitter.*)", retryable=False, code="401"
                ),
                error_detail(exc),
                401,
            ) from None
        except TwitterServerError as exc:
            raise _XFailure(
                SendError(f"twitter server error: {error_detail(exc)}", retryable=True, code="5xx"),
                error_detail(exc),
                500,
            ) from None
        except (Forbidden, BadRequest, NotFound) as exc:
            status = int(exc.response.status)
            raise _XFailure(
                SendError(f"twitter {error_detail(exc)}", retryable=False, code=str(status)),
                error_detail(exc),
                status,
            ) from None
        except HTTPException as exc:
            raise _XFailure(
                SendError(f"twitter {error_detail(exc)}", retryable=True, code="http"),
                error_detail(exc),
                None,
            ) from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _XFailure(
                SendError(f"twitter unreachable: {type(exc).__name__}", retryable=True, code="network"),
                type(exc).__name__,
                None,
            ) from None

    # -- media

    async def fetch_media(self, ref: MediaRef) -> tuple[bytes, str]:
        """Photos are public URLs on pbs.twimg.com (or the fake's): a plain GET, size-capped."""
        if not ref.url.startswith(("https://", "http://")):
            raise MediaFetchError("not a URL", retryable=False)
        if self._media_session is None or self._media_session.closed:
            self._media_session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        try:
            async with self._media_session.get(ref.url) as response:
                if response.status in (401, 403, 404, 410):
                    raise MediaFetchError(f"twitter media {response.status}", retryable=False)
                if response.status != 200:
                    raise MediaFetchError(f"twitter media {response.status}", retryable=True)
                data = await response.content.read(MAX_MEDIA_BYTES + 1)
                if len(data) > MAX_MEDIA_BYTES:
                    raise MediaFetchError("twitter media larger than 20 MB", retryable=False)
                content_type = response.content_type or ref.content_type or "application/octet-stream"
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise MediaFetchError(f"twitter media: {type(exc).__name__}", retryable=True) from None
        return data, content_type

    async def close(self) -> None:
        await self.client.close()
        if self._media_session is not None:
            await self._media_session.close()
            self._media_session = None


def _unique(posts: list[reconcile.Post]) -> list[reconcile.Post]:
    return list(dict.fromkeys(posts))


def _list_at(payload: Any, key: str) -> list[dict[str, Any]]:
    items = payload.get(key) if isinstance(payload, dict) else None
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def _str_at(payload: Any, *path: str) -> str | None:
    for key in path:
        if not isinstance(payload, dict):
            return None
        payload = payload.get(key)
    if isinstance(payload, (str, int)) and not isinstance(payload, bool):
        return str(payload)
    return None
