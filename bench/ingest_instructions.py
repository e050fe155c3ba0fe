"""Instructions per webhook: the gateway's full intake path against the bare aiohttp handler.

The same steady figure as `bench/ingest.py`'s throughput ratio, for a machine whose load moves the
req/s from one minute to the next: valgrind's callgrind counts the instructions each server executes
while it answers the same number of distinct signed Twilio SMS webhooks (instrumentation is switched
on only for that window, so start-up and warm-up are not counted). A CPU-bound server's throughput is
inversely proportional to its instructions per request, so bare / gateway is the throughput ratio a
quiet core would give (it ignores that SQLite's own work, a tenth of the gateway's instructions, runs
outside the GIL and can use a second core).

    python bench/ingest_instructions.py                  # 1,000 webhooks, 16 in flight, both servers
    python bench/ingest_instructions.py --requests 3000 --connections 32
    python bench/ingest_instructions.py --http-only      # the gateway with a no-op ingest: the HTTP path

Needs valgrind (`apt-get install valgrind`). Takes about a minute per 1,000 gateway webhooks.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from bench.ingest import BARE_SERVER, PATH, free_port, gateway_env, signed_requests, wait_healthy  # noqa: E402

WARM_UP = 200

HTTP_ONLY_SERVER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[1])
    from gateway import pipeline
    async def ingest(self, events):
        return None
    pipeline.Ingestor.ingest = ingest
    from gateway.cli import main
    sys.exit(main(sys.argv[2:]))
    """
)
"""`lapor serve` with every webhook's events dropped instead of stored: what is left is the HTTP path
(routing, middleware, body, form, signature, parsing, response), which bare aiohttp does a part of."""


async def post_all(url: str, requests: list[tuple[str, str]], connections: int) -> int:
    """Send every request, `connections` at a time; the number of non-200 answers."""
    import aiohttp

    queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    for item in requests:
        queue.put_nowait(item)
    failed = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections)) as session:

        async def worker() -> None:
            nonlocal failed
            while not queue.empty():
                body, signature = queue.get_nowait()
                headers = {
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Twilio-Signature": signature,
                }
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    failed += response.status != 200

        await asyncio.gather(*(worker() for _ in range(connections)))
    return failed


def instructions(out: Path) -> int:
    """The instructions callgrind counted, over every dump file of one run."""
    total = 0
    for dump in out.parent.glob(out.name + "*"):
        for match in re.finditer(r"^(?:summary|totals):\s+(\d+)", dump.read_text(errors="replace"), re.M):
            total = max(total, int(match.group(1)))
    return total


def measure(
    name: str, argv: list[str], env: dict[str, str], folder: Path, port: int, args: argparse.Namespace
) -> float:
    """Instructions per request of one server answering `args.requests` webhooks."""
    out = folder / f"{name}.callgrind"
    command = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}", *argv]
    server = subprocess.Popen(
        command, env={**os.environ, **env}, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, timeout=600)
        requests = signed_requests(url + PATH, WARM_UP + args.requests, seed=11)
        asyncio.run(post_all(url + PATH, requests[:WARM_UP], args.connections))
        subprocess.run(["callgrind_control", "-i", "on", str(server.pid)], check=True, capture_output=True)
        started = time.perf_counter()
        failed = asyncio.run(post_all(url + PATH, requests[WARM_UP:], args.connections))
        elapsed = time.perf_counter() - started
        subprocess.run(["callgrind_control", "-i", "off", str(server.pid)], check=True, capture_output=True)
        subprocess.run(["callgrind_control", "-d", str(server.pid)], check=True, capture_output=True)
    finally:
        server.terminate()
        server.wait(timeout=300)
    per_request = instructions(out) / int(args.requests)
    print(f"  {name:8} {per_request:12,.0f} instructions a request ({elapsed:.0f} s, {failed} failed)")
    return per_request


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--http-only", action="store_true", help="also the gateway with a no-op ingest (the HTTP path alone)"
    )
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is needed: apt-get install valgrind")
    with tempfile.TemporaryDirectory(prefix="lapor-instr-") as tmp:
        folder = Path(tmp)
        port = free_port()
        bare = measure("bare", [sys.executable, "-c", BARE_SERVER, str(port)], {}, folder, port, args)
        port = free_port()
        env = gateway_env(folder, port, f"http://127.0.0.1:{free_port()}", "FULL")
        argv = [sys.executable, "-m", "gateway", "serve", "--port", str(port)]
        gateway = measure("gateway", argv, env, folder, port, args)
        if args.http_only:
            port = free_port()
            env = gateway_env(folder, port, f"http://127.0.0.1:{free_port()}", "FULL")
            argv = [sys.executable, "-c", HTTP_ONLY_SERVER, str(ROOT), "serve", "--port", str(port)]
            http = measure("http", argv, env, folder, port, args)
            print(f"  (the HTTP path alone: {http - bare:,.0f} above bare, the ingest {gateway - http:,.0f})")
    print(
        f"\n{args.requests} webhooks, {args.connections} in flight: bare / gateway = {bare / gateway:.1%} "
        "(the throughput ratio a quiet core would give; target >= 25%)"
    )


if __name__ == "__main__":
    main()
