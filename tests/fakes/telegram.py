"""A fake Telegram Bot API: a real aiohttp server on loopback that python-telegram-bot can talk to.

It serves `<base>/bot<token>/<method>` and `<base>/file/bot<token>/<file_path>` with the JSON shapes
the Bot API documents (`{"ok": true, "result": ...}` / `{"ok": false, "error_code", "description",
"parameters"}`), so the project's real `telegram.Bot` is pointed at it through `api_base`.

Tests script failures (`fail_next`: 429 with retry_after, 403 blocked bot, 400...), register files
(`add_file`) for getFile and downloads, and push updates to the webhook the gateway registered through
setWebhook (`push_update`), with the secret token it registered, as Telegram does.

    fake = FakeTelegramBotAPI()
    api_base = await fake.start()          # -> TelegramConfig(api_base=api_base, bot_token=fake.token)
    [sent] = await fake.wait_for("sendMessage", 1)
    await fake.stop()
"""

from __future__ import annotations

import itertools
import json
import secrets
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from .server import LoopbackServer

DEFAULT_TOKEN = "123456789:AAFakeTelegramBotTokenForTests_0123456"
BOT_ID = 123456789
BOT_USERNAME = "LaporSemarangBot"


@dataclass
class ScriptedFailure:
    method: str | None
    status: int
    description: str
    parameters: dict[str, Any] | None


def blocked() -> tuple[int, str]:
    return 403, "Forbidden: bot was blocked by the user"


class FakeTelegramBotAPI(LoopbackServer):
    """Telegram's Bot API on 127.0.0.1. `calls` records every method call (failed ones too) as
    `(method, params)`; `sent` every message the bot "sent"."""

    def __init__(self, token: str = DEFAULT_TOKEN) -> None:
        super().__init__()
        self.token = token
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.sent: list[dict[str, Any]] = []
        self.webhook: dict[str, Any] = {}
        self.files: dict[str, tuple[str, bytes]] = {}
        self.downloads: list[str] = []
        self._failures: deque[ScriptedFailure] = deque()
        self._message_ids = itertools.count(1000)
        self._update_ids = itertools.count(700_000_001)

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_route("*", "/bot{token}/{method}", self._method)
        router.add_get("/file/bot{token}/{path:.+}", self._download)

    @property
    def api_base(self) -> str:
        """`start()` returns it: the `api_base` (…/bot) to configure."""
        return self.base_url + "/bot"

    @property
    def endpoint(self) -> str:
        return self.api_base

    # -- scripting

    def fail_next(
        self,
        count: int = 1,
        *,
        method: str | None = None,
        status: int = 500,
        description: str = "Internal Server Error",
        retry_after: int | None = None,
        parameters: dict[str, Any] | None = None,
    ) -> None:
        """The next `count` calls (of `method`, or any method) fail as Telegram fails them."""
        params = dict(parameters or {})
        if retry_after is not None:
            params["retry_after"] = retry_after
        for _ in range(count):
            self._failures.append(ScriptedFailure(method, status, description, params or None))

    def block(self, count: int = 1) -> None:
        """The citizen blocked the bot: sends answer 403 Forbidden."""
        status, description = blocked()
        self.fail_next(count, method="sendMessage", status=status, description=description)

    def add_file(self, content: bytes, file_path: str = "photos/file_0.jpg") -> str:
        """Register a file the citizen uploaded; returns its file_id."""
        file_id = "AgACAgUAAxkBAAI" + secrets.token_urlsafe(24)
        self.files[file_id] = (file_path, content)
        return file_id

    async def wait_for(self, method: str, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:  # noqa: ASYNC109
        """The first `count` successful calls of `method`, once there are that many."""

        def matching() -> list[dict[str, Any]]:
            return [m for m in self.sent if m["method"] == method]

        return await self._wait_for_records(matching, count, timeout, f"{method} call(s)")

    # -- updates towards the gateway

    def next_update_id(self) -> int:
        return next(self._update_ids)

    async def push_update(self, update: dict[str, Any]) -> tuple[int, dict[str, Any] | str]:
        """POST an update to the registered webhook with the registered secret, as Telegram does.
        Returns the gateway's HTTP status and (JSON-decoded when possible) body."""
        url = self.webhook.get("url")
        if not url:
            raise RuntimeError("no webhook registered: call setWebhook first")
        headers = {"Content-Type": "application/json"}
        if self.webhook.get("secret_token"):
            headers["X-Telegram-Bot-Api-Secret-Token"] = self.webhook["secret_token"]
        async with self._http().post(url, data=json.dumps(update), headers=headers) as response:
            text = await response.text()
            try:
                return response.status, json.loads(text)
            except ValueError:
                return response.status, text

    # -- handlers

    @staticmethod
    def _ok(result: Any) -> web.Response:
        return web.json_response({"ok": True, "result": result})

    @staticmethod
    def _error(status: int, description: str, parameters: dict[str, Any] | None = None) -> web.Response:
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if parameters:
            body["parameters"] = parameters
        return web.json_response(body, status=status)

    async def _params(self, request: web.Request) -> dict[str, Any]:
        if request.content_type == "application/json":
            data = await request.json()
            return dict(data) if isinstance(data, dict) else {}
        params: dict[str, Any] = dict(request.query)
        if request.method == "POST":
            form = await request.post()
            for key, value in form.items():
                if not isinstance(value, str):
                    continue
                # python-telegram-bot JSON-encodes non-string parameters inside the form.
                if value in ("true", "false"):
                    params[key] = value == "true"
                    continue
                try:
                    params[key] = json.loads(value) if value[:1] in "[{" else value
                except ValueError:
                    params[key] = value
        return params

    def _failure_for(self, method: str) -> ScriptedFailure | None:
        for failure in list(self._failures):
            if failure.method in (None, method):
                self._failures.remove(failure)
                return failure
        return None

    async def _method(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return self._error(401, "Unauthorized")
        method = request.match_info["method"]
        params = await self._params(request)
        self.calls.append((method, params))
        failure = self._failure_for(method)
        if failure is not None:
            return self._error(failure.status, failure.description, failure.parameters)
        handler = {
            "getMe": self._get_me,
            "sendMessage": self._send_message,
            "sendPhoto": self._send_photo,
            "getFile": self._get_file,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "answerCallbackQuery": self._answer_callback,
        }.get(method)
        if handler is None:
            return self._error(404, "Not Found: method not found")
        return await handler(params)

    async def _get_me(self, params: dict[str, Any]) -> web.Response:
        return self._ok(
            {"id": BOT_ID, "is_bot": True, "first_name": "Lapor Semarang", "username": BOT_USERNAME,
             "can_join_groups": False, "can_read_all_group_messages": False, "supports_inline_queries": False}
        )  # fmt: skip

    async def _record(self, method: str, params: dict[str, Any], extra: dict[str, Any]) -> web.Response:
        chat_id = params.get("chat_id")
        if chat_id in (None, ""):
            return self._error(400, "Bad Request: chat_id is empty")
        try:
            chat = int(chat_id)
        except (TypeError, ValueError):
            return self._error(400, "Bad Request: chat not found")
        message = {
            "message_id": next(self._message_ids),
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "Lapor Semarang", "username": BOT_USERNAME},
            "chat": {"id": chat, "type": "private"},
            "date": int(datetime.now(UTC).timestamp()),
            **extra,
        }
        await self._append(self.sent, {"method": method, "params": params, "message": message})
        return self._ok(message)

    async def _send_message(self, params: dict[str, Any]) -> web.Response:
        text = params.get("text", "")
        if not isinstance(text, str) or not text.strip():
            return self._error(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            return self._error(400, "Bad Request: message is too long")
        extra: dict[str, Any] = {"text": text}
        if params.get("reply_markup"):
            extra["reply_markup"] = params["reply_markup"]
        return await self._record("sendMessage", params, extra)

    async def _send_photo(self, params: dict[str, Any]) -> web.Response:
        if not params.get("photo"):
            return self._error(400, "Bad Request: there is no photo in the request")
        extra: dict[str, Any] = {
            "photo": [{"file_id": "sent-" + secrets.token_hex(8), "file_unique_id": secrets.token_hex(6),
                       "width": 1280, "height": 960}],
        }  # fmt: skip
        if params.get("caption"):
            extra["caption"] = params["caption"]
        return await self._record("sendPhoto", params, extra)

    async def _get_file(self, params: dict[str, Any]) -> web.Response:
        file_id = str(params.get("file_id", ""))
        if file_id not in self.files:
            return self._error(400, "Bad Request: invalid file_id")
        path, content = self.files[file_id]
        return self._ok(
            {
                "file_id": file_id,
                "file_unique_id": file_id[-12:],
                "file_size": len(content),
                "file_path": path,
            }
        )

    async def _download(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return self._error(401, "Unauthorized")
        path = request.match_info["path"]
        self.downloads.append(path)
        for file_path, content in self.files.values():
            if file_path == path:
                return web.Response(body=content, content_type="application/octet-stream")
        return self._error(404, "Not Found")

    async def _set_webhook(self, params: dict[str, Any]) -> web.Response:
        url = params.get("url", "")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            return self._error(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and not (1 <= len(str(secret)) <= 256):
            return self._error(400, "Bad Request: secret token is invalid")
        self.webhook = {"url": url, "secret_token": secret, "allowed_updates": params.get("allowed_updates"),
                        "drop_pending_updates": params.get("drop_pending_updates")}  # fmt: skip
        return self._ok(True)

    async def _delete_webhook(self, params: dict[str, Any]) -> web.Response:
        self.webhook = {}
        return self._ok(True)

    async def _get_webhook_info(self, params: dict[str, Any]) -> web.Response:
        return self._ok(
            {"url": self.webhook.get("url", ""), "has_custom_certificate": False, "pending_update_count": 0,
             "allowed_updates": self.webhook.get("allowed_updates") or []}
        )  # fmt: skip

    async def _answer_callback(self, params: dict[str, Any]) -> web.Response:
        if not params.get("callback_query_id"):
            return self._error(
                400, "Bad Request: query is too old and response timeout expired or query ID is invalid"
            )
        return self._ok(True)


# --------------------------------------------------------------------------- update builders
#
# Updates shaped as https://core.telegram.org/bots/api#update documents them, for tests and benches.


def user(
    user_id: int = 5_123_456_789, first_name: str = "Sri", last_name: str | None = "Wahyuni"
) -> dict[str, Any]:
    person: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": "id"}
    if last_name:
        person["last_name"] = last_name
    return person


def message_update(
    update_id: int, message_id: int, sender: dict[str, Any] | None = None, **content: Any
) -> dict[str, Any]:
    """A private-chat `message` update; `content` is text=, photo=, location=, contact=, caption=..."""
    sender = sender or user()
    return {
        "update_id": update_id,
        "message": {
            "message_id": message_id,
            "from": sender,
            "chat": {"id": sender["id"], "first_name": sender["first_name"], "type": "private"},
            "date": 1761016500,
            **content,
        },
    }


def photo_sizes(file_id: str) -> list[dict[str, Any]]:
    """The sizes Telegram sends for one photo, smallest first; only the largest carries `file_id`."""
    return [
        {"file_id": file_id + "-s", "file_unique_id": "AQADs", "file_size": 1400, "width": 90, "height": 68},
        {
            "file_id": file_id + "-m",
            "file_unique_id": "AQADm",
            "file_size": 18000,
            "width": 320,
            "height": 240,
        },
        {"file_id": file_id, "file_unique_id": "AQADx", "file_size": 91000, "width": 1280, "height": 960},
    ]


def callback_update(
    update_id: int, data: str, message_id: int, sender: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A tap on an inline keyboard button under the bot's message `message_id`."""
    sender = sender or user()
    return {
        "update_id": update_id,
        "callback_query": {
            "id": str(4_382_000_000_000_000_000 + update_id),
            "from": sender,
            "message": {
                "message_id": message_id,
                "from": {
                    "id": BOT_ID,
                    "is_bot": True,
                    "first_name": "Lapor Semarang",
                    "username": BOT_USERNAME,
                },
                "chat": {"id": sender["id"], "first_name": sender["first_name"], "type": "private"},
                "date": 1761016400,
                "text": "Kami catat: ...",
            },
            "chat_instance": "-7432512345678901234",
            "data": data,
        },
    }
