"""Bulk actions from the inbox: one action on many complaints, each its own transaction, failures
listed, CSRF and roles enforced, and the citizens told as for a single action."""

from __future__ import annotations

from sqlalchemy import select

from gateway.app import ENGINE
from store import models
from tests.dashboard.conftest import Dashboard, csrf_from
from tests.dashboard.seed import file, move, post_bulk
from tests.fakes.twilio import FakeTwilio

CITIZEN = "+6281234567890"


async def statuses(dashboard: Dashboard) -> dict[str, tuple[str, str | None]]:
    table = models.complaints
    async with dashboard.gateway.app[ENGINE].connect() as conn:
        rows = await conn.execute(select(table.c.tracking_code, table.c.status, table.c.department))
        return {code: (status, department) for code, status, department in rows}


async def test_bulk_verify_forward_and_reject(sms_dashboard: Dashboard, fake_twilio: FakeTwilio) -> None:
    dashboard = sms_dashboard
    road = await file(dashboard, "Jalan berlubang", "Jl. Pemuda", category="jalan_rusak", phone=CITIZEN)
    drain = await file(dashboard, "Saluran mampet", "Jl. Pandanaran")
    lamp = await file(dashboard, "Lampu mati", "Gg. Melati", category="lampu_pju")
    spam = await file(dashboard, "asdfgh", "-")
    await move(dashboard, lamp, "verify")
    await dashboard.add_user("siti", "admin")
    async with dashboard.browser() as admin:
        assert await dashboard.login(admin, "siti") == 302
        async with admin.get("/dashboard/") as response:
            page = await response.text()
        assert page.count('name="codes"') == 4 and 'id="bulk-department"' in page

        # One of three was verified already: the others go through, the failure is listed (207).
        status, page = await post_bulk(
            admin, [("action", "verify"), ("codes", road), ("codes", drain), ("codes", lamp)]
        )
        assert status == 207
        assert "2 aduan diproses." in page and lamp in page and "cannot verify" in page
        assert {c: s for c, (s, _) in (await statuses(dashboard)).items()} == {
            road: "verified", drain: "verified", lamp: "verified", spam: "submitted"
        }

        # Forward with the department chosen in the form; without one, the category's routing rule.
        status, page = await post_bulk(admin, [("action", "forward"), ("codes", drain),
                                               ("departments", "dpu")])
        assert status == 200 and "1 aduan diproses." in page
        status, page = await post_bulk(admin, [("action", "forward"), ("departments", ""),
                                               ("codes", road), ("codes", lamp)])
        assert status == 200 and "2 aduan diproses." in page
        found = await statuses(dashboard)
        assert found[drain] == ("forwarded", "dpu")
        assert found[road] == ("forwarded", "dpu") and found[lamp] == ("forwarded", "disperkim")

        # Rejecting needs a reason the citizen can read: none given, nothing rejected.
        status, page = await post_bulk(admin, [("action", "reject"), ("codes", spam)])
        assert status == 207 and "0 aduan diproses." in page and "reason" in page
        assert (await statuses(dashboard))[spam][0] == "submitted"
        status, page = await post_bulk(
            admin, [("action", "reject"), ("codes", spam), ("public_note", "Isi aduan tidak jelas")]
        )
        assert status == 200 and (await statuses(dashboard))[spam][0] == "rejected"

    # The citizen with a number heard about each step, as after a single action.
    await dashboard.drain()
    sent = await fake_twilio.wait_for_messages(3)
    assert [m["to"] for m in sent] == [CITIZEN] * 3 and all(road in m["body"] for m in sent)


async def test_bulk_refuses_bad_csrf_bad_input_and_roles_without_the_action(sms_dashboard: Dashboard) -> None:
    dashboard = sms_dashboard
    road = await file(dashboard, "Jalan berlubang", "Jl. Pemuda", category="jalan_rusak")
    await move(dashboard, road, "verify")
    await move(dashboard, road, "forward")
    other = await file(dashboard, "Sampah", "Pasar Johar", category="sampah")
    await dashboard.add_user("siti", "admin")
    await dashboard.add_user("budi", "officer", "dpu")
    before = await statuses(dashboard)
    async with dashboard.browser() as admin, dashboard.browser() as officer:
        assert await dashboard.login(admin, "siti") == 302
        assert await dashboard.login(officer, "budi") == 302
        for token in ("", "forged", await csrf_from(officer, "/dashboard/")):
            status, _ = await post_bulk(admin, [("action", "verify"), ("codes", other)], csrf=token)
            assert status == 403
        for data in ([("action", "verify")], [("action", "close"), ("codes", other)], [("codes", other)]):
            status, _ = await post_bulk(admin, data)
            assert status == 400
        # Officers have no bulk form, and posting one anyway is refused as a whole.
        async with officer.get("/dashboard/") as response:
            page = await response.text()
        assert road in page and 'name="codes"' not in page and 'action="/dashboard/bulk"' not in page
        for action in ("verify", "forward", "reject"):
            status, page = await post_bulk(officer, [("action", action), ("codes", road), ("codes", other),
                                                     ("public_note", "x")])
            assert status == 403 and "may not" in page
    assert await statuses(dashboard) == before
