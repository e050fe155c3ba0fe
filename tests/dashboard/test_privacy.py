"""Who sees a reporter's number: admins do, officers see a mask, the public tracking page shows none."""

from __future__ import annotations

import re

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from dashboard.privacy import mask_address, redact_text, shown_address
from gateway.app import ENGINE
from store import models
from tests.dashboard.conftest import Dashboard, csrf_from
from workflow.privacy import redact

REPORTER = "+6281234567801"
CODE = re.compile(r"LPR-[0-9A-Z]{6}")


async def _file_complaint(dashboard: Dashboard, text: str, sender: str = REPORTER) -> str:
    """A complaint made the way a citizen makes one: through the simulator channel."""
    replies = await dashboard.chat(sender, text)
    if not any(CODE.search(m["text"] or "") for m in replies):
        replies = await dashboard.chat(sender, "YA")
    found = [match.group(0) for m in replies if (match := CODE.search(m["text"] or ""))]
    assert found, replies
    return found[0]


@pytest.mark.parametrize(
    ("kind", "address", "masked"),
    [
        ("phone", "+6281234567801", "+62812****01"),
        ("phone", "+628123", "+6****23"),
        ("telegram", "123456789", "12****89"),
        ("twitter", "warga_smg", "@wa****"),
        ("shortcode", "1708", "1708"),
        ("web", "abc", "****"),
    ],
)
def test_masks(kind: str, address: str, masked: str) -> None:
    assert mask_address(kind, address) == masked
    assert shown_address(kind, address, "officer") == masked
    assert shown_address(kind, address, "head") == masked
    assert shown_address(kind, address, "auditor") == masked


def test_admins_see_the_address() -> None:
    assert shown_address("phone", REPORTER, "admin") == REPORTER
    assert shown_address("twitter", "warga_smg", "admin") == "@warga_smg"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hubungi 0812-3456-7801 ya", "hubungi […] ya"),
        ("WA +62 812 3456 7801", "WA […]"),
        ("email saya budi.s@example.co.id", "email saya […]"),
        ("RT 04 RW 12 no 17, lampu mati 3 hari", "RT 04 RW 12 no 17, lampu mati 3 hari"),
    ],
)
def test_redact_text(text: str, expected: str) -> None:
    assert redact_text(text) == expected


PHONE_LIKE = r"\+?\d(?:[\s.\-]?\d){7,}"
EMAIL = r"[\w.+\-]+@[\w\-]+\.[\w.\-]+"
PIECES = st.one_of(
    st.text(alphabet="0123456789\u0663\uff15", min_size=1, max_size=9),  # digit runs, some Unicode
    st.sampled_from([" ", ".", "-", "+", "@", "\t", "\u00a0", "  ", ".-", "a@b.c", "x", "_"]),
    st.text(max_size=6),
)


@given(st.lists(PIECES, max_size=12).map("".join))
def test_redact_finds_exactly_what_the_plain_patterns_find(text: str) -> None:
    """The shortcuts (no "@", no run of eight digits) skip only texts the patterns leave alone."""
    assert redact(text) == re.sub(PHONE_LIKE, "[…]", re.sub(EMAIL, "[…]", text))


async def test_contacts_are_masked_until_an_admin_reveals_one_with_a_reason(dashboard: Dashboard) -> None:
    code = await _file_complaint(dashboard, "LaporHendi lampu PJU mati di Jl. Pemuda depan Paragon")
    await dashboard.add_user("budi", "officer", "disperkim")
    await dashboard.add_user("siti", "admin")
    async with dashboard.browser() as officer, dashboard.browser() as admin:
        assert await dashboard.login(officer, "budi") == 302
        assert await dashboard.login(admin, "siti") == 302
        async with officer.get(f"/dashboard/complaints/{code}") as response:
            assert response.status == 403  # not forwarded to the officer's department yet
        async with officer.get("/dashboard/") as response:
            assert code not in await response.text()
        async with admin.get(f"/dashboard/complaints/{code}") as response:
            page = await response.text()
        assert "+62812****01" in page and REPORTER not in page
        assert "lampu PJU mati" in page and "Menunggu verifikasi" in page

        token = await csrf_from(admin, f"/dashboard/complaints/{code}")
        async with admin.post(
            f"/dashboard/complaints/{code}/reveal", data={"csrf": token, "reason": "x"}
        ) as r:
            assert r.status == 403  # a reason is required
        reason = "warga perlu ditelepon untuk lokasi tepat"
        async with admin.post(
            f"/dashboard/complaints/{code}/reveal", data={"csrf": token, "reason": reason}
        ) as r:
            assert r.status == 200
            assert REPORTER in await r.text()
        async with dashboard.gateway.app[ENGINE].connect() as conn:
            logged = (
                await conn.execute(select(models.identity_reveals.c.actor, models.identity_reveals.c.reason))
            ).all()
        assert logged == [("siti", reason)]

        for action in ("verify", "forward"):
            async with admin.post(
                f"/dashboard/complaints/{code}/action", data={"csrf": token, "action": action}
            ) as response:
                assert response.status == 200, await response.text()
        async with officer.get(f"/dashboard/complaints/{code}") as response:
            assert response.status == 200
            page = await response.text()
        assert "+62812****01" in page and "6281234567801" not in page
        assert 'action="/dashboard/complaints/' + code + '/reveal"' not in page


async def test_the_tracking_page_shows_progress_but_no_personal_data(dashboard: Dashboard) -> None:
    code = await _file_complaint(
        dashboard, "LaporHendi jalan berlubang di Jl. Pandanaran depan Tugu Muda, hubungi saya 081234567801"
    )
    async with aiohttp.ClientSession(base_url=dashboard.url) as public:
        async with public.get(f"/lacak/{code}") as response:
            assert response.status == 200
            page = await response.text()
        assert code in page
        assert "Menunggu verifikasi" in page
        assert "Pandanaran" in page
        for personal in ("6281234567801", "081234567801", "1234567801", "****"):
            assert personal not in page
        async with public.get(f"/lacak/{code}?lang=en") as response:
            assert "Awaiting verification" in await response.text()


async def test_the_tracking_form_forgives_sloppy_codes(dashboard: Dashboard) -> None:
    code = await _file_complaint(dashboard, "LaporHendi lampu PJU mati di Jl. Pemuda depan Paragon")
    sloppy = " " + code.lower().replace("-", " ") + " "
    async with aiohttp.ClientSession(base_url=dashboard.url) as public:
        async with public.get("/lacak/", params={"kode": sloppy}, allow_redirects=False) as response:
            assert response.status == 302
            assert response.headers["Location"] == f"/lacak/{code}"
        async with public.get(f"/lacak/{code.lower()}", allow_redirects=False) as response:
            assert response.headers["Location"] == f"/lacak/{code}"
        async with public.get("/lacak/LPR-222222") as response:
            assert response.status == 404
            assert "tidak kami temukan" in await response.text()
        async with public.get("/lacak/", params={"kode": "halo"}) as response:
            assert response.status == 400
        async with public.get("/lacak/") as response:
            assert response.status == 200
            assert 'name="kode"' in await response.text()
