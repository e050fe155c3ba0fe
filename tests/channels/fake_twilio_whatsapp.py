"""What Twilio adds for WhatsApp, on top of tests/fakes/twilio.py's FakeTwilio.

- Content templates: a create with `ContentSid` (+ `ContentVariables`) and no `Body` is accepted, as
  Twilio accepts it; the template is rendered into the recorded body as `[ContentSid] {variables}` and
  kept in `templates`.
- The 24-hour window: numbers in `closed_windows` get error 63016 for free-form text right away.
- Media: `FakeTwilioMedia` serves media URLs behind the account's basic auth and redirects to a
  short-lived, unauthenticated "storage" URL, as api.twilio.com does.

(FakeTwilio itself belongs to the SMS adapter; these are candidates to move into it.)
"""

from __future__ import annotations

import base64
import secrets
from typing import Any

from aiohttp import web
from multidict import MultiDict, MultiDictProxy

from tests.fakes.twilio import FakeTwilio


class FakeTwilioWhatsApp(FakeTwilio):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.templates: list[dict[str, str]] = []
        self.closed_windows: set[str] = set()

    async def _create(self, request: web.Request) -> web.Response:
        form = await request.post()
        to = str(form.get("To", ""))
        content_sid = str(form.get("ContentSid", ""))
        if content_sid and not form.get("Body"):
            variables = str(form.get("ContentVariables", "{}"))
            self.templates.append({"to": to, "content_sid": content_sid, "content_variables": variables})
            rendered = MultiDict(form)
            rendered["Body"] = f"[{content_sid}] {variables}"
            # FakeTwilio reads the form through request.post(), which aiohttp caches here.
            request._post = MultiDictProxy(rendered)  # type: ignore[assignment]
        elif to in self.closed_windows and self._authorized(request):
            return self._error(
                400, 63016, "Failed to send freeform message because you are outside the allowed window"
            )
        return await super()._create(request)


class FakeTwilioMedia:
    """Twilio media URLs: basic auth with the account's credentials, then a redirect to storage."""

    def __init__(self, account_sid: str, auth_token: str) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.files: dict[str, tuple[bytes, str]] = {}
        self.fetches: list[str] = []
        self.failures: list[int] = []
        self._runner: web.AppRunner | None = None
        self.base_url = ""
        self.storage_url = ""

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/2010-04-01/Accounts/{account}/Messages/{message}/Media/{media}", self._media)
        app.router.add_get("/storage/{token}/{media}", self._storage)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        # Two listening ports: api.twilio.com, and the storage host it redirects to (another origin,
        # so the client must drop the Authorization header on the way, as it would for real).
        for _ in range(2):
            await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        api_port, storage_port = (address[1] for address in self._runner.addresses)
        self.base_url = f"http://127.0.0.1:{api_port}"
        self.storage_url = f"http://127.0.0.1:{storage_port}"
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTwilioMedia:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def add(self, message_sid: str, content: bytes, content_type: str = "image/jpeg") -> str:
        """Register an attachment; returns its MediaUrl."""
        media_sid = "ME" + secrets.token_hex(16)
        self.files[media_sid] = (content, content_type)
        return (
            f"{self.base_url}/2010-04-01/Accounts/{self.account_sid}/Messages/{message_sid}/Media/{media_sid}"
        )

    def _authorized(self, request: web.Request) -> bool:
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return secrets.compare_digest(request.headers.get("Authorization", "").encode(), expected.encode())

    async def _media(self, request: web.Request) -> web.Response:
        media = request.match_info["media"]
        self.fetches.append(media)
        if self.failures:
            return web.Response(status=self.failures.pop(0), text="failure")
        if not self._authorized(request) or request.match_info["account"] != self.account_sid:
            return web.json_response({"code": 20003, "message": "Authenticate", "status": 401}, status=401)
        if media not in self.files:
            return web.json_response({"code": 20404, "message": "Not found", "status": 404}, status=404)
        raise web.HTTPTemporaryRedirect(f"{self.storage_url}/storage/{secrets.token_hex(8)}/{media}")

    async def _storage(self, request: web.Request) -> web.Response:
        if "Authorization" in request.headers:
            # Storage URLs are pre-signed; credentials sent here would be a leak.
            return web.Response(status=400, text="unexpected Authorization header")
        content, content_type = self.files[request.match_info["media"]]
        return web.Response(body=content, content_type=content_type)
