"""Outbox drain: how fast `lapor worker` sends owed replies to providers that answer in 50 ms, and
whether the providers' rate limits hold at the provider.

Needs nothing beyond the venv for SQLite; for PostgreSQL a server the script may create databases on
(`--pg-admin-url`, default postgresql://root@127.0.0.1:5432/test; it creates and drops
`lapor_bench_drain_<pid>`). Run from the project root:

    .venv/bin/python bench/drain.py                         # SQLite and PostgreSQL, 3 rounds each
    .venv/bin/python bench/drain.py --backends sqlite --mixes sms --messages 20000 --rounds 5

Two mixes, each seeded as pending outbox rows in a fresh database (as a flood of status updates
would leave them), then sent by `lapor worker` (a real process, configured by LAPOR_* variables):

- `sms`: every reply by SMS through Twilio, which has no default rate (Twilio queues per sender).
  This is the drain's raw capacity, measured against the >= 1,000 msg/s target.
- `paced`: 6 of 8 by SMS, 1 of 8 by WhatsApp through Twilio (80/s by default), 1 of 8 by Telegram
  (30/s per bot, 1/s per chat with a burst of 3), each Telegram chat getting four replies in a row.
  WhatsApp and Telegram are paced by design, so this mix shows the limits at the provider: the
  busiest one-second window per channel and per chat, next to the configured rate plus the bucket's
  burst (gateway.pacing), and each channel's own rate.

The providers are fakes in their own process (tests/fakes/twilio.py, tests/fakes/telegram.py) that
record each message with its arrival time and answer 50 ms later; the worker talks to them through
twilio's and python-telegram-bot's own clients, as in production. msg/s is read from the database
(rows marked sent over time; the rate between 10% and 90% sent is the steady state, start-up
excluded); CPU per message is the worker's (user + system) over the same span.

Baselines in the same run: the Twilio fake's own capacity (plain aiohttp posts, the largest
concurrency in flight, no database, no twilio client) and a naive loop sending one message at a time
through the same adapter. Every message sent exactly once is checked.
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

from bench.ingest import Server, cpu_seconds  # noqa: E402
from bench.ingest_multi import create_pg_database, drop_pg_database, pg_commits  # noqa: E402
from tests.fakes.twilio_webhooks import random_account_sid  # noqa: E402

AUTH_TOKEN = "bench-auth-token-0123456789abcdef"
ACCOUNT_SID = random_account_sid()
DELAY = 0.05
WORKER_ARGV = ["-m", "gateway", "worker"]
CHANNELS = ("twilio_sms", "twilio_whatsapp", "telegram")
TELEGRAM_PER_CHAT = 4
"""Replies in a row to one Telegram chat in the paced mix: more than the chat's burst of 3."""

FAKE = textwrap.dedent(
    """
    import asyncio, sys, time
    sys.path.insert(0, sys.argv[4])
    from aiohttp import web
    from tests.fakes.telegram import FakeTelegramBotAPI
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

    class Telegram(FakeTelegramBotAPI):
        def __init__(self, delay):
            super().__init__()
            self.delay = delay
            self.arrivals = []

        def add_routes(self, router):
            router.add_get("/bench/sent", self._dump)
            router.add_post("/bench/reset", self._reset)
            super().add_routes(router)

        async def _send_message(self, params):
            self.arrivals.append([str(params.get("chat_id")), params.get("text", ""), time.time()])
            response = await super()._send_message(params)
            await asyncio.sleep(self.delay)
            return response

        async def _dump(self, request):
            return web.json_response(self.arrivals)

        async def _reset(self, request):
            self.arrivals.clear()
            self.sent.clear()
            self.calls.clear()
            return web.json_response({})

    async def main():
        if sys.argv[5] == "twilio":
            twilio = Recording(sys.argv[1], sys.argv[2], response_delay=float(sys.argv[3]))
            print(await twilio.start(), flush=True)
        else:
            telegram = Telegram(float(sys.argv[3]))
            await telegram.start()
            print(telegram.api_base, telegram.base_url, telegram.token, flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())
    """
)


class Fakes:
    """The fake Twilio and Telegram APIs, each in its own process (as they are separate servers: one
    busy provider must not delay when the other sees its messages)."""

    def __init__(self) -> None:
        self.servers = [
            Server([sys.executable, "-c", FAKE, ACCOUNT_SID, AUTH_TOKEN, str(DELAY), str(ROOT), provider])
            for provider in ("twilio", "telegram")
        ]
        twilio, telegram = (server.proc.stdout.readline() for server in self.servers if server.proc.stdout)
        self.twilio = twilio.strip()
        self.telegram_api, self.telegram, self.telegram_token = telegram.split()

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    def reset(self) -> None:
        fake_call(self.twilio, "/bench/reset", "POST")
        fake_call(self.telegram, "/bench/reset", "POST")

    def arrivals(self) -> list[tuple[str, str, str, float]]:
        """(channel, recipient, text, arrival time) of every message the fakes accepted."""
        seen = [
            ("twilio_whatsapp" if to.startswith("whatsapp:") else "twilio_sms", to, body, at)
            for to, body, at in fake_call(self.twilio, "/bench/sent")
        ]
        seen += [("telegram", chat, text, at) for chat, text, at in fake_call(self.telegram, "/bench/sent")]
        return seen


def configured_rates() -> tuple[dict[str, float], dict[str, float], Callable[[float], float], float]:
    """The dispatcher's default rates per channel and per recipient, and the bursts on top of them
    (gateway/pacing.py): what one second at the provider may hold."""
    from gateway import pacing

    return (
        dict(pacing.DEFAULT_CHANNEL_RATES),
        dict(pacing.DEFAULT_RECIPIENT_RATES),
        pacing.channel_burst,
        pacing.RECIPIENT_BURST,
    )


def fake_call(base: str, path: str, method: str = "GET") -> Any:
    request = urllib.request.Request(  # noqa: S310 - loopback fake
        base + path, method=method, data=b"" if method == "POST" else None
    )
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - loopback fake
        return json.loads(response.read())


def seed_rows(mix: str, count: int, recipients: int) -> list[dict[str, Any]]:
    """Pending replies. `sms`: all SMS, `count / recipients` per recipient. `paced`: 6 of 8 SMS, 1 of
    8 WhatsApp, 1 of 8 Telegram, each chat's replies in a row (see the module docstring)."""
    now = datetime.now(UTC) - timedelta(seconds=1)
    rows: list[dict[str, Any]] = []
    telegram = 0
    for n in range(count):
        channel, kind, to = "twilio_sms", "phone", f"+62812{n % recipients:07d}"
        if mix == "paced" and n % 8 == 6:
            channel = "twilio_whatsapp"
        elif mix == "paced" and n % 8 == 7:
            channel, kind, to = "telegram", "telegram", str(500_000_000 + telegram // TELEGRAM_PER_CHAT)
            telegram += 1
        rows.append(
            {
                "channel": channel,
                "to_kind": kind,
                "to_address": to,
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


def worker_env(url: str, fakes: Fakes | None, twilio_base: str, concurrency: int | None) -> dict[str, str]:
    env = {
        "LAPOR_DATABASE__URL": url,
        "LAPOR_SERVER__PUBLIC_URL": "https://lapor.bench.example",
        "LAPOR_CHANNELS__TWILIO__ACCOUNT_SID": ACCOUNT_SID,
        "LAPOR_CHANNELS__TWILIO__AUTH_TOKEN": AUTH_TOKEN,
        "LAPOR_CHANNELS__TWILIO__SMS_FROM": "+15005550006",
        "LAPOR_CHANNELS__TWILIO__WHATSAPP_FROM": "+15005550007",
        "LAPOR_CHANNELS__TWILIO__API_BASE": twilio_base,
        "LAPOR_LOGGING__LEVEL": "WARNING",
    }
    if fakes is not None:
        env["LAPOR_CHANNELS__TELEGRAM__BOT_TOKEN"] = fakes.telegram_token
        env["LAPOR_CHANNELS__TELEGRAM__SECRET_TOKEN"] = "bench-telegram-secret"
        env["LAPOR_CHANNELS__TELEGRAM__API_BASE"] = fakes.telegram_api
    if concurrency is not None:
        env["LAPOR_OUTBOX__CONCURRENCY"] = str(concurrency)
        env["LAPOR_OUTBOX__BATCH_SIZE"] = str(max(200, 2 * concurrency))
    return env


def drain_once(
    url: str,
    fakes: Fakes,
    count: int,
    concurrency: int | None,
    folder: Path,
    commits: Callable[[], int] | None = None,
    tree: str | None = None,
) -> dict[str, Any]:
    """Start a worker (from `tree`, another checkout, if given) on a seeded database and follow the
    sent count until everything is sent."""
    samples: list[tuple[float, int, float]] = []
    """(seconds since start, rows sent, worker CPU seconds)"""
    commits_before = commits() if commits else 0
    env = worker_env(url, fakes, fakes.twilio, concurrency)
    if tree is not None:
        env["PYTHONPATH"] = tree
    worker = Server([sys.executable, *WORKER_ARGV], env, folder)
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


def channel_rate(times: list[float]) -> float:
    """A channel's own steady rate at the provider: its messages from 10% to 90%, over that span."""
    times = sorted(times)
    if len(times) < 10:
        return float("nan")
    first, last = int(0.1 * len(times)), int(0.9 * len(times))
    return (last - first) / max(1e-9, times[last] - times[first])


def provider_view(fakes: Fakes, count: int) -> dict[str, Any]:
    """What the fakes accepted: per channel and per recipient 1-second peaks, rates, duplicates."""
    arrivals = fakes.arrivals()
    by_channel: dict[str, list[float]] = defaultdict(list)
    by_recipient: dict[tuple[str, str], list[float]] = defaultdict(list)
    for channel, to, _text, at in arrivals:
        by_channel[channel].append(at)
        by_recipient[(channel, to)].append(at)
    texts = [text for _channel, _to, text, _at in arrivals]
    recipient_peak: dict[str, int] = defaultdict(int)
    for (channel, _to), times in by_recipient.items():
        recipient_peak[channel] = max(recipient_peak[channel], window_max(times))
    return {
        "accepted": len(arrivals),
        "duplicates": len(texts) - len(set(texts)),
        "missing": count - len(set(texts)),
        "channel_peak": {channel: window_max(times) for channel, times in by_channel.items()},
        "channel_rate": {channel: channel_rate(times) for channel, times in by_channel.items()},
        "recipient_peak": dict(recipient_peak),
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

    config = load_config(environ=worker_env("sqlite+aiosqlite:///unused.db", None, fake_base, None))
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


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def report(
    results: dict[tuple[str, str, str], list[dict[str, Any]]],
    args: argparse.Namespace,
    bare_rate: float,
    bare_concurrency: int,
    naive_rate: float,
) -> None:
    channel_rates, recipient_rates, channel_burst, recipient_burst = configured_rates()
    print(
        f"\nOutbox drain ({args.rounds} rounds; sms mix {args.messages} replies to {args.recipients} "
        f"recipients, paced mix {args.paced_messages}; fake providers answering after "
        f"{DELAY * 1000:.0f} ms; medians; {os.cpu_count()} shared CPUs)"
    )
    print(
        f"bare fake capacity ({bare_concurrency} in flight, no DB, no twilio client): {bare_rate:7.0f} msg/s"
    )
    print(f"naive loop, one send at a time through the adapter:          {naive_rate:7.1f} msg/s")
    print("target: >= 1,000 msg/s (sms mix, where no channel limit applies)")
    for (mix, backend, label), runs in results.items():
        steady = median([r["steady_rate"] for r in runs])
        line = (
            f"{mix:6} {backend:10} concurrency {label:13}: steady {steady:6.0f} msg/s "
            f"({steady / bare_rate:.0%} of the bare fake), overall "
            f"{median([r['overall_rate'] for r in runs]):6.0f} msg/s; worker CPU "
            f"{median([r['cpu_ms'] for r in runs]):.2f} ms/msg; "
        )
        if backend == "postgresql":
            per_commit = [r["per_commit"] for r in runs]
            line += f"{min(per_commit):.1f}-{max(per_commit):.1f} msg/transaction; "
        line += f"duplicates {sum(r['duplicates'] for r in runs)}, missing {sum(r['missing'] for r in runs)}"
        print(line)
        for channel in CHANNELS:
            peaks = [r["channel_peak"][channel] for r in runs if channel in r["channel_peak"]]
            if not peaks:
                continue
            rate = channel_rates.get(channel)
            own = median([r["channel_rate"][channel] for r in runs if channel in r["channel_rate"]])
            text = f"    {channel:16} {own:6.0f} msg/s at the provider; busiest second {max(peaks)}"
            verdict = "no limit"
            if rate is not None:
                allowed = rate + channel_burst(rate)
                verdict = "respected" if max(peaks) <= allowed else f"EXCEEDED by {max(peaks) - allowed:g}"
                text += f" (limit {rate:g}/s + burst {channel_burst(rate):g} = {allowed:g})"
            per_recipient = [r["recipient_peak"].get(channel, 0) for r in runs]
            recipient_rate = recipient_rates.get(channel)
            text += f": {verdict}; busiest second to one recipient {max(per_recipient)}"
            if recipient_rate is not None:
                limit = recipient_rate + recipient_burst
                mark = (
                    "respected"
                    if max(per_recipient) <= limit
                    else f"EXCEEDED by {max(per_recipient) - limit:g}"
                )
                text += f" (limit {recipient_rate:g}/s + burst {recipient_burst:g} = {limit:g}: {mark})"
            print(text)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated")
    parser.add_argument("--mixes", default="sms,paced", help="comma-separated: sms, paced")
    parser.add_argument("--messages", type=int, default=10_000, help="replies seeded per round, sms mix")
    parser.add_argument("--paced-messages", type=int, default=4_000, help="replies per round, paced mix")
    parser.add_argument("--recipients", type=int, default=2_500, help="distinct phone numbers")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--concurrency", default="200", help="[outbox] concurrency to run besides the default (sms mix)"
    )
    parser.add_argument("--pg-admin-url", default="postgresql://root@127.0.0.1:5432/test")
    parser.add_argument(
        "--baseline-tree",
        help="another checkout (e.g. `git archive <rev> | tar -x -C /tmp/before`): its `lapor worker` "
        "runs too, in the same rounds, marked *; it must know this checkout's migrations (copy "
        "store/migrations over if it is older)",
    )
    args = parser.parse_args()

    from gateway.config import OutboxConfig

    default_concurrency = OutboxConfig().concurrency
    settings: list[tuple[str, int | None]] = [(f"default ({default_concurrency})", None)]
    for value in (int(v) for v in args.concurrency.split(",") if v.strip()):
        if value != default_concurrency:
            settings.append((f"set to {value}", value))
    bare_concurrency = max([default_concurrency, *(value for _, value in settings if value is not None)])
    mixes = [m.strip() for m in args.mixes.split(",") if m.strip()]
    seeded = {
        "sms": seed_rows("sms", args.messages, args.recipients),
        "paced": seed_rows("paced", args.paced_messages, args.recipients),
    }
    results: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    bare: list[float] = []
    naive: list[float] = []
    with tempfile.TemporaryDirectory(prefix="lapor-bench-drain-") as tmp:
        folder = Path(tmp)
        fakes = Fakes()
        databases: dict[str, str] = {}
        try:
            for backend in args.backends.split(","):
                if backend == "sqlite":
                    databases[backend] = f"sqlite+aiosqlite:///{folder}/drain.db"
                else:
                    name = f"lapor_bench_drain_{os.getpid()}"
                    databases[backend] = create_pg_database(args.pg_admin_url, name)
            for round_number in range(args.rounds):
                bare.append(asyncio.run(bare_capacity(fakes.twilio, args.messages // 2, bare_concurrency)))
                naive.append(asyncio.run(naive_loop(fakes.twilio, 2.0)))
                fakes.reset()
                print(
                    f"round {round_number + 1}: bare fake {bare[-1]:6.0f} msg/s, "
                    f"naive loop {naive[-1]:5.1f} msg/s",
                    flush=True,
                )
                for mix in mixes:
                    rows = seeded[mix]
                    for backend, url in databases.items():
                        runs: list[tuple[str, int | None, str | None]] = [
                            (label, value, None) for label, value in settings if mix == "sms" or value is None
                        ]
                        if args.baseline_tree:
                            runs += [(f"{label} *", value, args.baseline_tree) for label, value, _ in runs]
                        for label, concurrency, tree in runs:
                            asyncio.run(seed(url, rows))
                            commits = None
                            if backend == "postgresql":
                                name = url.rsplit("/", 1)[1]
                                commits = lambda name=name: pg_commits(args.pg_admin_url, name)  # noqa: E731
                            result = drain_once(url, fakes, len(rows), concurrency, folder, commits, tree)
                            result.update(provider_view(fakes, len(rows)))
                            fakes.reset()
                            results[(mix, backend, label)].append(result)
                            print(
                                f"  {mix:6} {backend:10} {label:13} steady {result['steady_rate']:6.0f} "
                                f"msg/s ({result['seconds']:.1f} s incl. start), worker CPU "
                                f"{result['cpu_ms']:.2f} ms/msg, "
                                + (
                                    f"{result['per_commit']:.1f} msg/transaction, "
                                    if backend == "postgresql"
                                    else ""
                                )
                                + f"busiest second {result['channel_peak']}, "
                                f"per recipient {result['recipient_peak']}, "
                                f"duplicates {result['duplicates']}, missing {result['missing']}",
                                flush=True,
                            )
        finally:
            fakes.stop()
            if "postgresql" in databases:
                drop_pg_database(args.pg_admin_url, f"lapor_bench_drain_{os.getpid()}")
    report(results, args, median(bare), bare_concurrency, median(naive))


if __name__ == "__main__":
    main()
