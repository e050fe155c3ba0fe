"""The backup and restore drill of docs/DEPLOY.md, run for real: a complaint comes in by SMS, the
database is backed up while the gateway is running (`lapor backup` on SQLite, `pg_dump` on
PostgreSQL), restored somewhere new with the privacy key kept beside it, and a gateway started on the
restored copy serves the complaint's tracking page and still recognises the reporter."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.app import ENGINE
from gateway.config import Config
from store import models
from tests.fakes.twilio import FakeTwilio
from tests.fakes.twilio_webhooks import sign, sms_params
from tests.harness import RunningGateway, bound_socket, make_config, start_gateway

ROOT = Path(__file__).resolve().parent.parent
CITIZEN = "+6281234567890"
SMS_PATH = "/webhooks/twilio/sms"


def gateway_config(database_url: str, fake: FakeTwilio, home: Path, port: int) -> Config:
    """A deployment living in `home`: its key file and media there, as on a real server."""
    return make_config(
        database_url,
        port,
        PRIVACY__KEY_FILE=str(home / "privacy.key"),
        MEDIA__DIRECTORY=str(home / "media"),
        CHANNELS__TWILIO__ACCOUNT_SID=fake.account_sid,
        CHANNELS__TWILIO__AUTH_TOKEN=fake.auth_token,
        CHANNELS__TWILIO__SMS_FROM="+15005550006",
        CHANNELS__TWILIO__API_BASE=fake.base_url,
    )


async def start(database_url: str, fake: FakeTwilio, home: Path) -> RunningGateway:
    sock = bound_socket()
    config = gateway_config(database_url, fake, home, sock.getsockname()[1])
    return await start_gateway(config, sock, background=False)


async def text_in(gw: RunningGateway, fake: FakeTwilio, body: str) -> None:
    params = sms_params(From=CITIZEN, Body=body, AccountSid=fake.account_sid)
    signature = sign(gw.url + SMS_PATH, params, fake.auth_token)
    response = await gw.post_form(SMS_PATH, params, {"X-Twilio-Signature": signature})
    assert response.status == 200


async def scalar(gw: RunningGateway, query: object) -> object:
    async with gw.app[ENGINE].connect() as conn:
        return (await conn.execute(query)).scalar_one()  # type: ignore[call-overload]


def lapor(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
    )


def libpq_url(database_url: str, database: str | None = None) -> str:
    url = make_url(database_url).set(drivername="postgresql")
    if database is not None:
        url = url.set(database=database)
    return url.render_as_string(hide_password=False)


async def backup_and_restore(database_url: str, live: Path, restored: Path) -> tuple[str, str]:
    """The documented procedure for this backend; returns (restored database url, tool output)."""
    backups = live.parent / "backups"
    backups.mkdir()
    if make_url(database_url).get_backend_name() == "sqlite":
        env = {"LAPOR_DATABASE__URL": database_url, "LAPOR_PRIVACY__KEY_FILE": str(live / "privacy.key")}
        done = await asyncio.to_thread(lapor, "backup", "--to", str(backups / "lapor.db"), env=env, cwd=live)
        assert done.returncode == 0, done.stderr
        again = await asyncio.to_thread(lapor, "backup", "--to", str(backups / "lapor.db"), env=env, cwd=live)
        assert again.returncode == 2 and "exists" in again.stderr, "an old backup is not overwritten"
        shutil.copy(backups / "lapor.db", restored / "lapor.db")
        return f"sqlite+aiosqlite:///{restored}/lapor.db", done.stdout
    dump = backups / "lapor.dump"
    command = ["pg_dump", "--format=custom", "--no-owner", f"--file={dump}", libpq_url(database_url)]
    dumped = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, timeout=120)
    assert dumped.returncode == 0, dumped.stderr
    name = make_url(database_url).database + "_restored"
    admin = create_async_engine(make_url(database_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    command = ["pg_restore", "--no-owner", "--exit-on-error", f"--dbname={libpq_url(database_url, name)}"]
    loaded = await asyncio.to_thread(
        subprocess.run, [*command, str(dump)], capture_output=True, text=True, timeout=120
    )
    assert loaded.returncode == 0, loaded.stderr
    return make_url(database_url).set(database=name).render_as_string(hide_password=False), ""


async def drop_restored(restored_url: str) -> None:
    url = make_url(restored_url)
    if url.get_backend_name() == "sqlite":
        return
    admin = create_async_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    await admin.dispose()


async def test_backup_while_running_then_restore_serves_the_tracked_complaint(
    database_url: str, fake_twilio: FakeTwilio, tmp_path: Path
) -> None:
    live, restored = tmp_path / "live", tmp_path / "restored"
    live.mkdir()
    restored.mkdir()
    if make_url(database_url).get_backend_name() == "sqlite":
        database_url = f"sqlite+aiosqlite:///{live}/lapor.db"
    gateway = await start(database_url, fake_twilio, live)
    try:
        for body in ("LaporHendi lampu jalan mati", "di Jl. Pemuda depan Paragon", "ya"):
            await text_in(gateway, fake_twilio, body)
        code = str(await scalar(gateway, select(models.complaints.c.tracking_code)))
        if make_url(database_url).get_backend_name() == "sqlite":
            wal = live / "lapor.db-wal"
            assert wal.exists() and wal.stat().st_size > 0, "recent commits are still in the WAL"
        # Online: the gateway keeps running (and its connections open) during the backup.
        restored_url, said = await backup_and_restore(database_url, live, restored)
        await text_in(gateway, fake_twilio, "LaporHendi sampah menumpuk")  # after the backup: not in it
    finally:
        await gateway.stop()
    if said:
        assert "1 complaints" in said and "integrity ok" in said
        assert "not in the backup" in said and "privacy.key" in said

    # The key travels separately from the database, and is restored with it.
    shutil.copy(live / "privacy.key", restored / "privacy.key")
    again = await start(restored_url, fake_twilio, restored)
    try:
        async with again.session.get(f"{again.url}/lacak/{code}") as response:
            assert response.status == 200
            page = await response.text()
        assert code in page and "Pemuda" in page
        assert await scalar(again, select(func.count()).select_from(models.inbound_messages)) == 3
        await text_in(again, fake_twilio, "LaporHendi got mampet di Jl. Pemuda")
        assert await scalar(again, select(func.count()).select_from(models.reporters)) == 1, (
            "the reporter is recognised: the restored key opens the restored contacts"
        )
    finally:
        await again.stop()
        await drop_restored(restored_url)


def test_backup_refuses_postgresql_and_points_to_pg_dump(tmp_path: Path) -> None:
    env = {"LAPOR_DATABASE__URL": "postgresql+asyncpg://lapor@db.invalid/lapor"}
    result = lapor("backup", "--to", str(tmp_path / "x.db"), env=env, cwd=tmp_path)
    assert result.returncode == 2 and "pg_dump" in result.stderr
    assert not (tmp_path / "x.db").exists()
