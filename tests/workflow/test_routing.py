"""Departments and routing are data: seeded for Semarang, edited by admins, used by forwarding."""

from __future__ import annotations

import functools

import pytest

from store.db import Database
from tests.harness import ManualClock
from tests.workflow.conftest import ADMIN, OFFICER, complaint_row, file_complaint
from workflow import routing
from workflow.access import Action, Forbidden
from workflow.lifecycle import Workflow
from workflow.privacy import ContactVault

SEEDED = {"kota", "dpu", "disperkim", "dlh", "dishub", "dinkes", "disdik", "disdukcapil", "dpmptsp",
          "bapenda", "satpolpp", "dinsos", "bpbd"}  # fmt: skip


async def test_seeded_for_semarang(db: Database) -> None:
    assert {d.code for d in await db.run(routing.list_departments)} == SEEDED
    routes = {r.category: r.department for r in await db.run(routing.list_routes)}
    assert routes["sampah"] == "dlh" and routes["adminduk"] == "disdukcapil" and routes["lainnya"] is None
    assert len(routes) == 15


async def test_admin_reroutes_without_a_deploy(
    db: Database, workflow: Workflow, vault: ContactVault, clock: ManualClock
) -> None:
    set_route = functools.partial(routing.set_route, now=clock.now)
    with pytest.raises(Forbidden):
        await db.run(functools.partial(set_route, actor=OFFICER, category="banjir", department="bpbd"))
    with pytest.raises(routing.RoutingError, match="unknown or inactive"):
        await db.run(functools.partial(set_route, actor=ADMIN, category="banjir", department="nope"))
    route = await db.run(
        functools.partial(
            set_route, actor=ADMIN, category="banjir", department="bpbd", sla_scope="coordination"
        )
    )
    assert (route.department, route.updated_by) == ("bpbd", "admin1")
    code = await file_complaint(db, vault, category="banjir")
    await workflow.transition(code, Action.VERIFY, ADMIN)
    await workflow.transition(code, Action.FORWARD, ADMIN)
    row = await complaint_row(db, code)
    assert (row.department, row.sla_scope) == ("bpbd", "coordination")
    await db.run(
        functools.partial(
            routing.save_department, actor=ADMIN, code="Diskominfo", name="Dinas Kominfo", now=clock.now
        )
    )
    assert "diskominfo" in {d.code for d in await db.run(routing.list_departments)}
