"""What every fake provider shares: a real aiohttp server on a free loopback port.

Providers are faked at the HTTP level so the project talks to them through the same client library it
uses in production. A fake subclasses `LoopbackServer`, declares its routes in `add_routes` and, when
what the gateway is configured with is not the bare base URL (Telegram's `.../bot`, Graph's
`.../v21.0`, Kannel's `.../cgi-bin/sendsms`), says so in `endpoint`:

    async with FakeKannel() as fake:        # or: endpoint = await fake.start(); ...; await fake.stop()
        config = KannelConfig(sendsms_url=fake.endpoint, ...)
        [sms] = await fake.wait_for_messages(1)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Self, TypeVar

import aiohttp
from aiohttp import web

T = TypeVar("T")


class LoopbackServer:
    SHUTDOWN_TIMEOUT = 60.0
    """Seconds `stop()` lets requests still in flight finish (aiohttp's default)."""

    def __init__(self) -> None:
        self.base_url = ""
        self._changed = asyncio.Condition()
        """Notified whenever the fake records something, so tests wait for it without polling."""
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    def add_routes(self, router: web.UrlDispatcher) -> None:
        raise NotImplementedError

    @property
    def endpoint(self) -> str:
        """What the gateway's config points at; `start()` returns it."""
        return self.base_url

    # -- lifecycle

    async def start(self) -> str:
        """Serve on a random loopback port (tests run in parallel); returns `endpoint`."""
        app = web.Application()
        self.add_routes(app.router)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=self.SHUTDOWN_TIMEOUT)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self.endpoint

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def start_and_stop(self) -> Self:
        """This fake once served and is now gone: its URL is a port that refuses connections, which is
        what an unreachable provider looks like to a client."""
        await self.start()
        await self.stop()
        return self

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- recording and waiting

    async def _append(self, records: list[Any], item: Any) -> None:
        """Append `item` to `records` and wake whoever waits in `_wait_for_records`."""
        async with self._changed:
            records.append(item)
            self._changed.notify_all()

    async def _wait_for_records(
        self,
        records: Callable[[], list[T]],
        count: int,
        timeout: float,  # noqa: ASYNC109 - bounding the wait is the point
        what: str,
    ) -> list[T]:
        """The first `count` of `records()`, once there are that many (re-checked whenever something is
        recorded, no polling); after `timeout` seconds a TimeoutError that says how many `what` came."""
        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(lambda: len(records()) >= count)
        except TimeoutError:
            raise TimeoutError(f"{len(records())} {what} after {timeout}s, wanted {count}") from None
        return records()[:count]

    # -- the provider calling the gateway

    def _http(self) -> aiohttp.ClientSession:
        """The fake's own client, for webhooks it pushes to the gateway; closed by `stop()`."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session
