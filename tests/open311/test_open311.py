"""Open311 GeoReport v2 conformance: every endpoint in JSON and XML, spec-shaped errors, filters,
FixMyStreet extended statuses through a complaint's whole life, and schemathesis over the served
OpenAPI document against the running gateway."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import unicodedata
from typing import Any
from xml.etree import ElementTree as ET

import aiohttp
import pytest
from PIL import Image

from dashboard.open311 import OPENAPI, VISIBLE
from gateway.app import WORKFLOW
from tests.harness import RunningGateway
from tests.open311.conftest import KEY
from workflow.access import Actor


def _xml(body: str) -> ET.Element:
    return ET.fromstring(body)  # noqa: S314 - the gateway's own output, in a test


BASE = "/open311/v2"
ADMIN = Actor("siti", "admin")
OFFICER = Actor("budi", "officer", "disperkim")


async def _get(gw: RunningGateway, path: str, **params: str) -> tuple[int, str, str]:
    async with gw.session.get(gw.url + BASE + path, params=params) as response:
        return response.status, response.content_type, await response.text()


async def _post(gw: RunningGateway, fmt: str, **form: str) -> tuple[int, str]:
    async with gw.session.post(gw.url + BASE + f"/requests.{fmt}", data=form) as response:
        return response.status, await response.text()


LAMP = {
    "service_code": "lampu_pju",
    "lat": "-6.98312",
    "long": "110.40915",
    "address_string": "Jl. Pemuda depan Paragon",
    "description": "Lampu PJU mati sejak tiga hari, hubungi 081234567890",
}


async def test_discovery_and_services_in_both_formats(gateway: RunningGateway) -> None:
    status, ctype, body = await _get(gateway, "/discovery.json")
    assert (status, ctype) == (200, "application/json")
    endpoint = json.loads(body)["endpoints"][0]
    assert endpoint["url"] == gateway.url + BASE + "/" and "text/xml" in endpoint["formats"]
    status, ctype, body = await _get(gateway, "/discovery.xml")
    assert (status, ctype) == (200, "text/xml")
    assert _xml(body).find("endpoints/endpoint/url").text == gateway.url + BASE + "/"  # type: ignore[union-attr]

    status, _, body = await _get(gateway, "/services.json")
    services = {s["service_code"]: s for s in json.loads(body)}
    assert services["lampu_pju"]["service_name"] == "Lampu PJU"
    assert services["lampu_pju"]["metadata"] is False and services["lampu_pju"]["type"] == "realtime"
    status, _, body = await _get(gateway, "/services.xml")
    root = _xml(body)
    assert root.tag == "services"
    assert {s.findtext("service_code") for s in root.findall("service")} == set(services)
    assert root.find("service[service_code='lampu_pju']/metadata").text == "false"  # type: ignore[union-attr]

    status, _, body = await _get(gateway, "/services/lampu_pju.json")
    assert json.loads(body) == {"service_code": "lampu_pju", "attributes": []}
    status, _, body = await _get(gateway, "/services/lampu_pju.xml")
    assert _xml(body).tag == "service_definition"


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_errors_are_shaped_as_the_spec_gives_them(gateway: RunningGateway, fmt: str) -> None:
    def errors(body: str) -> list[tuple[int, str]]:
        if fmt == "json":
            return [(e["code"], e["description"]) for e in json.loads(body)]
        root = _xml(body)
        assert root.tag == "errors"
        return [(int(e.findtext("code") or 0), e.findtext("description") or "") for e in root]

    status, _, body = await _get(gateway, f"/services/tidak_ada.{fmt}")
    assert status == 404 and errors(body) == [(404, "service_code tidak_ada not found")]
    status, body = await _post(gateway, fmt, **LAMP)
    assert status == 403 and errors(body)[0][0] == 403
    status, body = await _post(gateway, fmt, **LAMP, api_key="salah")
    assert status == 403
    no_place = {k: v for k, v in LAMP.items() if k not in ("lat", "long", "address_string")}
    status, body = await _post(gateway, fmt, **no_place, api_key=KEY)
    assert status == 400 and "location" in errors(body)[0][1]
    status, body = await _post(gateway, fmt, **{**LAMP, "service_code": "tidak_ada"}, api_key=KEY)
    assert status == 400 and "unknown category" in errors(body)[0][1]
    status, _, body = await _get(gateway, f"/requests/LPR-222222.{fmt}")
    assert status == 404 and errors(body)[0][0] == 404
    status, _, body = await _get(gateway, f"/requests.{fmt}", start_date="kemarin")
    assert status == 400 and "start_date" in errors(body)[0][1]
    status, _, body = await _get(gateway, f"/tokens/LPR-222222.{fmt}")
    assert status == 404


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 200, 0)).save(buffer, format="JPEG")
    return buffer.getvalue()


async def test_a_request_through_its_life_with_extended_statuses(gateway: RunningGateway) -> None:
    status, body = await _post(gateway, "json", **LAMP, api_key=KEY)
    assert status == 200
    code = json.loads(body)[0]["service_request_id"]
    status, body = await _post(gateway, "xml", **{**LAMP, "service_code": "jalan_rusak"}, api_key=KEY)
    other = _xml(body).findtext("request/service_request_id")
    assert status == 200 and other and other != code

    status, _, body = await _get(gateway, f"/tokens/{code}.json")
    assert json.loads(body) == [{"service_request_id": code, "token": code}]

    status, _, body = await _get(gateway, f"/requests/{code}.json", extensions="true")
    [request] = json.loads(body)
    assert request["status"] == "open" and request["extended_attributes"]["status"] == "open"
    assert request["service_code"] == "lampu_pju" and request["lat"] == -6.9831
    assert "081234567890" not in body and "[…]" in request["description"]  # no personal data
    assert request["extended_attributes"]["channel"] == "open311"

    workflow = gateway.app[WORKFLOW]
    await workflow.transition(code, "verify", ADMIN)
    _, _, body = await _get(gateway, f"/requests/{code}.json", extensions="true")
    assert json.loads(body)[0]["extended_attributes"]["status"] == "investigating"
    await workflow.transition(code, "forward", ADMIN, public_note="Diteruskan ke Disperkim")
    _, _, body = await _get(gateway, f"/requests/{code}.xml", extensions="true")
    xml = _xml(body).find("request")
    assert xml is not None
    assert xml.findtext("extended_attributes/status") == "action scheduled"
    assert xml.findtext("agency_responsible") == "disperkim"
    assert xml.findtext("status_notes") == "Diteruskan ke Disperkim"
    assert xml.findtext("expected_datetime")
    await workflow.transition(code, "accept", OFFICER)
    await workflow.transition(
        code, "resolve", OFFICER, evidence=["/media/ab/foto.jpg"], public_note="Diganti"
    )
    _, _, body = await _get(gateway, f"/requests/{code}.json", extensions="true")
    [request] = json.loads(body)
    assert (request["status"], request["extended_attributes"]["status"]) == ("closed", "fixed")
    await workflow.transition(other, "reject", ADMIN, public_note="Bukan kewenangan kota")
    _, _, body = await _get(gateway, f"/requests/{other}.json", extensions="true")
    assert json.loads(body)[0]["extended_attributes"]["status"] == "not councils responsibility"

    # GET requests filters
    _, _, body = await _get(gateway, "/requests.json", status="closed")
    assert {r["service_request_id"] for r in json.loads(body)} == {code, other}
    _, _, body = await _get(gateway, "/requests.json", status="open")
    assert json.loads(body) == []
    _, _, body = await _get(gateway, "/requests.json", service_code="jalan_rusak")
    assert [r["service_request_id"] for r in json.loads(body)] == [other]
    _, _, body = await _get(gateway, "/requests.json", service_request_id=f"{code},{other}")
    notes = {r["service_request_id"]: r["status_notes"] for r in json.loads(body)}
    assert notes == {code: "Diganti", other: "Bukan kewenangan kota"}, "each request's newest public note"
    _, _, body = await _get(
        gateway, "/requests.json", start_date="2000-01-01T00:00:00Z", end_date="2000-02-01T00:00:00Z"
    )
    assert json.loads(body) == []
    _, _, body = await _get(gateway, "/requests.xml")
    root = _xml(body)
    assert root.tag == "service_requests" and len(root.findall("request")) == 2
    assert "extended_attributes" not in body  # only on request


EXAMPLES = int(os.environ.get("LAPOR_FUZZ_EXAMPLES", "15"))
"""Examples per operation; raise it (and vary `-p hypothesis --hypothesis-seed`) to look harder."""


async def test_schemathesis_against_the_served_openapi_document(gateway: RunningGateway) -> None:
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    async with gateway.session.get(gateway.url + BASE + "/openapi.json") as response:
        assert response.status == 200
        document: dict[str, Any] = await response.json()
    await _post(gateway, "json", **LAMP, api_key=KEY)  # something to read back
    schema = schemathesis.openapi.from_dict(document)
    base_url = gateway.url + BASE
    checked: list[str] = []

    def run_all() -> None:
        for result in schema.get_all_operations():
            operation = result.ok()

            @settings(
                max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None
            )
            @given(case=operation.as_strategy())
            def check(case: Any) -> None:
                if case.method == "POST" and isinstance(case.body, dict) and len(str(case.body)) % 2:
                    case.body["api_key"] = KEY  # half the posts are authorised and create requests
                case.call_and_validate(base_url=base_url)

            check()
            checked.append(operation.label)

    await asyncio.to_thread(run_all)
    assert len(checked) == 7, checked
    async with aiohttp.ClientSession() as http, http.get(gateway.url + BASE + "/services.json") as response:
        assert response.status == 200  # still serving after the fuzzing


INVISIBLE = ["\x1c\x1c", " ", "\x00", "\t\r\n\x0b\x0c", "\u200b", "\ufeff\u00a0", "\u3000\u2028",
             "\x7f\x85\x9f", "\u200e\u202e\u2066", "\u00ad\u2060"]  # fmt: skip
READABLE = ["a", "\x1c.", "\u200bx", "\u0663", "\U0001f6a7", "\ue000", "   Got   "]


async def test_a_description_needs_something_to_read_as_the_document_says(gateway: RunningGateway) -> None:
    async with gateway.session.get(gateway.url + BASE + "/openapi.json") as response:
        document = await response.json()
    form = document["paths"]["/requests.{fmt}"]["post"]["requestBody"]["content"]
    fields = form["application/x-www-form-urlencoded"]["schema"]["properties"]
    assert fields["description"]["pattern"] == fields["address_string"]["pattern"] == VISIBLE
    pattern = re.compile(fields["description"]["pattern"])
    for text in INVISIBLE:
        assert pattern.search(text) is None, repr(text)
        status, body = await _post(gateway, "json", **{**LAMP, "description": text}, api_key=KEY)
        assert status == 400 and "description" in body, repr(text)
        place_only = {k: v for k, v in LAMP.items() if k not in ("lat", "long")}
        status, body = await _post(gateway, "json", **{**place_only, "address_string": text}, api_key=KEY)
        assert status == 400 and "location" in body, repr(text)
    for text in READABLE:
        assert pattern.search(text), repr(text)
        status, body = await _post(gateway, "json", **{**LAMP, "description": text}, api_key=KEY)
        assert status == 200, (repr(text), body)
        code = json.loads(body)[0]["service_request_id"]
        _, _, body = await _get(gateway, f"/requests/{code}.json")
        assert json.loads(body)[0]["description"] == text.strip()


def test_the_pattern_leaves_out_whitespace_controls_and_format_characters_only() -> None:
    pattern = re.compile(VISIBLE)
    for point in range(0x10000):
        char = chr(point)
        invisible = char.isspace() or unicodedata.category(char) in ("Cc", "Cf")
        if pattern.fullmatch(char) is None:
            assert invisible, f"U+{point:04X} is readable but refused"
        elif char.isspace() or unicodedata.category(char) == "Cc" or char in "\u200b\u200e\u2060\ufeff":
            raise AssertionError(f"U+{point:04X} is accepted as something to read")
    assert pattern.fullmatch("\U000e0001") is not None  # past the BMP all counts, in every regex dialect
    served = json.loads(OPENAPI.read_text(encoding="utf-8"))  # the file says what the code checks
    form = served["paths"]["/requests.{fmt}"]["post"]["requestBody"]["content"]
    fields = form["application/x-www-form-urlencoded"]["schema"]["properties"]
    assert fields["description"]["pattern"] == fields["address_string"]["pattern"] == VISIBLE


async def test_a_window_at_the_ends_of_the_calendar_holds_everything(gateway: RunningGateway) -> None:
    status, body = await _post(gateway, "json", **LAMP, api_key=KEY)
    code = json.loads(body)[0]["service_request_id"]
    # In UTC these are the year 0 and the year 10000, which Python's datetime cannot hold (was a 500).
    status, _, body = await _get(
        gateway,
        "/requests.json",
        start_date="0001-01-01T00:00:00+01:00",
        end_date="9999-12-31T23:00:00-05:00",
    )
    assert status == 200 and [r["service_request_id"] for r in json.loads(body)] == [code]
    status, _, body = await _get(gateway, "/requests.json", end_date="0001-01-01T00:30:00+01:00")
    assert status == 200 and json.loads(body) == []
