"""The exact bytes of Open311 list answers (JSON and XML), pinned: the list's fast path (timestamps as
text from the database, tuples instead of ORM rows, newest note in the same query) must answer
exactly what the plain code did. Complaints are filed at Asia/Jakarta times, some across midnight
in Jakarta but not in UTC, with personal data in their texts, one of them confidential."""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dashboard.intake import NewComplaint, record_complaint
from dashboard.open311 import CLOSED, EXTENDED_STATUS, requests_json
from gateway.app import DATABASE, WORKFLOW
from tests.harness import ManualClock, RunningGateway
from workflow.access import Actor
from workflow.privacy import redact

JAKARTA = ZoneInfo("Asia/Jakarta")
ADMIN = Actor("siti", "admin")
OFFICER = Actor("budi", "officer", "disperkim")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 27, 2, 0, tzinfo=UTC))


async def _file(gw: RunningGateway, at: datetime, **fields: Any) -> str:
    new = NewComplaint(medium=fields.pop("medium", "walk_in"), channel=None, **fields)
    code: str = await gw.app[DATABASE].run(
        functools.partial(
            record_complaint,
            new=new,
            actor=Actor("system", "system"),
            settings=gw.app[WORKFLOW].settings,
            now=at,
        )
    )
    return code


async def _seed(gw: RunningGateway) -> dict[str, str]:
    workflow = gw.app[WORKFLOW]
    lamp = await _file(
        gw,
        datetime(2026, 11, 20, 7, 30, 15, 999999, tzinfo=JAKARTA),  # 00:30:15.999999 UTC: seconds cut
        description="Lampu PJU mati, hubungi 0812-3456-7890 atau budi@contoh.id",
        location_text="Jl. Pemuda depan Paragon — no 12",
        category="lampu_pju",
        latitude=-6.983125,
        longitude=110.409149,
    )
    await workflow.transition(lamp, "verify", ADMIN, now=datetime(2026, 11, 21, 6, 59, 59, tzinfo=JAKARTA))
    await workflow.transition(
        lamp,
        "forward",
        ADMIN,
        public_note="Diteruskan ke Disperkim; petugas: 081298765432",
        now=datetime(2026, 11, 23, 1, 15, tzinfo=JAKARTA),  # 2026-11-22 in UTC
    )
    await workflow.transition(lamp, "accept", OFFICER, now=datetime(2026, 11, 23, 9, 0, tzinfo=JAKARTA))
    await workflow.transition(
        lamp,
        "resolve",
        OFFICER,
        evidence=["/media/ab/foto.jpg"],
        public_note="Lampu sudah diganti",
        now=datetime(2026, 11, 24, 23, 45, 30, 500000, tzinfo=JAKARTA),
    )
    secret = await _file(
        gw,
        datetime(2026, 11, 25, 0, 5, tzinfo=JAKARTA),  # the evening before, in UTC
        description="Pungli di kantor kelurahan oleh pak Harjo 0811222333",
        location_text="Kelurahan Sendangmulyo",
        category="lainnya",
        latitude=-7.05,
        longitude=110.45,
    )
    await workflow.transition(
        secret, "verify", ADMIN, confidential=True, now=datetime(2026, 11, 25, 8, 0, tzinfo=JAKARTA)
    )
    await workflow.transition(
        secret,
        "reject",
        ADMIN,
        public_note="Ditangani Inspektorat",
        now=datetime(2026, 11, 26, 8, tzinfo=UTC)
    )
    plain = await _file(
        gw,
        datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC),
        description="  Banjir setinggi 40 cm di gang 3 ",
        location_text=None,
        category=None,
        medium="letter",
    )
    road = await _file(
        gw,
        datetime(2026, 11, 26, 23, 59, 59, tzinfo=JAKARTA),
        description="Jalan berlubang 30 cm, sudah 3 motor jatuh",
        location_text="Jl. Majapahit, rumah pak RT (rt05@warga.id)",
        category="jalan_rusak",
        latitude=-6.99995,
        longitude=110.45,
        medium="phone",
    )
    await workflow.transition(road, "verify", ADMIN, now=datetime(2026, 11, 27, 8, 0, tzinfo=JAKARTA))
    await workflow.transition(
        road,
        "forward",
        ADMIN,
        public_note="Diteruskan ke DPU, hubungi 024-3513366",
        now=datetime(2026, 11, 27, 8, 30, tzinfo=JAKARTA),
    )
    return {"lamp": lamp, "secret": secret, "plain": plain, "road": road}


def _expected(codes: dict[str, str], extensions: bool) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [
        {
            "service_request_id": codes["road"],
            "status": "open",
            "status_notes": "Diteruskan ke DPU, hubungi […]",
            "service_name": "Jalan rusak",
            "service_code": "jalan_rusak",
            "description": "Jalan berlubang 30 cm, sudah 3 motor jatuh",
            "agency_responsible": "dpu",
            "service_notice": "",
            "requested_datetime": "2026-11-26T16:59:59Z",
            "updated_datetime": "2026-11-27T01:30:00Z",
            "expected_datetime": "2026-12-04T16:59:59Z",
            "address": "Jl. Majapahit, rumah pak RT ([…])",
            "address_id": "",
            "zipcode": "",
            "lat": -7.0,
            "long": 110.45,
            "media_url": "",
        },
        {
            "service_request_id": codes["plain"],
            "status": "open",
            "status_notes": None,
            "service_name": "",
            "service_code": "",
            "description": "Banjir setinggi 40 cm di gang 3",
            "agency_responsible": "",
            "service_notice": "",
            "requested_datetime": "2026-11-26T12:00:00Z",
            "updated_datetime": "2026-11-26T12:00:00Z",
            "expected_datetime": None,
            "address": None,
            "address_id": "",
            "zipcode": "",
            "lat": None,
            "long": None,
            "media_url": "",
        },
        {
            "service_request_id": codes["secret"],
            "status": "closed",
            "status_notes": None,
            "service_name": "Lainnya",
            "service_code": "lainnya",
            "description": None,
            "agency_responsible": "",
            "service_notice": "",
            "requested_datetime": "2026-11-24T17:05:00Z",
            "updated_datetime": "2026-11-26T08:00:00Z",
            "expected_datetime": None,
            "address": None,
            "address_id": "",
            "zipcode": "",
            "lat": None,
            "long": None,
            "media_url": "",
        },
        {
            "service_request_id": codes["lamp"],
            "status": "closed",
            "status_notes": "Lampu sudah diganti",
            "service_name": "Lampu PJU",
            "service_code": "lampu_pju",
            "description": "Lampu PJU mati, hubungi […] atau […]",
            "agency_responsible": "disperkim",
            "service_notice": "",
            "requested_datetime": "2026-11-20T00:30:15Z",
            "updated_datetime": "2026-11-24T16:45:30Z",
            "expected_datetime": "2026-11-30T16:59:59Z",
            "address": "Jl. Pemuda depan Paragon — no 12",
            "address_id": "",
            "zipcode": "",
            "lat": -6.9831,
            "long": 110.4091,
            "media_url": "",
        },
    ]
    if extensions:
        for row, status, channel in zip(
            rows,
            ("action scheduled", "open", "not councils responsibility", "fixed"),
            ("phone", "letter", "walk_in", "walk_in"),
            strict=True,
        ):
            row["extended_attributes"] = {"status": status, "channel": channel}
    return rows


async def _body(gw: RunningGateway, path: str, **params: str) -> str:
    async with gw.session.get(gw.url + "/open311/v2" + path, params=params) as response:
        assert response.status == 200
        return await response.text()


async def test_list_answers_are_pinned_byte_for_byte(gateway: RunningGateway) -> None:
    codes = await _seed(gateway)
    for extensions in (False, True):
        params = {"extensions": "true"} if extensions else {}
        body = await _body(gateway, "/requests.json", **params)
        assert body == json.dumps(_expected(codes, extensions), ensure_ascii=False)
        assert "0812" not in body and "3513366" not in body and "@" not in body and "Harjo" not in body

    # A window given in Jakarta time: from the lamp's filing second (00:30:15.999999 UTC is inside
    # 07:30:15+07:00) to just before the confidential one.
    body = await _body(
        gateway,
        "/requests.json",
        start_date="2026-11-20T07:30:15+07:00",
        end_date="2026-11-25T00:04:59+07:00",
    )
    assert body == json.dumps(_expected(codes, False)[3:], ensure_ascii=False)
    body = await _body(gateway, "/requests.json", status="closed", service_code="lampu_pju,lainnya")
    assert body == json.dumps(_expected(codes, False)[2:], ensure_ascii=False)
    body = await _body(gateway, f"/requests/{codes['lamp'].lower()}.json", extensions="true")
    assert body == json.dumps(_expected(codes, True)[3:], ensure_ascii=False)


async def test_the_xml_list_is_pinned_too(gateway: RunningGateway) -> None:
    codes = await _seed(gateway)
    body = await _body(gateway, "/requests.xml", extensions="true")
    lamp, secret, plain, road = codes["lamp"], codes["secret"], codes["plain"], codes["road"]
    assert body == (
        '<?xml version="1.0" encoding="utf-8"?>\n<service_requests>'
        f"<request><service_request_id>{road}</service_request_id><status>open</status>"
        "<status_notes>Diteruskan ke DPU, hubungi […]</status_notes><service_name>Jalan rusak</service_name>"
        "<service_code>jalan_rusak</service_code><description>Jalan berlubang 30 cm, sudah 3 motor jatuh"
        "</description><agency_responsible>dpu</agency_responsible><service_notice />"
        "<requested_datetime>2026-11-26T16:59:59Z</requested_datetime>"
        "<updated_datetime>2026-11-27T01:30:00Z</updated_datetime>"
        "<expected_datetime>2026-12-04T16:59:59Z</expected_datetime>"
        "<address>Jl. Majapahit, rumah pak RT ([…])</address><address_id /><zipcode />"
        "<lat>-7.0</lat><long>110.45</long><media_url />"
        "<extended_attributes><status>action scheduled</status><channel>phone</channel></extended_attributes>"
        "</request>"
        f"<request><service_request_id>{plain}</service_request_id><status>open</status><status_notes />"
        "<service_name /><service_code />"
        "<description>Banjir setinggi 40 cm di gang 3</description><agency_responsible />"
        "<service_notice /><requested_datetime>2026-11-26T12:00:00Z</requested_datetime>"
        "<updated_datetime>2026-11-26T12:00:00Z</updated_datetime><expected_datetime /><address />"
        "<address_id /><zipcode /><lat /><long /><media_url />"
        "<extended_attributes><status>open</status><channel>letter</channel></extended_attributes></request>"
        f"<request><service_request_id>{secret}</service_request_id><status>closed</status><status_notes />"
        "<service_name>Lainnya</service_name><service_code>lainnya</service_code><description />"
        "<agency_responsible /><service_notice />"
        "<requested_datetime>2026-11-24T17:05:00Z</requested_datetime>"
        "<updated_datetime>2026-11-26T08:00:00Z</updated_datetime><expected_datetime /><address />"
        "<address_id /><zipcode /><lat /><long /><media_url />"
        "<extended_attributes><status>not councils responsibility</status><channel>walk_in</channel>"
        "</extended_attributes></request>"
        f"<request><service_request_id>{lamp}</service_request_id><status>closed</status>"
        "<status_notes>Lampu sudah diganti</status_notes><service_name>Lampu PJU</service_name>"
        "<service_code>lampu_pju</service_code>"
        "<description>Lampu PJU mati, hubungi […] atau […]</description>"
        "<agency_responsible>disperkim</agency_responsible><service_notice />"
        "<requested_datetime>2026-11-20T00:30:15Z</requested_datetime>"
        "<updated_datetime>2026-11-24T16:45:30Z</updated_datetime>"
        "<expected_datetime>2026-11-30T16:59:59Z</expected_datetime>"
        "<address>Jl. Pemuda depan Paragon — no 12</address><address_id /><zipcode />"
        "<lat>-6.9831</lat><long>110.4091</long><media_url />"
        "<extended_attributes><status>fixed</status><channel>walk_in</channel></extended_attributes></request>"
        "</service_requests>"
    )


def _plain(rows: list[tuple[Any, ...]], names: dict[str, str], extensions: bool) -> str:
    """The representation as the list used to build it: one dict per request, then json.dumps."""
    answer = []
    for (
        code, status, confidential, category, description, department, requested, updated, expected,
        resolved, place, latitude, longitude, medium, note,
    ) in rows:  # fmt: skip
        hidden = bool(confidential)
        out: dict[str, Any] = {
            "service_request_id": code,
            "status": "closed" if status in CLOSED else "open",
            "status_notes": None if hidden or not note else redact(note),
            "service_name": names.get(category or "", category or ""),
            "service_code": category or "",
            "description": None if hidden else redact(description),
            "agency_responsible": department or "",
            "service_notice": "",
            "requested_datetime": requested,
            "updated_datetime": updated,
            "expected_datetime": expected,
            "address": None if hidden or not place else redact(place),
            "address_id": "",
            "zipcode": "",
            "lat": None if hidden or latitude is None else round(latitude, 4),
            "long": None if hidden or longitude is None else round(longitude, 4),
            "media_url": "",
        }
        if extensions:
            closed = "fixed" if resolved else "closed"
            extended = closed if status == "closed" else EXTENDED_STATUS.get(status, "open")
            out["extended_attributes"] = {"status": extended, "channel": medium}
        answer.append(out)
    return json.dumps(answer, ensure_ascii=False)


TEXT = st.text(st.characters(codec="utf-8"), max_size=12) | st.sampled_from(
    ["", "hubungi 081234567890", 'a@b.id \\ "x"', "\u2028\x00\x1f"]
)
OPTIONAL = st.none() | TEXT
STAMP = st.none() | st.sampled_from(["2026-11-20T00:30:15Z", "999-01-02T03:04:05Z"])
COORDINATE = st.none() | st.floats() | st.integers(-200, 200)
ROW = st.tuples(
    TEXT, st.sampled_from([*EXTENDED_STATUS, "closed", "draft"]) | TEXT, st.booleans(), OPTIONAL, TEXT,
    OPTIONAL, STAMP, STAMP, STAMP, st.booleans(), OPTIONAL, COORDINATE, COORDINATE, OPTIONAL, OPTIONAL,
)  # fmt: skip


@given(st.lists(ROW, max_size=4), st.dictionaries(TEXT, TEXT, max_size=3), st.booleans())
def test_the_written_out_json_is_what_json_dumps_writes(
    rows: list[tuple[Any, ...]], names: dict[str, str], extensions: bool
) -> None:
    assert requests_json(rows, names, extensions) == _plain(rows, names, extensions)
