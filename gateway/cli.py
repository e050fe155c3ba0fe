"""`lapor`: serve, migrate, version, user management. `python -m gateway` is the same."""

from __future__ import annotations

import argparse
import asyncio
import gc
import getpass
import json
import logging
import os
import secrets
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from gateway import __version__
from gateway.collector import PacedCollector
from gateway.config import Config, ConfigError, load_config, secret_values, validate
from gateway.logs import register_secret, setup_logging

if TYPE_CHECKING:
    from aiohttp import web

DEFAULT_CONFIG_FILES = ("lapor.toml",)


def _load(path: str | None) -> Config:
    if path is None:
        path = os.environ.get("LAPOR_CONFIG") or next(
            (p for p in DEFAULT_CONFIG_FILES if os.path.exists(p)), None
        )
    config = load_config(path)
    problems = validate(config)
    if problems:
        raise ConfigError("; ".join(problems))
    return config


def cmd_serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from gateway.affinity import pin_process
    from gateway.app import create_app, handler_options
    from store.db import is_sqlite

    config = _load(args.config)
    setup_logging(config.logging.level, config.logging.json)
    for secret in secret_values(config):
        register_secret(secret)
    announce = announcer(config.logging.json)
    try:
        cpu = pin_process(config.server.cpu_affinity, sqlite=is_sqlite(config.database.url))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if cpu is not None:
        logging.getLogger("gateway").info("threads kept on CPU %d (server.cpu_affinity)", cpu)
    # The SQLite writer thread and the event loop share the GIL; with the default 5 ms switch
    # interval a request waits for the writer's whole slice (measured: p50 doubled). 1 ms is fairer.
    sys.setswitchinterval(GIL_SWITCH_SECONDS)
    asyncio.run(_bootstrap_admin(config, announce))
    app = create_app(config)
    app.on_startup.append(settle_interpreter)
    host = args.host or config.server.host
    port = args.port or config.server.port
    where = "simulator: /simulator/, dashboard: /dashboard/"
    banner = f"Lapor Gateway {__version__} on http://{host}:{port}/  ({where})"
    # Printed once the socket listens, so scripts (and tests) can wait for this line.
    web.run_app(
        app,
        host=host,
        port=port,
        print=lambda _: announce(banner),
        access_log=None,
        shutdown_timeout=30,
        **handler_options(config),
    )
    return 0


async def settle_interpreter(app: web.Application) -> None:
    """Once started, leave the start-up heap out of garbage collection (`gc.freeze`), collect on a
    clock (gateway/collector.py), and hand the GIL over more often.

    Everything imported and built at start (SQLAlchemy, twilio, python-telegram-bot, the models)
    is hundreds of thousands of objects that live as long as the process; every full collection
    traversed them all, which was 4% of a webhook's instructions under load.

    The GIL: the ingest writer's thread runs Python for whole batches while the event loop waits
    for the GIL to read, answer and hand over each webhook, up to the switch interval (5 ms by
    default) a time, a few times a webhook. At 1,000 webhooks a second on SQLite, seven alternating
    rounds of bench/ingest.py's fixed-rate run each way: median p99 206 ms at 5 ms, 113 ms at 1 ms
    (p50 46 and 30 ms); wrk's throughput in the same rounds did not move beyond the machine's noise.
    """
    gc.collect()
    gc.freeze()
    sys.setswitchinterval(GIL_SWITCH_SECONDS)
    collector = PacedCollector()
    collector.start()

    async def stop_collector(_app: web.Application) -> None:
        await collector.stop()

    app.on_cleanup.append(stop_collector)


GIL_SWITCH_SECONDS = 0.001
"""How long a thread may keep the GIL while another waits (CPython's default is 0.005)."""


def announcer(as_json: bool) -> Callable[[str], None]:
    """Lines for the operator (the banner, a first-start password): plain, or JSON like every log line
    when logs go to a collector, so one stream stays parseable."""

    def announce(text: str) -> None:
        if as_json:
            when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S%z")
            text = json.dumps({"time": when, "level": "INFO", "logger": "gateway", "message": text})
        print(text, flush=True)

    return announce


async def _bootstrap_admin(config: Config, announce: Callable[[str], None] = print) -> None:
    """First start: migrate an embedded SQLite and create an admin whose password is printed once."""
    from sqlalchemy.exc import IntegrityError

    from store.db import is_sqlite, make_engine
    from store.migrate import upgrade
    from store.users import count_users, create_user

    engine = make_engine(config.database.url, sqlite_synchronous=config.database.sqlite_synchronous)
    try:
        if is_sqlite(config.database.url):
            await upgrade(engine)
        try:
            existing = await count_users(engine)
        except Exception:
            return  # schema missing on PostgreSQL: create_app explains that `lapor migrate` is needed
        if existing == 0:
            password = secrets.token_urlsafe(12)
            try:
                await create_user(engine, config.dashboard.admin_username, password, role="admin")
            except IntegrityError:
                return  # several processes started at once on a new database: another one made it
            announce(
                f"First start: created dashboard user '{config.dashboard.admin_username}' "
                f"with password {password}  (change it with `lapor user passwd`)"
            )
    finally:
        await engine.dispose()


def cmd_worker(args: argparse.Namespace) -> int:
    """Background work without HTTP: outbox dispatch, conversation timers, media downloads."""
    import dataclasses

    from gateway.worker import run_worker

    config = _load(args.config)
    config = dataclasses.replace(config, worker=dataclasses.replace(config.worker, enabled=True))
    setup_logging(config.logging.level, config.logging.json)
    for secret in secret_values(config):
        register_secret(secret)
    asyncio.run(run_worker(config))
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from store.db import make_engine
    from store.migrate import current_revision, upgrade

    config = _load(args.config)

    async def run() -> str | None:
        engine = make_engine(config.database.url)
        try:
            await upgrade(engine, args.revision)
            return await current_revision(engine)
        finally:
            await engine.dispose()

    revision = asyncio.run(run())
    print(f"database at revision {revision}")
    return 0


def cmd_version(args: argparse.Namespace) -> int:
    print(f"lapor-gateway {__version__}")
    return 0


def cmd_user_add(args: argparse.Namespace) -> int:
    from store.db import make_engine
    from store.migrate import upgrade
    from store.users import ROLES, create_user

    config = _load(args.config)
    if args.role not in ROLES:
        print(f"role must be one of {', '.join(ROLES)}", file=sys.stderr)
        return 2
    password = _new_password(args)
    if password is None:
        return 2

    async def run() -> None:
        engine = make_engine(config.database.url)
        try:
            await upgrade(engine)
            await create_user(engine, args.username, password, role=args.role, department=args.department)
        finally:
            await engine.dispose()

    asyncio.run(run())
    print(f"user {args.username} ({args.role}) created")
    return 0


def _new_password(args: argparse.Namespace) -> str | None:
    """--password, $LAPOR_NEW_PASSWORD or a prompt; None (after saying why) when too short."""
    password = args.password or os.environ.get("LAPOR_NEW_PASSWORD") or getpass.getpass("password: ")
    if len(password) < 10:
        print("password must be at least 10 characters", file=sys.stderr)
        return None
    return password


def cmd_user_passwd(args: argparse.Namespace) -> int:
    """A new password for a dashboard user; also lifts a lockout from failed sign-ins."""
    from store.db import make_engine
    from store.users import set_password

    config = _load(args.config)
    password = _new_password(args)
    if password is None:
        return 2

    async def run() -> bool:
        engine = make_engine(config.database.url)
        try:
            return await set_password(engine, args.username, password)
        finally:
            await engine.dispose()

    if not asyncio.run(run()):
        print(f"no user {args.username}", file=sys.stderr)
        return 1
    print(f"password of {args.username} changed")
    return 0


def cmd_workflow(args: argparse.Namespace) -> int:
    """`lapor department ...` / `lapor routing ...` (workflow/admin_cli.py)."""
    from workflow.admin_cli import run

    return run(_load(args.config), args)


def cmd_telegram_set_webhook(args: argparse.Namespace) -> int:
    """Register `<public_url>/webhooks/telegram` and the secret token with Telegram (setWebhook)."""
    from adapters.base import SendError
    from adapters.telegram import TelegramAdapter

    config = _load(args.config)
    telegram = config.channels.telegram
    if not telegram.enabled:
        print("channels.telegram.bot_token is not set", file=sys.stderr)
        return 2
    url = args.url or config.public_url + "/webhooks/telegram"
    adapter = TelegramAdapter(telegram, config.intake.default_region)

    async def run() -> None:
        try:
            await adapter.set_webhook(url, drop_pending_updates=args.drop_pending_updates)
        finally:
            await adapter.close()

    try:
        asyncio.run(run())
    except SendError as exc:
        print(f"setWebhook failed: {exc.reason}", file=sys.stderr)
        return 1
    print(f"telegram webhook set to {url}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lapor", description="Lapor Gateway: multi-channel public complaints"
    )
    parser.add_argument("--config", "-c", help="TOML config file (default: $LAPOR_CONFIG or ./lapor.toml)")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway (webhooks, simulator, dashboard, outbox)")
    serve.add_argument("--config", "-c", dest="config", default=argparse.SUPPRESS, help="TOML config file")
    serve.add_argument("--host", help="bind address (overrides server.host)")
    serve.add_argument("--port", type=int, help="port (overrides server.port)")
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="send replies and run timers without serving HTTP")
    worker.add_argument("--config", "-c", dest="config", default=argparse.SUPPRESS, help="TOML config file")
    worker.set_defaults(func=cmd_worker)

    migrate = sub.add_parser("migrate", help="bring the database schema up to date (Alembic)")
    migrate.add_argument("--config", "-c", dest="config", default=argparse.SUPPRESS, help="TOML config file")
    migrate.add_argument("--revision", default="head", help="target revision (default: head)")
    migrate.set_defaults(func=cmd_migrate)

    version = sub.add_parser("version", help="print the version")
    version.set_defaults(func=cmd_version)

    user = sub.add_parser("user", help="dashboard users")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    add = user_sub.add_parser("add", help="create a dashboard user")
    add.add_argument("--config", "-c", dest="config", default=argparse.SUPPRESS, help="TOML config file")
    add.add_argument("username")
    add.add_argument("--role", default="admin", help="admin, officer, head or auditor")
    add.add_argument("--department", help="department code for officers and heads")
    add.add_argument("--password", help="password (default: $LAPOR_NEW_PASSWORD or prompt)")
    add.set_defaults(func=cmd_user_add)
    passwd = user_sub.add_parser("passwd", help="set a dashboard user's password (and unlock it)")
    passwd.add_argument("--config", "-c", dest="config", default=argparse.SUPPRESS, help="TOML config file")
    passwd.add_argument("username")
    passwd.add_argument("--password", help="password (default: $LAPOR_NEW_PASSWORD or prompt)")
    passwd.set_defaults(func=cmd_user_passwd)

    telegram = sub.add_parser("telegram", help="Telegram bot setup")
    telegram_sub = telegram.add_subparsers(dest="telegram_command", required=True)
    hook = telegram_sub.add_parser("set-webhook", help="point Telegram at this gateway, with the secret")
    hook.add_argument("--config", "-c", dest="config", default=argparse.SUPPRESS, help="TOML config file")
    hook.add_argument("--url", help="webhook URL (default: server.public_url + /webhooks/telegram)")
    hook.add_argument("--drop-pending-updates", action="store_true", help="discard updates still queued")
    hook.set_defaults(func=cmd_telegram_set_webhook)

    from workflow.admin_cli import add_commands

    add_commands(sub, "TOML config file")
    for name in ("department", "routing"):
        sub.choices[name].set_defaults(func=cmd_workflow)
    from workflow import report_cli  # `lapor report monthly`

    report_cli.add_commands(sub, _load)
    from gateway import backup_cli, keys_cli  # `lapor keys ...`, `lapor backup` (docs/DEPLOY.md)

    keys_cli.add_commands(sub, _load)
    backup_cli.add_commands(sub, _load)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not hasattr(args, "config"):
        args.config = None
    try:
        result: int = args.func(args)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    logging.shutdown()
    return result


if __name__ == "__main__":
    sys.exit(main())
