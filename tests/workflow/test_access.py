"""The access-control matrix: each role x each action x own / other department."""

from __future__ import annotations

import pytest

from workflow.access import Action, Actor, Forbidden, Role, Scope, can, require

OWN = Scope(frozenset({"dpu", "bpbd"}))
OTHER = Scope(frozenset({"dlh"}))
UNROUTED = Scope(frozenset())

A = Action
CITY_TEAM = {
    A.SUBMIT, A.VERIFY, A.CLASSIFY, A.FORWARD, A.REJECT, A.MARK_DUPLICATE, A.REPLY, A.UPDATE,
    A.ASK_REPORTER, A.RESUME, A.REOPEN, A.CLOSE, A.VIEW, A.VIEW_STATS, A.EXPORT, A.REVEAL_IDENTITY,
    A.MANAGE_ROUTING, A.MANAGE_USERS,
}  # fmt: skip
DEPARTMENT = {A.VIEW, A.ACCEPT, A.UPDATE, A.ASK_REPORTER, A.RESUME, A.REQUEST_COORDINATION, A.RESOLVE}

# (role, department) -> (allowed on own department's complaint, allowed on another's)
EXPECTED: dict[str, tuple[set[Action], set[Action]]] = {
    "admin": (CITY_TEAM, CITY_TEAM),
    "officer": (DEPARTMENT, set()),
    "head": (DEPARTMENT | {A.VIEW_STATS}, {A.VIEW_STATS}),
    "auditor": ({A.VIEW_STATS, A.EXPORT}, {A.VIEW_STATS, A.EXPORT}),
    "system": ({A.SUBMIT, A.CLOSE, A.RESUME, A.VIEW}, {A.SUBMIT, A.CLOSE, A.RESUME, A.VIEW}),
    "citizen": ({A.REOPEN, A.CLOSE, A.RESUME}, {A.REOPEN, A.CLOSE, A.RESUME}),
}


@pytest.mark.parametrize("role", [r.value for r in Role])
@pytest.mark.parametrize("action", list(Action))
def test_matrix(role: str, action: Action) -> None:
    actor = Actor(f"{role}1", role, "dpu" if role in ("officer", "head") else None)
    own_allowed, other_allowed = EXPECTED[role]
    assert can(actor, action, OWN) == (action in own_allowed), ("own", role, action)
    assert can(actor, action, OTHER) == (action in other_allowed), ("other", role, action)
    if action in other_allowed:
        require(actor, action, OTHER)
    else:
        with pytest.raises(Forbidden):
            require(actor, action, OTHER)


def test_department_staff_without_department_or_unrouted_complaints() -> None:
    assert not can(Actor("x", "officer", None), Action.VIEW, OWN)
    assert not can(Actor("x", "officer", "dpu"), Action.VIEW, UNROUTED)
    assert can(Actor("x", "officer", "bpbd"), Action.RESOLVE, OWN), "a supporting department works too"
    assert can(Actor("x", "head", "dpu"), Action.VIEW_STATS)


def test_unknown_roles_and_actions_are_refused() -> None:
    assert not can(Actor("x", "superuser"), Action.VIEW)
    assert not can(Actor("x", "admin"), "fly")
    with pytest.raises(Forbidden, match="may not"):
        require(Actor("x", "superuser"), Action.VIEW)
