"""`lapor backup --to FILE`: a consistent copy of the embedded SQLite database, taken while it runs.

Copying `var/lapor.db` with `cp` is not a backup: in WAL mode the latest commits live in
`lapor.db-wal` until a checkpoint, and a copy taken mid-write can be torn. SQLite's online backup API
(`sqlite3.Connection.backup`) copies a consistent snapshot through a read transaction, which in WAL
mode does not hold up the gateway's writers. The copy is written beside the target, checked with
`PRAGMA integrity_check`, synced, and only then renamed into place, so a crash never leaves a
half-written file under the backup's name.

The privacy key is deliberately *not* in the backup (a stolen backup alone must not reveal who
complained); it has to be kept safe separately, and the command says so every time. PostgreSQL is
backed up with `pg_dump` (docs/DEPLOY.md).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import make_url

from gateway.config import Config

Loader = Callable[[str | None], Config]


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser], load: Loader) -> None:
    backup = sub.add_parser("backup", help="copy the embedded SQLite database consistently, while it runs")
    backup.add_argument("--config", "-c", dest="config", default=argparse.SUPPRESS, help="TOML config file")
    backup.add_argument("--to", required=True, metavar="FILE", help="where to write the copy")
    backup.add_argument("--force", action="store_true", help="replace FILE if it exists")
    backup.set_defaults(func=lambda args: _cmd_backup(load(args.config), args))


def backup_sqlite(source: Path, target: Path) -> int:
    """Copy `source` to `target` through the online backup API; returns the number of complaints in
    the copy (a sanity figure for the operator). Raises `RuntimeError` if the copy is not sound."""
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    with (
        contextlib.closing(sqlite3.connect(source, timeout=30)) as src,
        contextlib.closing(sqlite3.connect(partial)) as dst,
    ):
        src.backup(dst)
        (verdict,) = dst.execute("PRAGMA integrity_check").fetchone()
        if verdict != "ok":
            raise RuntimeError(f"the copy failed its integrity check: {verdict}")
        complaints = int(dst.execute("SELECT count(*) FROM complaints").fetchone()[0])
    with open(partial, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, target)
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return complaints


def _cmd_backup(config: Config, args: argparse.Namespace) -> int:
    url = make_url(config.database.url)
    if url.get_backend_name() != "sqlite":
        print(
            "database.url is PostgreSQL: back it up with pg_dump --format=custom (docs/DEPLOY.md)",
            file=sys.stderr,
        )
        return 2
    if not url.database or url.database == ":memory:":
        print("database.url names no database file", file=sys.stderr)
        return 2
    source = Path(url.database)
    if not source.exists():
        print(f"no database at {source}", file=sys.stderr)
        return 2
    target = Path(args.to)
    if target.exists() and not args.force:
        print(f"{target} exists (use --force to replace it)", file=sys.stderr)
        return 2
    if target.resolve() == source.resolve():
        print("the backup must not be the database itself", file=sys.stderr)
        return 2
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        complaints = backup_sqlite(source, target)
    except (sqlite3.Error, RuntimeError) as exc:
        print(f"backup failed: {exc}", file=sys.stderr)
        return 1
    key = "privacy.key (LAPOR_PRIVACY__KEY)" if config.privacy.key else f"key file {config.privacy.key_file}"
    size = target.stat().st_size
    print(f"backed up {source} to {target}: {complaints} complaints, {size} bytes, integrity ok")
    print(f"not in the backup: {key} and media in {config.media.directory}; keep them safe separately")
    return 0
