"""The database goes away mid-load and comes back: nothing acknowledged is lost, nothing is a 500.

On PostgreSQL the server itself is stopped and started again under load: connections die, new ones
are refused, and the gateway must answer 503 (providers retry non-2xx) until it reconnects, then
catch up on the replies it owes. The server stopped is a throwaway cluster of the test's own (initdb
in a temporary directory, its own port), never the one LAPOR_TEST_DATABASE_URL points at: the other
tests, other pytest-xdist workers and other suites on the machine keep their database throughout.

On SQLite there is no server to restart; the equivalent outage is another process holding the
database file's write lock for a while: every writer of the gateway blocks on it, and must carry
on where it stood once the lock is released.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.fakes.twilio import FakeTwilio
from tests.fault.support import (
    ThrowawayCluster,
    TwilioPlayer,
    gateway_process,
    on_postgresql,
    replies_by_recipient,
    sms_webhooks,
    stored,
    throwaway_cluster,
)
from tests.harness import migrate

COUNT = 400
CONCURRENCY = 16
LOCK_WINDOW = 3.0

LOCKER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("COMMIT")
print("released", flush=True)
"""


@pytest.fixture
async def outage_database(database_url: str) -> AsyncIterator[tuple[str, ThrowawayCluster | None]]:
    """(url, cluster to stop): on PostgreSQL runs a throwaway cluster, on SQLite the test's file."""
    if not on_postgresql(database_url):
        yield database_url, None
        return
    async with throwaway_cluster() as cluster:
        yield cluster.url, cluster


async def postgresql_outage(cluster: ThrowawayCluster, player: TwilioPlayer) -> None:
    """Stop the server under load, wait until the gateway has turned webhooks away, start it again."""
    await cluster.stop()
    try:
        await player.wait_until(lambda: player.delivery.statuses[503] >= CONCURRENCY, timeout=60)
    finally:
        await cluster.start()


async def sqlite_lock(database_url: str, player: TwilioPlayer) -> None:
    """Another process takes the write lock for LOCK_WINDOW seconds. That is an observation window,
    not a synchronisation: while it lasts, the load must visibly stall (nothing can be committed, so
    at most the requests already past their commit are acknowledged)."""
    path = make_url(database_url).database
    assert path
    locker = await asyncio.create_subprocess_exec(
        sys.executable, "-c", LOCKER, path, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    assert locker.stdin is not None and locker.stdout is not None
    try:
        assert (await locker.stdout.readline()).strip() == b"locked"
        acked = len(player.delivery.acked)
        try:
            await player.wait_until(lambda: len(player.delivery.acked) > acked + CONCURRENCY, LOCK_WINDOW)
        except TimeoutError:
            pass  # stalled behind the lock, as it must be
        else:
            raise AssertionError("webhooks were acknowledged while another process held the write lock")
    finally:
        locker.stdin.write(b"release\n")
        await locker.stdin.drain()
        assert (await locker.stdout.readline()).strip() == b"released"
        assert await locker.wait() == 0


async def test_database_outage_mid_load_loses_no_acknowledged_work(
    outage_database: tuple[str, ThrowawayCluster | None], fake_twilio: FakeTwilio, tmp_path: Path
) -> None:
    database_url, cluster = outage_database
    await migrate(database_url)
    # A lease well past the outage: a send whose outcome cannot be written while the database is
    # away is retried by its own dispatcher until it can, rather than left in doubt.
    process = gateway_process(database_url, fake_twilio, tmp_path, OUTBOX__LEASE_SECONDS="30")
    await process.start()
    hooks = sms_webhooks(fake_twilio, COUNT)
    player = TwilioPlayer(process.port, fake_twilio.auth_token, concurrency=CONCURRENCY)
    load = asyncio.create_task(player.burst(hooks, retry_until_acked=True))
    try:
        await player.wait_for_acks(COUNT // 4, timeout=60)
        if cluster is not None:
            await postgresql_outage(cluster, player)
        else:
            await sqlite_lock(database_url, player)
        await asyncio.wait_for(load, timeout=120)
        await fake_twilio.wait_for_messages(COUNT, timeout=90)
    finally:
        load.cancel()
        code = await process.terminate()
    output = "".join(process.output)
    assert code == 0, output[-3000:]

    statuses = player.delivery.statuses
    assert set(statuses) <= {200, 503}, f"{statuses}: {player.delivery.bodies_5xx[:3]}"
    assert player.delivery.acked == {hook.sid for hook in hooks}
    final = await stored(database_url, tmp_path)
    assert final.inbound_sids == {hook.sid: 1 for hook in hooks}
    assert final.outbox_to == {hook.sender: 1 for hook in hooks}
    assert final.outbox_status == {"sent": COUNT}
    assert replies_by_recipient(fake_twilio) == {hook.sender: 1 for hook in hooks}
    assert "Error handling request" not in output, output[-3000:]
    assert "left in doubt" not in output, output[-3000:]
    retried = output.count("cannot record outcome yet")
    print(f"database outage: {dict(statuses)}, {retried} outcome write(s) retried")
