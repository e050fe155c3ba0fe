"""Shared pieces of the fault suite: a gateway child process wired to a fake Twilio, a load generator
that plays Twilio (signed webhooks, retries on non-2xx), and direct reads of the database.

The load generator records what the gateway *acknowledged*: a 200 is Twilio's proof the message was
taken, so the suite's invariants are stated over acks, never over what was merely sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from store import models
from store.db import make_engine
from tests.fakes.twilio import FakeTwilio
from tests.fakes.twilio_webhooks import sign, sms_params
from tests.harness import GatewayProcess, bound_socket
from workflow.privacy import ContactVault, open_recipient

SMS_PATH = "/webhooks/twilio/sms"


def free_port() -> int:
    sock = bound_socket()
    port = int(sock.getsockname()[1])
    sock.close()
    return port


def gateway_process(
    database_url: str, fake: FakeTwilio, tmp_path: Path, port: int | None = None, **env: str
) -> GatewayProcess:
    """`python -m gateway serve` with Twilio SMS pointed at `fake`; `env` adds LAPOR_* overrides."""
    port = port or free_port()
    base = {
        "LAPOR_DATABASE__URL": database_url,
        "LAPOR_SERVER__PUBLIC_URL": f"http://127.0.0.1:{port}",
        "LAPOR_CHANNELS__TWILIO__ACCOUNT_SID": fake.account_sid,
        "LAPOR_CHANNELS__TWILIO__AUTH_TOKEN": fake.auth_token,
        "LAPOR_CHANNELS__TWILIO__SMS_FROM": "+15005550006",
        "LAPOR_CHANNELS__TWILIO__API_BASE": fake.base_url,
        "LAPOR_OUTBOX__LEASE_SECONDS": "3",
        "LAPOR_OUTBOX__POLL_SECONDS": "0.2",
        "LAPOR_OUTBOX__BASE_DELAY_SECONDS": "0.1",
        "LAPOR_OUTBOX__MAX_DELAY_SECONDS": "2",
        "LAPOR_DASHBOARD__ENABLED": "false",
        "LAPOR_PRIVACY__KEY_FILE": str(tmp_path / "privacy.key"),
        "LAPOR_MEDIA__DIRECTORY": str(tmp_path / "media"),
    }
    base.update({f"LAPOR_{key.upper()}": value for key, value in env.items()})
    return GatewayProcess(base, port, str(tmp_path))


def citizen(index: int) -> str:
    """A distinct Indonesian mobile number per index."""
    return f"+62812{index:08d}"


@dataclass
class Webhook:
    sid: str
    sender: str
    form: dict[str, str]


def sms_webhooks(fake: FakeTwilio, count: int, *, text: str = "LaporHendi lampu jalan mati") -> list[Webhook]:
    """`count` inbound SMS, one per citizen, each with its own MessageSid."""
    hooks = []
    for index in range(count):
        sender = citizen(index)
        form = sms_params(From=sender, Body=text, AccountSid=fake.account_sid)
        hooks.append(Webhook(form["MessageSid"], sender, form))
    return hooks


@dataclass
class Delivery:
    """What the gateway answered, per MessageSid."""

    acked: set[str] = field(default_factory=set)
    statuses: Counter[int] = field(default_factory=Counter)
    """Every HTTP status seen (retries included); connection failures count under 0."""
    errors: list[str] = field(default_factory=list)
    bodies_5xx: list[str] = field(default_factory=list)


class TwilioPlayer:
    """Posts signed SMS webhooks to one gateway the way Twilio's edge would."""

    def __init__(self, port: int, auth_token: str, *, concurrency: int = 32) -> None:
        self.url = f"http://127.0.0.1:{port}{SMS_PATH}"
        self.auth_token = auth_token
        self.delivery = Delivery()
        self.concurrency = concurrency
        self.attempts = 0
        """Requests started (retries included)."""
        self.changed = asyncio.Condition()
        """Notified when a request starts and when it is answered."""

    def headers(self, hook: Webhook) -> dict[str, str]:
        return {"X-Twilio-Signature": sign(self.url, hook.form, self.auth_token)}

    async def post(self, session: aiohttp.ClientSession, hook: Webhook) -> int:
        """One attempt; returns the status (0: the connection failed, nothing was acknowledged)."""
        async with self.changed:
            self.attempts += 1
            self.changed.notify_all()
        try:
            return await self._post(session, hook)
        finally:
            async with self.changed:
                self.changed.notify_all()

    async def _post(self, session: aiohttp.ClientSession, hook: Webhook) -> int:
        try:
            async with session.post(self.url, data=hook.form, headers=self.headers(hook)) as response:
                body = await response.text()
                status = response.status
        except (aiohttp.ClientError, OSError) as exc:
            self.delivery.statuses[0] += 1
            self.delivery.errors.append(type(exc).__name__)
            return 0
        self.delivery.statuses[status] += 1
        if status >= 500:
            self.delivery.bodies_5xx.append(f"{status} {body[:200]}")
        if status == 200:
            self.delivery.acked.add(hook.sid)
        return status

    async def burst(self, hooks: Iterable[Webhook], *, retry_until_acked: bool = False) -> None:
        """Post every webhook, `concurrency` at a time; with `retry_until_acked`, a non-200 answer (or
        a refused connection) is retried as a provider retries, until the gateway takes it."""
        queue: asyncio.Queue[Webhook] = asyncio.Queue()
        for hook in hooks:
            queue.put_nowait(hook)
        connector = aiohttp.TCPConnector(limit=self.concurrency, force_close=False)
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

            async def worker() -> None:
                while not queue.empty():
                    hook = queue.get_nowait()
                    while True:
                        status = await self.post(session, hook)
                        if status == 200 or not retry_until_acked:
                            break
                        await asyncio.sleep(0.05)  # a provider's retry back-off, not synchronisation

            await asyncio.gather(*(worker() for _ in range(self.concurrency)))

    async def wait_until(self, ready: Callable[[], bool], timeout: float = 60.0) -> None:  # noqa: ASYNC109
        async with asyncio.timeout(timeout), self.changed:
            await self.changed.wait_for(ready)

    async def wait_for_acks(self, count: int, timeout: float = 60.0) -> None:  # noqa: ASYNC109
        await self.wait_until(lambda: len(self.delivery.acked) >= count, timeout)


@dataclass
class Stored:
    inbound_sids: Counter[str]
    outbox_to: Counter[str]
    outbox_status: Counter[str]
    complaints: int


async def stored(database_url: str, tmp_path: Path | None = None) -> Stored:
    """What the database holds, read by a fresh engine (the gateway may be dead); recipients opened
    with the privacy key that `gateway_process(..., tmp_path)` processes share (else as stored)."""
    vault = ContactVault((tmp_path / "privacy.key").read_text().strip()) if tmp_path else None
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            inbound = Counter(
                str(sid)
                for sid in (await conn.execute(select(models.InboundMessage.provider_message_id))).scalars()
            )
            outbox_rows = [
                (open_recipient(vault, row) if vault else row["to_address"], row["status"])
                for row in (await conn.execute(select(models.outbox))).mappings()
            ]
            complaints = int(
                (await conn.execute(select(func.count()).select_from(models.Complaint))).scalar_one()
            )
    finally:
        await engine.dispose()
    return Stored(
        inbound,
        Counter(str(to) for to, _ in outbox_rows),
        Counter(str(status) for _, status in outbox_rows),
        complaints,
    )


def replies_by_recipient(fake: FakeTwilio) -> Counter[str]:
    return Counter(str(message["to"]) for message in fake.sent)


def burst_size(default: int) -> int:
    """The burst's webhook count: `LAPOR_FAULT_BURST` overrides the CI-sized default."""
    return int(os.environ.get("LAPOR_FAULT_BURST", default))


def on_postgresql(database_url: str) -> bool:
    return make_url(database_url).get_backend_name() == "postgresql"


PG_BINDIRS = "/usr/lib/postgresql/*/bin"


def pg_bindir() -> Path:
    """Where initdb and pg_ctl are: `LAPOR_TEST_PG_BINDIR`, else `pg_config --bindir` on PATH, else
    the newest Debian/Ubuntu /usr/lib/postgresql/<version>/bin."""
    if configured := os.environ.get("LAPOR_TEST_PG_BINDIR"):
        return Path(configured)
    if pg_config := shutil.which("pg_config"):
        found = Path(
            subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True).stdout.strip()
        )
        if (found / "initdb").exists():
            return found
    candidates = sorted(
        (Path(p) for p in glob.glob(PG_BINDIRS) if Path(p, "initdb").exists()),
        key=lambda p: [int(part) for part in re.findall(r"\d+", p.parent.name)],
    )
    if not candidates:
        raise RuntimeError(
            f"no PostgreSQL server binaries (initdb) in {PG_BINDIRS}; set LAPOR_TEST_PG_BINDIR"
        )
    return candidates[-1]


@dataclass
class ThrowawayCluster:
    """A PostgreSQL server of the test's own (initdb in a temporary directory, its own port), so a
    test may stop and start it without touching the cluster every other test (and every other
    pytest-xdist worker) shares."""

    bindir: Path
    root: Path
    port: int
    user: str = "lapor"

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url_of(self, database: str) -> str:
        return f"postgresql+asyncpg://{self.user}@127.0.0.1:{self.port}/{database}"

    @property
    def url(self) -> str:
        return self.url_of("lapor")

    async def _run(self, tool: str, *args: str) -> None:
        argv = [str(self.bindir / tool), *args]
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            argv = ["runuser", "-u", "postgres", "--", *argv]
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            log = (self.root / "server.log").read_text(errors="replace")[-2000:] if tool == "pg_ctl" else ""
            raise RuntimeError(f"{tool} {' '.join(args)} failed: {out.decode()}\n{log}")

    async def init(self) -> None:
        await self._run(
            "initdb", "-D", str(self.data), "-U", self.user, "-A", "trust", "-E", "UTF8",
            "--no-locale", "--no-sync", "--no-instructions",
        )  # fmt: skip

    async def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c shared_buffers=16MB -c max_connections=100"
        )
        log = str(self.root / "server.log")
        await self._run("pg_ctl", "-D", str(self.data), "-l", log, "-o", options, "-w", "-t", "60", "start")

    async def stop(self, mode: str = "fast") -> None:
        """`fast`: every session is disconnected and new connections are refused, as in an outage."""
        await self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")


@contextlib.asynccontextmanager
async def throwaway_cluster() -> AsyncIterator[ThrowawayCluster]:
    """A running ThrowawayCluster with an empty database `lapor`; removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="lapor-pg-"))
    if os.geteuid() == 0:
        postgres = pwd.getpwnam("postgres")
        os.chown(root, postgres.pw_uid, postgres.pw_gid)
    cluster = ThrowawayCluster(pg_bindir(), root, free_port())
    try:
        await cluster.init()
        await cluster.start()
        admin = make_engine(cluster.url_of("postgres"))
        try:
            async with admin.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.exec_driver_sql("CREATE DATABASE lapor")
        finally:
            await admin.dispose()
        yield cluster
    finally:
        with contextlib.suppress(RuntimeError):
            await cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
