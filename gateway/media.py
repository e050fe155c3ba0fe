"""Evidence storage: citizens' photos fetched from providers, checked, stripped of EXIF, kept locally.

Providers hand us references, not files (a Twilio MediaUrl, a Graph API media id, a Telegram
file_id), and most expire within days. `MediaFetcher` runs in the background, downloads each reference
through the adapter that produced it (`fetch_media`, with that adapter's credentials) and rewrites the
stored media entries (`inbound_messages.media`, `complaints.media`, lists of {"url", "content_type"})
to the local copy:

    {"url": "/media/3f/3fa2...e1.jpg", "content_type": "image/jpeg", "source": "<provider ref>",
     "sha256": "...", "size": 48213, "gps": {"latitude": -6.98, "longitude": 110.41}}

A failure never loses the reference: the entry keeps its original `url` and gains `fetch_error`
(and `fetch_failed: true` once retrying is pointless), so an officer still sees that a photo existed.

`MediaStore` decides what is evidence: the bytes' real type (sniffed, not the declared one) must be
JPEG, PNG, WebP or PDF, within `media.max_bytes`. Images are re-encoded without their EXIF block after
applying the EXIF orientation: the citizen's phone model, timestamps and GPS position are not
published to whoever later sees the picture. A GPS position found there is returned as a location
candidate and fills the complaint's coordinates only when it has none. File work runs in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.base import ChannelAdapter, MediaFetchError, MediaRef
from store.models import Complaint
from store.models import InboundMessage as InboundRow

log = logging.getLogger(__name__)

MESSAGES: Table = InboundRow.__table__  # type: ignore[assignment]
COMPLAINTS: Table = Complaint.__table__  # type: ignore[assignment]

Clock = Callable[[], datetime]

LOCAL_PREFIX = "/media/"
IMAGE_FORMATS = {
    "JPEG": ("image/jpeg", ".jpg"),
    "PNG": ("image/png", ".png"),
    "WEBP": ("image/webp", ".webp"),
}
PDF = ("application/pdf", ".pdf")
MAX_PIXELS = 50_000_000
"""Decompression-bomb guard: a 10 MB file can claim gigapixels."""
MAX_ATTEMPTS = 5


class MediaRejected(Exception):
    """Not evidence we keep: wrong type, too large, unreadable. Never worth retrying."""


@dataclass(frozen=True, slots=True)
class StoredMedia:
    url: str
    content_type: str
    sha256: str
    size: int
    gps: tuple[float, float] | None = None

    def entry(self, source: str) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "url": self.url,
            "content_type": self.content_type,
            "source": source,
            "sha256": self.sha256,
            "size": self.size,
        }
        if self.gps is not None:
            entry["gps"] = {"latitude": self.gps[0], "longitude": self.gps[1]}
        return entry


class MediaStore:
    """A local directory of evidence files, named by content hash (the same photo twice is one file)."""

    def __init__(self, directory: str | os.PathLike[str], max_bytes: int) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes

    def path_for(self, url: str) -> Path | None:
        """The file behind a local media URL, or None (for the dashboard's file route)."""
        if not url.startswith(LOCAL_PREFIX):
            return None
        relative = url[len(LOCAL_PREFIX) :]
        parts = relative.split("/")
        if len(parts) != 2 or any(not p or p.startswith(".") for p in parts):
            return None
        return self.directory / parts[0] / parts[1]

    def store(self, data: bytes, declared_type: str | None = None) -> StoredMedia:
        """Check, clean and write one file (blocking: call through asyncio.to_thread)."""
        if len(data) > self.max_bytes:
            raise MediaRejected(f"{len(data)} bytes is over the {self.max_bytes}-byte limit")
        if not data:
            raise MediaRejected("empty file")
        if data.startswith(b"%PDF-"):
            content_type, suffix = PDF
            cleaned, gps = data, None
        else:
            cleaned, gps, (content_type, suffix) = _clean_image(data)
        digest = hashlib.sha256(cleaned).hexdigest()
        folder = self.directory / digest[:2]
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / (digest + suffix)
        if not path.exists():
            partial = path.with_suffix(suffix + ".part")
            partial.write_bytes(cleaned)
            os.replace(partial, path)
        return StoredMedia(f"{LOCAL_PREFIX}{digest[:2]}/{path.name}", content_type, digest, len(cleaned), gps)


def _clean_image(data: bytes) -> tuple[bytes, tuple[float, float] | None, tuple[str, str]]:
    try:
        with Image.open(io.BytesIO(data)) as probe:
            kind = probe.format or ""
            if kind not in IMAGE_FORMATS:
                raise MediaRejected(f"not an accepted image type ({kind or 'unknown'})")
            if probe.width * probe.height > MAX_PIXELS:
                raise MediaRejected("image dimensions too large")
            probe.verify()
        with Image.open(io.BytesIO(data)) as image:
            gps = _gps(image.getexif())
            upright = ImageOps.exif_transpose(image)
            out = io.BytesIO()
            if kind == "JPEG":
                upright.convert("RGB").save(out, format="JPEG", quality=90, optimize=True)
            else:
                upright.save(out, format=kind)
    except MediaRejected:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise MediaRejected(f"unreadable or unsupported file ({type(exc).__name__})") from None
    return out.getvalue(), gps, IMAGE_FORMATS[kind]


def _gps(exif: Image.Exif) -> tuple[float, float] | None:
    """Decimal degrees from the EXIF GPS IFD (tags 1-4), or None when absent or nonsensical."""
    try:
        info = exif.get_ifd(0x8825)
        if not info or 2 not in info or 4 not in info:
            return None
        lat = _degrees(info[2]) * (-1 if str(info.get(1, "N")).upper().startswith("S") else 1)
        lon = _degrees(info[4]) * (-1 if str(info.get(3, "E")).upper().startswith("W") else 1)
    except (TypeError, ValueError, ZeroDivisionError, KeyError):
        return None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat == 0 and lon == 0):
        return None
    return round(lat, 6), round(lon, 6)


def _degrees(value: Iterable[Any]) -> float:
    d, m, s = (float(part) for part in value)
    return d + m / 60 + s / 3600


def _utcnow() -> datetime:
    return datetime.now(UTC)


def needs_fetch(entry: Any) -> bool:
    return (
        isinstance(entry, dict)
        and isinstance(entry.get("url"), str)
        and not entry["url"].startswith(LOCAL_PREFIX)
        and not entry.get("fetch_failed")
    )


class MediaFetcher:
    """Background downloads of provider media into the MediaStore; see the module docstring.

    Passes are serialised by a lock, so a test (or `lapor`) can call `run_once()` while the background
    loop runs and know that, when it returns, everything fetchable so far has been fetched.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        adapters: Mapping[str, ChannelAdapter],
        store: MediaStore,
        *,
        clock: Clock = _utcnow,
        poll_seconds: float = 30.0,
        batch: int = 100,
        concurrency: int = 4,
    ) -> None:
        self._engine = engine
        self._adapters = adapters
        self._store = store
        self._clock = clock
        self._poll = poll_seconds
        self._batch = batch
        self._slots = asyncio.Semaphore(concurrency)
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._mark = 0
        self._retry: set[int] = set()
        self._complaints_since: datetime | None = None
        self.stored = 0
        self.failed = 0

    def fetchable(self) -> bool:
        return any(callable(getattr(a, "fetch_media", None)) for a in self._adapters.values())

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="media-fetcher")

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while not self._stopping:
            try:
                busy = await self.run_once()
            except Exception:
                log.exception("media fetch pass failed; retrying later")
                busy = 0
            if busy and not self._stopping:
                continue
            self._wake.clear()
            if self._stopping:  # stop() may have set the event while this pass ran
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll)

    async def run_once(self) -> int:
        """Fetch what is pending now; returns how many messages were looked at (0 when idle)."""
        async with self._lock:
            started = self._clock()
            rows = await self._pending_messages()
            for row in rows:
                await self._process_message(row)
            await self._patch_complaints(started)
            return len(rows)

    async def _pending_messages(self) -> list[dict[str, Any]]:
        table = MESSAGES
        query = select(table.c.id, table.c.channel, table.c.reporter_id, table.c.complaint_id, table.c.media)
        async with self._engine.connect() as conn:
            fresh = (
                (
                    await conn.execute(
                        query.where(table.c.id > self._mark).order_by(table.c.id).limit(self._batch)
                    )
                )
                .mappings()
                .all()
            )
            retry: list[Any] = []
            if self._retry:
                result = await conn.execute(query.where(table.c.id.in_(sorted(self._retry))))
                retry = list(result.mappings())
        if fresh:
            self._mark = max(self._mark, max(row["id"] for row in fresh))
        rows = {row["id"]: dict(row) for row in (*retry, *fresh)}
        self._retry.clear()
        return [
            row
            for row in rows.values()
            if any(needs_fetch(e) for e in row["media"] or ()) and self._fetcher(row["channel"]) is not None
        ]

    def _fetcher(self, channel: str) -> Callable[[MediaRef], Any] | None:
        adapter = self._adapters.get(channel)
        method = getattr(adapter, "fetch_media", None)
        return method if callable(method) else None

    async def _process_message(self, row: dict[str, Any]) -> None:
        fetch = self._fetcher(row["channel"])
        assert fetch is not None
        entries = list(row["media"])
        jobs = [self._fetch_one(fetch, entry) for entry in entries]
        results = await asyncio.gather(*jobs)
        if results == entries:
            return
        table = MESSAGES
        async with self._engine.begin() as conn:
            await conn.execute(update(table).where(table.c.id == row["id"]).values(media=results))
        if any(needs_fetch(e) for e in results):
            self._retry.add(row["id"])
        await self._apply_to_complaints(row["reporter_id"], results)

    async def _fetch_one(self, fetch: Callable[[MediaRef], Any], entry: Any) -> Any:
        if not needs_fetch(entry):
            return entry
        source = entry["url"]
        async with self._slots:
            try:
                data, content_type = await fetch(MediaRef(source, entry.get("content_type")))
                stored = await asyncio.to_thread(self._store.store, data, content_type)
            except MediaRejected as exc:
                return self._failure(entry, f"rejected: {exc}", final=True)
            except MediaFetchError as exc:
                return self._attempt_failed(entry, exc.reason, exc.retryable)
            except Exception as exc:  # an adapter bug must not stall every later pass
                log.exception("fetch_media raised for a %s reference", entry.get("content_type"))
                return self._attempt_failed(entry, f"internal: {type(exc).__name__}", True)
        self.stored += 1
        return stored.entry(source)

    def _attempt_failed(self, entry: dict[str, Any], reason: str, retryable: bool) -> dict[str, Any]:
        attempts = int(entry.get("fetch_attempts", 0)) + 1
        final = not retryable or attempts >= MAX_ATTEMPTS
        return self._failure({**entry, "fetch_attempts": attempts}, reason, final=final)

    def _failure(self, entry: dict[str, Any], reason: str, *, final: bool) -> dict[str, Any]:
        log.info("media %s: %s%s", entry.get("content_type"), reason[:200], " (giving up)" if final else "")
        if final:
            self.failed += 1
        result = {**entry, "fetch_error": reason[:300]}
        if final:
            result["fetch_failed"] = True
        return result

    async def _apply_to_complaints(self, reporter_id: int, entries: list[Any]) -> None:
        """The complaints of this reporter that list one of these refs get the stored entries."""
        resolved = {e["source"]: e for e in entries if isinstance(e, dict) and e.get("source")}
        failed = {e["url"]: e for e in entries if isinstance(e, dict) and e.get("fetch_failed")}
        if not resolved and not failed:
            return
        table = COMPLAINTS
        async with self._engine.begin() as conn:
            rows = await conn.execute(
                select(table.c.id, table.c.media, table.c.latitude).where(table.c.reporter_id == reporter_id)
            )
            for complaint_id, media, latitude in rows.all():
                await self._rewrite(conn, complaint_id, media, latitude, resolved, failed)

    async def _patch_complaints(self, started: datetime) -> None:
        """Complaints filed (or given evidence) after their photo was already fetched still name the
        provider ref: point them at the stored copy too."""
        since = self._complaints_since
        self._complaints_since = started - timedelta(minutes=1)
        table = COMPLAINTS
        messages = MESSAGES
        async with self._engine.begin() as conn:
            query = select(table.c.id, table.c.reporter_id, table.c.media, table.c.latitude)
            if since is not None:
                query = query.where(table.c.updated_at >= since)
            complaints = [
                row
                for row in (await conn.execute(query)).all()
                if any(needs_fetch(e) for e in row.media or ())
            ]
            for complaint_id, reporter_id, media, latitude in complaints:
                stored = await conn.execute(
                    select(messages.c.media).where(messages.c.reporter_id == reporter_id)
                )
                resolved: dict[str, Any] = {}
                failed: dict[str, Any] = {}
                for (entries,) in stored.all():
                    for entry in entries or ():
                        if isinstance(entry, dict) and entry.get("source"):
                            resolved[entry["source"]] = entry
                        elif isinstance(entry, dict) and entry.get("fetch_failed"):
                            failed[entry["url"]] = entry
                await self._rewrite(conn, complaint_id, media, latitude, resolved, failed)

    @staticmethod
    async def _rewrite(
        conn: Any,
        complaint_id: int,
        media: list[Any] | None,
        latitude: float | None,
        resolved: Mapping[str, Any],
        failed: Mapping[str, Any],
    ) -> None:
        current = list(media or ())
        changed = [
            resolved.get(str(e.get("url")), failed.get(str(e.get("url")), e)) if isinstance(e, dict) else e
            for e in current
        ]
        if changed == current:
            return
        values: dict[str, Any] = {"media": changed}
        if latitude is None:
            gps = next((e["gps"] for e in changed if isinstance(e, dict) and e.get("gps")), None)
            if gps is not None:
                values["latitude"], values["longitude"] = gps["latitude"], gps["longitude"]
        table = COMPLAINTS
        await conn.execute(update(table).where(table.c.id == complaint_id).values(**values))
