"""Who may do what to which complaint: one function, `can(actor, action, complaint)`.

The rules mirror Semarang's process. The city team (role `admin`) receives, verifies, classifies and
forwards, rejects with a reason, marks duplicates and answers the citizen, on every complaint. A
department officer works only on complaints forwarded to their own department; the head of the
department sees the department's complaints, receives escalations and may act as an officer would.
An auditor reads statistics and the anonymised export, never a complaint. `system` (deadline jobs)
and `citizen` (the reporter's YA/BELUM) are actors too, so every transition goes through one check
and one audit trail.

Roles are data on the user row; this module holds no state and does no I/O, so the dashboard can call
it while rendering (to hide buttons) and the lifecycle calls it again before writing (to enforce).
"""

from __future__ import annotations

import enum
from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol


class Action(enum.StrEnum):
    # lifecycle actions (workflow.lifecycle.TRANSITIONS)
    SUBMIT = "submit"
    VERIFY = "verify"
    CLASSIFY = "classify"
    FORWARD = "forward"
    REJECT = "reject"
    MARK_DUPLICATE = "mark_duplicate"
    REPLY = "reply"
    ACCEPT = "accept"
    UPDATE = "update"
    ASK_REPORTER = "ask_reporter"
    RESUME = "resume"
    REQUEST_COORDINATION = "request_coordination"
    RESOLVE = "resolve"
    REOPEN = "reopen"
    CLOSE = "close"
    # other actions
    VIEW = "view"
    VIEW_STATS = "view_stats"
    EXPORT = "export"
    REVEAL_IDENTITY = "reveal_identity"
    MANAGE_ROUTING = "manage_routing"
    MANAGE_USERS = "manage_users"


class Role(enum.StrEnum):
    ADMIN = "admin"
    OFFICER = "officer"
    HEAD = "head"
    AUDITOR = "auditor"
    SYSTEM = "system"
    CITIZEN = "citizen"


STAFF_ROLES = (Role.ADMIN, Role.OFFICER, Role.HEAD, Role.AUDITOR)

_DEPARTMENT_WORK = frozenset(
    {
        Action.VIEW,
        Action.ACCEPT,
        Action.UPDATE,
        Action.ASK_REPORTER,
        Action.RESUME,
        Action.REQUEST_COORDINATION,
        Action.RESOLVE,
    }
)

ALLOWED: dict[Role, frozenset[Action]] = {
    Role.ADMIN: frozenset(
        {
            Action.SUBMIT,
            Action.VERIFY,
            Action.CLASSIFY,
            Action.FORWARD,
            Action.REJECT,
            Action.MARK_DUPLICATE,
            Action.REPLY,
            Action.UPDATE,
            Action.ASK_REPORTER,
            Action.RESUME,
            Action.REOPEN,
            Action.CLOSE,
            Action.VIEW,
            Action.VIEW_STATS,
            Action.EXPORT,
            Action.REVEAL_IDENTITY,
            Action.MANAGE_ROUTING,
            Action.MANAGE_USERS,
        }
    ),
    Role.OFFICER: _DEPARTMENT_WORK,
    Role.HEAD: _DEPARTMENT_WORK | {Action.VIEW_STATS},
    Role.AUDITOR: frozenset({Action.VIEW_STATS, Action.EXPORT}),
    Role.SYSTEM: frozenset({Action.SUBMIT, Action.CLOSE, Action.RESUME, Action.VIEW}),
    Role.CITIZEN: frozenset({Action.REOPEN, Action.CLOSE, Action.RESUME}),
}

DEPARTMENT_BOUND = frozenset({Role.OFFICER, Role.HEAD})
"""Roles whose complaint actions are limited to their own department's complaints."""
NOT_ABOUT_A_COMPLAINT = frozenset(
    {Action.VIEW_STATS, Action.EXPORT, Action.MANAGE_ROUTING, Action.MANAGE_USERS}
)
"""Actions on the whole system; a complaint passed along is irrelevant (a head's statistics are
filtered to the department by the query, not refused)."""


class HasDepartments(Protocol):
    @property
    def departments(self) -> Collection[str]: ...


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting: a dashboard user, or `system` / `citizen` for automatic and reporter actions."""

    name: str
    role: str
    department: str | None = None

    @classmethod
    def system(cls) -> Actor:
        return cls("system", Role.SYSTEM.value)

    @classmethod
    def citizen(cls) -> Actor:
        return cls("citizen", Role.CITIZEN.value)


@dataclass(frozen=True, slots=True)
class Scope:
    """The part of a complaint access depends on: the departments it was forwarded to."""

    departments: frozenset[str] = frozenset()


class Forbidden(Exception):
    """The actor may not do this; the message says which rule refused."""


def can(actor: Actor, action: Action | str, complaint: HasDepartments | None = None) -> bool:
    """True when `actor` may do `action` (on `complaint`, when the action is about one)."""
    try:
        role, act = Role(actor.role), Action(action)
    except ValueError:
        return False
    if act not in ALLOWED[role]:
        return False
    if role in DEPARTMENT_BOUND and complaint is not None and act not in NOT_ABOUT_A_COMPLAINT:
        return actor.department is not None and actor.department in complaint.departments
    return True


def require(actor: Actor, action: Action | str, complaint: HasDepartments | None = None) -> None:
    """`can`, raising `Forbidden` with the reason when not."""
    if can(actor, action, complaint):
        return
    try:
        role_ok = Action(action) in ALLOWED.get(Role(actor.role), frozenset())
    except ValueError:
        role_ok = False
    if not role_ok:
        raise Forbidden(f"role {actor.role!r} may not {action}")
    raise Forbidden(f"{actor.name} ({actor.department or 'no department'}) may only {action} own department")
