"""An Open311 GeoReport v2 client (aiohttp) for forwarding complaints upstream and reading them back.

Only what forwarding needs: `POST requests`, `GET tokens/{token}`, `GET requests` by ids or by
service code and date. Every failure is an `Open311Failure` that says whether trying again can help
(`retryable`) and whether the upstream may have acted on the request anyway (`ambiguous`: a 5xx, a
timeout or a dropped connection after the request was sent), which is what the forwarder needs to
never lose a forward and never post one twice. The API key travels in the form body only and never
appears in an error message.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp

from gateway.config import Secret

PERMANENT_4XX_RETRYABLE = frozenset({401, 403, 408, 409, 423, 425, 429})
"""4xx answers worth retrying: a key being rotated, a timeout, a lock, rate limiting."""


class Open311Failure(Exception):
    def __init__(
        self,
        reason: str,
        *,
        status: int | None = None,
        retryable: bool = True,
        ambiguous: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retryable = retryable
        self.ambiguous = ambiguous
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Created:
    """What `POST requests` answered: the request id, or only a token to resolve later."""

    service_request_id: str | None
    token: str | None


@dataclass(frozen=True, slots=True)
class RemoteRequest:
    service_request_id: str
    status: str
    """`open` or `closed` (lower-cased)."""
    detail: str | None
    """`extended_attributes.status` when the server publishes it (FixMyStreet: fixed, in progress...)."""
    notes: str | None
    description: str
    media_url: str | None
    updated: str | None


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _description(body: Any) -> str:
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return str(body[0].get("description") or "")[:200]
    return ""


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Open311Client:
    def __init__(
        self,
        endpoint: str,
        api_key: Secret,
        *,
        jurisdiction_id: str = "",
        timeout_seconds: float = 30.0,
    ) -> None:
        self._base = endpoint.rstrip("/")
        self._api_key = api_key
        self._jurisdiction = jurisdiction_id
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None

    @property
    def base(self) -> str:
        return self._base

    def request_url(self, service_request_id: str) -> str:
        return f"{self._base}/requests/{service_request_id}.json"

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    def _params(self, **params: str) -> dict[str, str]:
        if self._jurisdiction:
            params["jurisdiction_id"] = self._jurisdiction
        return params

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        form: Mapping[str, str] | None = None,
    ) -> Any:
        """One call; JSON body back, or an `Open311Failure` classified for the retry logic."""
        writes = method == "POST"
        url = f"{self._base}/{path}"
        try:
            async with self._http().request(method, url, params=params, data=form) as response:
                raw = await response.read()
                status = response.status
                retry_after = _retry_after(response.headers)
        except aiohttp.ClientConnectorError as exc:
            # Nothing reached the upstream: a plain retry is safe.
            raise Open311Failure(f"cannot connect: {type(exc).__name__}") from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise Open311Failure(f"{method} {path}: {type(exc).__name__}", ambiguous=writes) from None
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        if 200 <= status < 300:
            if body is None:
                raise Open311Failure(f"{method} {path}: {status} without a JSON body", ambiguous=writes)
            return body
        detail = _description(body)
        reason = f"{method} {path}: HTTP {status}" + (f" ({detail})" if detail else "")
        if status >= 500:
            raise Open311Failure(reason, status=status, ambiguous=writes, retry_after=retry_after)
        raise Open311Failure(
            reason, status=status, retryable=status in PERMANENT_4XX_RETRYABLE, retry_after=retry_after
        )

    async def create_request(self, fields: Mapping[str, str]) -> Created:
        """`POST requests.json`; `fields` are the spec's (service_code, lat, long, description...)."""
        form = self._params(**fields, api_key=self._api_key.reveal())
        body = await self._call("POST", "requests.json", form=form)
        first = body[0] if isinstance(body, list) and body and isinstance(body[0], dict) else None
        if first is None:
            raise Open311Failure("POST requests.json: unexpected answer", ambiguous=True)
        request_id = str(first.get("service_request_id") or "").strip() or None
        token = str(first.get("token") or "").strip() or None
        if request_id is None and token is None:
            raise Open311Failure("POST requests.json: neither service_request_id nor token", ambiguous=True)
        return Created(request_id, token)

    async def resolve_token(self, token: str) -> str | None:
        """`GET tokens/{token}.json`: the request id once the upstream has created the request."""
        body = await self._call("GET", f"tokens/{token}.json", params=self._params())
        for item in body if isinstance(body, list) else []:
            if isinstance(item, dict) and item.get("service_request_id"):
                return str(item["service_request_id"])
        return None

    async def get_requests(self, ids: Sequence[str]) -> list[RemoteRequest]:
        """`GET requests.json?service_request_id=a,b,c&extensions=true`."""
        params = self._params(service_request_id=",".join(ids), extensions="true")
        return _requests(await self._call("GET", "requests.json", params=params))

    async def search(self, service_code: str, since: datetime) -> list[RemoteRequest]:
        """Requests of `service_code` created since `since` (to find a post whose answer was lost)."""
        params = self._params(service_code=service_code, start_date=iso(since))
        return _requests(await self._call("GET", "requests.json", params=params))


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _requests(body: Any) -> list[RemoteRequest]:
    out: list[RemoteRequest] = []
    for item in body if isinstance(body, list) else []:
        if not isinstance(item, dict) or not item.get("service_request_id"):
            continue
        extended = item.get("extended_attributes")
        detail = _text(extended.get("status")) if isinstance(extended, dict) else None
        out.append(
            RemoteRequest(
                service_request_id=str(item["service_request_id"]),
                status=str(item.get("status") or "open").strip().lower(),
                detail=detail.lower() if detail else None,
                notes=_text(item.get("status_notes")),
                description=str(item.get("description") or ""),
                media_url=_text(item.get("media_url")),
                updated=_text(item.get("updated_datetime")),
            )
        )
    return out
