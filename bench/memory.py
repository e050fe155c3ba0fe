"""Memory: RSS of `lapor serve` and `lapor worker` while 100,000 messages go through intake and replies.

Needs nothing beyond the venv (SQLite by default); `--database-url postgresql+asyncpg://...` runs the
same on a PostgreSQL database you created (it is migrated, not dropped). Run from the project root:

    .venv/bin/python bench/memory.py                        # 100,000 messages, RSS every 10,000
    .venv/bin/python bench/memory.py --messages 50000 --every 5000

A `lapor serve` (webhooks only) and a `lapor worker` (sends the replies) run as real processes on one
SQLite database; a fake Twilio REST API in a third process accepts the replies. This script posts
signed Twilio SMS webhooks (all distinct, from `--senders` people, so conversations are started,
continued and filed) with `--concurrency` in flight, and after every `--every` messages reads both
processes' RSS from /proc. Printed: the RSS table, and the slope of a least-squares line through the
samples after the first quarter (warm-up: caches, pools and the allocator's arenas fill first), in MB
per 10,000 messages; target <= 200 MB per process and no growth trend. Baseline in the same run: the
RSS of each process right after start-up, before any message.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from bench.ingest import ACCOUNT_SID, AUTH_TOKEN, FAKE_TWILIO, PATH, Server, free_port, wait_healthy  # noqa: E402
from bench.ingest_multi import PUBLIC_URL  # noqa: E402
from tests.fakes.twilio_webhooks import sign, sms_params  # noqa: E402

BODIES = [
    "LaporHendi lampu PJU mati di Jl. Pemuda no {n} depan Paragon",
    "jalan berlubang {n} cm di Jl. Majapahit dekat lampu merah Gayamsari",
    "Jl. Setiabudi no {n} Banyumanik",
    "YA",
    "cek LPR-7K3M9Q",
    "sampah menumpuk di gang {n} Pedurungan sudah seminggu",
    "LEWATI",
]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def slope(points: list[tuple[int, float]]) -> float:
    """Least-squares MB per 10,000 messages."""
    xs, ys = [x / 10_000 for x, _ in points], [y for _, y in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


def requests_for(count: int, senders: int) -> list[tuple[str, str]]:
    from urllib.parse import urlencode

    people = [f"+62813{i:08d}" for i in range(senders)]
    out = []
    for n in range(count):
        # Each person sends a turn, then everyone else does, then the next turn: a conversation's
        # turns are spread out like real ones, and the sender limit (20/min) is not hit.
        body = BODIES[(n // senders) % len(BODIES)].format(n=n % 500)
        params = sms_params(From=people[n % senders], Body=body, AccountSid=ACCOUNT_SID)
        out.append((urlencode(params), sign(PUBLIC_URL + PATH, params, AUTH_TOKEN)))
    return out


async def drive(
    url: str, requests: list[tuple[str, str]], concurrency: int, every: int, pids: dict[str, int]
) -> list[tuple[int, dict[str, float], float]]:
    """Post everything; after each `every` messages, (messages so far, RSS per process, elapsed)."""
    import aiohttp

    samples: list[tuple[int, dict[str, float], float]] = []
    errors = 0
    done = 0
    started = time.perf_counter()
    queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    for item in requests:
        queue.put_nowait(item)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def sender() -> None:
            nonlocal done, errors
            while not queue.empty():
                body, signature = queue.get_nowait()
                headers = {
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Twilio-Signature": signature,
                }
                async with session.post(url + PATH, data=body, headers=headers) as response:
                    await response.read()
                    errors += response.status != 200
                done += 1
                if done % every == 0:
                    rss = {name: rss_mb(pid) for name, pid in pids.items()}
                    samples.append((done, rss, time.perf_counter() - started))
                    print(
                        f"  {done:>7,} messages  "
                        + "  ".join(f"{name} {value:6.1f} MB" for name, value in rss.items())
                        + f"  ({done / (time.perf_counter() - started):.0f} msg/s)",
                        flush=True,
                    )

        await asyncio.gather(*(sender() for _ in range(concurrency)))
    if errors:
        print(f"  {errors} webhooks were not answered 200")
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--every", type=int, default=10_000, help="messages between RSS samples")
    parser.add_argument("--senders", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary folder")
    args = parser.parse_args()

    print(f"signing {args.messages:,} webhooks ...", flush=True)
    requests = requests_for(args.messages, args.senders)
    with tempfile.TemporaryDirectory(prefix="lapor-bench-memory-") as tmp:
        folder = Path(tmp)
        fake = Server([sys.executable, "-c", FAKE_TWILIO, ACCOUNT_SID, AUTH_TOKEN, str(ROOT)])
        assert fake.proc.stdout is not None
        twilio_base = fake.proc.stdout.readline().strip()
        port = free_port()
        env = {
            "LAPOR_DATABASE__URL": args.database_url or f"sqlite+aiosqlite:///{folder}/memory.db",
            "LAPOR_SERVER__PUBLIC_URL": PUBLIC_URL,
            "LAPOR_CHANNELS__TWILIO__ACCOUNT_SID": ACCOUNT_SID,
            "LAPOR_CHANNELS__TWILIO__AUTH_TOKEN": AUTH_TOKEN,
            "LAPOR_CHANNELS__TWILIO__SMS_FROM": "+15005550006",
            "LAPOR_CHANNELS__TWILIO__API_BASE": twilio_base,
            "LAPOR_LOGGING__LEVEL": "WARNING",
            "LAPOR_WORKER__ENABLED": "false",
            "LAPOR_OUTBOX__CONCURRENCY": "100",
        }
        subprocess.run([sys.executable, "-m", "gateway", "migrate"], env={**os.environ, **env}, cwd=folder,
                       check=True, capture_output=True)  # fmt: skip
        serve = Server([sys.executable, "-m", "gateway", "serve", "--port", str(port)], env, cwd=folder)
        worker = Server([sys.executable, "-m", "gateway", "worker"], env, cwd=folder)
        try:
            wait_healthy(f"http://127.0.0.1:{port}")
            time.sleep(2)  # the worker's start-up
            pids = {"serve": serve.proc.pid, "worker": worker.proc.pid}
            baseline = {name: rss_mb(pid) for name, pid in pids.items()}
            print("  after start-up  " + "  ".join(f"{n} {v:6.1f} MB" for n, v in baseline.items()))
            samples = asyncio.run(
                drive(f"http://127.0.0.1:{port}", requests, args.concurrency, args.every, pids)
            )
        finally:
            outputs = [("serve", serve.stop()), ("worker", worker.stop())]
            fake.stop()  # its Ctrl-C traceback is the fake's way of stopping, not a finding
        for name, out in outputs:
            if "Traceback" in out:
                print(f"--- {name} logged a traceback:\n{out[-2000:]}")

    print(
        f"\nMemory: {args.messages:,} SMS webhooks from {args.senders:,} senders, "
        f"{args.concurrency} in flight; "
        f"`lapor serve` (intake) + `lapor worker` (replies) on "
        f"{'PostgreSQL' if args.database_url else 'SQLite'}; {os.cpu_count()} shared CPUs"
    )
    names = list(samples[0][1]) if samples else []
    print(f"{'messages':>10}" + "".join(f"{name + ' MB':>12}" for name in names))
    print(f"{'start-up':>10}" + "".join(f"{baseline[name]:12.1f}" for name in names))
    for done, rss, _ in samples:
        print(f"{done:10,}" + "".join(f"{rss[name]:12.1f}" for name in names))
    tail = samples[len(samples) // 4 :]
    for name in names:
        peak = max(rss[name] for _, rss, _ in samples)
        trend = slope([(done, rss[name]) for done, rss, _ in tail])
        print(
            f"{name}: start-up {baseline[name]:.1f} MB, peak {peak:.1f} MB "
            f"({peak / baseline[name]:.2f}x start-up), "
            f"slope after warm-up {trend:+.2f} MB per 10,000 messages; target <= 200 MB: "
            f"{'met' if peak <= 200 else 'NOT met'}"
        )


if __name__ == "__main__":
    main()
