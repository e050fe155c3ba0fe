"""The bad-input suite's harness: one gateway with every channel on, the server's log watched, and
the database's row counts compared around every rejected request.

Every channel has credentials, so fuzzed requests can be *signed* the way the provider signs them and
reach the parsers behind the signature checks. The dispatcher does not run (`background=False`):
nothing is sent anywhere, the suite only looks at what comes in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp.http_exceptions import HttpProcessingError
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from sqlalchemy import func as sql_func
from sqlalchemy import literal, select, union_all

from gateway.app import ENGINE
from store import models
from tests.fakes.twilio_webhooks import sign as twilio_sign
from tests.harness import RunningGateway, bound_socket, make_config, start_gateway

TWILIO_SID = "AC" + "0" * 32
TWILIO_TOKEN = "fuzz-twilio-auth-token"
WA_SECRET = "fuzz-meta-app-secret"
WA_VERIFY = "fuzz-verify-token"
WA_PHONE_ID = "106540352242922"
TG_SECRET = "fuzz-telegram-secret"
X_SECRET = "fuzz-x-consumer-secret"
KANNEL_TOKEN = "fuzz-kannel-token"
OPEN311_KEY = "fuzz-open311-key"
UNREACHABLE = "http://127.0.0.1:9"
MAX_BODY = 65536

FUZZ = settings(
    max_examples=int(os.environ.get("LAPOR_FUZZ_EXAMPLES", "60")),
    deadline=None,
    derandomize=True,  # the same examples on every CI run
    # No shrinking: a failure is reported as found, at once. Shrinking a server round-trip can take
    # many minutes, which would hide a real failure behind a CI timeout.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target],
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


class ErrorLog(logging.Handler):
    """Keeps every record at ERROR or above, and any record carrying a traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.protocol_errors = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and isinstance(record.exc_info[1], HttpProcessingError):
            # aiohttp refusing malformed HTTP itself (a request line over 8190 bytes...) with a 4xx:
            # the request never reached the gateway. aiohttp logs these with a traceback at ERROR.
            self.protocol_errors += 1
            return
        if record.levelno >= logging.ERROR or record.exc_info:
            self.records.append(record)

    def take(self) -> list[str]:
        taken = [
            f"{r.name}: {r.getMessage()} {r.exc_info[1]!r}" if r.exc_info else r.getMessage()
            for r in self.records
        ]
        self.records.clear()
        return taken


@dataclass
class Target:
    gateway: RunningGateway
    log: ErrorLog
    seen: dict[int, int] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.gateway.url

    async def counts(self) -> dict[str, int]:
        tables = models.Base.metadata.sorted_tables
        query = union_all(
            *(
                select(literal(t.name).label("name"), sql_func.count().label("n")).select_from(t)
                for t in tables
            )
        )
        async with self.gateway.app[ENGINE].connect() as conn:
            return {str(name): int(n) for name, n in (await conn.execute(query)).all()}

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | list[tuple[str, str]] | None = None,
    ) -> tuple[int, str]:
        """Send one request; assert the contract every bad input must meet, return (status, body)."""
        before = await self.counts()
        hdrs = dict(headers or {})
        skip = () if any(k.lower() == "content-type" for k in hdrs) else ("Content-Type",)
        async with self.gateway.session.request(
            method, self.url + path, data=body, headers=hdrs, params=params, skip_auto_headers=skip
        ) as response:
            status, text = response.status, await response.text(errors="replace")
        self.seen[status] = self.seen.get(status, 0) + 1
        errors = self.log.take()
        assert status < 500, f"{method} {path} -> {status} {text[:300]}\nlog: {errors}"
        assert not errors, f"{method} {path} -> {status}: the server logged errors: {errors}"
        if status >= 400:
            assert await self.counts() == before, f"{method} {path} -> {status} but rows were written"
        return status, text


async def fuzz_target(database_url: str, **overrides: str) -> AsyncIterator[Target]:
    sock = bound_socket()
    port = sock.getsockname()[1]
    config = make_config(
        database_url,
        port,
        CHANNELS__TWILIO__ACCOUNT_SID=TWILIO_SID,
        CHANNELS__TWILIO__AUTH_TOKEN=TWILIO_TOKEN,
        CHANNELS__TWILIO__SMS_FROM="+15005550006",
        CHANNELS__TWILIO__WHATSAPP_FROM="whatsapp:+15005550006",
        CHANNELS__TWILIO__API_BASE=UNREACHABLE,
        CHANNELS__WHATSAPP_CLOUD__PHONE_NUMBER_ID=WA_PHONE_ID,
        CHANNELS__WHATSAPP_CLOUD__ACCESS_TOKEN="fuzz-access-token",
        CHANNELS__WHATSAPP_CLOUD__APP_SECRET=WA_SECRET,
        CHANNELS__WHATSAPP_CLOUD__VERIFY_TOKEN=WA_VERIFY,
        CHANNELS__WHATSAPP_CLOUD__API_BASE=UNREACHABLE,
        CHANNELS__TELEGRAM__BOT_TOKEN="123456:fuzz-bot-token",
        CHANNELS__TELEGRAM__SECRET_TOKEN=TG_SECRET,
        CHANNELS__TELEGRAM__API_BASE=UNREACHABLE + "/bot",
        CHANNELS__TWITTER__BEARER_TOKEN="fuzz-bearer",
        CHANNELS__TWITTER__CONSUMER_KEY="fuzz-consumer-key",
        CHANNELS__TWITTER__CONSUMER_SECRET=X_SECRET,
        CHANNELS__TWITTER__ACCESS_TOKEN="1-fuzz-access",
        CHANNELS__TWITTER__ACCESS_TOKEN_SECRET="fuzz-access-secret",
        CHANNELS__TWITTER__ACCOUNT_ID="1500000000000000000",
        CHANNELS__TWITTER__API_BASE=UNREACHABLE,
        CHANNELS__KANNEL__SENDSMS_URL=UNREACHABLE + "/cgi-bin/sendsms",
        CHANNELS__KANNEL__USERNAME="fuzz",
        CHANNELS__KANNEL__PASSWORD="fuzz-password",
        CHANNELS__KANNEL__INBOUND_TOKEN=KANNEL_TOKEN,
        OPEN311__API_KEYS=OPEN311_KEY,
        **overrides,
    )
    gateway = await start_gateway(config, sock, background=False)
    log = ErrorLog()
    root = logging.getLogger()
    root.addHandler(log)
    try:
        yield Target(gateway, log)
    finally:
        root.removeHandler(log)
        await gateway.stop()


# --------------------------------------------------------------------------- signing


def twilio_signature(url: str, pairs: list[tuple[str, str]]) -> str:
    return twilio_sign(url, pairs, TWILIO_TOKEN)


def meta_signature(body: bytes) -> str:
    return "sha256=" + hmac.new(WA_SECRET.encode(), body, hashlib.sha256).hexdigest()


def x_signature(body: bytes) -> str:
    return "sha256=" + base64.b64encode(hmac.new(X_SECRET.encode(), body, hashlib.sha256).digest()).decode()


# --------------------------------------------------------------------------- strategies

nasty_text = st.one_of(
    st.text(max_size=200),
    st.sampled_from(
        [
            "",
            " ",
            "\x00",
            "\ud7ff",
            "﻿",
            "null",
            "-1",
            "1e999",
            "NaN",
            "9" * 40,
            "😀" * 50,
            "+6281234567890",
            "LaporHendi lampu mati",
            "' OR 1=1 --",
            "%00",
            "\r\n",
            "ya",
        ]
    ),
    st.text(min_size=1000, max_size=5000),
)
"""Text a provider should never send, and some it does."""

header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    nasty_text,
)


def json_values(keys: list[str]) -> st.SearchStrategy[Any]:
    """Arbitrary JSON whose object keys are mostly the provider's own field names."""
    key = st.one_of(st.sampled_from(keys), st.text(max_size=12))
    return st.recursive(
        json_scalars,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(key, children, max_size=6),
        max_leaves=25,
    )


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            found.extend(_paths(v, (*prefix, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found.extend(_paths(v, (*prefix, i)))
    return found


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replace(value[head], rest, new)}
    copy = list(value)
    copy[head] = _replace(copy[head], rest, new)
    return copy


@st.composite
def mutated(draw: st.DrawFn, valid: Any, keys: list[str]) -> Any:
    """A valid provider payload with one to three places replaced by arbitrary JSON (or removed)."""
    value = valid
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(value)
        path = draw(st.sampled_from(paths))
        if path and draw(st.booleans()) and isinstance(_get(value, path[:-1]), dict):
            parent = dict(_get(value, path[:-1]))
            parent.pop(path[-1], None)
            value = _replace(value, path[:-1], parent)
        else:
            value = _replace(value, path, draw(json_values(keys)))
    return value


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        value = value[part]
    return value


def json_body(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


@st.composite
def broken_bytes(draw: st.DrawFn, good: bytes) -> bytes:
    """`good` with invalid UTF-8 spliced in somewhere."""
    at = draw(st.integers(0, len(good)))
    junk = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf0\x28\x8c\xbc", b"\x80\x80"]))
    return good[:at] + junk + good[at:]


def session_timeout() -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=30)
