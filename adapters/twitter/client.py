"""tweepy's AsyncClient pointed at `api_base`, with the rate-limit headers kept.

tweepy 4.x hard-codes `https://api.twitter.com` in `AsyncBaseClient.request`, so a fake X API on
loopback (or a proxy) cannot be configured. `XClient` overrides exactly that method: same OAuth 1.0a
signing (oauthlib, as tweepy does) or bearer header, same exception classes, but

- the URL is `api_base + route`;
- the request has a timeout and reuses one aiohttp session;
- `x-rate-limit-remaining` / `x-rate-limit-reset` of every response are recorded per endpoint, so the
  poller can pause *before* it hits a 429 and a 429 can be scheduled for exactly the reset time;
- it never sleeps on a rate limit (`wait_on_rate_limit` would block a dispatcher slot for 15 minutes):
  the caller decides, through the outbox's `retry_after` or the poller's own schedule;
- a non-JSON error body does not become a decoding crash.

Everything above `request` (`search_recent_tweets`, `create_tweet`, `create_direct_message`, ...) is
tweepy's own, with `return_type=dict` so the v2 JSON arrives exactly as X documents it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import aiohttp
from oauthlib.oauth1 import Client as OAuthClient
from tweepy.asynchronous import AsyncClient
from tweepy.errors import (
    BadRequest,
    Forbidden,
    HTTPException,
    NotFound,
    TooManyRequests,
    TwitterServerError,
    Unauthorized,
)
from yarl import URL

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RateLimit:
    """What X said about an endpoint's window in its last response (epoch seconds for `reset`)."""

    limit: int | None
    remaining: int | None
    reset: int | None


def _int_header(headers: Any, name: str) -> int | None:
    value = headers.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def rate_limit_of(headers: Any) -> RateLimit:
    return RateLimit(
        _int_header(headers, "x-rate-limit-limit"),
        _int_header(headers, "x-rate-limit-remaining"),
        _int_header(headers, "x-rate-limit-reset"),
    )


class XClient(AsyncClient):  # type: ignore[misc]  # tweepy ships no type information
    """`tweepy.asynchronous.AsyncClient` with a configurable API base; see the module docstring."""

    def __init__(self, api_base: str, *, timeout: float = 20.0, **credentials: Any) -> None:
        super().__init__(return_type=dict, wait_on_rate_limit=False, **credentials)
        self.api_base = api_base.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.rate_limits: dict[str, RateLimit] = {}
        self.session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        if self.session is None or self.session.closed:
            self.session = aiohttp.ClientSession(timeout=self.timeout)

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None

    async def request(
        self,
        method: str,
        route: str,
        params: dict[str, Any] | None = None,
        json: Any = None,
        user_auth: bool = False,
    ) -> aiohttp.ClientResponse:
        await self.open()
        session = self.session
        assert session is not None
        url: str | URL = self.api_base + route
        headers = {"User-Agent": self.user_agent}
        if json is not None:
            headers["Content-Type"] = "application/json"
        if user_auth:
            oauth = OAuthClient(
                self.consumer_key, self.consumer_secret, self.access_token, self.access_token_secret
            )
            signed_url = str(URL(str(url)).with_query(sorted((params or {}).items())))
            signed_url, headers, _body = oauth.sign(signed_url, method, headers=headers)
            before, _, query = signed_url.partition("?")
            url = URL(f"{before}?{query.replace(':', '%3A')}" if query else before, encoded=True)
            params = None
        else:
            headers["Authorization"] = f"Bearer {self.bearer_token}"
        async with session.request(method, url, params=params, json=json, headers=headers) as response:
            await response.read()
        self.rate_limits[route_key(method, route)] = rate_limit_of(response.headers)
        if 200 <= response.status < 300:
            return response
        try:
            body = await response.json(content_type=None)
        except ValueError:
            body = None
        payload: dict[str, Any] = body if isinstance(body, dict) else {}
        status = response.status
        if status == 400:
            raise BadRequest(response, response_json=payload)
        if status == 401:
            raise Unauthorized(response, response_json=payload)
        if status == 403:
            raise Forbidden(response, response_json=payload)
        if status == 404:
            raise NotFound(response, response_json=payload)
        if status == 429:
            reset = _int_header(response.headers, "x-rate-limit-reset")
            raise TooManyRequests(response, response_json=payload, reset_time=reset)
        if status >= 500:
            raise TwitterServerError(response, response_json=payload)
        raise HTTPException(response, response_json=payload)


def route_key(method: str, route: str) -> str:
    """`POST /2/dm_conversations/with/123/messages` -> `POST /2/dm_conversations/with/:id/messages`."""
    parts = [":id" if part.isdigit() else part for part in route.split("?", 1)[0].split("/")]
    return f"{method.upper()} {'/'.join(parts)}"


def error_detail(exc: HTTPException) -> str:
    """What X said, in one line: `detail`/`title` (v2 problem) or the `errors[].message` list."""
    messages = [str(m) for m in exc.api_messages if m]
    try:
        status = int(exc.response.status)
    except (AttributeError, TypeError, ValueError):
        status = 0
    text = "; ".join(messages) if messages else str(getattr(exc.response, "reason", "") or "")
    return f"{status} {text}".strip()[:300]
