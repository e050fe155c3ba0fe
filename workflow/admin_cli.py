"""`lapor department ...` and `lapor routing ...`: the routing tables from a shell, for operators.

The dashboard is the usual editor; these exist for the first set-up and for scripts. Whoever can run
them can already reach the database, so they act as the `cli` admin (recorded as `updated_by`).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
from datetime import UTC, datetime

from gateway.config import Config
from store.db import Database
from store.migrate import upgrade
from workflow import routing
from workflow.access import Actor

CLI_ADMIN = Actor("cli", "admin")


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser], config_help: str) -> None:
    department = sub.add_parser("department", help="city departments (OPD)")
    dsub = department.add_subparsers(dest="department_command", required=True)
    dlist = dsub.add_parser("list", help="list departments")
    dadd = dsub.add_parser("add", help="add or rename a department")
    dadd.add_argument("code")
    dadd.add_argument("name")
    dadd.add_argument("--name-en")
    dadd.add_argument("--inactive", action="store_true", help="keep it but stop routing to it")
    routes = sub.add_parser("routing", help="category -> department routing rules")
    rsub = routes.add_subparsers(dest="routing_command", required=True)
    rlist = rsub.add_parser("list", help="list routing rules")
    rset = rsub.add_parser("set", help="route a category to a department ('-' for none)")
    rset.add_argument("category")
    rset.add_argument("department")
    rset.add_argument("--scope", default="single", choices=routing.SCOPES)
    rset.add_argument("--name", help="display name, to create a new category")
    for parser in (dlist, dadd, rlist, rset):
        parser.add_argument("--config", "-c", dest="config", default=argparse.SUPPRESS, help=config_help)
    dlist.set_defaults(workflow_cli="department_list")
    dadd.set_defaults(workflow_cli="department_add")
    rlist.set_defaults(workflow_cli="routing_list")
    rset.set_defaults(workflow_cli="routing_set")


def run(config: Config, args: argparse.Namespace) -> int:
    return asyncio.run(_run(config, args))


async def _run(config: Config, args: argparse.Namespace) -> int:
    db = Database(config.database.url)
    now = datetime.now(UTC)
    try:
        await upgrade(db.engine)
        command = args.workflow_cli
        if command == "department_list":
            for d in await db.run(routing.list_departments):
                print(f"{d.code:12} {d.name}{'  (city team)' if d.is_city_team else ''}")
        elif command == "department_add":
            saved = await db.run(
                functools.partial(
                    routing.save_department,
                    actor=CLI_ADMIN,
                    code=args.code,
                    name=args.name,
                    name_en=args.name_en,
                    active=not args.inactive,
                    now=now,
                )
            )
            print(f"department {saved.code}: {saved.name}")
        elif command == "routing_list":
            for r in await db.run(routing.list_routes):
                print(f"{r.category:14} -> {r.department or '(city team decides)':20} {r.sla_scope}")
        else:
            route = await db.run(
                functools.partial(
                    routing.set_route,
                    actor=CLI_ADMIN,
                    category=args.category,
                    department=None if args.department == "-" else args.department,
                    sla_scope=args.scope,
                    name_id=args.name,
                    now=now,
                )
            )
            print(f"{route.category} -> {route.department or '(city team decides)'} ({route.sla_scope})")
    except routing.RoutingError as exc:
        print(str(exc))
        return 2
    finally:
        await db.dispose()
    return 0
