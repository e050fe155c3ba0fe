"""Ingest benchmark: signed Twilio SMS webhooks at the running gateway vs a bare aiohttp handler.

Both servers run as their own process on loopback and are driven the same way in the same run:
1. throughput: `wrk` (one thread, 64 connections) posting pre-signed, all-distinct webhooks;
2. latency at a fixed rate (default 1,000 msg/s): an open-loop generator in another process that
   measures from each request's *scheduled* time, so a stall is not hidden (no coordinated omission).

The gateway runs its full path: signature check, dedup, identity, conversation step, one durable
commit (SQLite, WAL, synchronous=FULL) with the inbound row, conversation state, complaint and outbox
rows; replies are then sent to a fake Twilio REST API in a third process.

    python bench/ingest.py                 # both servers, throughput + fixed-rate latency
    python bench/ingest.py --duration 5 --rate 500
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.twilio_webhooks import random_account_sid, sign, sms_params  # noqa: E402

AUTH_TOKEN = "bench-auth-token-0123456789abcdef"
ACCOUNT_SID = random_account_sid()
PATH = "/webhooks/twilio/sms"
BODIES = [
    "LaporHendi lampu PJU mati di Jl. Pemuda no {n} depan Paragon",
    "Lapor Hendi jalan berlubang {n} cm di Jl. Majapahit dekat lampu merah Gayamsari",
    "#LaporHendi banjir setinggi lutut di Kelurahan Tlogosari Kulon RT {n} RW 05",
    "sampah menumpuk di gang {n} Pedurungan sudah seminggu",
    "saluran mampet depan SD Negeri Sendangmulyo {n}",
    "YA",
    "LEWATI",
    "pohon tumbang di Jl. Setiabudi no {n} arah Banyumanik",
]
"""What citizens write; `{n}` varies so no cache sees the same text twice."""

BARE_SERVER = textwrap.dedent(
    """
    import sys
    from aiohttp import web
    TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
    async def handle(request):
        await request.post()
        return web.Response(text=TWIML, content_type="text/xml")
    app = web.Application()
    app.router.add_post("/webhooks/twilio/sms", handle)
    app.router.add_get("/healthz", lambda r: web.Response(text="ok"))
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
    """
)

FAKE_TWILIO = textwrap.dedent(
    """
    import asyncio, sys
    sys.path.insert(0, sys.argv[3])
    from tests.fakes.twilio import FakeTwilio
    async def main():
        fake = FakeTwilio(sys.argv[1], sys.argv[2])
        print(await fake.start(), flush=True)
        await asyncio.Event().wait()
    asyncio.run(main())
    """
)

LOAD_GENERATOR = textwrap.dedent(
    """
    import asyncio, json, sys, time, aiohttp
    url, rate, duration, path = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    requests = json.load(open(path))
    async def main():
        latencies, errors = [], 0
        connector = aiohttp.TCPConnector(limit=256)
        async with aiohttp.ClientSession(connector=connector) as session:
            start = time.perf_counter() + 0.2
            total = int(rate * duration)
            async def one(i, scheduled):
                nonlocal errors
                body, signature = requests[i % len(requests)]
                try:
                    async with session.post(url, data=body, headers={
                        "Content-Type": "application/x-www-form-urlencoded",
                        "X-Twilio-Signature": signature}) as r:
                        await r.read()
                        if r.status != 200:
                            errors += 1
                except Exception:
                    errors += 1
                latencies.append(time.perf_counter() - scheduled)
            tasks = []
            for i in range(total):
                scheduled = start + i / rate
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(i, scheduled)))
            await asyncio.gather(*tasks)
            elapsed = time.perf_counter() - start
        print(json.dumps({"latencies": latencies, "errors": errors, "elapsed": elapsed}))
    asyncio.run(main())
    """
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1) as response:  # noqa: S310 - loopback
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)  # a process starting up: polling its health is the only signal we have
    raise RuntimeError(f"{url} did not become healthy")


def signed_requests(url: str, count: int, seed: int) -> list[tuple[str, str]]:
    """Distinct webhooks (fresh MessageSid each) from a pool of senders, signed for `url`."""
    from urllib.parse import urlencode

    rng = random.Random(seed)
    senders = [f"+628{rng.randrange(10**9, 10**10)}" for _ in range(max(1, count // 4))]
    out = []
    for _ in range(count):
        body = rng.choice(BODIES).format(n=rng.randrange(1, 500))
        params = sms_params(From=rng.choice(senders), Body=body, AccountSid=ACCOUNT_SID)
        out.append((urlencode(params), sign(url, params, AUTH_TOKEN)))
    return out


def write_wrk_script(requests: list[tuple[str, str]], folder: Path) -> Path:
    """A wrk Lua script cycling through pre-signed requests.

    The data is split into files of 20,000 entries: one Lua chunk holds at most 2^18 constants.
    """
    chunks = []
    for number, start in enumerate(range(0, len(requests), 20_000)):
        data = folder / f"requests-{number}.lua"
        with data.open("w") as fh:
            fh.write("local b = bodies\n")
            for body, signature in requests[start : start + 20_000]:
                fh.write(f"b[#b + 1] = {{{json.dumps(body)}, {json.dumps(signature)}}}\n")
        chunks.append(f'dofile("{data}")')
    script = folder / "wrk.lua"
    script.write_text(
        "bodies = {}\n" + "\n".join(chunks) + "\nlocal i = 0\n"
        "request = function()\n"
        "  i = i + 1\n"
        "  local item = bodies[((i - 1) % #bodies) + 1]\n"
        '  return wrk.format("POST", "' + PATH + '", {["Content-Type"] = '
        '"application/x-www-form-urlencoded", ["X-Twilio-Signature"] = item[2]}, item[1])\n'
        "end\n"
    )
    return script


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(url: str, script: Path, duration: float, connections: int, pid: int) -> dict[str, float]:
    """One wrk run, plus the server's CPU per request: on a busy machine the req/s move with
    everyone's load, the CPU a request costs much less."""
    cpu_before = cpu_seconds(pid)
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
            "--latency",
            "-s",
            str(script),
            url + PATH,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result = parse_wrk(out)
    result["cpu_ms"] = 1000 * (cpu_seconds(pid) - cpu_before) / max(1, result["requests"])
    return result


def parse_wrk(out: str) -> dict[str, float]:
    """req/s, requests, non-2xx responses and p50/p99 (ms) from `wrk --latency` output."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    percentiles = {}
    for label in ("50%", "99%"):
        match = re.search(rf"{re.escape(label)}\s+([\d.]+)(us|ms|s)\b", out)
        if match:
            value, unit = float(match.group(1)), match.group(2)
            percentiles[label] = value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    return {
        "rps": rps,
        "requests": total,
        "errors": int(non2xx.group(1)) if non2xx else 0,
        "p50_ms": percentiles.get("50%", float("nan")),
        "p99_ms": percentiles.get("99%", float("nan")),
    }


def run_rate(
    url: str, requests: list[tuple[str, str]], rate: float, duration: float, folder: Path
) -> dict[str, float]:
    path = folder / "rate.json"
    path.write_text(json.dumps(requests))
    out = subprocess.run(
        [sys.executable, "-c", LOAD_GENERATOR, url + PATH, str(rate), str(duration), str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result = json.loads(out)
    latencies = sorted(result["latencies"])
    quantiles = statistics.quantiles(latencies, n=100)
    return {
        "sent": len(latencies),
        "achieved_rate": len(latencies) / result["elapsed"],
        "errors": result["errors"],
        "p50_ms": quantiles[49] * 1000,
        "p99_ms": quantiles[98] * 1000,
    }


class Server:
    def __init__(self, argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        self.proc = subprocess.Popen(
            argv,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGINT)
        try:
            out, _ = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        return out or ""


def gateway_env(folder: Path, port: int, twilio_base: str, synchronous: str) -> dict[str, str]:
    return {
        "LAPOR_DATABASE__URL": f"sqlite+aiosqlite:///{folder}/bench.db",
        "LAPOR_DATABASE__SQLITE_SYNCHRONOUS": synchronous,
        "LAPOR_SERVER__PUBLIC_URL": f"http://127.0.0.1:{port}",
        "LAPOR_CHANNELS__TWILIO__ACCOUNT_SID": ACCOUNT_SID,
        "LAPOR_CHANNELS__TWILIO__AUTH_TOKEN": AUTH_TOKEN,
        "LAPOR_CHANNELS__TWILIO__SMS_FROM": "+15005550006",
        "LAPOR_CHANNELS__TWILIO__API_BASE": twilio_base,
        "LAPOR_LOGGING__LEVEL": "WARNING",
        # Intake only: replies are sent by a `lapor worker` afterwards (measured on its own).
        "LAPOR_WORKER__ENABLED": "false",
    }


def owed_replies(folder: Path) -> tuple[int, int]:
    """(outbox rows, rows still to send) straight from the SQLite file."""
    import sqlite3

    with sqlite3.connect(folder / "bench.db") as conn:
        total, pending = conn.execute(
            "SELECT count(*), sum(status IN ('pending', 'sending')) FROM outbox"
        ).fetchone()
    return int(total), int(pending or 0)


def drain_with_worker(folder: Path, env: dict[str, str]) -> dict[str, float]:
    """Start `lapor worker` and time how long it takes to send every owed reply."""
    total, pending = owed_replies(folder)
    worker = Server(
        [sys.executable, "-m", "gateway", "worker"], {**env, "LAPOR_OUTBOX__CONCURRENCY": "50"}, folder
    )
    started = time.perf_counter()
    while pending and time.perf_counter() - started < 300:
        time.sleep(0.25)  # a bench script watching another process: polling is all there is
        _, pending = owed_replies(folder)
    elapsed = time.perf_counter() - started
    worker.stop()
    return {"rows": total, "unsent": pending, "seconds": elapsed, "rate": total / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per wrk run")
    parser.add_argument("--runs", type=int, default=3, help="wrk runs per server (median reported)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rate", type=float, default=1000.0, help="fixed rate for the latency run (msg/s)")
    parser.add_argument("--synchronous", default="FULL", help="SQLite synchronous mode for the gateway")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")

    with tempfile.TemporaryDirectory(prefix="lapor-bench-") as tmp:
        folder = Path(tmp)
        bare_port, gw_port = free_port(), free_port()
        bare_url, gw_url = f"http://127.0.0.1:{bare_port}", f"http://127.0.0.1:{gw_port}"
        per_run = int(args.duration * 12_000)

        bare = Server([sys.executable, "-c", BARE_SERVER, str(bare_port)])
        wait_healthy(bare_url)
        bare_script = write_wrk_script(signed_requests(bare_url + PATH, 20_000, 1), folder)
        bare_results = [
            run_wrk(bare_url, bare_script, args.duration, args.connections, bare.proc.pid)
            for _ in range(args.runs)
        ]
        bare_rate = run_rate(
            bare_url, signed_requests(bare_url + PATH, int(args.rate * 5), 2), args.rate, 5, folder
        )
        bare.stop()

        fake = Server([sys.executable, "-c", FAKE_TWILIO, ACCOUNT_SID, AUTH_TOKEN, str(ROOT)])
        assert fake.proc.stdout is not None
        twilio_base = fake.proc.stdout.readline().strip()
        env = gateway_env(folder, gw_port, twilio_base, args.synchronous)
        gateway = Server([sys.executable, "-m", "gateway", "serve", "--port", str(gw_port)], env, cwd=folder)
        wait_healthy(gw_url)
        gw_results = []
        for run in range(args.runs):
            script = write_wrk_script(signed_requests(gw_url + PATH, per_run, 100 + run), folder)
            result = run_wrk(gw_url, script, args.duration, args.connections, gateway.proc.pid)
            if result["requests"] > per_run:
                print(f"warning: run {run} sent {result['requests']} > {per_run} distinct webhooks")
            gw_results.append(result)
        gw_rate = run_rate(
            gw_url, signed_requests(gw_url + PATH, int(args.rate * 5), 3), args.rate, 5, folder
        )
        gateway.stop()
        drain = drain_with_worker(folder, env)
        fake.stop()

    def median(results: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in results)

    bare_rps, gw_rps = median(bare_results, "rps"), median(gw_results, "rps")
    print(
        f"\nIngest benchmark ({args.runs} x {args.duration:.0f}s wrk runs, {args.connections} connections, "
        f"SQLite synchronous={args.synchronous}; medians)"
    )
    print(f"{'':28}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'CPU ms/req':>12}")
    for name, results in (
        ("bare aiohttp (form+TwiML)", bare_results),
        ("lapor gateway (full path)", gw_results),
    ):
        print(
            f"{name:28}{median(results, 'rps'):10.0f}{median(results, 'p50_ms'):9.2f}"
            f"{median(results, 'p99_ms'):9.2f}{sum(r['errors'] for r in results):8.0f}"
            f"{median(results, 'cpu_ms'):12.3f}"
        )
    print(f"ratio gateway / bare: {gw_rps / bare_rps:.1%}  (target >= 25%)")
    cpu_ratio = median(bare_results, "cpu_ms") / median(gw_results, "cpu_ms")
    print(f"CPU per request, bare / gateway: {cpu_ratio:.1%} (the same ratio, less moved by other load)")
    print(f"\nFixed rate {args.rate:.0f} msg/s for 5 s (open loop, latency from scheduled send time)")
    for name, result in (("bare aiohttp", bare_rate), ("lapor gateway", gw_rate)):
        print(
            f"{name:28}achieved {result['achieved_rate']:7.0f}/s  p50 {result['p50_ms']:6.2f} ms  "
            f"p99 {result['p99_ms']:6.2f} ms  errors {result['errors']:.0f}"
        )
    print("target: gateway p99 <= 25 ms at 1,000 msg/s")
    print(
        f"\nReplies owed: {drain['rows']:.0f}; `lapor worker` sent them to the fake Twilio in "
        f"{drain['seconds']:.1f} s ({drain['rate']:.0f} msg/s), {drain['unsent']:.0f} left unsent"
    )


if __name__ == "__main__":
    main()
