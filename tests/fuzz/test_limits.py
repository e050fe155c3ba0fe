"""Body-size limits and slow clients.

- Every webhook refuses a body over `[server] max_body_bytes` (64 KiB) with a 413, whether the client
  announced it (Content-Length) or streams it (chunked), and writes nothing.
- Clients that send headers and then stall do not starve anyone: other webhooks are served meanwhile.
- A stalled (or trickled) body is given up after `[server] request_timeout_seconds`: a 408, and the
  connection is closed right after it, so a slow client cannot hold a handler, a socket and its
  buffers forever.
- Stalled (or trickled) *headers* are aiohttp's to drop: it closes a connection whose request has not
  fully arrived `keepalive_timeout` after it opened (75 s under `lapor serve`; checked by hand with a
  1 s timeout and headers trickled every 0.1 s). Until then they cost a socket, not a handler, and
  complete requests are served meanwhile. A reverse proxy in front bounds both sooner.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.fuzz.support import (
    KANNEL_TOKEN,
    MAX_BODY,
    TG_SECRET,
    Target,
    fuzz_target,
    meta_signature,
    x_signature,
)

POST_ENDPOINTS = [
    ("/webhooks/twilio/sms", "application/x-www-form-urlencoded"),
    ("/webhooks/twilio/whatsapp", "application/x-www-form-urlencoded"),
    ("/webhooks/twilio/status", "application/x-www-form-urlencoded"),
    ("/webhooks/whatsapp", "application/json"),
    ("/webhooks/telegram", "application/json"),
    ("/webhooks/kannel?token=" + KANNEL_TOKEN, "text/plain"),
    ("/webhooks/twitter", "application/json"),
    ("/simulator/api/send", "application/json"),
]


@pytest.fixture
async def target(database_url: str) -> AsyncIterator[Target]:
    async for running in fuzz_target(database_url):
        yield running


def oversized(content_type: str) -> bytes:
    if content_type == "application/json":
        return json.dumps({"update_id": 1, "text": "x" * (MAX_BODY + 10)}).encode()
    if content_type == "text/plain":
        return b"LaporHendi " + b"x" * MAX_BODY
    return b"Body=" + b"x" * MAX_BODY


def signed_headers(path: str, content_type: str, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": content_type,
        "X-Hub-Signature-256": meta_signature(body),
        "x-twitter-webhooks-signature": x_signature(body),
        "X-Telegram-Bot-Api-Secret-Token": TG_SECRET,
    }


@pytest.mark.parametrize(("path", "content_type"), POST_ENDPOINTS, ids=[p for p, _ in POST_ENDPOINTS])
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_oversized_bodies_are_refused_with_413_and_write_nothing(
    target: Target, path: str, content_type: str, chunked: bool
) -> None:
    body = oversized(content_type)
    assert len(body) > MAX_BODY
    before = await target.counts()

    async def stream() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    try:
        async with target.gateway.session.post(
            target.url + path,
            data=stream() if chunked else body,
            headers=signed_headers(path, content_type, body),
        ) as response:
            status = response.status
    except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError):
        status = 0  # the server answered 413 and closed while the client was still streaming
    assert status in ((0, 413) if chunked else (413,))
    assert await target.counts() == before
    assert not target.log.take()


async def test_a_large_open311_post_is_not_a_server_error(target: Target) -> None:
    body = b"api_key=x&description=" + b"x" * (1024 * 1024)
    status, _ = await target.request(
        "POST",
        "/open311/v2/requests.json",
        body=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status in (400, 403, 413)


TELEGRAM_UPDATE = {
    "update_id": 42,
    "message": {
        "message_id": 1,
        "date": 1761016500,
        "text": "LaporHendi lampu mati",
        "from": {"id": 77, "is_bot": False, "first_name": "Sri"},
        "chat": {"id": 77, "type": "private"},
    },
}


async def stall(port: int, path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Headers announcing 1,000 bytes of body, then 10 of them, then nothing."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"X-Telegram-Bot-Api-Secret-Token: {TG_SECRET}\r\nContent-Length: 1000\r\n\r\n".encode()
        + b'{"update_'
    )
    await writer.drain()
    return reader, writer


async def test_stalled_clients_do_not_starve_other_webhooks(target: Target) -> None:
    port = int(target.url.rsplit(":", 1)[1])
    stalled = [await stall(port, "/webhooks/telegram") for _ in range(50)]
    try:
        started = time.monotonic()
        status, _ = await target.request(
            "POST",
            "/webhooks/telegram",
            body=json.dumps(TELEGRAM_UPDATE).encode(),
            headers={"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": TG_SECRET},
        )
        assert status == 200
        assert time.monotonic() - started < 5
    finally:
        for _, writer in stalled:
            writer.close()


@pytest.fixture
async def impatient(database_url: str) -> AsyncIterator[Target]:
    async for running in fuzz_target(database_url, SERVER__REQUEST_TIMEOUT_SECONDS=str(REQUEST_TIMEOUT)):
        yield running


REQUEST_TIMEOUT = 1.0
LINGERING = 10.0
"""aiohttp's lingering close: what a stalled client used to hold on top of the request timeout."""


async def answer_and_close(reader: asyncio.StreamReader) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took."""
    started = time.monotonic()
    async with asyncio.timeout(REQUEST_TIMEOUT + LINGERING + 5):
        answer = await reader.read()  # until EOF: the server hung up
    return answer, time.monotonic() - started


async def test_a_stalled_body_is_given_up_after_the_request_timeout(impatient: Target) -> None:
    port = int(impatient.url.rsplit(":", 1)[1])
    before = await impatient.counts()
    reader, writer = await stall(port, "/webhooks/telegram")
    try:
        answer, waited = await answer_and_close(reader)
    finally:
        writer.close()
    head = answer.split(b"\r\n", 1)[0]
    assert head == b"HTTP/1.1 408 Request Timeout", answer[:300]
    assert b"Connection: close" in answer
    # Closed right after the answer, not after aiohttp's lingering read of a body that never comes.
    assert REQUEST_TIMEOUT * 0.9 <= waited < REQUEST_TIMEOUT + LINGERING / 2, waited
    assert await impatient.counts() == before
    assert not impatient.log.take()


async def test_a_trickled_body_is_given_up_too(impatient: Target) -> None:
    """The timeout bounds the whole body, not the gap between bytes: one byte every 0.1 s never
    resets it, so a slow-loris client cannot keep a handler alive by trickling."""
    port = int(impatient.url.rsplit(":", 1)[1])
    reader, writer = await stall(port, "/webhooks/telegram")

    async def trickle() -> None:
        with contextlib.suppress(ConnectionError):
            while not reader.at_eof():
                writer.write(b" ")
                await writer.drain()
                await asyncio.sleep(0.1)  # the client's pace, not synchronisation

    dribbling = asyncio.create_task(trickle())
    try:
        answer, waited = await answer_and_close(reader)
    finally:
        dribbling.cancel()
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:300]
    assert waited < REQUEST_TIMEOUT + LINGERING / 2, waited
    assert not impatient.log.take()


async def test_a_client_stalled_in_its_headers_is_dropped_after_the_request_timeout(
    impatient: Target,
) -> None:
    """A header slow-loris never reaches a handler (aiohttp parses headers before routing); the
    connection is dropped once the request timeout passes (`keepalive_timeout`, set from
    `[server] request_timeout_seconds`; aiohttp's own default would hold it 75 s)."""
    port = int(impatient.url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /webhooks/telegram HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    await writer.drain()
    try:
        answer, waited = await answer_and_close(reader)
    finally:
        writer.close()
    assert waited < REQUEST_TIMEOUT + 3, waited
    assert not answer.startswith(b"HTTP/1.1 2"), answer[:200]
    assert not impatient.log.take()


async def test_clients_stalled_in_their_headers_do_not_starve_other_webhooks(target: Target) -> None:
    """Meanwhile, complete requests are served as usual."""
    port = int(target.url.rsplit(":", 1)[1])
    stalled = []
    for _ in range(50):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /webhooks/telegram HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        await writer.drain()
        stalled.append((reader, writer))
    try:
        started = time.monotonic()
        status, _ = await target.request(
            "POST",
            "/webhooks/telegram",
            body=json.dumps(TELEGRAM_UPDATE).encode(),
            headers={"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": TG_SECRET},
        )
        assert status == 200
        assert time.monotonic() - started < 5
    finally:
        for _, writer in stalled:
            writer.close()
