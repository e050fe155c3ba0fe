"""Recording an off-line complaint (walk-in, letter, phone call, radio, e-mail) from the dashboard:
the citizen hears about it by SMS through (fake) Twilio, and later status changes follow on SMS."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
from sqlalchemy import func, select

from gateway.app import ENGINE
from store import models
from tests.dashboard.conftest import Dashboard, csrf_from
from tests.dashboard.test_evidence import _png
from tests.fakes.twilio import FakeTwilio
from tests.fakes.twilio_webhooks import sign, sms_params

CITIZEN = "+6281234567890"
CODE = re.compile(r"LPR-[0-9A-Z]{6}")
GOOD = {
    "medium": "phone",
    "description": "Jalan berlubang besar, sudah dua motor jatuh",
    "location": "Jl. Pemuda depan Paragon",
    "kecamatan": "Semarang Tengah",
    "category": "jalan_rusak",
    "reply_by": "twilio_sms",
    "phone": "0812-3456-7890",
    "name": "Sri Wahyuningsih",
    "language": "id",
}


async def counts(dashboard: Dashboard) -> dict[str, int]:
    tables = ("complaints", "reporters", "channel_identities", "outbox", "status_events")
    async with dashboard.gateway.app[ENGINE].connect() as conn:
        return {
            name: int(
                (await conn.execute(select(func.count()).select_from(getattr(models, name)))).scalar_one()
            )
            for name in tables
        }


NOTHING = {"complaints": 0, "reporters": 0, "channel_identities": 0, "outbox": 0, "status_events": 0}


async def post_record(
    browser: aiohttp.ClientSession, fields: dict[str, Any], csrf: str | None = None
) -> tuple[int, str, str]:
    """(status, Location header, body) of a record form post with the page's own CSRF token."""
    token = csrf if csrf is not None else await csrf_from(browser, "/dashboard/record")
    async with browser.post(
        "/dashboard/record", data={**fields, "csrf": token}, allow_redirects=False
    ) as response:
        return response.status, response.headers.get("Location", ""), await response.text()


async def act(browser: aiohttp.ClientSession, code: str, action: str, **fields: str) -> None:
    token = await csrf_from(browser, f"/dashboard/complaints/{code}")
    async with browser.post(
        f"/dashboard/complaints/{code}/action",
        data={"csrf": token, "action": action, **fields},
        allow_redirects=False,
    ) as response:
        assert response.status == 303, await response.text()


async def test_a_phoned_in_complaint_reaches_the_citizen_by_sms_with_every_status_change(
    sms_dashboard: Dashboard, fake_twilio: FakeTwilio
) -> None:
    dashboard = sms_dashboard
    await dashboard.add_user("siti", "admin")
    await dashboard.add_user("budi", "officer", "dpu")
    async with dashboard.browser() as admin:
        assert await dashboard.login(admin, "siti") == 302
        async with admin.get("/dashboard/") as response:
            assert 'href="/dashboard/record"' in await response.text()
        async with admin.get("/dashboard/record") as response:
            assert response.status == 200
            form = await response.text()
        assert 'value="twilio_sms"' in form and 'type="tel"' in form and 'name="viewport"' in form
        status, location, _ = await post_record(admin, GOOD)
        assert status == 303
        match = re.fullmatch(r"/dashboard/complaints/(LPR-[0-9A-Z]{6})\?recorded=1", location)
        assert match, location
        code = match.group(1)
        async with admin.get(location) as response:
            page = await response.text()
        assert 'id="recorded"' in page and code in page and "SMS" in page
        assert "Telepon" in page and "Menunggu verifikasi" in page
        # Identity is protected: a pseudonym and a masked number even for the admin, no name.
        assert "+62812****90" in page and CITIZEN not in page and "Wahyuningsih" not in page

        await dashboard.drain()
        [receipt] = await fake_twilio.wait_for_messages(1)
        assert receipt["to"] == CITIZEN and receipt["from"] == "+15005550006"
        assert code in receipt["body"] and "STATUS" in receipt["body"]

        await act(admin, code, "verify")
        await dashboard.drain()
        verified = (await fake_twilio.wait_for_messages(2))[1]
        assert verified["to"] == CITIZEN and code in verified["body"]

        await act(admin, code, "forward", departments="dpu", public_note="Tim DPU akan menambal")
        await dashboard.drain()
        forwarded = (await fake_twilio.wait_for_messages(3))[2]
        assert forwarded["to"] == CITIZEN and code in forwarded["body"]
        assert len(fake_twilio.sent) == 3

    async with dashboard.gateway.app[ENGINE].connect() as conn:
        complaint = (
            (await conn.execute(select(models.complaints).where(models.complaints.c.tracking_code == code)))
            .mappings()
            .one()
        )
        identity = (await conn.execute(select(models.channel_identities))).mappings().one()
        reporter = (await conn.execute(select(models.reporters))).mappings().one()
    assert (complaint["origin_medium"], complaint["origin_channel"]) == ("phone", "twilio_sms")
    assert complaint["status"] == "forwarded" and complaint["category"] == "jalan_rusak"
    assert complaint["location_text"] == "Jl. Pemuda depan Paragon, Kec. Semarang Tengah"
    assert complaint["origin_identity_id"] == identity["id"]
    # Stored like every channel's identity: a keyed hash to find it, the number only encrypted.
    assert identity["address"] != CITIZEN and CITIZEN not in (identity["address_enc"] or "")
    assert reporter["display_name"] is None and reporter["display_name_enc"], "the name only encrypted"

    # The department's officer sees the complaint under a pseudonym, without name or number.
    async with dashboard.browser() as officer:
        assert await dashboard.login(officer, "budi") == 302
        async with officer.get(f"/dashboard/complaints/{code}") as response:
            assert response.status == 200
            page = await response.text()
        assert "Warga-" in page and "Wahyuningsih" not in page and CITIZEN not in page
        # ...accepts it and resolves it with a photo of the patched road: both reach the citizen.
        await act(officer, code, "accept")
        token = await csrf_from(officer, f"/dashboard/complaints/{code}")
        form = aiohttp.FormData()
        for key, value in {"csrf": token, "action": "resolve", "public_note": "Sudah ditambal"}.items():
            form.add_field(key, value)
        form.add_field("photo", _png(), filename="tambal.png", content_type="image/png")
        async with officer.post(
            f"/dashboard/complaints/{code}/action", data=form, allow_redirects=False
        ) as response:
            assert response.status == 303, await response.text()
    await dashboard.drain()
    accepted, resolved = (await fake_twilio.wait_for_messages(5))[3:]
    assert accepted["to"] == resolved["to"] == CITIZEN
    assert code in accepted["body"] and code in resolved["body"] and "Sudah ditambal" in resolved["body"]

    # When the citizen texts in, they are the same reporter the officer recorded.
    params = sms_params(From=CITIZEN, Body=f"STATUS {code}", AccountSid=fake_twilio.account_sid)
    url = dashboard.url + "/webhooks/twilio/sms"
    response = await dashboard.gateway.post_form(
        "/webhooks/twilio/sms", params, {"X-Twilio-Signature": sign(url, params, fake_twilio.auth_token)}
    )
    assert response.status == 200
    await dashboard.drain()
    answer = (await fake_twilio.wait_for_messages(6))[5]
    assert answer["to"] == CITIZEN and code in answer["body"]
    async with dashboard.gateway.app[ENGINE].connect() as conn:
        senders = (await conn.execute(select(models.inbound_messages.c.reporter_id))).scalars().all()
        assert (await conn.execute(select(func.count()).select_from(models.reporters))).scalar_one() == 1
    assert senders == [complaint["reporter_id"]]


async def test_a_letter_without_contact_is_tracked_by_code_only(sms_dashboard: Dashboard) -> None:
    dashboard = sms_dashboard
    await dashboard.add_user("siti", "admin")
    async with dashboard.browser() as admin:
        assert await dashboard.login(admin, "siti") == 302
        fields = {**GOOD, "medium": "letter", "reply_by": "none", "phone": "", "name": "", "category": ""}
        status, location, _ = await post_record(admin, fields)
        assert status == 303
        async with admin.get(location) as response:
            page = await response.text()
        assert "tanpa kontak" in page and "Surat" in page
    assert await counts(dashboard) == {
        "complaints": 1, "reporters": 1, "channel_identities": 0, "outbox": 0, "status_events": 1
    }


async def test_a_photo_is_stored_as_evidence_and_a_non_photo_is_refused(sms_dashboard: Dashboard) -> None:
    dashboard = sms_dashboard
    await dashboard.add_user("siti", "admin")
    async with dashboard.browser() as admin:
        assert await dashboard.login(admin, "siti") == 302

        async def post(content: bytes, filename: str, content_type: str) -> aiohttp.ClientResponse:
            form = aiohttp.FormData()
            for key, value in {**GOOD, "csrf": await csrf_from(admin, "/dashboard/record")}.items():
                form.add_field(key, value)
            form.add_field("photo", content, filename=filename, content_type=content_type)
            async with admin.post("/dashboard/record", data=form, allow_redirects=False) as response:
                await response.read()
                return response

        refused = await post(b"MZ\x90\x00 not a picture", "virus.exe", "image/jpeg")
        assert refused.status == 400
        assert await counts(dashboard) == NOTHING
        accepted = await post(_png(), "lubang.png", "image/png")
        assert accepted.status == 303
        async with admin.get(accepted.headers["Location"]) as response:
            page = await response.text()
        [photo] = re.findall(r'<img src="(/media/[^"]+)"', page)
        async with admin.get(photo) as response:
            assert response.status == 200 and (await response.read()).startswith(b"\x89PNG")


async def test_a_wrong_or_missing_csrf_token_is_refused_and_nothing_is_written(
    sms_dashboard: Dashboard,
) -> None:
    dashboard = sms_dashboard
    await dashboard.add_user("siti", "admin")
    async with dashboard.browser() as admin, dashboard.browser() as other:
        assert await dashboard.login(admin, "siti") == 302
        assert await dashboard.login(other, "siti") == 302
        foreign = await csrf_from(other, "/dashboard/record")  # valid, but for another session
        for token in ("", "forged-token", foreign):
            status, _, body = await post_record(admin, GOOD, csrf=token)
            assert status == 403 and "CSRF" in body
        async with admin.post("/dashboard/record", data=GOOD, allow_redirects=False) as response:
            assert response.status == 403
    assert await counts(dashboard) == NOTHING


MISSING_OR_WRONG: list[tuple[dict[str, str], list[str]]] = [
    ({"medium": ""}, ["Pilih cara aduan diterima."]),
    ({"medium": "carrier_pigeon"}, ["Pilih cara aduan diterima."]),
    ({"description": "   "}, ["Tulis isi aduan: apa masalahnya."]),
    ({"description": "\u200b\x1c\u2060\ufeff"}, ["Tulis isi aduan: apa masalahnya."]),  # nothing to read
    ({"location": ""}, ["Tulis lokasinya: di mana masalahnya."]),
    ({"medium": "", "description": "", "location": ""}, ["Pilih cara", "Tulis isi aduan", "Tulis lokasinya"]),
    ({"category": "unicorns"}, ["Kategori tidak dikenal."]),
    ({"kecamatan": "Gotham"}, ["Kecamatan tidak dikenal."]),
    ({"language": "fr"}, ["Bahasa tidak dikenal."]),
    ({"latitude": "-6.98"}, ["Koordinat harus angka"]),
    ({"latitude": "north", "longitude": "110.4"}, ["Koordinat harus angka"]),
    ({"latitude": "-96", "longitude": "110.4"}, ["Koordinat harus angka"]),
    ({"reply_by": "kannel"}, ["Kanal itu tidak aktif"]),
    ({"reply_by": "twilio_sms", "phone": ""}, ["Tulis nomor HP warga"]),
    ({"reply_by": "none"}, ["Pilih lewat SMS atau WhatsApp"]),
]
BAD_NUMBERS = ["12345", "0812", "nomor saya", "+62 21", "+1 555 0100 9999 9999 12", "0812\x003456"]


async def test_missing_or_wrong_fields_come_back_with_clear_errors_and_nothing_is_written(
    sms_dashboard: Dashboard,
) -> None:
    dashboard = sms_dashboard
    await dashboard.add_user("siti", "admin")
    async with dashboard.browser() as admin:
        assert await dashboard.login(admin, "siti") == 302
        for change, errors in MISSING_OR_WRONG:
            status, _, page = await post_record(admin, {**GOOD, **change})
            assert status == 400, change
            assert 'id="errors"' in page and 'aria-invalid="true"' in page, change
            for message in errors:
                assert message in page, (change, message)
            # What the officer typed is still there, to be corrected rather than typed again.
            assert "Sri Wahyuningsih" in page, change
            if "description" not in change:
                assert GOOD["description"] in page, change
    assert await counts(dashboard) == NOTHING


async def test_bad_phone_numbers_and_landlines_are_refused(sms_dashboard: Dashboard) -> None:
    dashboard = sms_dashboard
    await dashboard.add_user("siti", "admin")
    async with dashboard.browser() as admin:
        assert await dashboard.login(admin, "siti") == 302
        for phone in BAD_NUMBERS:
            status, _, page = await post_record(admin, {**GOOD, "phone": phone})
            assert status == 400 and "Itu bukan nomor HP yang benar" in page, phone
        status, _, page = await post_record(admin, {**GOOD, "phone": "024 3584 000"})  # Semarang landline
        assert status == 400 and "Itu nomor telepon rumah/kantor" in page
    assert await counts(dashboard) == NOTHING


async def test_common_spellings_of_one_number_reach_one_citizen(
    sms_dashboard: Dashboard, fake_twilio: FakeTwilio
) -> None:
    dashboard = sms_dashboard
    await dashboard.add_user("siti", "admin")
    spellings = ["+62 812-3456-7890", "6281234567890", "(0812) 3456 7890"]
    async with dashboard.browser() as admin:
        assert await dashboard.login(admin, "siti") == 302
        for phone in spellings:
            status, _, _ = await post_record(admin, {**GOOD, "phone": phone})
            assert status == 303, phone
    await dashboard.drain()
    receipts = await fake_twilio.wait_for_messages(len(spellings))
    assert {r["to"] for r in receipts} == {CITIZEN}
    assert len({CODE.search(r["body"]).group(0) for r in receipts}) == 3  # type: ignore[union-attr]
    found = await counts(dashboard)
    assert (found["complaints"], found["reporters"], found["channel_identities"]) == (3, 1, 1)


async def test_roles_that_may_not_file_complaints_cannot_record_one(sms_dashboard: Dashboard) -> None:
    dashboard = sms_dashboard
    users = [("budi", "officer", "dpu"), ("hadi", "head", "dpu"), ("ani", "auditor", None)]
    for name, role, department in users:
        await dashboard.add_user(name, role, department)
        async with dashboard.browser() as browser:
            assert await dashboard.login(browser, name) == 302
            async with browser.get("/dashboard/notifications") as response:
                assert 'href="/dashboard/record"' not in await response.text()
            async with browser.get("/dashboard/record") as response:
                assert response.status == 403, role
                page = await response.text()
            assert "tidak boleh mencatat aduan" in page and 'name="description"' not in page
            token = await csrf_from(browser, "/dashboard/notifications")  # a valid token of this session
            status, _, page = await post_record(browser, GOOD, csrf=token)
            assert status == 403 and "tidak boleh mencatat aduan" in page, role
    async with aiohttp.ClientSession(base_url=dashboard.url) as anonymous:
        async with anonymous.get("/dashboard/record", allow_redirects=False) as response:
            assert (response.status, response.headers["Location"]) == (302, "/dashboard/login")
        async with anonymous.post("/dashboard/record", data=GOOD, allow_redirects=False) as response:
            assert response.status == 302
    assert await counts(dashboard) == NOTHING


async def test_the_form_speaks_english_on_request(sms_dashboard: Dashboard) -> None:
    dashboard = sms_dashboard
    await dashboard.add_user("siti", "admin")
    async with dashboard.browser() as admin:
        assert await dashboard.login(admin, "siti") == 302
        async with admin.get("/dashboard/record?lang=en") as response:
            page = await response.text()
        assert "Record an offline complaint" in page and "Citizen&#39;s phone" in page
        assert "Phone call" in page and "Walk-in" in page and "Telepon" not in page
        status, _, page = await post_record(admin, {**GOOD, "description": ""})
        assert status == 400 and "Write what the problem is." in page
