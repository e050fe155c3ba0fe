"""`lapor keys generate` and `lapor keys rotate`: changing the privacy key without losing anyone.

What the privacy key protects (workflow/privacy.py): every `channel_identities` row holds the contact
encrypted (`address_enc`, Fernet under a key derived from the secret) and a keyed hash of it
(`address`, an HMAC under a second key derived from the same secret) by which the pipeline finds a
returning reporter. A new `[privacy] key` with the old one as `previous_key` keeps old ciphertexts
readable (MultiFernet), but until this command has run two things still depend on the old key:

* the ciphertexts: whoever has an old backup and the old key can read them;
* the lookup hashes: the gateway computes hashes under the *new* key, so a reporter whose row still
  carries the old hash is not recognised, and their next message starts a second reporter.

`rotate` therefore walks every identity in id order, in batches of one transaction each: it decrypts
with the current and previous keys, re-encrypts under the current key and recomputes the hash under
it. When another row already has that hash (written by a gateway that ran with the new key before
the rotation reached this row, or a plaintext row of an older version meeting its encrypted twin)
the two are merged, so the person keeps one identity and one history. Rows already under the current
key with the current hash are left alone: a second run changes nothing, and an interrupted run is
resumed by running it again. Rows from before contacts were encrypted (`address_enc` NULL, the
address in clear) are sealed on the way.

Outbox rows hold their recipient the same way (`to_address` the hash, `to_address_enc` the
ciphertext) and reporters their profile name (`display_name_enc`): after the identities, `rotate`
walks those too, re-encrypting and re-hashing them under the current key, and seals the ones an
older version (or the upgrade to migration 0004) left in clear. No merging there: a row is a row.

Pseudonyms ("Warga-7K3M9Q") are derived from the current key too; they are not stored, so they simply
change with the key (docs/DEPLOY.md says so to the operators). Nothing here prints or logs an address
or a key: only counts and row ids.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, Table, bindparam, delete, or_, select, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import DBAPIError

from gateway.config import Config
from gateway.contacts import merge_reporters
from store import models
from store.db import Database
from workflow.privacy import ContactVault, PrivacyError

DEFAULT_BATCH = 500
ATTEMPTS = 5
"""A batch that meets a concurrent writer (a unique or foreign key race with a live gateway on
PostgreSQL, or a deadlock) is rolled back and run again; its rows are simply re-examined."""

Loader = Callable[[str | None], Config]
Walk = Callable[[Connection, int, int, ContactVault, ContactVault, "RotationReport"], int | None]
"""One batch of one table: (conn, after id, limit, vault, current_only, report) -> last id seen."""


@dataclass
class RotationReport:
    """What one run did (or, with dry_run, would do). Counts only: never an address."""

    scanned: int = 0
    unchanged: int = 0
    reencrypted: int = 0
    """Ciphertexts now under the current key (they were under a previous one)."""
    rehashed: int = 0
    """Lookup hashes recomputed under the current key."""
    sealed: int = 0
    """Plaintext rows of an older version, now encrypted and hashed."""
    merged: int = 0
    """Duplicate identities of one address folded into one."""
    unreadable: list[int] = field(default_factory=list)
    """Ids of rows that no configured key decrypts: left as they are."""
    recipients: int = 0
    """Outbox recipients re-sealed (or sealed from plaintext) under the current key."""
    names: int = 0
    """Reporters' profile names re-sealed (or sealed from plaintext) under the current key."""
    unreadable_recipients: list[int] = field(default_factory=list)
    """Outbox row ids no configured key decrypts."""
    unreadable_names: list[int] = field(default_factory=list)
    """Reporter ids whose name no configured key decrypts."""

    @property
    def changed(self) -> int:
        return self.scanned - self.unchanged - len(self.unreadable)

    def add(self, other: RotationReport) -> None:
        self.scanned += other.scanned
        self.unchanged += other.unchanged
        self.reencrypted += other.reencrypted
        self.rehashed += other.rehashed
        self.sealed += other.sealed
        self.merged += other.merged
        self.unreadable.extend(other.unreadable)
        self.recipients += other.recipients
        self.names += other.names
        self.unreadable_recipients.extend(other.unreadable_recipients)
        self.unreadable_names.extend(other.unreadable_names)

    def summary(self) -> str:
        return (
            f"{self.scanned} identities scanned: {self.changed} updated "
            f"({self.reencrypted} re-encrypted, {self.rehashed} re-hashed, {self.sealed} sealed from "
            f"plaintext), {self.merged} duplicates merged, {self.unchanged} already current, "
            f"{len(self.unreadable)} unreadable; {self.recipients} outbox recipients and {self.names} "
            f"profile names sealed under the current key, "
            f"{len(self.unreadable_recipients) + len(self.unreadable_names)} unreadable"
        )


class _DryRun(Exception):
    """Raised at the end of a dry-run batch so its transaction rolls back."""

    def __init__(self, last_id: int | None) -> None:
        self.last_id = last_id


def generate_key() -> str:
    """A fresh privacy key: 32 random bytes, URL-safe base64 (the format of the generated key file)."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode("ascii")


async def rotate(
    db: Database,
    vault: ContactVault,
    current_only: ContactVault,
    *,
    batch_size: int = DEFAULT_BATCH,
    dry_run: bool = False,
    progress: Callable[[RotationReport], None] | None = None,
) -> RotationReport:
    """Re-seal every channel identity, then every outbox recipient and profile name, under the
    current key. `vault` decrypts with the current and previous keys; `current_only` has the current
    key alone and tells which rows are done already."""
    total = RotationReport()
    for walk in (_rotate_rows, _rotate_recipients, _rotate_names):
        after = 0
        while True:
            batch = RotationReport()
            last_id = await _run_batch(db, after, batch_size, vault, current_only, batch, dry_run, walk)
            if last_id is None:
                break
            total.add(batch)
            after = last_id
            if progress is not None:
                progress(total)
    return total


async def _run_batch(
    db: Database,
    after: int,
    limit: int,
    vault: ContactVault,
    current_only: ContactVault,
    report: RotationReport,
    dry_run: bool,
    walk: Walk,
) -> int | None:
    for attempt in range(1, ATTEMPTS + 1):
        fresh = RotationReport()

        def work(conn: Connection, fresh: RotationReport = fresh) -> int | None:
            last = walk(conn, after, limit, vault, current_only, fresh)
            if dry_run:
                raise _DryRun(last)
            return last

        try:
            last_id = await db.run(work)
        except _DryRun as rolled_back:
            last_id = rolled_back.last_id
        except DBAPIError:
            if attempt == ATTEMPTS:
                raise
            continue
        report.add(fresh)
        return last_id
    raise AssertionError("unreachable")  # pragma: no cover


def _rotate_rows(
    conn: Connection,
    after: int,
    limit: int,
    vault: ContactVault,
    current_only: ContactVault,
    report: RotationReport,
) -> int | None:
    table = models.channel_identities
    rows = conn.execute(select(table).where(table.c.id > after).order_by(table.c.id).limit(limit)).all()
    if not rows:
        return None
    gone: set[int] = set()
    for row in rows:
        if row.id in gone:
            continue
        report.scanned += 1
        opened = _opened(vault, current_only, row.address, row.address_enc)
        if opened is None:
            report.unreadable.append(row.id)
            continue
        plaintext, token = opened
        wanted_hash = vault.lookup_hash(row.kind, plaintext)
        if token is not None and wanted_hash == row.address:
            report.unchanged += 1
            continue
        if row.address_enc is None:
            report.sealed += 1
        else:
            if token is None:
                report.reencrypted += 1
            if wanted_hash != row.address:
                report.rehashed += 1
        keep = row
        if wanted_hash != row.address:
            twin = conn.execute(
                select(table).where(
                    table.c.kind == row.kind, table.c.address == wanted_hash, table.c.id != row.id
                )
            ).first()
            if twin is not None:
                keep = _merge_identity(conn, keep=row, drop=twin)
                gone.add(twin.id)
                report.merged += 1
        conn.execute(
            update(table)
            .where(table.c.id == row.id)
            .values(
                address=wanted_hash,
                address_enc=token if token is not None else vault.encrypt(plaintext),
                last_channel=keep.last_channel,
                last_seen_at=keep.last_seen_at,
                unreachable=keep.unreachable,
            )
        )
    return int(rows[-1].id)


def _rotate_recipients(
    conn: Connection,
    after: int,
    limit: int,
    vault: ContactVault,
    current_only: ContactVault,
    report: RotationReport,
) -> int | None:
    """One batch of outbox rows: recipient hash and ciphertext under the current key."""
    table = models.outbox
    rows = conn.execute(
        select(table.c.id, table.c.to_kind, table.c.to_address, table.c.to_address_enc)
        .where(table.c.id > after)
        .order_by(table.c.id)
        .limit(limit)
    ).all()
    if not rows:
        return None
    changes = []
    for row in rows:
        opened = _opened(vault, current_only, row.to_address, row.to_address_enc)
        if opened is None:
            report.unreadable_recipients.append(row.id)
            continue
        plaintext, token = opened
        wanted_hash = vault.lookup_hash(row.to_kind, plaintext)
        if token is not None and wanted_hash == row.to_address:
            continue
        report.recipients += 1
        changes.append(
            {"row_id": row.id, "new_hash": wanted_hash, "new_token": token or vault.encrypt(plaintext)}
        )
    if changes:
        conn.execute(
            update(table)
            .where(table.c.id == bindparam("row_id"))
            .values(to_address=bindparam("new_hash"), to_address_enc=bindparam("new_token")),
            changes,
        )
    return int(rows[-1].id)


def _rotate_names(
    conn: Connection,
    after: int,
    limit: int,
    vault: ContactVault,
    current_only: ContactVault,
    report: RotationReport,
) -> int | None:
    """One batch of reporters with a profile name: the name encrypted under the current key only."""
    table = models.reporters
    rows = conn.execute(
        select(table.c.id, table.c.display_name, table.c.display_name_enc)
        .where(
            table.c.id > after,
            or_(table.c.display_name.is_not(None), table.c.display_name_enc.is_not(None)),
        )
        .order_by(table.c.id)
        .limit(limit)
    ).all()
    if not rows:
        return None
    changes = []
    for row in rows:
        opened = _opened(vault, current_only, row.display_name, row.display_name_enc)
        if opened is None:
            report.unreadable_names.append(row.id)
            continue
        plaintext, token = opened
        if token is not None and row.display_name is None:
            continue
        report.names += 1
        changes.append({"row_id": row.id, "new_token": token or vault.encrypt(plaintext)})
    if changes:
        conn.execute(
            update(table)
            .where(table.c.id == bindparam("row_id"))
            .values(display_name=None, display_name_enc=bindparam("new_token")),
            changes,
        )
    return int(rows[-1].id)


def _opened(
    vault: ContactVault, current_only: ContactVault, plain: str | None, sealed: str | None
) -> tuple[str, str | None] | None:
    """(plaintext, the stored token when it is already under the current key), or None when no
    configured key opens it. A row never sealed yet is its own plaintext."""
    if sealed is None:
        return (plain or ""), None
    try:
        plaintext = vault.decrypt(sealed)
    except PrivacyError:
        return None
    return plaintext, sealed if _is_current(current_only, sealed) else None


def _is_current(current_only: ContactVault, token: str) -> bool:
    try:
        current_only.decrypt(token)
    except PrivacyError:
        return False
    return True


_EPOCH = datetime.min.replace(tzinfo=UTC)


def _merge_identity(conn: Connection, *, keep: Row[Any], drop: Row[Any]) -> Row[Any]:
    """Fold `drop` (same kind and address) into `keep`: its reporter, messages, conversation and
    complaints move over, then it is deleted. Returns the row whose reachability is the most recent."""
    if drop.reporter_id != keep.reporter_id:
        _merge_reporter(conn, source=drop.reporter_id, target=keep.reporter_id)
    for column in _references(models.channel_identities):
        conn.execute(update(column.table).where(column == drop.id).values({column.name: keep.id}))
    conn.execute(delete(models.channel_identities).where(models.channel_identities.c.id == drop.id))
    return drop if (drop.last_seen_at or _EPOCH) > (keep.last_seen_at or _EPOCH) else keep


def _merge_reporter(conn: Connection, *, source: int, target: int) -> None:
    """`merge_reporters` (the Telegram shared-contact merge), except that the conversation touched
    last wins: the duplicate usually holds the intake the citizen is in the middle of."""
    conversations = models.conversations
    updated = dict(
        conn.execute(
            select(conversations.c.reporter_id, conversations.c.updated_at).where(
                conversations.c.reporter_id.in_((source, target))
            )
        ).all()
    )
    if source in updated and target in updated and updated[source] > updated[target]:
        conn.execute(delete(conversations).where(conversations.c.reporter_id == target))
    merge_reporters(conn, source=source, target=target)
    # Whatever else points at a reporter (the audit of identity reveals, later tables) follows too.
    for column in _references(models.reporters):
        conn.execute(update(column.table).where(column == source).values({column.name: target}))


def _references(table: Table) -> list[Column[Any]]:
    """Every column, in every model table, that is a foreign key to `table`'s id."""
    found: list[Column[Any]] = []
    for other in models.Base.metadata.sorted_tables:
        for fk in other.foreign_keys:
            if fk.column.table is table:
                found.append(fk.parent)
    return found


# ---- the command line ----------------------------------------------------------------------------


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser], load: Loader) -> None:
    """`lapor keys ...`; `load` reads the configuration the way every other command does."""
    keys = sub.add_parser("keys", help="privacy key: generate a new one, rotate stored contacts to it")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    generate = keys_sub.add_parser("generate", help="print a fresh random privacy key")
    generate.set_defaults(func=lambda args: _cmd_generate())
    rotate_cmd = keys_sub.add_parser(
        "rotate",
        help="re-encrypt and re-hash every stored contact under privacy.key (previous_key still read)",
    )
    rotate_cmd.add_argument(
        "--config", "-c", dest="config", default=argparse.SUPPRESS, help="TOML config file"
    )
    rotate_cmd.add_argument("--batch-size", type=int, default=DEFAULT_BATCH, help="rows per transaction")
    rotate_cmd.add_argument("--dry-run", action="store_true", help="count what would change, change nothing")
    rotate_cmd.set_defaults(func=lambda args: _cmd_rotate(load(args.config), args))


def _cmd_generate() -> int:
    print(generate_key())
    return 0


def _cmd_rotate(config: Config, args: argparse.Namespace) -> int:
    privacy = config.privacy
    secret = privacy.key.reveal()
    if not secret:
        try:
            with open(privacy.key_file) as handle:
                secret = handle.read().strip()
        except FileNotFoundError:
            secret = ""
    if not secret:
        print(
            "no privacy key: set privacy.key (LAPOR_PRIVACY__KEY) or privacy.key_file to the new key",
            file=sys.stderr,
        )
        return 2
    previous = privacy.previous_key.reveal()
    if previous == secret:
        print("privacy.previous_key is the same as privacy.key: nothing to rotate from", file=sys.stderr)
        return 2
    if args.batch_size < 1:
        print("--batch-size must be at least 1", file=sys.stderr)
        return 2
    vault = ContactVault(secret, (previous,) if previous else ())
    current_only = ContactVault(secret)

    def progress(report: RotationReport) -> None:
        print(f"... {report.scanned} scanned, {report.changed} updated", flush=True)

    async def run() -> RotationReport:
        db = Database(config.database.url, sqlite_synchronous=config.database.sqlite_synchronous)
        try:
            return await rotate(
                db, vault, current_only, batch_size=args.batch_size, dry_run=args.dry_run, progress=progress
            )
        finally:
            await db.dispose()

    report = asyncio.run(run())
    print(("dry run, nothing written: " if args.dry_run else "") + report.summary())
    unreadable = {
        "channel_identities": report.unreadable,
        "outbox": report.unreadable_recipients,
        "reporters": report.unreadable_names,
    }
    for table, ids in unreadable.items():
        if ids:
            shown = ", ".join(str(i) for i in ids[:20])
            more = " ..." if len(ids) > 20 else ""
            print(
                f"{table} rows no configured key decrypts (ids {shown}{more}): set the key they "
                "were written with as privacy.previous_key and run again",
                file=sys.stderr,
            )
    if any(unreadable.values()):
        return 1
    if args.dry_run and (report.changed or report.recipients or report.names):
        return 3
    return 0
