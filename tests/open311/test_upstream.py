"""Forwarding complaints to an upstream Open311 server: gateway A forwards to a second gateway B (its
real Open311 API, dashboard/open311.py), through a loopback HTTP proxy that can fail the way networks
do (5xx without reaching B, an answer lost after B acted, a connection cut mid-post)."""

from __future__ import annotations

import asyncio
import functools
import json
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from dashboard.intake import NewComplaint, record_complaint
from gateway.app import ADAPTERS, DATABASE, DISPATCHER, UPSTREAM, WORKFLOW
from gateway.config import Config
from gateway.upstream import Seen, UpstreamForwarder, plan
from store import models
from tests.harness import ManualClock, RunningGateway, bound_socket, make_config, start_gateway
from workflow.access import Actor

KEY = "kunci-provinsi-untuk-kota"
ADMIN = Actor("siti", "admin")
B_ADMIN = Actor("prov-admin", "admin")
PHONE = "081298765432"
TYPED_PHONE = "0813 1111 2222"


# ---- a second database for gateway B ---------------------------------------------------------


@pytest.fixture
async def upstream_database_url(database_url: str, tmp_path: Path) -> AsyncIterator[str]:
    if database_url.startswith("sqlite"):
        yield f"sqlite+aiosqlite:///{tmp_path}/upstream.db"
        return
    base = make_url(database_url)
    name = f"{base.database}_up"
    admin = create_async_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


# ---- the network between A and B -------------------------------------------------------------


@dataclass
class Proxy:
    """Forwards /open311/... to B. `down`: answer 503 without forwarding; `lose_posts`: forward a POST,
    then answer 502 (B acted, A never hears); `hang_posts`: forward a POST, then never answer;
    `tokens`: answer a POST with a token only, as asynchronous Open311 servers do. `forms` keeps
    what A posted."""

    target: str = ""
    url: str = ""
    down: bool = False
    lose_posts: int = 0
    hang_posts: int = 0
    tokens: bool = False
    forms: list[dict[str, str]] = field(default_factory=list)
    posts_reaching_b: int = 0
    refused: int = 0
    posted: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.down:
            self.refused += 1
            return web.json_response([{"code": 503, "description": "maintenance"}], status=503)
        body = await request.read()
        async with (
            aiohttp.ClientSession() as http,
            http.request(
                request.method,
                self.target + request.path_qs,
                data=body,
                headers={"Content-Type": request.headers.get("Content-Type", "")},
            ) as answer,
        ):
            payload = await answer.read()
            status = answer.status
        if request.method == "POST":
            self.forms.append(dict(urllib.parse.parse_qsl(body.decode())))
            self.posts_reaching_b += 1
            self.posted.set()
            if self.hang_posts:
                self.hang_posts -= 1
                await asyncio.Event().wait()  # until the client gives up or is killed
            if self.lose_posts:
                self.lose_posts -= 1
                return web.Response(status=502, text="bad gateway")
            if self.tokens and status == 200:
                created = json.loads(payload)[0]
                return web.json_response([{"token": created["service_request_id"]}])
        return web.Response(body=payload, status=status, content_type="application/json")


@dataclass
class Pair:
    a: RunningGateway
    b: RunningGateway
    proxy: Proxy
    clock: ManualClock
    config_a: Config
    sock_b_url: str

    @property
    def forwarder(self) -> UpstreamForwarder:
        return self.a.app[UPSTREAM]


async def _start_a(config: Config, clock: ManualClock, *, background: bool = False) -> RunningGateway:
    sock = bound_socket()
    return await start_gateway(config, sock, clock=clock, background=background)


@pytest.fixture
async def pair(database_url: str, upstream_database_url: str, tmp_path: Path) -> AsyncIterator[Pair]:
    clock = ManualClock()
    sock_b = bound_socket()
    config_b = make_config(
        upstream_database_url,
        sock_b.getsockname()[1],
        MEDIA__DIRECTORY=str(tmp_path / "media-b"),
        OPEN311__API_KEYS=f"lapor-kota={KEY}",
        PRIVACY__KEY="upstream-b-key",
    )
    b = await start_gateway(config_b, sock_b, clock=clock, background=False)
    proxy = Proxy(target=b.url)
    proxy_app = web.Application()
    proxy_app.router.add_route("*", "/{tail:.*}", proxy.handle)
    proxy_runner = web.AppRunner(proxy_app, access_log=None, shutdown_timeout=0.1)
    await proxy_runner.setup()
    proxy_sock = bound_socket()
    await web.SockSite(proxy_runner, proxy_sock).start()
    proxy.url = f"http://127.0.0.1:{proxy_sock.getsockname()[1]}"
    sock_a = bound_socket()
    config_a = make_config(
        database_url,
        sock_a.getsockname()[1],
        MEDIA__DIRECTORY=str(tmp_path / "media-a"),
        PRIVACY__KEY="gateway-a-key",
        OPEN311_UPSTREAM__ENDPOINT=proxy.url + "/open311/v2",
        OPEN311_UPSTREAM__API_KEY=KEY,
        OPEN311_UPSTREAM__JURISDICTION_ID="jatengprov.go.id",
        OPEN311_UPSTREAM__CATEGORIES="lampu_pju,rob",
        OPEN311_UPSTREAM__SERVICE_CODES="rob=banjir",
        OPEN311_UPSTREAM__POLL_SECONDS="60",
        OPEN311_UPSTREAM__TIMEOUT_SECONDS="5",
        OPEN311_UPSTREAM__NAME="LAPOR Jateng",
    )
    a = await start_gateway(config_a, sock_a, clock=clock, background=False)
    running = Pair(a, b, proxy, clock, config_a, b.url)
    try:
        yield running
    finally:
        await running.a.stop()
        await proxy_runner.cleanup()
        await b.stop()


# ---- helpers ----------------------------------------------------------------------------------


async def file_and_forward(gw: RunningGateway, clock: ManualClock, category: str, description: str) -> str:
    """A citizen's complaint on A (updates go to the simulator channel), verified and forwarded."""
    workflow = gw.app[WORKFLOW]
    new = NewComplaint(
        medium="walk_in",
        description=description,
        channel="simulator",
        phone=PHONE,
        name="Budi Santoso",
        category=category,
        location_text="Jl. Pemuda depan Paragon",
        latitude=-6.983121,
        longitude=110.409154,
    )
    code: str = await gw.app[DATABASE].run(
        functools.partial(record_complaint, new=new, actor=ADMIN, settings=workflow.settings, now=clock())
    )
    await workflow.transition(code, "verify", ADMIN)
    await workflow.transition(code, "forward", ADMIN)
    return code


async def upstream_row(gw: RunningGateway, code: str) -> dict[str, Any] | None:
    table, complaints = models.upstream_requests, models.complaints

    def read(conn: Any) -> dict[str, Any] | None:
        row = (
            conn.execute(
                select(table)
                .join(complaints, complaints.c.id == table.c.complaint_id)
                .where(complaints.c.tracking_code == code)
            )
            .mappings()
            .first()
        )
        return dict(row) if row is not None else None

    result: dict[str, Any] | None = await gw.app[DATABASE].run(read)
    return result


async def on_b(pair: Pair, code: str) -> list[dict[str, Any]]:
    """Requests on B that carry A's tracking code, read from B's Open311 API directly."""
    params = {"start_date": "2000-01-01T00:00:00Z", "extensions": "true"}
    async with pair.b.session.get(pair.b.url + "/open311/v2/requests.json", params=params) as response:
        assert response.status == 200
        rows: list[dict[str, Any]] = await response.json()
    return [r for r in rows if f"[{code}]" in (r["description"] or "")]


async def delivered_to_citizen(gw: RunningGateway) -> list[str]:
    await gw.app[DISPATCHER].drain()
    simulator = gw.app[ADAPTERS]["simulator"]
    return [m.text for m in simulator.delivered]  # type: ignore[attr-defined]


# ---- tests ------------------------------------------------------------------------------------


async def test_forward_track_and_pull_the_resolution_back(pair: Pair) -> None:
    code = await file_and_forward(
        pair.a, pair.clock, "lampu_pju", f"Lampu PJU mati tiga hari. Saya Budi Santoso, hubungi {TYPED_PHONE}"
    )
    flood = await file_and_forward(pair.a, pair.clock, "rob", "Rob masuk rumah warga setinggi lutut")
    rubbish = await file_and_forward(pair.a, pair.clock, "sampah", "Sampah menumpuk di pasar")
    report = await pair.forwarder.run_once()
    assert (report.enqueued, report.linked, report.retried) == (2, 2, 0)

    # On B: the request exists, under B's service code, with our reference and no personal data.
    [request] = await on_b(pair, code)
    row = await upstream_row(pair.a, code)
    assert row is not None and row["state"] == "linked"
    assert row["service_request_id"] == request["service_request_id"] != code
    assert request["service_code"] == "lampu_pju" and request["lat"] == -6.9831
    assert request["description"].startswith(f"[{code}] Lampu PJU mati")
    for personal in ("Budi", "Santoso", "1111", PHONE[-6:]):
        assert personal not in request["description"]
    assert request["extended_attributes"]["channel"] == "open311"
    [flood_request] = await on_b(pair, flood)
    assert flood_request["service_code"] == "banjir"  # service_codes mapping
    assert await upstream_row(pair.a, rubbish) is None and await on_b(pair, rubbish) == []

    # Nothing more happens on a second run: one forward per complaint, ever.
    again = await pair.forwarder.run_once()
    assert (again.enqueued, again.linked, pair.proxy.posts_reaching_b) == (0, 0, 2)

    # B's officers work on it; A pulls the status at its next poll and tells its citizen.
    upstream_id = request["service_request_id"]
    workflow_b = pair.b.app[WORKFLOW]
    before = len(await delivered_to_citizen(pair.a))
    await workflow_b.transition(upstream_id, "verify", B_ADMIN)
    await workflow_b.transition(upstream_id, "forward", B_ADMIN)
    await workflow_b.transition(upstream_id, "accept", Actor("prov-opd", "officer", "disperkim"))
    pair.clock.advance(seconds=61)
    pulled = await pair.forwarder.run_once()
    assert pulled.changes == 2  # the first look at both forwarded requests
    status = await pair.a.app[DATABASE].run(
        lambda conn: conn.execute(
            select(models.complaints.c.status).where(models.complaints.c.tracking_code == code)
        ).scalar_one()
    )
    assert status == "in_progress"
    await workflow_b.transition(
        upstream_id,
        "resolve",
        Actor("prov-opd", "officer", "disperkim"),
        evidence=["/media/ab/foto.jpg"],
        public_note="Lampu sudah diganti baru.",
    )
    pair.clock.advance(seconds=61)
    assert (await pair.forwarder.run_once()).changes == 1
    row = await upstream_row(pair.a, code)
    assert row is not None and (row["state"], row["upstream_status"], row["upstream_detail"]) == (
        "closed",
        "closed",
        "fixed",
    )
    status, events = await pair.a.app[DATABASE].run(
        lambda conn: (
            conn.execute(
                select(models.complaints.c.status).where(models.complaints.c.tracking_code == code)
            ).scalar_one(),
            [
                dict(e)
                for e in conn.execute(
                    select(models.status_events)
                    .join(models.complaints, models.complaints.c.id == models.status_events.c.complaint_id)
                    .where(models.complaints.c.tracking_code == code)
                    .order_by(models.status_events.c.id)
                ).mappings()
            ],
        )
    )
    assert status == "resolved"
    resolve = next(e for e in events if e["action"] == "resolve" and e["public"])
    assert resolve["note"] == "Lampu sudah diganti baru."
    assert resolve["evidence"][0]["url"].endswith(f"/open311/v2/requests/{upstream_id}.json")
    assert any(f"nomor {upstream_id}" in (e["note"] or "") and not e["public"] for e in events)
    texts = (await delivered_to_citizen(pair.a))[before:]
    assert any(code in t and "Lampu sudah diganti baru." in t for t in texts), texts
    # Closed upstream: no more polling.
    pair.clock.advance(seconds=61)
    assert (await pair.forwarder.run_once()).changes == 0


async def test_upstream_down_then_back_delivers_once(pair: Pair) -> None:
    code = await file_and_forward(pair.a, pair.clock, "lampu_pju", "Lampu PJU mati di depan sekolah")
    pair.proxy.down = True
    first = await pair.forwarder.run_once()
    assert (first.linked, first.retried) == (0, 1)
    row = await upstream_row(pair.a, code)
    assert row is not None and row["state"] == "pending" and "503" in row["last_error"]
    assert row["send_started_at"] is not None  # a 5xx is ambiguous: the next try looks first
    for _ in range(3):  # still down: retried with backoff, never posted
        pair.clock.advance(seconds=1000)
        assert (await pair.forwarder.run_once()).retried == 1
    assert await on_b(pair, code) == [] and pair.proxy.posts_reaching_b == 0
    pair.proxy.down = False
    assert (await pair.forwarder.run_once()).linked == 0  # not due yet: backoff is respected
    pair.clock.advance(seconds=1000)
    back = await pair.forwarder.run_once()
    assert (back.linked, back.reconciled) == (1, 0)
    assert len(await on_b(pair, code)) == 1 and pair.proxy.posts_reaching_b == 1
    row = await upstream_row(pair.a, code)
    assert row is not None and row["state"] == "linked" and row["attempts"] == 5
    assert row["send_started_at"] is None and row["last_error"] is None


async def test_lost_answer_is_found_upstream_not_posted_again(pair: Pair) -> None:
    code = await file_and_forward(pair.a, pair.clock, "lampu_pju", "Lampu PJU berkedip terus")
    pair.proxy.lose_posts = 1
    first = await pair.forwarder.run_once()
    assert (first.linked, first.retried, pair.proxy.posts_reaching_b) == (0, 1, 1)
    [request] = await on_b(pair, code)  # B did create it; A does not know the id
    pair.clock.advance(seconds=60)
    second = await pair.forwarder.run_once()
    assert (second.linked, second.reconciled) == (1, 1)
    assert pair.proxy.posts_reaching_b == 1 and len(await on_b(pair, code)) == 1
    row = await upstream_row(pair.a, code)
    assert row is not None and row["service_request_id"] == request["service_request_id"]


async def test_crash_mid_post_then_restart_makes_no_duplicate(pair: Pair) -> None:
    code = await file_and_forward(pair.a, pair.clock, "lampu_pju", "Tiang lampu PJU miring mau roboh")
    pair.proxy.hang_posts = 1
    running = asyncio.create_task(pair.forwarder.run_once())
    async with asyncio.timeout(10):
        await pair.proxy.posted.wait()  # B has the request; A's answer never comes
    running.cancel()  # the process dies here (what kill -9 leaves: the row claimed, the post in doubt)
    with pytest.raises(asyncio.CancelledError):
        await running
    row = await upstream_row(pair.a, code)
    assert row is not None and row["state"] == "sending" and row["send_started_at"] is not None
    await pair.a.stop()

    # A restarts on the same database; once the dead worker's lease is over, the row is retried.
    pair.a = await _start_a(pair.config_a, pair.clock)
    assert (await pair.forwarder.run_once()).linked == 0  # the lease still holds
    pair.clock.advance(seconds=120)
    report = await pair.forwarder.run_once()
    assert (report.linked, report.reconciled) == (1, 1)
    assert pair.proxy.posts_reaching_b == 1 and len(await on_b(pair, code)) == 1


async def test_what_goes_up_token_answers_and_refusals(pair: Pair) -> None:
    pair.proxy.tokens = True
    code = await file_and_forward(pair.a, pair.clock, "lampu_pju", "Lampu PJU mati, Budi Santoso")
    report = await pair.forwarder.run_once()
    assert report.linked == 1  # the token was resolved with GET tokens/{token} in the same run
    [request] = await on_b(pair, code)
    row = await upstream_row(pair.a, code)
    assert row is not None and row["token"] == row["service_request_id"] == request["service_request_id"]
    [form] = pair.proxy.forms
    assert form == {
        "service_code": "lampu_pju",
        "description": f"[{code}] Lampu PJU mati, […]",
        "lat": "-6.983121",
        "long": "110.409154",
        "address_string": "Jl. Pemuda depan Paragon",
        "jurisdiction_id": "jatengprov.go.id",
        "api_key": KEY,
    }  # no name, no phone, no e-mail: nothing personal

    # A complaint the upstream refuses (no place at all): failed for good, the staff told why.
    pair.proxy.tokens = False
    workflow = pair.a.app[WORKFLOW]
    new = NewComplaint(medium="letter", description="Lampu mati", channel=None, category="lampu_pju")
    refused = await pair.a.app[DATABASE].run(
        functools.partial(
            record_complaint, new=new, actor=ADMIN, settings=workflow.settings, now=pair.clock()
        )
    )
    await workflow.transition(refused, "verify", ADMIN)
    await workflow.transition(refused, "forward", ADMIN)
    assert (await pair.forwarder.run_once()).failed == 1
    row = await upstream_row(pair.a, refused)
    assert row is not None and row["state"] == "failed" and "400" in row["last_error"]
    pair.clock.advance(seconds=3600)
    assert (await pair.forwarder.run_once()).failed == 0 and len(pair.proxy.forms) == 2
    notes = await pair.a.app[DATABASE].run(
        lambda conn: [
            (e.note, e.public)
            for e in conn.execute(
                select(models.status_events.c.note, models.status_events.c.public)
                .join(models.complaints, models.complaints.c.id == models.status_events.c.complaint_id)
                .where(
                    models.complaints.c.tracking_code == refused, models.status_events.c.action == "update"
                )
            )
        ]
    )
    assert [public for _, public in notes] == [False]
    assert "LAPOR Jateng menolak" in notes[0][0] and "location" in notes[0][0]


async def test_serve_forwards_in_the_background(pair: Pair) -> None:
    """As `lapor serve` runs it: the forwarder is started with the app and finds new forwards itself."""
    await pair.a.stop()
    pair.a = await _start_a(pair.config_a, pair.clock, background=True)
    code = await file_and_forward(pair.a, pair.clock, "rob", "Rob di Tambak Lorok sejak pagi")
    forwarder = pair.forwarder
    async with asyncio.timeout(10), forwarder.ran:
        await forwarder.ran.wait_for(lambda: forwarder.totals.linked >= 1)
    row = await upstream_row(pair.a, code)
    assert row is not None and row["state"] == "linked"
    assert [r["service_code"] for r in await on_b(pair, code)] == ["banjir"]


async def test_confidential_complaints_never_go_up(pair: Pair) -> None:
    workflow = pair.a.app[WORKFLOW]
    hidden = await file_and_forward(pair.a, pair.clock, "lampu_pju", "Lampu mati di depan rumah saya")
    await workflow.transition(hidden, "update", ADMIN, note="korban KDRT", confidential=True)
    late = await file_and_forward(pair.a, pair.clock, "rob", "Rob masuk rumah")
    pair.proxy.down = True
    assert (await pair.forwarder.run_once()).enqueued == 1  # `hidden` is not even queued
    assert await upstream_row(pair.a, hidden) is None
    # Made confidential while its forward was waiting (and in doubt): looked up, then not sent.
    await workflow.transition(late, "update", ADMIN, note="alamat korban", confidential=True)
    pair.proxy.down = False
    pair.clock.advance(seconds=1000)
    report = await pair.forwarder.run_once()
    assert (report.linked, report.failed) == (0, 1)
    row = await upstream_row(pair.a, late)
    assert row is not None and row["state"] == "failed" and "confidential" in row["last_error"]
    assert pair.proxy.forms == [] and await on_b(pair, late) == []


NAME = "LAPOR Jateng"
PROOF = {"url": "https://up/requests/9.json"}


@pytest.mark.parametrize(
    ("ours", "before", "after", "expected"),
    [
        # first look at a fresh request: noted for the staff only
        (
            "forwarded",
            (None, None, None),
            ("open", "open", None),
            [("update", None, "Status di LAPOR Jateng: open")],
        ),
        # taken in hand upstream: in progress here, with their note for the citizen
        (
            "forwarded",
            ("open", "open", None),
            ("open", "in progress", "Dijadwalkan"),
            [("accept", "LAPOR Jateng: Dijadwalkan", None)],
        ),
        ("reopened", ("open", "open", None), ("open", "action scheduled", None), [("accept", None, None)]),
        # already in progress here: their new note reaches the citizen
        (
            "in_progress",
            ("open", "in progress", None),
            ("open", "in progress", "Material datang"),
            [("update", "LAPOR Jateng: Material datang", None)],
        ),
        # the same note again is not news
        (
            "in_progress",
            ("open", "in progress", "A"),
            ("open", "investigating", "A"),
            [("update", None, "Status di LAPOR Jateng: investigating")],
        ),
        # fixed: accepted if needed, then resolved with their request as the evidence
        (
            "forwarded",
            ("open", None, None),
            ("closed", "fixed", "Beres"),
            [("accept", None, None), ("resolve", "Beres", "Selesai menurut LAPOR Jateng (fixed).")],
        ),
        (
            "in_progress",
            ("open", None, None),
            ("closed", None, None),
            [("resolve", None, "Selesai menurut LAPOR Jateng (closed).")],
        ),
        # closed without a fix: the city decides, the citizen is not told "done"
        (
            "in_progress",
            ("open", None, None),
            ("closed", "not councils responsibility", "Bukan kewenangan"),
            [
                (
                    "update",
                    None,
                    "LAPOR Jateng menutup permintaan tanpa penyelesaian (not councils responsibility): "
                    "Bukan kewenangan. Tindak lanjut ada di kota.",
                )
            ],
        ),
        # nothing to do on complaints already finished here
        ("resolved", ("open", None, None), ("closed", "fixed", None), []),
        ("closed", ("open", None, None), ("open", "in progress", "x"), []),
    ],
)
def test_upstream_status_mapping(
    ours: str,
    before: tuple[str | None, str | None, str | None],
    after: tuple[str | None, str | None, str | None],
    expected: list[tuple[str, str | None, str | None]],
) -> None:
    steps = plan(ours, Seen(*before), Seen(*after), name=NAME, evidence=PROOF)
    assert [(s.action.value, s.public_note, s.note) for s in steps] == expected
    assert all(s.evidence == (PROOF,) for s in steps if s.action == "resolve")
