"""The real gateway on a loopback port, a browser-like HTTP client, and a clock the test can move."""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.app import DISPATCHER, ENGINE
from store import models
from store.users import ROLES, hash_password
from tests.fakes.twilio import FakeTwilio
from tests.harness import RunningGateway, bound_socket, make_config, start_gateway

CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')
PASSWORD = "kata-sandi-yang-panjang"


@functools.cache
def _password_hash() -> str:
    return hash_password(PASSWORD)


class Clock:
    """Real time plus an offset the test can move forward (lockouts last 15 minutes); it keeps
    ticking so the gateway's outbox and timers behave as in production."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta


@dataclass
class Dashboard:
    gateway: RunningGateway
    clock: Clock

    @property
    def url(self) -> str:
        return self.gateway.url

    def browser(self) -> aiohttp.ClientSession:
        """A fresh 'browser': its own cookie jar (unsafe=True: cookies from 127.0.0.1 are kept)."""
        return aiohttp.ClientSession(
            base_url=self.url, cookie_jar=aiohttp.CookieJar(unsafe=True), auto_decompress=True
        )

    async def add_user(self, username: str, role: str, department: str | None = None) -> None:
        """A user with `PASSWORD`, stored as `lapor user add` stores one. The argon2 hash is made once
        per test process (it is deliberately slow); signing in still verifies it for real."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        async with self.gateway.app[ENGINE].begin() as conn:
            await conn.execute(
                models.users.insert().values(
                    username=username,
                    password_hash=_password_hash(),
                    role=role,
                    department=department,
                    active=True,
                    failed_logins=0,
                )
            )

    async def login(self, browser: aiohttp.ClientSession, username: str, password: str = PASSWORD) -> int:
        token = await csrf_from(browser, "/dashboard/login")
        async with browser.post(
            "/dashboard/login",
            data={"username": username, "password": password, "csrf": token},
            allow_redirects=False,
        ) as response:
            await response.read()
            return response.status

    async def chat(
        self, sender: str, text: str | None, *, medium: str = "sms", location: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Say something (or share a `location`: latitude, longitude, label) through the simulator
        channel and wait (long-poll) for the bot's answer."""
        async with aiohttp.ClientSession(base_url=self.url) as http:
            query = {"medium": medium, "from": sender}
            async with http.get("/simulator/api/messages", params=query) as response:
                before = len((await response.json())["messages"])
            payload = {**query, "text": text, "location": location, "id": uuid.uuid4().hex}
            async with http.post("/simulator/api/send", json=payload) as response:
                assert response.status == 200, await response.text()
            messages: list[dict[str, Any]] = []
            seen = before
            while not any(m["direction"] == "out" for m in messages[before:]):
                params = {**query, "seen": str(seen), "wait": "10"}
                async with http.get("/simulator/api/messages", params=params) as response:
                    messages = (await response.json())["messages"]
                seen = len(messages)
            return messages[before:]


    async def drain(self) -> None:
        """Send everything the outbox owes now (gateways started with background=False)."""
        await self.gateway.app[DISPATCHER].drain()


async def csrf_from(browser: aiohttp.ClientSession, path: str) -> str:
    async with browser.get(path) as response:
        match = CSRF_FIELD.search(await response.text())
    assert match is not None, f"no CSRF field on {path}"
    return match.group(1)


@pytest.fixture
async def dashboard(database_url: str, tmp_path: Path) -> AsyncIterator[Dashboard]:
    sock = bound_socket()
    config = make_config(database_url, sock.getsockname()[1], MEDIA__DIRECTORY=str(tmp_path / "media"))
    clock = Clock()
    running = await start_gateway(config, sock, clock=clock)
    try:
        yield Dashboard(running, clock)
    finally:
        await running.stop()


@pytest.fixture
async def sms_dashboard(
    database_url: str, tmp_path: Path, fake_twilio: FakeTwilio
) -> AsyncIterator[Dashboard]:
    """The dashboard with Twilio SMS pointed at a fake Twilio on loopback; the outbox is sent when the
    test calls `drain()`, so every message a test waits for is one it caused."""
    sock = bound_socket()
    config = make_config(
        database_url,
        sock.getsockname()[1],
        MEDIA__DIRECTORY=str(tmp_path / "media"),
        CHANNELS__TWILIO__ACCOUNT_SID=fake_twilio.account_sid,
        CHANNELS__TWILIO__AUTH_TOKEN=fake_twilio.auth_token,
        CHANNELS__TWILIO__SMS_FROM="+15005550006",
        CHANNELS__TWILIO__API_BASE=fake_twilio.base_url,
        PRIVACY__KEY="kunci-privasi-uji-coba",
    )
    clock = Clock()
    running = await start_gateway(config, sock, clock=clock, background=False)
    try:
        yield Dashboard(running, clock)
    finally:
        await running.stop()
