"""`lapor worker`: the gateway's background work (outbox, timers, media) in a process without HTTP.

It is the same application as `lapor serve`, started without a listening socket: the lifecycle that
opens the database, adapters, dispatcher and timers is shared, so the two cannot drift apart.
"""

from __future__ import annotations

import asyncio
import signal

from aiohttp import web

from gateway.app import create_app
from gateway.config import Config


async def run_worker(config: Config, stop: asyncio.Event | None = None) -> None:
    """Run until SIGTERM/SIGINT (or `stop` is set), then finish the sends in flight and exit."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(create_app(config))
    await runner.setup()
    print("Lapor worker running (outbox, timers, media)", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
