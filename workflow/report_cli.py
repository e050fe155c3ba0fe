"""`lapor report monthly --month YYYY-MM [--format text|json|csv]`: the open-data figures in a shell.

For the monthly letter to the mayor and for scripts that publish the files elsewhere; the numbers are
the ones `/open-data/` serves (workflow.report). Read-only: it never migrates or writes.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime

from gateway.config import Config
from store.db import make_engine
from workflow.calendar import WorkingCalendar
from workflow.report import Month, MonthlyReport, monthly_report, to_csv, to_text

FORMATS = ("text", "json", "csv")


def add_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], load: Callable[[str | None], Config]
) -> None:
    """Register `lapor report monthly`; `load` is the CLI's config loader (file, env, validation)."""
    report = sub.add_parser("report", help="reports from the complaint data")
    report_sub = report.add_subparsers(dest="report_command", required=True)
    monthly = report_sub.add_parser("monthly", help="one month's figures (the open data), no personal data")
    monthly.add_argument("--config", "-c", dest="config", default=argparse.SUPPRESS, help="TOML config file")
    monthly.add_argument("--month", help="YYYY-MM, Asia/Jakarta (default: last month)")
    monthly.add_argument("--format", choices=FORMATS, default="text", help="output format (default: text)")
    monthly.set_defaults(func=lambda args: run(load(args.config), args))


def calendar_for(config: Config) -> WorkingCalendar:
    """The working-day calendar exactly as the running gateway builds it (workflow.setup)."""
    wf = config.workflow
    return WorkingCalendar.from_strings(
        wf.collective_leave, joint_leave=wf.joint_leave, working_days=wf.working_days
    )


def run(config: Config, args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    try:
        month = Month.parse(args.month) if args.month else Month.of(now).previous()
    except ValueError as exc:
        print(f"--month: {exc}", file=sys.stderr)
        return 2
    report = asyncio.run(_report(config, month, now))
    if args.format == "json":
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    elif args.format == "csv":
        sys.stdout.write(to_csv(report))
    else:
        sys.stdout.write(to_text(report))
    return 0


async def _report(config: Config, month: Month, now: datetime) -> MonthlyReport:
    engine = make_engine(config.database.url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                functools.partial(monthly_report, month=month, calendar=calendar_for(config), now=now)
            )
    finally:
        await engine.dispose()
