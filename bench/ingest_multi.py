"""Intake with 1 and 2 `lapor serve` processes on one database: SQLite and PostgreSQL.

Needs: wrk (`apt-get install wrk`), and for PostgreSQL a server the script may create databases on
(`--pg-admin-url`, default postgresql://root@127.0.0.1:5432/test; it creates and drops
`lapor_bench_ingest_<pid>`). Run from the project root with the venv's Python:

    .venv/bin/python bench/ingest_multi.py                      # SQLite and PostgreSQL, 3 rounds
    .venv/bin/python bench/ingest_multi.py --backends postgresql --rounds 5 --duration 8

For each backend, two gateway processes are started on two ports against the same fresh database,
all with the same public URL (as behind a load balancer, so one set of signed webhooks fits both).
Each round runs one `wrk` (2 threads, `--connections` in total) twice: with both threads on one
process, then with one thread per process (the order alternates between rounds, so neither setting
always meets the bigger tables). Every webhook is a distinct signed Twilio SMS; the gateway does its
full intake path (signature, dedup, identity, conversation step, one durable commit with the outbox
rows). Replies are not sent (worker off): `bench/drain.py` measures that.

The same is done in the same run with a bare aiohttp handler (form parse + TwiML, no database): its
2-process/1-process ratio is what the machine itself gives a second process while wrk and PostgreSQL
share the same cores, the ceiling for the gateway's ratio. Printed: median req/s, p50/p99 of each
setting, and the 2-process/1-process ratio per round and as the median (target >= 1.6 on PostgreSQL).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, bench/ comes first on sys.path and bench/conversation.py would shadow the
# `conversation` package: look in the project root instead.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from bench.ingest import (  # noqa: E402
    ACCOUNT_SID,
    AUTH_TOKEN,
    BARE_SERVER,
    PATH,
    Server,
    cpu_seconds,
    free_port,
    parse_wrk,
    signed_requests,
    wait_healthy,
)

PUBLIC_URL = "https://lapor.bench.example"
"""What every process believes it is reached at (Twilio signs this URL)."""
THREADS = 2


def write_wrk_script(requests: list[tuple[str, str]], ports: list[int], folder: Path, name: str) -> Path:
    """A wrk script whose threads are pinned to `ports` round-robin (thread i -> ports[i % n]).

    Thread i sends entries i, i + THREADS, i + 2*THREADS...: no webhook is sent twice in a run as long
    as the run sends fewer than `len(requests)` (checked afterwards). Data files hold 20,000 entries
    each: one Lua chunk holds at most 2^18 constants.
    """
    import json

    chunks = []
    for number, start in enumerate(range(0, len(requests), 20_000)):
        data = folder / f"{name}-{number}.lua"
        with data.open("w") as fh:
            fh.write("local b = bodies\n")
            for body, signature in requests[start : start + 20_000]:
                fh.write(f"b[#b + 1] = {{{json.dumps(body)}, {json.dumps(signature)}}}\n")
        chunks.append(f'dofile("{data}")')
    port_list = ", ".join(str(p) for p in ports)
    script = folder / f"{name}.lua"
    script.write_text(
        "bodies = {}\n" + "\n".join(chunks) + "\n"
        f"local ports = {{{port_list}}}\n"
        "local created = 0\n"
        "function setup(thread)\n"
        "  created = created + 1\n"
        "  local port = ports[((created - 1) % #ports) + 1]\n"
        '  thread.addr = wrk.lookup("127.0.0.1", tostring(port))[1]\n'
        "  thread:set('tid', created)\n"
        "end\n"
        "function init(args)\n"
        "  i = tid - 1\n"
        "end\n"
        "request = function()\n"
        "  local item = bodies[(i % #bodies) + 1]\n"
        f"  i = i + {THREADS}\n"
        '  return wrk.format("POST", "' + PATH + '", {["Content-Type"] = '
        '"application/x-www-form-urlencoded", ["X-Twilio-Signature"] = item[2]}, item[1])\n'
        "end\n"
    )
    return script


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU jiffies of the whole machine so far: everyone's load, not only ours."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def run_wrk(
    port: int, script: Path, duration: float, connections: int, pids: list[int] | None = None
) -> dict[str, float]:
    """One wrk run; with `pids`, also the CPU those processes used per request, and how busy the
    machine's cores were meanwhile (1.0: no idle core, the run was limited by CPU)."""
    pids = pids or []
    cpu_before = sum(cpu_seconds(pid) for pid in pids)
    busy_before, total_before = machine_busy()
    out = subprocess.run(
        [
            "wrk",
            f"-t{THREADS}",
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
            "--latency",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}{PATH}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cpu = sum(cpu_seconds(pid) for pid in pids) - cpu_before
    busy_after, total_after = machine_busy()
    parsed = parse_wrk(out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    total = parsed["requests"]
    return {
        **parsed,
        "errors": parsed["errors"] + (sum(int(g) for g in errors.groups()) if errors else 0),
        "cpu_ms_per_request": 1000 * cpu / total if total else float("nan"),
        "machine_busy": (busy_after - busy_before) / max(1, total_after - total_before),
    }


async def _pg_admin(admin_url: str, statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def create_pg_database(admin_url: str, name: str) -> str:
    """A fresh database next to `admin_url`'s; returns its SQLAlchemy URL."""
    asyncio.run(_pg_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    asyncio.run(_pg_admin(admin_url, f'CREATE DATABASE "{name}"'))
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{name}"


def pg_commits(admin_url: str, name: str) -> int:
    """Transactions committed in database `name` so far (pg_stat_database, updated within ~0.5 s)."""
    import asyncpg

    async def fetch() -> int:
        conn = await asyncpg.connect(admin_url)
        try:
            await asyncio.sleep(0.6)  # the statistics collector lags a little behind
            return int(
                await conn.fetchval("SELECT xact_commit FROM pg_stat_database WHERE datname = $1", name)
            )
        finally:
            await conn.close()

    return asyncio.run(fetch())


def drop_pg_database(admin_url: str, name: str) -> None:
    asyncio.run(_pg_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def gateway_env(database_url: str, synchronous: str) -> dict[str, str]:
    return {
        "LAPOR_DATABASE__URL": database_url,
        "LAPOR_DATABASE__SQLITE_SYNCHRONOUS": synchronous,
        "LAPOR_SERVER__PUBLIC_URL": PUBLIC_URL,
        "LAPOR_CHANNELS__TWILIO__ACCOUNT_SID": ACCOUNT_SID,
        "LAPOR_CHANNELS__TWILIO__AUTH_TOKEN": AUTH_TOKEN,
        "LAPOR_CHANNELS__TWILIO__SMS_FROM": "+15005550006",
        # Nothing listens there; the worker is off, so nothing is sent.
        "LAPOR_CHANNELS__TWILIO__API_BASE": f"http://127.0.0.1:{free_port()}",
        "LAPOR_LOGGING__LEVEL": "WARNING",
        "LAPOR_WORKER__ENABLED": "false",
    }


def measure(
    name: str,
    ports: list[int],
    pids: list[int],
    args: argparse.Namespace,
    folder: Path,
    seed: int,
    distinct: bool = True,
    commits: Callable[[], int] | None = None,
) -> dict[int, list[dict[str, float]]]:
    """`args.rounds` rounds of (1 process, 2 processes), alternating which goes first."""
    per_run = int(args.duration * args.max_rate) if distinct else 20_000
    results: dict[int, list[dict[str, float]]] = {1: [], 2: []}
    for round_number in range(args.rounds):
        order = (1, 2) if round_number % 2 == 0 else (2, 1)
        for processes in order:
            requests = signed_requests(PUBLIC_URL + PATH, per_run, seed + 10 * round_number + processes)
            script = write_wrk_script(requests, ports[:processes], folder, f"{name}-{processes}")
            before = commits() if commits else 0
            result = run_wrk(ports[0], script, args.duration, args.connections, pids[:processes])
            if commits:
                # Group commit: webhooks arriving together share one transaction.
                result["per_commit"] = result["requests"] / max(1, commits() - before)
            if distinct and result["requests"] > per_run:
                print(f"  warning: sent {result['requests']:.0f} > {per_run} distinct webhooks (--max-rate)")
            results[processes].append(result)
            print(
                f"  {name:10} round {round_number + 1} {processes} proc: {result['rps']:8.0f} req/s  "
                f"p50 {result['p50_ms']:7.2f} ms  p99 {result['p99_ms']:8.2f} ms  "
                f"errors {result['errors']:.0f}  server CPU {result['cpu_ms_per_request']:.2f} ms/req  "
                f"machine busy {result['machine_busy']:.0%}"
                + (f"  webhooks/commit {result['per_commit']:.1f}" if "per_commit" in result else ""),
                flush=True,
            )
    return results


def run_backend(backend: str, args: argparse.Namespace, folder: Path) -> dict[int, list[dict[str, float]]]:
    db_name = f"lapor_bench_ingest_{os.getpid()}"
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{folder}/bench.db"
    else:
        url = create_pg_database(args.pg_admin_url, db_name)
    env = gateway_env(url, args.synchronous)
    servers: list[Server] = []
    try:
        subprocess.run(
            [sys.executable, "-m", "gateway", "migrate"],
            env={**os.environ, **env},
            cwd=folder,
            check=True,
            capture_output=True,
        )
        ports = [free_port(), free_port()]
        for port in ports:
            # One after the other: two processes starting at once on an empty database both create
            # the first admin user, and the loser exits (a first-start race in `lapor serve`).
            servers.append(
                Server([sys.executable, "-m", "gateway", "serve", "--port", str(port)], env, cwd=folder)
            )
            wait_healthy(f"http://127.0.0.1:{port}")
        pids = [server.proc.pid for server in servers]
        commits = (lambda: pg_commits(args.pg_admin_url, db_name)) if backend == "postgresql" else None
        return measure(
            backend, ports, pids, args, folder, seed=1000 if backend == "sqlite" else 2000, commits=commits
        )
    finally:
        for server in servers:
            out = server.stop()
            if "Traceback" in out:
                print(f"--- a {backend} gateway logged a traceback:\n{out[-3000:]}")
        if backend == "postgresql":
            time.sleep(0.5)
            drop_pg_database(args.pg_admin_url, db_name)


def run_bare(args: argparse.Namespace, folder: Path) -> dict[int, list[dict[str, float]]]:
    ports = [free_port(), free_port()]
    servers = [Server([sys.executable, "-c", BARE_SERVER, str(port)]) for port in ports]
    try:
        for port in ports:
            wait_healthy(f"http://127.0.0.1:{port}")
        pids = [server.proc.pid for server in servers]
        return measure("bare", ports, pids, args, folder, seed=1, distinct=False)
    finally:
        for server in servers:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of (1 process, 2 processes)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections in total")
    parser.add_argument("--synchronous", default="FULL", help="SQLite synchronous mode")
    parser.add_argument(
        "--max-rate", type=float, default=8000.0, help="req/s bound used to pre-sign enough webhooks"
    )
    parser.add_argument("--pg-admin-url", default="postgresql://root@127.0.0.1:5432/test")
    parser.add_argument("--no-bare", action="store_true", help="skip the bare aiohttp baseline")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")

    all_results: dict[str, dict[int, list[dict[str, float]]]] = {}
    with tempfile.TemporaryDirectory(prefix="lapor-bench-multi-") as tmp:
        folder = Path(tmp)
        if not args.no_bare:
            all_results["bare aiohttp"] = run_bare(args, folder)
        for backend in args.backends.split(","):
            all_results[f"gateway {backend}"] = run_backend(backend.strip(), args, folder)

    print(
        f"\nIntake, 1 vs 2 processes ({args.rounds} rounds x {args.duration:.0f} s, wrk {THREADS} threads, "
        f"{args.connections} connections, SQLite synchronous={args.synchronous}; medians; "
        f"{os.cpu_count()} CPUs shared with everything else on this machine)"
    )
    print(
        f"{'':20}{'1 proc req/s':>13}{'p50':>8}{'p99':>9}{'2 proc req/s':>14}{'p50':>8}{'p99':>9}"
        f"{'2/1 (median of rounds)':>25}  errors"
    )
    for name, results in all_results.items():
        one, two = results[1], results[2]
        ratios = [b["rps"] / a["rps"] for a, b in zip(one, two, strict=True)]
        errors = sum(r["errors"] for r in one + two)

        def med(rows: list[dict[str, float]], key: str) -> float:
            return statistics.median(r[key] for r in rows)

        print(
            f"{name:20}{med(one, 'rps'):13.0f}{med(one, 'p50_ms'):8.2f}{med(one, 'p99_ms'):9.2f}"
            f"{med(two, 'rps'):14.0f}{med(two, 'p50_ms'):8.2f}{med(two, 'p99_ms'):9.2f}"
            f"{statistics.median(ratios):11.2f}x  ({', '.join(f'{r:.2f}' for r in ratios)})  {errors:.0f}"
        )
    print("\nserver CPU per request (ms, median; gateway/bare processes only) and how busy the machine was:")
    for name, results in all_results.items():
        print(
            f"{name:20}1 proc {statistics.median(r['cpu_ms_per_request'] for r in results[1]):6.2f} ms, "
            f"busy {statistics.median(r['machine_busy'] for r in results[1]):4.0%}   "
            f"2 proc {statistics.median(r['cpu_ms_per_request'] for r in results[2]):6.2f} ms, "
            f"busy {statistics.median(r['machine_busy'] for r in results[2]):4.0%}"
            + (
                f"   webhooks/commit 1 proc {statistics.median(r['per_commit'] for r in results[1]):.1f}, "
                f"2 proc {statistics.median(r['per_commit'] for r in results[2]):.1f}"
                if "per_commit" in results[1][0]
                else ""
            )
        )
    print(
        "target: PostgreSQL 2 processes >= 1.6x of 1 process (the bare handler's ratio is the ceiling "
        "this machine gives)"
    )
    for backend in ("sqlite", "postgresql"):
        gw, bare = all_results.get(f"gateway {backend}"), all_results.get("bare aiohttp")
        if gw and bare:
            ratio = statistics.median(r["rps"] for r in gw[1]) / statistics.median(r["rps"] for r in bare[1])
            print(f"gateway {backend} / bare, 1 process: {ratio:.1%}")


if __name__ == "__main__":
    main()
