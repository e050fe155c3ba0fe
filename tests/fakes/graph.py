"""A fake Graph API for the WhatsApp Cloud API: a real aiohttp server on loopback.

It serves what the gateway calls, with the shapes Meta documents:
`POST /{version}/{phone_number_id}/messages`, `GET /{version}/{media_id}` (media URL lookup) and the
media download itself, all behind the bearer access token. It also plays Meta's side of webhooks:
`push(payload)` signs a payload with the app secret (X-Hub-Signature-256) and POSTs it to the
gateway, and the builders below make payloads shaped as Meta sends them.

    fake = FakeGraphAPI()
    api_base = await fake.start()       # -> WhatsAppCloudConfig(api_base=api_base, ...)
    fake.webhook_url = gateway_url + "/webhooks/whatsapp"
    await fake.push(inbound_payload(fake.phone_number_id, [text_message("6281234567890", "halo")]))
    [sent] = await fake.wait_for_messages(1)
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import secrets
from collections import deque
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .server import LoopbackServer

VERSION = "v21.0"
DEFAULT_ACCESS_TOKEN = "EAAGfakeGraphAccessToken0123456789"
DEFAULT_APP_SECRET = "fake-app-secret-abcdef0123456789"
DEFAULT_PHONE_NUMBER_ID = "106540352242922"
DISPLAY_NUMBER = "6281100001708"
WABA_ID = "102290129340398"


@dataclass
class ScriptedFailure:
    target: str
    status: int
    code: int
    message: str
    details: str | None


def wamid() -> str:
    return "wamid.HBgN" + secrets.token_hex(16).upper() + "AA=="


class FakeGraphAPI(LoopbackServer):
    """`sent` holds every message accepted (the request body plus the id returned); `requests` every
    messages call, failed ones included."""

    def __init__(
        self,
        access_token: str = DEFAULT_ACCESS_TOKEN,
        app_secret: str = DEFAULT_APP_SECRET,
        phone_number_id: str = DEFAULT_PHONE_NUMBER_ID,
    ) -> None:
        super().__init__()
        self.access_token = access_token
        self.app_secret = app_secret
        self.phone_number_id = phone_number_id
        self.webhook_url = ""
        self.sent: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.media: dict[str, tuple[bytes, str]] = {}
        self.downloads: list[str] = []
        self.closed_windows: set[str] = set()
        """Numbers outside the 24-hour window: free-form sends to them fail with 131047 at once."""
        self._failures: deque[ScriptedFailure] = deque()
        self._media_ids = itertools.count(1_500_000_000_000_000)

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/{version}/{phone_number_id}/messages", self._messages)
        router.add_get("/{version}/{media_id}", self._media_info)
        router.add_get("/download/{media_id}", self._download)

    @property
    def api_base(self) -> str:
        return f"{self.base_url}/{VERSION}"

    @property
    def endpoint(self) -> str:
        return self.api_base

    # -- scripting

    def fail_next(
        self,
        count: int = 1,
        *,
        target: str = "messages",
        status: int = 400,
        code: int = 131000,
        message: str = "Something went wrong",
        details: str | None = None,
    ) -> None:
        """The next `count` calls to `target` (messages, media or download) fail with a Graph error."""
        for _ in range(count):
            self._failures.append(ScriptedFailure(target, status, code, message, details))

    def add_media(self, content: bytes, mime_type: str = "image/jpeg") -> str:
        """Media a citizen uploaded; returns its media id."""
        media_id = str(next(self._media_ids))
        self.media[media_id] = (content, mime_type)
        return media_id

    async def wait_for_messages(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:  # noqa: ASYNC109
        return await self._wait_for_records(lambda: self.sent, count, timeout, "message(s)")

    # -- webhooks towards the gateway

    def sign(self, body: bytes) -> str:
        return "sha256=" + hmac.new(self.app_secret.encode(), body, hashlib.sha256).hexdigest()

    async def push(self, payload: dict[str, Any]) -> int:
        """POST a webhook to `webhook_url`, signed as Meta signs it; returns the HTTP status."""
        if not self.webhook_url:
            raise RuntimeError("set webhook_url first")
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": self.sign(body)}
        async with self._http().post(self.webhook_url, data=body, headers=headers) as response:
            await response.read()
            return response.status

    # -- handlers

    def _authorized(self, request: web.Request) -> bool:
        expected = f"Bearer {self.access_token}"
        return hmac.compare_digest(request.headers.get("Authorization", "").encode(), expected.encode())

    @staticmethod
    def _error(status: int, code: int, message: str, details: str | None = None) -> web.Response:
        error: dict[str, Any] = {
            "message": message,
            "type": "OAuthException",
            "code": code,
            "fbtrace_id": "A" + secrets.token_hex(10),
        }
        if details:
            error["error_data"] = {"messaging_product": "whatsapp", "details": details}
        return web.json_response({"error": error}, status=status)

    def _failure(self, target: str) -> ScriptedFailure | None:
        for failure in list(self._failures):
            if failure.target == target:
                self._failures.remove(failure)
                return failure
        return None

    async def _messages(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._error(401, 190, "Error validating access token: Session has expired")
        try:
            body = await request.json()
        except ValueError:
            return self._error(400, 100, "(#100) Invalid JSON")
        self.requests.append(body)
        if request.match_info["phone_number_id"] != self.phone_number_id:
            return self._error(400, 100, "(#100) Unsupported post request. Object does not exist")
        failure = self._failure("messages")
        if failure is not None:
            return self._error(failure.status, failure.code, failure.message, failure.details)
        problem = _validate(body)
        if problem is not None:
            return self._error(400, 131009, "(#131009) Parameter value is not valid", problem)
        to = body["to"]
        if body["type"] != "template" and to in self.closed_windows:
            return self._error(
                400,
                131047,
                "Re-engagement message",
                "Message failed to send because more than 24 hours have passed",
            )
        message_id = wamid()
        await self._append(self.sent, {**body, "id": message_id})
        return web.json_response(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": to}],
                "messages": [{"id": message_id}],
            }
        )

    async def _media_info(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._error(401, 190, "Error validating access token")
        media_id = request.match_info["media_id"]
        failure = self._failure("media")
        if failure is not None:
            return self._error(failure.status, failure.code, failure.message, failure.details)
        if media_id not in self.media:
            return self._error(
                400, 100, f"Unsupported get request. Object with ID '{media_id}' does not exist", None
            )
        content, mime = self.media[media_id]
        return web.json_response(
            {
                "messaging_product": "whatsapp",
                "url": f"{self.base_url}/download/{media_id}?ext=1761016500&hash=ATuF" + secrets.token_hex(4),
                "mime_type": mime,
                "sha256": hashlib.sha256(content).hexdigest(),
                "file_size": len(content),
                "id": media_id,
            }
        )

    async def _download(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.Response(status=401, text="unauthorized")
        media_id = request.match_info["media_id"]
        self.downloads.append(media_id)
        failure = self._failure("download")
        if failure is not None:
            return web.Response(status=failure.status, text=failure.message)
        if media_id not in self.media:
            return web.Response(status=404, text="not found")
        content, mime = self.media[media_id]
        return web.Response(body=content, content_type=mime)


def _validate(body: Any) -> str | None:
    """What the Cloud API checks before accepting a message (the parts the gateway uses)."""
    if not isinstance(body, dict) or body.get("messaging_product") != "whatsapp":
        return "messaging_product must be whatsapp"
    to = body.get("to")
    if not isinstance(to, str) or not to.isdigit():
        return "to must be a phone number in international format without +"
    kind = body.get("type", "text")
    item = body.get(kind)
    if not isinstance(item, dict):
        return f"{kind} object is required"
    if kind == "text":
        text = item.get("body")
        if not isinstance(text, str) or not text.strip() or len(text) > 4096:
            return "text.body must be 1-4096 characters"
    elif kind == "interactive":
        buttons = item.get("action", {}).get("buttons", [])
        if item.get("type") == "button" and not 1 <= len(buttons) <= 3:
            return "interactive buttons must number 1-3"
        if len(item.get("body", {}).get("text", "")) > 1024:
            return "interactive body text must be at most 1024 characters"
        for button in buttons:
            if len(button.get("reply", {}).get("title", "")) > 20:
                return "button title must be at most 20 characters"
    elif kind == "template":
        if not item.get("name") or not isinstance(item.get("language"), dict):
            return "template needs name and language"
        for component in item.get("components", []):
            for parameter in component.get("parameters", []):
                text = parameter.get("text", "")
                if "\n" in text or "\t" in text or "     " in text:
                    return "Param text cannot have new-line/tab characters or more than 4 consecutive spaces"
    elif kind == "image":
        if not item.get("link") and not item.get("id"):
            return "image needs link or id"
    else:
        return f"type {kind} is not supported by this fake"
    return None


# --------------------------------------------------------------------------- webhook payload builders


def inbound_payload(
    phone_number_id: str,
    messages: list[dict[str, Any]] | None = None,
    *,
    statuses: list[dict[str, Any]] | None = None,
    name: str = "Sri Wahyuni",
) -> dict[str, Any]:
    """One `messages` change, as Meta posts it."""
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": DISPLAY_NUMBER, "phone_number_id": phone_number_id},
    }
    if messages:
        value["contacts"] = [{"profile": {"name": name}, "wa_id": m["from"]} for m in messages[:1]]
        value["messages"] = messages
    if statuses:
        value["statuses"] = statuses
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": WABA_ID, "changes": [{"value": value, "field": "messages"}]}],
    }


def _base(wa_id: str, kind: str) -> dict[str, Any]:
    return {"from": wa_id, "id": wamid(), "timestamp": "1761016500", "type": kind}


def text_message(wa_id: str, body: str) -> dict[str, Any]:
    return {**_base(wa_id, "text"), "text": {"body": body}}


def image_message(wa_id: str, media_id: str, caption: str | None = None) -> dict[str, Any]:
    image: dict[str, Any] = {"mime_type": "image/jpeg", "sha256": "IGNORED", "id": media_id}
    if caption:
        image["caption"] = caption
    return {**_base(wa_id, "image"), "image": image}


def location_message(wa_id: str, latitude: float, longitude: float, **named: str) -> dict[str, Any]:
    return {**_base(wa_id, "location"), "location": {"latitude": latitude, "longitude": longitude, **named}}


def button_reply(wa_id: str, reply_id: str, title: str, context_id: str | None = None) -> dict[str, Any]:
    message = {
        **_base(wa_id, "interactive"),
        "interactive": {"type": "button_reply", "button_reply": {"id": reply_id, "title": title}},
    }
    if context_id:
        message["context"] = {"from": DISPLAY_NUMBER, "id": context_id}
    return message


def status(message_id: str, value: str, recipient: str, *, error_code: int | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": message_id,
        "status": value,
        "timestamp": "1761016600",
        "recipient_id": recipient,
    }
    if error_code is not None:
        item["errors"] = [
            {
                "code": error_code,
                "title": "Re-engagement message" if error_code == 131047 else "Error",
                "message": "Re-engagement message" if error_code == 131047 else "Error",
                "error_data": {"details": "Message failed to send because more than 24 hours have passed"},
            }
        ]
    return item
