"""Evidence photos are served to signed-in staff only."""

from __future__ import annotations

import asyncio
import struct
import zlib

import aiohttp

from gateway.app import CONFIG
from gateway.media import MediaStore
from tests.dashboard.conftest import Dashboard


def _png(width: int = 8, height: int = 8) -> bytes:
    rows = b"".join(b"\x00" + bytes((200, 80, 40)) * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


async def test_only_signed_in_staff_see_evidence(dashboard: Dashboard) -> None:
    media = dashboard.gateway.app[CONFIG].media
    stored = await asyncio.to_thread(MediaStore(media.directory, media.max_bytes).store, _png(), "image/png")
    assert stored.url.startswith("/media/")
    async with aiohttp.ClientSession(base_url=dashboard.url) as public, public.get(stored.url) as response:
        assert response.status == 403
    await dashboard.add_user("budi", "officer")
    async with dashboard.browser() as browser:
        assert await dashboard.login(browser, "budi") == 302
        async with browser.get(stored.url) as response:
            assert response.status == 200
            assert (await response.read())[:8] == b"\x89PNG\r\n\x1a\n"
        for missing in ("/media/00/nothing.png", "/media/..%2F..%2Fetc/passwd", "/media/.x/y.png"):
            async with browser.get(missing) as response:
                assert response.status == 404, missing
