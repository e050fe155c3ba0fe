"""Running the real gateway in-process on a loopback port, for end-to-end tests and benchmarks."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
from aiohttp import web

from adapters.base import ChannelAdapter
from gateway.app import create_app, handler_options
from gateway.config import Config, load_config
from store.db import make_engine
from store.migrate import upgrade


def bound_socket() -> socket.socket:
    """A listening socket on a free loopback port, so the public URL is known before the app exists."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def make_config(database_url: str, port: int, **overrides: str) -> Config:
    """A Config as an operator would write it, from LAPOR_* variables."""
    environ = {
        "LAPOR_DATABASE__URL": database_url,
        "LAPOR_DATABASE__SQLITE_SYNCHRONOUS": "NORMAL",
        "LAPOR_SERVER__PUBLIC_URL": f"http://127.0.0.1:{port}",
        "LAPOR_SERVER__PORT": str(port),
        "LAPOR_OUTBOX__BASE_DELAY_SECONDS": "0.05",
        "LAPOR_OUTBOX__POLL_SECONDS": "0.2",
    }
    environ.update({f"LAPOR_{key.upper()}": value for key, value in overrides.items()})
    return load_config(environ=environ)


def twilio_overrides(fake: Any, **overrides: str) -> dict[str, str]:
    """`make_config` overrides that point Twilio SMS at a fake Twilio (tests.fakes.twilio)."""
    return {
        "CHANNELS__TWILIO__ACCOUNT_SID": fake.account_sid,
        "CHANNELS__TWILIO__AUTH_TOKEN": fake.auth_token,
        "CHANNELS__TWILIO__SMS_FROM": "+15005550006",
        "CHANNELS__TWILIO__API_BASE": fake.base_url,
        **overrides,
    }


async def start_twilio_gateway(
    database_url: str,
    fake: Any,
    *,
    clock: Callable[[], datetime] | None = None,
    background: bool = True,
    **overrides: str,
) -> RunningGateway:
    """The gateway on a fresh loopback port with Twilio SMS pointed at `fake`."""
    sock = bound_socket()
    config = make_config(database_url, sock.getsockname()[1], **twilio_overrides(fake, **overrides))
    return await start_gateway(config, sock, clock=clock, background=background)


async def sms_in(gateway: RunningGateway, fake: Any, sender: str, body: str) -> None:
    """A citizen's SMS as Twilio posts it (signed with the fake's token); the gateway must take it."""
    from tests.fakes.twilio_webhooks import sign, sms_params

    params = sms_params(From=sender, Body=body, AccountSid=fake.account_sid)
    signature = sign(gateway.url + "/webhooks/twilio/sms", params, fake.auth_token)
    response = await gateway.post_form("/webhooks/twilio/sms", params, {"X-Twilio-Signature": signature})
    assert response.status == 200, response.status


async def migrate(database_url: str) -> None:
    """What an operator does with `lapor migrate` before starting on PostgreSQL."""
    engine = make_engine(database_url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


@dataclass
class RunningGateway:
    app: web.Application
    runner: web.AppRunner
    url: str
    session: aiohttp.ClientSession

    async def post_form(
        self, path: str, form: Mapping[str, str], headers: Mapping[str, str]
    ) -> aiohttp.ClientResponse:
        async with self.session.post(self.url + path, data=dict(form), headers=dict(headers)) as response:
            await response.read()
            return response

    async def stop(self) -> None:
        await self.session.close()
        await self.runner.cleanup()


async def start_gateway(
    config: Config,
    sock: socket.socket,
    *,
    clock: Callable[[], datetime] | None = None,
    adapters: Mapping[str, ChannelAdapter] | None = None,
    background: bool = True,
) -> RunningGateway:
    await migrate(config.database.url)
    kwargs: dict[str, Any] = {"adapters": adapters, "background": background}
    if clock is not None:
        kwargs["clock"] = clock
    app = create_app(config, **kwargs)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=5, **handler_options(config))
    await runner.setup()
    site = web.SockSite(runner, sock)
    await site.start()
    port = sock.getsockname()[1]
    return RunningGateway(app, runner, f"http://127.0.0.1:{port}", aiohttp.ClientSession())


class GatewayProcess:
    """`python -m gateway serve` as a real child process: for crash (kill -9) and restart tests."""

    def __init__(
        self,
        env: Mapping[str, str],
        port: int,
        cwd: str,
        *,
        command: str = "serve",
        ready: str = "Lapor Gateway",
    ) -> None:
        self.env = {**os.environ, **env}
        self.port = port
        self.cwd = cwd
        self.argv = ["serve", "--port", str(port)] if command == "serve" else [command]
        self.ready = ready
        self.proc: asyncio.subprocess.Process | None = None
        self.output: list[str] = []
        self._new_output = asyncio.Condition()

    async def start(self, timeout: float = 60.0) -> None:  # noqa: ASYNC109 - a bound on start-up
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway",
            *self.argv,
            env=self.env,
            cwd=self.cwd,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert self.proc.stdout is not None
        async with asyncio.timeout(timeout):
            while True:
                line = (await self.proc.stdout.readline()).decode()
                if not line:
                    raise RuntimeError("gateway exited during start:\n" + "".join(self.output))
                self.output.append(line)
                if self.ready in line:
                    break
        self._drain = asyncio.create_task(self._read_rest())

    async def _read_rest(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for raw in self.proc.stdout:
            async with self._new_output:
                self.output.append(raw.decode())
                self._new_output.notify_all()

    async def wait_for_output(self, text: str, timeout: float = 30.0) -> str:  # noqa: ASYNC109
        """Block until the process prints a line containing `text`; returns that line."""

        def found() -> str | None:
            return next((line for line in self.output if text in line), None)

        async with asyncio.timeout(timeout), self._new_output:
            await self._new_output.wait_for(lambda: found() is not None)
        return found() or ""

    async def kill(self) -> None:
        """kill -9: no cleanup, no goodbye; whatever was not durable is gone."""
        assert self.proc is not None
        self.proc.kill()
        await self.proc.wait()
        await self._drain

    async def terminate(self) -> int:
        """SIGTERM: the graceful stop an operator's systemd or Ctrl-C gives."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = await self.proc.wait()
        await self._drain
        return code


class ManualClock:
    """A clock tests move by hand: retries, leases and timeouts without waiting."""

    def __init__(self, start: datetime | None = None) -> None:
        from datetime import UTC

        self.now = start or datetime(2026, 11, 23, 2, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        from datetime import timedelta

        self.now += timedelta(**delta)
        return self.now
