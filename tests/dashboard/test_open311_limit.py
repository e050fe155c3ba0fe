"""Open311 POSTs over the body limit get the spec's error list with 413, whether the client says how
large the body is (Content-Length) or streams it (chunked), and nothing is stored."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlencode
from xml.etree import ElementTree as ET

import pytest
from sqlalchemy import func, select

from dashboard.open311 import MAX_BODY
from gateway.app import ENGINE
from store import models
from tests.harness import RunningGateway, bound_socket, make_config, start_gateway

KEY = "kunci-aplikasi-warga"
URL = "/open311/v2/requests.{fmt}"
FORM = {
    "api_key": KEY,
    "service_code": "lampu_pju",
    "address_string": "Jl. Pemuda depan Paragon",
    "description": "Lampu PJU mati",
}


@pytest.fixture
async def gateway(database_url: str, tmp_path: Path) -> AsyncIterator[RunningGateway]:
    sock = bound_socket()
    config = make_config(
        database_url,
        sock.getsockname()[1],
        MEDIA__DIRECTORY=str(tmp_path / "media"),
        OPEN311__API_KEYS=f"warga-app={KEY}",
        PRIVACY__KEY="open311-limit-key",
    )
    running = await start_gateway(config, sock, background=False)
    try:
        yield running
    finally:
        await running.stop()


async def complaints(gw: RunningGateway) -> int:
    async with gw.app[ENGINE].connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(models.complaints))).scalar_one())


def oversized() -> bytes:
    return urlencode({**FORM, "description": "x" * MAX_BODY}).encode()


async def announce(gw: RunningGateway, length: int) -> tuple[str, str]:
    """A raw POST that declares `length` bytes and sends only the start: (status line, body)."""
    host, port = gw.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    head = (
        f"POST {URL.format(fmt='json')} HTTP/1.1\r\nHost: {host}\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {length}\r\n\r\n"
    )
    writer.write(head.encode() + b"description=" + b"y" * 1024)
    await writer.drain()
    head_in = (await reader.readuntil(b"\r\n\r\n")).decode()
    status, *lines = head_in.split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines if line)
    assert headers["Connection"] == "close"
    body = await reader.readexactly(int(headers["Content-Length"]))
    writer.close()
    await writer.wait_closed()
    return status, body.decode()


async def chunks(body: bytes) -> AsyncIterator[bytes]:
    """A streamed body: aiohttp sends it chunked, without Content-Length."""
    for start in range(0, len(body), 8192):
        yield body[start : start + 8192]


async def test_a_body_over_the_limit_gets_an_open311_413_in_json_and_xml(gateway: RunningGateway) -> None:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    for fmt in ("json", "xml"):
        async with gateway.session.post(
            gateway.url + URL.format(fmt=fmt), data=oversized(), headers=headers
        ) as response:
            assert response.status == 413
            body = await response.text()
        if fmt == "json":
            assert response.content_type == "application/json"
            [error] = json.loads(body)
            assert error["code"] == 413 and str(MAX_BODY) in error["description"]
        else:
            assert response.content_type == "text/xml"
            root = ET.fromstring(body)  # noqa: S314 - our own server's answer
            assert root.tag == "errors" and root.findtext("error/code") == "413"
    # Streamed without Content-Length: stopped once the limit is passed, same answer.
    async with gateway.session.post(
        gateway.url + URL.format(fmt="json"), data=chunks(oversized()), headers=headers
    ) as response:
        assert response.status == 413
        [error] = json.loads(await response.text())
        assert error["code"] == 413
    # A body announced as larger than the 12 MiB the app as a whole accepts (for dashboard photos):
    # answered from the header alone, after the first kilobyte, and the connection is closed.
    status, body = await announce(gateway, 13 * 1024 * 1024)
    assert status.startswith("HTTP/1.1 413") and json.loads(body)[0]["code"] == 413
    assert await complaints(gateway) == 0


async def test_a_request_just_under_the_limit_is_accepted(gateway: RunningGateway) -> None:
    filler = "z" * 100
    body = urlencode({**FORM, "attribute[note]": filler}).encode()
    padding = MAX_BODY - len(body)
    body = urlencode({**FORM, "attribute[note]": filler + "z" * padding}).encode()
    assert len(body) == MAX_BODY
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    url = gateway.url + URL.format(fmt="json")
    async with gateway.session.post(url, data=body, headers=headers) as response:
        assert response.status == 200, await response.text()
        [created] = await response.json()
    assert created["service_request_id"].startswith("LPR-")
    async with gateway.session.post(
        gateway.url + URL.format(fmt="json"), data=chunks(body), headers=headers
    ) as response:
        assert response.status == 200
    assert await complaints(gateway) == 2
