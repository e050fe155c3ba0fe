"""A fake Kannel bearerbox/smsbox on loopback: `GET /cgi-bin/sendsms`, and the calls Kannel makes to us.

sendsms answers as Kannel does (`202 0: Accepted for delivery`, `403 Authorization failed for
sendsms`, `503 4: Temporal failure, try again later`...). `deliver_report` plays the SMSC's delivery
report: it substitutes Kannel's escape codes (%d, %A, %T, %p) into the dlr-url a message was sent with
and calls it. `mo` plays a citizen texting the short code through the sms-service get-url.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any
from urllib.parse import quote

from aiohttp import web

from .server import LoopbackServer

DEFAULT_USERNAME = "lapor"
DEFAULT_PASSWORD = "fake-kannel-password-123"
DLR_ANSWERS = {
    1: "id:0123 sub:001 dlvrd:001 stat:DELIVRD err:000",
    2: "id:0123 sub:001 dlvrd:000 stat:UNDELIV err:001",
    4: "ACK/",
    8: "ACK/",
    16: "NACK/0x0000000b/Invalid Destination Address",
}
"""What SMSCs typically put in %A for each report value."""


class FakeKannel(LoopbackServer):
    def __init__(self, username: str = DEFAULT_USERNAME, password: str = DEFAULT_PASSWORD) -> None:
        super().__init__()
        self.username = username
        self.password = password
        self.sent: list[dict[str, str]] = []
        self.requests: list[dict[str, str]] = []
        self._failures: deque[tuple[int, str]] = deque()

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/cgi-bin/sendsms", self._sendsms)

    @property
    def sendsms_url(self) -> str:
        return self.base_url + "/cgi-bin/sendsms"

    @property
    def endpoint(self) -> str:
        return self.sendsms_url

    def fail_next(
        self, count: int = 1, *, status: int = 503, answer: str = "4: Temporal failure, try again later"
    ) -> None:
        for _ in range(count):
            self._failures.append((status, answer))

    async def wait_for_messages(self, count: int, timeout: float = 10.0) -> list[dict[str, str]]:  # noqa: ASYNC109
        return await self._wait_for_records(lambda: self.sent, count, timeout, "SMS")

    async def _sendsms(self, request: web.Request) -> web.Response:
        params = dict(request.query)
        self.requests.append(params)
        if params.get("username") != self.username or params.get("password") != self.password:
            return web.Response(status=403, text="Authorization failed for sendsms")
        if self._failures:
            status, answer = self._failures.popleft()
            return web.Response(status=status, text=answer)
        if not params.get("to"):
            return web.Response(status=400, text="Missing receiver number")
        if not params.get("text"):
            return web.Response(status=400, text="Missing text")
        await self._append(self.sent, params)
        return web.Response(status=202, text="0: Accepted for delivery")

    # -- Kannel calling the gateway

    async def deliver_report(self, sent: dict[str, str], value: int, answer: str = "") -> int:
        """Call the dlr-url of `sent` with delivery report `value` (1, 2, 4, 8, 16), as Kannel does."""
        answer = answer or DLR_ANSWERS[value]
        substitutions = {"%d": str(value), "%A": quote(answer), "%T": str(int(time.time())), "%p": sent["to"]}
        url = sent["dlr-url"]
        for code, replacement in substitutions.items():
            url = url.replace(code, replacement)
        async with self._http().get(url, allow_redirects=False) as response:
            await response.read()
            return response.status

    async def mo(self, get_url: str, sender: str, text: str, **codes: Any) -> int:
        """A citizen's SMS through the sms-service get-url (`%p` from, `%P` to, `%a` text, `%I` id...)."""
        substitutions = {
            "%p": sender,
            "%a": text,
            "%P": "1708",
            "%I": "",
            "%T": str(int(time.time())),
            "%i": "telkomsel",
        }
        substitutions.update({f"%{key}": str(value) for key, value in codes.items()})
        url = get_url
        for code, replacement in substitutions.items():
            url = url.replace(code, quote(replacement, safe=""))
        async with self._http().get(url, allow_redirects=False) as response:
            await response.read()
            return response.status
