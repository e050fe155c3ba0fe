"""Evidence storage: type and size limits, EXIF stripped (GPS kept only as a location candidate), and the
background fetcher rewriting stored media entries, failing without losing the provider reference."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import select

from gateway.app import DISPATCHER, ENGINE, MEDIA_FETCHER
from gateway.media import MediaRejected, MediaStore
from store.models import Complaint
from store.models import InboundMessage as InboundRow
from tests.channels.support import gps_jpeg
from tests.fakes.graph import FakeGraphAPI, image_message, inbound_payload, text_message
from tests.harness import RunningGateway, bound_socket, make_config, start_gateway

WA_ID = "6281234567890"


def png(size: tuple[int, int] = (20, 10)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 200, 10)).save(out, format="PNG")
    return out.getvalue()


def test_jpeg_is_stored_without_exif_and_gps_is_returned(tmp_path: Path) -> None:
    store = MediaStore(tmp_path, 1024 * 1024)
    stored = store.store(gps_jpeg(-6.98403, 110.40935), "image/jpeg")
    assert stored.content_type == "image/jpeg" and stored.url.startswith("/media/")
    assert stored.gps is not None
    assert stored.gps == pytest.approx((-6.98403, 110.40935), abs=1e-4)
    path = store.path_for(stored.url)
    assert path is not None and path.exists()
    with Image.open(path) as image:
        exif = image.getexif()
        assert len(exif) == 0 and not exif.get_ifd(0x8825)
    assert b"Samsung" not in path.read_bytes()


def test_same_photo_twice_is_one_file(tmp_path: Path) -> None:
    store = MediaStore(tmp_path, 1024 * 1024)
    first = store.store(png())
    second = store.store(png())
    assert first.url == second.url and first.gps is None
    assert len(list(tmp_path.rglob("*.png"))) == 1


def test_pdf_is_kept(tmp_path: Path) -> None:
    stored = MediaStore(tmp_path, 1024).store(b"%PDF-1.4\n% laporan\n%%EOF", "application/pdf")
    assert stored.content_type == "application/pdf" and stored.url.endswith(".pdf")


@pytest.mark.parametrize(
    ("data", "limit", "reason"),
    [
        (b"x" * 2048, 1024, "limit"),
        (b"", 1024, "empty"),
        (b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", 1024, "unreadable"),
        (b"<html><script>alert(1)</script></html>", 1024, "unreadable"),
        (b"\xff\xd8\xff\xe0 truncated jpeg", 1024, "unreadable"),
        (b"OggS\x00\x02 voice note", 1024, "unreadable"),
    ],
)
def test_rejected(tmp_path: Path, data: bytes, limit: int, reason: str) -> None:
    with pytest.raises(MediaRejected, match=reason):
        MediaStore(tmp_path, limit).store(data, "image/jpeg")
    assert list(tmp_path.rglob("*")) == []


def test_declared_type_is_not_trusted(tmp_path: Path) -> None:
    stored = MediaStore(tmp_path, 1024 * 1024).store(png(), "application/pdf")
    assert stored.content_type == "image/png"


@pytest.mark.parametrize(
    "url", ["/media/../etc/passwd", "/media/ab/../../x", "/media/ab/.hidden", "https://x/y"]
)
def test_path_for_refuses_anything_but_its_own_files(tmp_path: Path, url: str) -> None:
    assert MediaStore(tmp_path, 1).path_for(url) is None


# --------------------------------------------------------------------------- the fetcher in the gateway


@pytest.fixture
async def fake() -> AsyncIterator[FakeGraphAPI]:
    async with FakeGraphAPI() as server:
        yield server


@pytest.fixture
async def gateway(fake: FakeGraphAPI, database_url: str, tmp_path: Path) -> AsyncIterator[RunningGateway]:
    sock = bound_socket()
    config = make_config(
        database_url,
        sock.getsockname()[1],
        CHANNELS__WHATSAPP_CLOUD__PHONE_NUMBER_ID=fake.phone_number_id,
        CHANNELS__WHATSAPP_CLOUD__ACCESS_TOKEN=fake.access_token,
        CHANNELS__WHATSAPP_CLOUD__APP_SECRET=fake.app_secret,
        CHANNELS__WHATSAPP_CLOUD__API_BASE=fake.api_base,
        MEDIA__DIRECTORY=str(tmp_path / "media"),
        MEDIA__MAX_BYTES="200000",
    )
    running = await start_gateway(config, sock, background=False)
    fake.webhook_url = running.url + "/webhooks/whatsapp"
    try:
        yield running
    finally:
        await running.stop()


async def file_complaint(fake: FakeGraphAPI, gateway: RunningGateway, *media_ids: str) -> None:
    messages: list[dict[str, Any]] = [
        image_message(
            WA_ID, media_id, caption="jalan berlubang di Jl. Majapahit depan SPBU" if i == 0 else None
        )
        for i, media_id in enumerate(media_ids)
    ]
    for message in messages:
        assert await fake.push(inbound_payload(fake.phone_number_id, [message])) == 200
        await gateway.app[DISPATCHER].drain()
    assert await fake.push(inbound_payload(fake.phone_number_id, [text_message(WA_ID, "YA")])) == 200
    await gateway.app[DISPATCHER].drain()


async def media_rows(gateway: RunningGateway) -> tuple[list[Any], list[Any]]:
    async with gateway.app[ENGINE].connect() as conn:
        complaint = (await conn.execute(select(Complaint.__table__))).mappings().one()
        messages = (await conn.execute(select(InboundRow.__table__.c.media))).scalars().all()
    return list(complaint["media"]), [entry for entries in messages for entry in entries]


async def test_photo_is_fetched_stored_and_becomes_the_location_candidate(
    fake: FakeGraphAPI, gateway: RunningGateway, tmp_path: Path
) -> None:
    media_id = fake.add_media(gps_jpeg(-6.9671, 110.4170))
    await file_complaint(fake, gateway, media_id)
    fetcher = gateway.app[MEDIA_FETCHER]
    await fetcher.run_once()

    complaint_media, message_media = await media_rows(gateway)
    [entry] = complaint_media
    assert entry["url"].startswith("/media/") and entry["source"] == f"whatsapp-media:{media_id}"
    assert entry["gps"] == pytest.approx({"latitude": -6.9671, "longitude": 110.417}, abs=1e-4)
    assert message_media == [entry]
    stored = tmp_path / "media" / entry["url"].removeprefix("/media/")
    with Image.open(stored) as image:
        assert len(image.getexif()) == 0
    async with gateway.app[ENGINE].connect() as conn:
        complaint = (await conn.execute(select(Complaint.__table__))).mappings().one()
    assert complaint["latitude"] == pytest.approx(-6.9671, abs=1e-4)  # no location was typed
    assert await fetcher.run_once() == 0  # nothing left to do
    assert fake.downloads == [media_id]


async def test_failures_keep_the_reference(fake: FakeGraphAPI, gateway: RunningGateway) -> None:
    good = fake.add_media(gps_jpeg(-6.99, 110.42))
    too_big = fake.add_media(b"\xff\xd8" + b"x" * 300_000)
    flaky = fake.add_media(png())
    fake.fail_next(1, target="download", status=503, message="busy")  # the first download fails
    await file_complaint(fake, gateway, flaky, good, too_big)
    fetcher = gateway.app[MEDIA_FETCHER]
    await fetcher.run_once()

    complaint_media, message_media = await media_rows(gateway)
    by_source = {e.get("source", e["url"]): e for e in complaint_media}
    assert by_source[f"whatsapp-media:{good}"]["url"].startswith("/media/")
    # Still being retried: the complaint keeps the reference; the message records the attempt.
    assert by_source[f"whatsapp-media:{flaky}"] == {
        "url": f"whatsapp-media:{flaky}",
        "content_type": "image/jpeg",
    }
    [retrying] = [e for e in message_media if e["url"] == f"whatsapp-media:{flaky}"]
    assert (
        retrying["fetch_attempts"] == 1
        and "503" in retrying["fetch_error"]
        and "fetch_failed" not in retrying
    )
    refused = by_source[f"whatsapp-media:{too_big}"]
    assert refused["fetch_failed"] is True and "limit" in refused["fetch_error"]

    await fetcher.run_once()  # the flaky one is retried and now succeeds
    complaint_media, _ = await media_rows(gateway)
    assert sum(1 for e in complaint_media if e["url"].startswith("/media/")) == 2
