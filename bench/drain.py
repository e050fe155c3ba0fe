"""Outbox drain: how fast `lapor worker` sends owed replies to a provider that answers in 50 ms.

Needs nothing beyond the venv for SQLite; for PostgreSQL a server the script may create databases on
(`--pg-admin-url`, default postgresql://root@127.0.0.1:5432/test; it creates and drops
`lapor_bench_drain_<pid>`). Run from the project root:

    .venv/bin/python bench/drain.py                         # SQLite and PostgreSQL, 3 rounds each
    .venv/bin/python bench/drain.py --backends sqlite --messages 20000 --rounds 5

What happens, per round:
1. `--messages` replies are seeded as pending outbox rows (SMS and WhatsApp through Twilio, several
   per recipient, as a flood of status updates would leave them) in a fresh database;
2. `lapor worker` (a real process, configured by LAPOR_* variables) sends them to a fake Twilio REST
   API (tests/fakes/twilio.py, in its own process) that records each message and answers 50 ms later;
   the worker talks to it through twilio's own client, as in production;
3. msg/s is read from the database (rows marked sent over time; the rate between 10% and 90% sent is
   the steady state, start-up excluded) and the fake reports every accepted message with its time.

Each round runs the worker with the configured defaults (`[outbox] concurrency`) and with
each of `--concurrency`. Baselines in the same run: the fake's own capacity (plain aiohttp posts,
the largest concurrency in flight, no database, no twilio client) and a naive loop sending one message at a
time through the same adapter. Also printed: the highest number of messages in any 1-second window,
per channel and per recipient, next to the provider's documented limit; every message sent exactly
once is checked.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import sys
import tempfile
import textwrap
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from bench.ingest import Server  # noqa: E402
from bench.ingest_multi import cpu_seconds, create_pg_database, drop_pg_database, pg_commits  # noqa: E402
from tests.fakes.twilio_webhooks import random_account_sid  # noqa: E402

AUTH_TOKEN = "bench-auth-token-0123456789abcdef"
ACCOUNT_SID = random_account_sid()
DELAY = 0.05
WORKER_ARGV = ["-m", "gateway", "worker"]

PROVIDER_LIMITS = {
    "twilio_sms": "Twilio queues above the sender's MPS (long code ~1/s, short code 100/s): no error",
    "twilio_whatsapp": "WhatsApp via Twilio: 80 msg/s per sender by default",
}
"""What the providers document; the dispatcher has no per-channel rate setting to compare with."""

FAKE = textwrap.dedent(
    """
    import asyncio, sys
    sys.path.insert(0, sys.argv[4])
    from aiohttp import web
    from tests.fakes.twilio import FakeTwilio

    class Recording(FakeTwilio):
        def add_routes(self, router):
            super().add_routes(router)
            router.add_get("/bench/sent", self._dump)
            router.add_post("/bench/reset", self._reset)

        async def _dump(self, request):
            return web.json_response(
                [[m["to"], m["body"], m["_created"].timestamp()] for m in self.sent]
            )

        async def _reset(self, request):
            self.sent.clear()
            self.requests.clear()
            return web.json_response({})

    async def main():
        fake = Recording(sys.argv[1], sys.argv[2], response_delay=float(sys.argv[3]))
        print(await fake.start(), flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())
    """
)


def configured_rates() -> tuple[dict[str, float] | None, dict[str, float] | None]:
    """The dispatcher's default per-channel / per-recipient rates, where this version has them
    (gateway/pacing.py); (None, None) before that feature."""
    try:
        from gateway import pacing  # type: ignore[attr-defined, unused-ignore]
    except ImportError:
        return None, None
    channel = getattr(pacing, "DEFAULT_CHANNEL_RATES", None)
    recipient = getattr(pacing, "DEFAULT_RECIPIENT_RATES", None)
    return (dict(channel) if channel is not None else None), (dict(recipient) if recipient else None)


def fake_call(base: str, path: str, method: str = "GET") -> Any:
    request = urllib.request.Request(  # noqa: S310 - loopback fake
        base + path, method=method, data=b"" if method == "POST" else None
    )
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - loopback fake
        return json.loads(response.read())


def seed_rows(count: int, recipients: int) -> list[dict[str, Any]]:
    """Pending replies: 3 of 4 by SMS, 1 of 4 by WhatsApp, `count / recipients` per recipient."""
    now = datetime.now(UTC) - timedelta(seconds=1)
    rows: list[dict[str, Any]] = []
    for n in range(count):
        whatsapp = n % 4 == 3
        person = f"+62812{n % recipients:07d}"
        rows.append(
            {
                "channel": "twilio_whatsapp" if whatsapp else "twilio_sms",
                "to_kind": "phone",
                "to_address": person,
                "text": f"Laporan LPR-BENCH{n:06d} sudah diteruskan ke Dinas Pekerjaan Umum. Balasan #{n}",
                "media": [],
                "kind": "status_update",
                "template_vars": {},
                "meta": {},
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
                "updated_at": now,
            }
        )
    return rows


async def seed(url: str, rows: list[dict[str, Any]]) -> None:
    from sqlalchemy import delete

    from store import models
    from store.db import make_engine
    from store.migrate import upgrade

    engine = make_engine(url, sqlite_synchronous="NORMAL")
    try:
        await upgrade(engine)
        async with engine.begin() as conn:
            await conn.execute(delete(models.outbox))
            for start in range(0, len(rows), 5000):
                await conn.execute(models.outbox.insert(), rows[start : start + 5000])
    finally:
        await engine.dispose()


async def count_sent(url: str) -> int:
    from sqlalchemy import func, select

    from store import models
    from store.db import make_engine

    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            query = select(func.count()).where(models.outbox.c.status == "sent")
            return int((await conn.execute(query)).scalar_one())
    finally:
        await engine.dispose()


def worker_env(url: str, fake_base: str, concurrency: int | None) -> dict[str, str]:
    env = {
        "LAPOR_DATABASE__URL": url,
        "LAPOR_SERVER__PUBLIC_URL": "https://lapor.bench.example",
        "LAPOR_CHANNELS__TWILIO__ACCOUNT_SID": ACCOUNT_SID,
        "LAPOR_CHANNELS__TWILIO__AUTH_TOKEN": AUTH_TOKEN,
        "LAPOR_CHANNELS__TWILIO__SMS_FROM": "+15005550006",
        "LAPOR_CHANNELS__TWILIO__WHATSAPP_FROM": "+15005550007",
        "LAPOR_CHANNELS__TWILIO__API_BASE": fake_base,
        "LAPOR_LOGGING__LEVEL": "WARNING",
    }
    if concurrency is not None:
        env["LAPOR_OUTBOX__CONCURRENCY"] = str(concurrency)
        env["LAPOR_OUTBOX__BATCH_SIZE"] = str(max(50, concurrency))
    return env


def drain_once(
    url: str,
    fake_base: str,
    count: int,
    concurrency: int | None,
    folder: Path,
    commits: Callable[[], int] | None = None,
) -> dict[str, Any]:
    """Start a worker on a seeded database and follow the sent count until everything is sent."""
    samples: list[tuple[float, int, float]] = []
    """(seconds since start, rows sent, worker CPU seconds)"""
    commits_before = commits() if commits else 0
    worker = Server([sys.executable, *WORKER_ARGV], worker_env(url, fake_base, concurrency), folder)
    started = time.perf_counter()
    sent = 0
    try:
        while sent < count and time.perf_counter() - started < 600:
            time.sleep(0.2)  # following another process: polling its database is all there is
            sent = asyncio.run(count_sent(url))
            samples.append((time.perf_counter() - started, sent, cpu_seconds(worker.proc.pid)))
            if worker.proc.poll() is not None:
                break
    finally:
        out = worker.stop()
    per_commit = sent / max(1, commits() - commits_before) if commits else float("nan")
    if "Traceback" in out or sent < count:
        print(f"--- worker output (sent {sent}/{count}):\n{out[-3000:]}")

    def when(fraction: float) -> tuple[float, int, float]:
        return next(sample for sample in samples if sample[1] >= fraction * count)

    steady = cpu_ms = float("nan")
    if sent >= count:  # the steady state: from 10% to 90% sent (start-up and the tail excluded)
        (t1, n1, cpu1), (t2, n2, cpu2) = when(0.1), when(0.9)
        steady = (n2 - n1) / max(1e-9, t2 - t1)
        cpu_ms = 1000 * (cpu2 - cpu1) / max(1, n2 - n1)
    return {
        "sent": sent,
        "seconds": samples[-1][0],
        "steady_rate": steady,
        "overall_rate": sent / samples[-1][0],
        "cpu_ms": cpu_ms,
        "per_commit": per_commit,
    }


def window_max(times: list[float]) -> int:
    """The most events in any 1-second window."""
    times = sorted(times)
    best, left = 0, 0
    for right, t in enumerate(times):
        while t - times[left] >= 1.0:
            left += 1
        best = max(best, right - left + 1)
    return best


def provider_view(fake_base: str, count: int) -> dict[str, Any]:
    """What the fake accepted: per channel and per recipient 1-second peaks, duplicates, missing."""
    sent = fake_call(fake_base, "/bench/sent")
    by_channel: dict[str, list[float]] = defaultdict(list)
    by_recipient: dict[str, list[float]] = defaultdict(list)
    for to, _body, at in sent:
        by_channel["twilio_whatsapp" if to.startswith("whatsapp:") else "twilio_sms"].append(at)
        by_recipient[to].append(at)
    bodies = [body for _to, body, _at in sent]
    return {
        "accepted": len(sent),
        "duplicates": len(bodies) - len(set(bodies)),
        "missing": count - len(set(bodies)),
        "channel_peak": {channel: window_max(times) for channel, times in by_channel.items()},
        "recipient_peak": max((window_max(times) for times in by_recipient.values()), default=0),
    }


async def bare_capacity(fake_base: str, count: int, concurrency: int) -> float:
    """The fake's own msg/s: form posts with basic auth, `concurrency` in flight, nothing else."""
    import aiohttp

    url = f"{fake_base}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    auth = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    gate = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(n: int) -> None:
            async with gate:
                form = {"To": f"+62813{n:07d}", "From": "+15005550006", "Body": f"bare {n}"}
                async with session.post(url, data=form, headers={"Authorization": auth}) as response:
                    await response.read()

        started = time.perf_counter()
        await asyncio.gather(*(one(n) for n in range(count)))
        return count / (time.perf_counter() - started)


async def naive_loop(fake_base: str, seconds: float) -> float:
    """One message at a time through the same adapter the worker uses: the no-concurrency floor."""
    from adapters.base import Address, AddressKind, OutboundMessage
    from adapters.sms.twilio import TwilioSmsAdapter
    from gateway.config import load_config

    config = load_config(environ=worker_env("sqlite+aiosqlite:///unused.db", fake_base, None))
    adapter = TwilioSmsAdapter(config.channels.twilio, config.public_url)
    sent = 0
    started = time.perf_counter()
    try:
        while time.perf_counter() - started < seconds:
            message = OutboundMessage(
                id=sent,
                channel="twilio_sms",
                to=Address(AddressKind.PHONE, "+6281300000001"),
                text=f"naive {sent}",
            )
            await adapter.send(message)
            sent += 1
    finally:
        await adapter.close()
    return sent / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated")
    parser.add_argument("--messages", type=int, default=10_000, help="replies seeded per round")
    parser.add_argument("--recipients", type=int, default=2_500, help="distinct recipients of those replies")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--concurrency", default="20,200", help="[outbox] concurrency values to run besides the default"
    )
    parser.add_argument("--pg-admin-url", default="postgresql://root@127.0.0.1:5432/test")
    args = parser.parse_args()

    from gateway.config import OutboxConfig

    default_concurrency = OutboxConfig().concurrency
    settings: list[tuple[str, int | None]] = [(f"default ({default_concurrency})", None)]
    for value in (int(v) for v in args.concurrency.split(",") if v.strip()):
        if value != default_concurrency:
            settings.append((f"set to {value}", value))
    most = max(value for _, value in settings if value is not None) if len(settings) > 1 else None
    bare_concurrency = most or default_concurrency
    rows = seed_rows(args.messages, args.recipients)
    results: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    bare: list[float] = []
    naive: list[float] = []
    with tempfile.TemporaryDirectory(prefix="lapor-bench-drain-") as tmp:
        folder = Path(tmp)
        fake = Server([sys.executable, "-c", FAKE, ACCOUNT_SID, AUTH_TOKEN, str(DELAY), str(ROOT)])
        assert fake.proc.stdout is not None
        fake_base = fake.proc.stdout.readline().strip()
        databases: dict[str, str] = {}
        try:
            for backend in args.backends.split(","):
                if backend == "sqlite":
                    databases[backend] = f"sqlite+aiosqlite:///{folder}/drain.db"
                else:
                    name = f"lapor_bench_drain_{os.getpid()}"
                    databases[backend] = create_pg_database(args.pg_admin_url, name)
            for round_number in range(args.rounds):
                bare.append(asyncio.run(bare_capacity(fake_base, args.messages // 2, bare_concurrency)))
                naive.append(asyncio.run(naive_loop(fake_base, 2.0)))
                fake_call(fake_base, "/bench/reset", "POST")
                print(
                    f"round {round_number + 1}: bare fake {bare[-1]:6.0f} msg/s, "
                    f"naive loop {naive[-1]:5.1f} msg/s",
                    flush=True,
                )
                for backend, url in databases.items():
                    for label, concurrency in settings:
                        asyncio.run(seed(url, rows))
                        commits = None
                        if backend == "postgresql":
                            name = url.rsplit("/", 1)[1]
                            commits = lambda name=name: pg_commits(args.pg_admin_url, name)  # noqa: E731
                        result = drain_once(url, fake_base, args.messages, concurrency, folder, commits)
                        result.update(provider_view(fake_base, args.messages))
                        fake_call(fake_base, "/bench/reset", "POST")
                        results[(backend, label)].append(result)
                        print(
                            f"  {backend:10} {label:14} steady {result['steady_rate']:6.0f} msg/s, "
                            f"overall {result['overall_rate']:6.0f} msg/s "
                            f"({result['seconds']:.1f} s incl. start), "
                            f"worker CPU {result['cpu_ms']:.2f} ms/msg, "
                            + (
                                f"{result['per_commit']:.1f} msg/transaction, "
                                if backend == "postgresql"
                                else ""
                            )
                            + f"peaks {result['channel_peak']}, recipient peak {result['recipient_peak']}/s, "
                            f"duplicates {result['duplicates']}, missing {result['missing']}",
                            flush=True,
                        )
        finally:
            fake.stop()
            if "postgresql" in databases:
                drop_pg_database(args.pg_admin_url, f"lapor_bench_drain_{os.getpid()}")

    bare_rate = statistics.median(bare)
    print(
        f"\nOutbox drain ({args.rounds} rounds of {args.messages} replies to {args.recipients} recipients, "
        f"fake Twilio answering after {DELAY * 1000:.0f} ms; medians; {os.cpu_count()} shared CPUs)"
    )
    print(
        f"bare fake capacity ({bare_concurrency} in flight, no DB, no twilio client): {bare_rate:7.0f} msg/s"
    )
    print(
        f"naive loop, one send at a time through the adapter:          {statistics.median(naive):7.1f} msg/s"
    )
    for (backend, label), runs in results.items():
        steady = statistics.median(r["steady_rate"] for r in runs)
        overall = statistics.median(r["overall_rate"] for r in runs)
        peaks = {c: max(r["channel_peak"].get(c, 0) for r in runs) for c in PROVIDER_LIMITS}
        print(
            f"lapor worker, {backend:10} concurrency {label:14}: steady {steady:6.0f} msg/s "
            f"({steady / bare_rate:.0%} of the bare fake), overall {overall:6.0f} msg/s; worker CPU "
            f"{statistics.median(r['cpu_ms'] for r in runs):.2f} ms/msg; "
            f"duplicates {sum(r['duplicates'] for r in runs)}, missing {sum(r['missing'] for r in runs)}"
        )
        print(
            f"    busiest 1 s per channel: {peaks}; to one recipient: "
            f"{max(r['recipient_peak'] for r in runs)} in 1 s"
        )
    print("target: >= 1,000 msg/s")
    channel_rates, recipient_rates = configured_rates()
    if channel_rates is None:
        print("provider limits (this version has no per-channel or per-recipient rate setting to check):")
        for channel, limit in PROVIDER_LIMITS.items():
            print(f"    {channel}: {limit}")
        return
    for (backend, label), runs in results.items():
        for channel in PROVIDER_LIMITS:
            peak = max(r["channel_peak"].get(channel, 0) for r in runs)
            rate = channel_rates.get(channel)
            verdict = "no limit" if rate is None else ("respected" if peak <= rate + 1 else "EXCEEDED")
            print(f"{backend:10} {label:14} {channel}: busiest second {peak}, limit {rate}: {verdict}")
    print(f"per-recipient limits configured: {dict(recipient_rates or {})}")


if __name__ == "__main__":
    main()
