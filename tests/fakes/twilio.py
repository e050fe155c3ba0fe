"""A fake Twilio REST API: a real aiohttp server on loopback that twilio's own client can talk to.

The project is tested through the same client library it uses in production, so the fake speaks
HTTP, checks basic auth, and answers with the JSON shapes Twilio documents for the Message resource
and its list pages. Tests script failures (`fail_next`) and delays, and wait for messages with
`wait_for_messages` (an asyncio.Condition, no polling).

    fake = FakeTwilio()
    base_url = await fake.start()          # -> TwilioConfig(api_base=base_url, ...)
    ...
    [msg] = await fake.wait_for_messages(1, timeout=5)
    await fake.stop()
"""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from .server import LoopbackServer
from .twilio_webhooks import random_account_sid, random_sid, sign

API_VERSION = "2010-04-01"
DEFAULT_AUTH_TOKEN = "fake-twilio-auth-token-0123456789"

ERROR_MESSAGES = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    21211: "The 'To' number is not a valid phone number.",
    21408: "Permission to send an SMS has not been enabled for the region indicated by the 'To' number",
    21602: "Message body is required.",
    21604: "A 'To' phone number is required.",
    21603: "A 'From' phone number is required.",
    21610: "Attempt to send to unsubscribed recipient",
    21612: "The 'To' phone number is not currently reachable via SMS.",
}


@dataclass
class ScriptedFailure:
    status: int
    code: int | None
    retry_after: float | str | None
    message: str | None


def _rfc2822(when: datetime) -> str:
    return format_datetime(when.astimezone(UTC), usegmt=False).replace("-0000", "+0000")


def _parse_filter_date(value: str) -> datetime | None:
    """Twilio accepts `YYYY-MM-DD` and (from twilio-python) ISO 8601 datetimes in DateSent filters."""
    value = value.strip()
    for fmt in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d"):
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _date_matches(key: str, created: datetime, bound: datetime) -> bool:
    if key == "DateSent>":
        return created >= bound
    if key == "DateSent<":
        return created <= bound
    return created.date() == bound.date()


class FakeTwilio(LoopbackServer):
    """Twilio's Messages API on 127.0.0.1, for tests and bench scripts.

    `sent` holds every message Twilio "accepted" (the Message resource as returned, plus the
    `status_callback` and `media_url` it was created with); `requests` every create attempt, failed
    ones included.
    """

    def __init__(
        self,
        account_sid: str | None = None,
        auth_token: str = DEFAULT_AUTH_TOKEN,
        *,
        response_delay: float = 0.0,
        clock: Any = None,
    ) -> None:
        super().__init__()
        self.account_sid = account_sid or random_account_sid()
        self.auth_token = auth_token
        self.response_delay = response_delay
        """Seconds between accepting a message and answering: the message is already recorded, so a
        client that gives up meanwhile leaves a send in doubt, as a real timeout would."""
        self._clock = clock or (lambda: datetime.now(UTC))
        self.sent: list[dict[str, Any]] = []
        self.requests: list[dict[str, str]] = []
        self._failures: deque[ScriptedFailure] = deque()
        self._throttled_until: datetime | None = None
        self._throttle_retry_after: float | str | None = None
        self._answering = asyncio.Event()
        self._answering.set()

    SHUTDOWN_TIMEOUT = 0.5
    """A test may stop the fake while a `response_delay` answer is still pending: do not wait it out."""

    def add_routes(self, router: web.UrlDispatcher) -> None:
        prefix = f"/{API_VERSION}/Accounts/{{account_sid}}"
        router.add_post(prefix + "/Messages.json", self._create)
        router.add_get(prefix + "/Messages.json", self._list)
        router.add_get(prefix + "/Messages/{sid}.json", self._fetch)

    # -- scripting

    def fail_next(
        self,
        n: int = 1,
        *,
        status: int = 500,
        code: int | None = None,
        retry_after: float | str | None = None,
        message: str | None = None,
    ) -> None:
        """The next `n` message creations fail with this HTTP status / Twilio error code."""
        for _ in range(n):
            self._failures.append(ScriptedFailure(status, code, retry_after, message))

    def throttle_until(self, until: datetime, *, retry_after: float | str | None = None) -> None:
        """Every message creation before `until` (by the fake's clock) is refused with 429 / 20429
        "Too Many Requests", as Twilio answers an account over its rate: a throttle that lasts a
        time, however many requests are made meanwhile."""
        self._throttled_until = until
        self._throttle_retry_after = retry_after

    def hold_answers(self) -> None:
        """From now on, accept messages (recorded, as Twilio would) but answer none of them until
        `release_answers`: a provider that has stopped answering, with the sender's slots full."""
        self._answering.clear()

    def release_answers(self) -> None:
        self._answering.set()

    async def wait_for_messages(
        self,
        count: int,
        timeout: float = 5.0,  # noqa: ASYNC109 - bounding the wait is the point of this helper
    ) -> list[dict[str, Any]]:
        """Block until at least `count` messages were accepted; returns them all."""
        await self._wait_for_records(lambda: self.sent, count, timeout, "message(s) at the fake Twilio")
        return list(self.sent)

    def messages_to(self, to: str) -> list[dict[str, Any]]:
        return [m for m in self.sent if m["to"] == to]

    def status_callback_request(
        self, sid: str, status: str, *, error_code: str | None = None
    ) -> tuple[str, dict[str, str], dict[str, str]]:
        """(url, form, headers) of the signed status callback Twilio would post for message `sid`."""
        message = next(m for m in self.sent if m["sid"] == sid)
        url = message.get("status_callback")
        if not url:
            raise ValueError(f"message {sid} was sent without a status_callback")
        form = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "From": message["from"] or "",
            "MessageSid": sid,
            "MessageStatus": status,
            "SmsSid": sid,
            "SmsStatus": status,
            "To": message["to"],
        }
        if error_code:
            form["ErrorCode"] = error_code
        return url, form, {"X-Twilio-Signature": sign(url, form, self.auth_token)}

    # -- handlers

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            login, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return (
            secrets.compare_digest(login.encode(), self.account_sid.encode())
            and secrets.compare_digest(password.encode(), self.auth_token.encode())
            and request.match_info["account_sid"] == self.account_sid
        )

    def _error(
        self, status: int, code: int | None, message: str | None, retry_after: float | str | None = None
    ) -> web.Response:
        code_value = code if code is not None else status
        body = {
            "code": code_value,
            "message": message or ERROR_MESSAGES.get(code_value, "Error"),
            "more_info": f"https://www.twilio.com/docs/errors/{code_value}",
            "status": status,
        }
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        return web.json_response(body, status=status, headers=headers)

    async def _create(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._error(401, 20003, None)
        form = await request.post()
        params = {k: str(v) for k, v in form.items()}
        self.requests.append(params)
        if self._failures:
            failure = self._failures.popleft()
            return self._error(failure.status, failure.code, failure.message, failure.retry_after)
        if self._throttled_until is not None and self._clock() < self._throttled_until:
            return self._error(429, 20429, None, self._throttle_retry_after)
        to = params.get("To", "")
        if not to:
            return self._error(400, 21604, None)
        if not (params.get("From") or params.get("MessagingServiceSid")):
            return self._error(400, 21603, None)
        media = [str(v) for v in form.getall("MediaUrl", [])]
        body = params.get("Body", "")
        if not body and not media:
            return self._error(400, 21602, None)

        now = self._clock()
        sid = random_sid("SM")
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}.json"
        resource: dict[str, Any] = {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": body,
            "date_created": _rfc2822(now),
            "date_sent": None,
            "date_updated": _rfc2822(now),
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": params.get("From") or None,
            "messaging_service_sid": params.get("MessagingServiceSid") or None,
            "num_media": str(len(media)),
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued",
            "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
            "to": to,
            "uri": uri,
        }
        record = dict(resource, status_callback=params.get("StatusCallback"), media_url=media)
        record["_created"] = now
        await self._append(self.sent, record)
        if self.response_delay:
            await asyncio.sleep(self.response_delay)
        await self._answering.wait()
        return web.json_response(resource, status=201)

    @staticmethod
    def _public(record: dict[str, Any]) -> dict[str, Any]:
        """The resource as a later GET shows it: handed to the carrier by now."""
        public = {k: v for k, v in record.items() if k not in ("status_callback", "media_url", "_created")}
        public["status"] = "sent"
        public["date_sent"] = public["date_created"]
        return public

    async def _list(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._error(401, 20003, None)
        q = request.query
        records = list(reversed(self.sent))  # newest first, as Twilio lists them
        if "To" in q:
            records = [r for r in records if r["to"] == q["To"]]
        if "From" in q:
            records = [r for r in records if r["from"] == q["From"]]
        for key in ("DateSent>", "DateSent<", "DateSent"):
            if key in q:
                bound = _parse_filter_date(q[key])
                if bound is None:
                    return self._error(400, 20001, f"Invalid {key}")
                records = [r for r in records if _date_matches(key, r["_created"], bound)]
        try:
            page_size = max(1, min(1000, int(q.get("PageSize", "50"))))
            page = max(0, int(q.get("Page", "0")))
        except ValueError:
            return self._error(400, 20001, "Invalid paging parameter")
        start = page * page_size
        chunk = records[start : start + page_size]
        base = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages.json"
        filters = {k: v for k, v in q.items() if k not in ("Page", "PageSize", "PageToken")}

        def page_uri(number: int) -> str:
            return base + "?" + urlencode({**filters, "PageSize": page_size, "Page": number})

        has_next = start + page_size < len(records)
        body = {
            "end": start + len(chunk) - 1 if chunk else start,
            "first_page_uri": page_uri(0),
            "messages": [self._public(r) for r in chunk],
            "next_page_uri": (
                page_uri(page + 1) + f"&PageToken=PA{chunk[-1]['sid']}" if has_next and chunk else None
            ),
            "page": page,
            "page_size": page_size,
            "previous_page_uri": page_uri(page - 1) if page > 0 else None,
            "start": start,
            "uri": page_uri(page),
        }
        return web.json_response(body)

    async def _fetch(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._error(401, 20003, None)
        sid = request.match_info["sid"]
        for record in self.sent:
            if record["sid"] == sid:
                return web.json_response(self._public(record))
        return self._error(404, 20404, None)
