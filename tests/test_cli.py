"""The `lapor` command as an operator runs it: a real process, real files, real exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect

from store.db import make_engine
from store.migrate import current_revision, head_revision

ROOT = Path(__file__).resolve().parent.parent


def lapor(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd or ROOT,
        env={**os.environ, **(env or {})},
    )


def test_help_and_version() -> None:
    result = lapor("--help")
    assert result.returncode == 0
    for command in ("serve", "migrate", "version", "user"):
        assert command in result.stdout
    assert lapor("serve", "--help").returncode == 0
    version = lapor("version")
    assert version.returncode == 0 and version.stdout.startswith("lapor-gateway ")


def test_console_script_is_the_same_cli() -> None:
    script = Path(sys.executable).parent / "lapor"
    result = subprocess.run([str(script), "version"], capture_output=True, text=True, timeout=60)
    assert result.stdout == lapor("version").stdout


async def test_migrate_brings_the_schema_to_head(database_url: str, tmp_path: Path) -> None:
    result = lapor("migrate", env={"LAPOR_DATABASE__URL": database_url}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"revision {head_revision()}" in result.stdout
    engine = make_engine(database_url)
    try:
        assert await current_revision(engine) == head_revision()
        async with engine.connect() as conn:
            tables = set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
        assert {"complaints", "outbox", "inbound_messages", "channel_identities", "reporters"} <= tables
    finally:
        await engine.dispose()
    assert lapor("migrate", env={"LAPOR_DATABASE__URL": database_url}, cwd=tmp_path).returncode == 0


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"LAPOR_SERVER__PORT": "eighty"}, "server.port must be a number"),
        ({"LAPOR_SERVER__PROT": "80"}, "unknown config key server.prot"),
        ({"LAPOR_CHANNELS__TWILIO__ACCOUNT_SID": "AC1"}, "channels.twilio.auth_token is required"),
    ],
)
def test_bad_config_stops_serve_with_a_message(environ: dict[str, str], message: str, tmp_path: Path) -> None:
    result = lapor("serve", env=environ, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    result = lapor("--config", str(tmp_path / "nope.toml"), "serve", cwd=tmp_path)
    assert result.returncode == 2 and "nope.toml" in result.stderr


def test_user_add_creates_a_login(tmp_path: Path) -> None:
    env = {
        "LAPOR_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path}/u.db",
        "LAPOR_NEW_PASSWORD": "a-long-password",
    }
    result = lapor("user", "add", "siti", "--role", "officer", "--department", "DPU", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "siti (officer)" in result.stdout
    bad = lapor("user", "add", "budi", "--role", "king", env=env, cwd=tmp_path)
    assert bad.returncode == 2 and "role must be one of" in bad.stderr


def test_user_passwd_sets_a_new_password_and_lifts_a_lockout(tmp_path: Path) -> None:
    """The first-start banner tells the admin to change the printed password with this command."""
    import sqlite3

    from store.users import verify_password

    env = {
        "LAPOR_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path}/u.db",
        "LAPOR_NEW_PASSWORD": "first-password",
    }
    assert lapor("user", "add", "siti", env=env, cwd=tmp_path).returncode == 0
    with sqlite3.connect(tmp_path / "u.db") as db:
        db.execute("UPDATE users SET failed_logins = 5, locked_until = '2999-01-01 00:00:00'")
    second = {**env, "LAPOR_NEW_PASSWORD": "second-password"}
    changed = lapor("user", "passwd", "siti", env=second, cwd=tmp_path)
    assert changed.returncode == 0, changed.stderr
    with sqlite3.connect(tmp_path / "u.db") as db:
        stored, failed, locked = db.execute(
            "SELECT password_hash, failed_logins, locked_until FROM users WHERE username = 'siti'"
        ).fetchone()
    assert verify_password(stored, "second-password") and not verify_password(stored, "first-password")
    assert (failed, locked) == (0, None)
    missing = lapor("user", "passwd", "nobody", env=env, cwd=tmp_path)
    assert missing.returncode == 1 and "no user nobody" in missing.stderr
    short = lapor("user", "passwd", "siti", "--password", "pendek", env=env, cwd=tmp_path)
    assert short.returncode == 2 and "at least 10" in short.stderr


async def test_serve_settles_the_interpreter_once_started() -> None:
    """The start-up heap frozen out of collection, collections on a clock, the GIL handed over sooner."""
    import gc
    import sys

    from aiohttp import web

    from gateway.cli import GIL_SWITCH_SECONDS, settle_interpreter

    interval = sys.getswitchinterval()
    app = web.Application()
    try:
        await settle_interpreter(app)
        assert sys.getswitchinterval() == GIL_SWITCH_SECONDS
        assert gc.get_freeze_count() > 0
        assert not gc.isenabled()  # the paced collector's
        for cleanup in app.on_cleanup:
            await cleanup(app)
        assert gc.isenabled()
    finally:
        gc.unfreeze()
        gc.enable()
        sys.setswitchinterval(interval)
