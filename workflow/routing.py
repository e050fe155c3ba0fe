"""Departments and category -> department routing, as data the city admin edits without a deploy.

Migration 0002 seeds Semarang's departments (OPD) and a rule per category; from then on these
functions (for the dashboard and `lapor department` / `lapor routing`) are the only writers. Every
write names the admin who made it and is refused for anyone else (workflow.access MANAGE_ROUTING).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from store import models
from workflow.access import Action, Actor, require

SCOPES = ("single", "coordination", "agency")


@dataclass(frozen=True, slots=True)
class Department:
    code: str
    name: str
    name_en: str | None
    is_city_team: bool
    active: bool


@dataclass(frozen=True, slots=True)
class Route:
    category: str
    name_id: str
    name_en: str | None
    department: str | None
    sla_scope: str
    active: bool
    updated_by: str | None


class RoutingError(ValueError):
    pass


def list_departments(conn: Connection, *, include_inactive: bool = False) -> list[Department]:
    table = models.departments
    query = select(table.c.code, table.c.name, table.c.name_en, table.c.is_city_team, table.c.active)
    if not include_inactive:
        query = query.where(table.c.active.is_(True))
    return [
        Department(*row) for row in conn.execute(query.order_by(table.c.is_city_team.desc(), table.c.code))
    ]


def save_department(
    conn: Connection,
    actor: Actor,
    code: str,
    name: str,
    *,
    name_en: str | None = None,
    active: bool = True,
    now: datetime,
) -> Department:
    """Add a department or rename / (de)activate one. Codes are stable identifiers: never renamed."""
    require(actor, Action.MANAGE_ROUTING)
    code = code.strip().lower()
    if not code.replace("_", "").isalnum() or len(code) > 32:
        raise RoutingError("department code: letters, digits and _ only, at most 32")
    if not name.strip():
        raise RoutingError("department name is required")
    table = models.departments
    exists = conn.execute(select(table.c.code).where(table.c.code == code)).first() is not None
    values = {"name": name.strip(), "name_en": name_en, "active": active}
    if exists:
        conn.execute(update(table).where(table.c.code == code).values(**values))
    else:
        conn.execute(table.insert().values(code=code, is_city_team=False, created_at=now, **values))
    return next(d for d in list_departments(conn, include_inactive=True) if d.code == code)


def list_routes(conn: Connection) -> list[Route]:
    table = models.categories
    rows = conn.execute(
        select(
            table.c.slug,
            table.c.name_id,
            table.c.name_en,
            table.c.department,
            table.c.sla_scope,
            table.c.active,
            table.c.updated_by,
        ).order_by(table.c.slug)
    )
    return [Route(*row) for row in rows]


def route_for(conn: Connection, category: str | None) -> str | None:
    """The department a verified complaint of `category` goes to by default, if any."""
    if not category:
        return None
    table = models.categories
    return conn.execute(
        select(table.c.department).where(table.c.slug == category, table.c.active.is_(True))
    ).scalar_one_or_none()


def set_route(
    conn: Connection,
    actor: Actor,
    category: str,
    department: str | None,
    *,
    sla_scope: str = "single",
    name_id: str | None = None,
    name_en: str | None = None,
    now: datetime,
) -> Route:
    """Route `category` to `department` (None: the city team decides each time); creates the category
    when `name_id` is given and it does not exist yet."""
    require(actor, Action.MANAGE_ROUTING)
    if sla_scope not in SCOPES:
        raise RoutingError(f"sla_scope must be one of {', '.join(SCOPES)}")
    if department is not None:
        known = conn.execute(
            select(models.departments.c.active).where(models.departments.c.code == department)
        ).scalar_one_or_none()
        if not known:
            raise RoutingError(f"unknown or inactive department {department!r}")
    table = models.categories
    values = {"department": department, "sla_scope": sla_scope, "updated_at": now, "updated_by": actor.name}
    if conn.execute(select(table.c.slug).where(table.c.slug == category)).first() is not None:
        if name_id:
            values["name_id"] = name_id
        if name_en:
            values["name_en"] = name_en
        conn.execute(update(table).where(table.c.slug == category).values(**values))
    elif name_id:
        conn.execute(
            table.insert().values(slug=category, name_id=name_id, name_en=name_en, active=True, **values)
        )
    else:
        raise RoutingError(f"unknown category {category!r}: give a name to create it")
    return next(r for r in list_routes(conn) if r.category == category)
