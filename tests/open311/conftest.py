"""The gateway the Open311 tests talk to: an API key for posting, media in the test's folder, and the
real clock unless a test module overrides the `clock` fixture."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path

import pytest

from tests.harness import RunningGateway, bound_socket, make_config, start_gateway

KEY = "kunci-rahasia-aplikasi-warga"


@pytest.fixture
def clock() -> Callable[[], datetime] | None:
    return None


@pytest.fixture
async def gateway(
    database_url: str, tmp_path: Path, clock: Callable[[], datetime] | None
) -> AsyncIterator[RunningGateway]:
    sock = bound_socket()
    config = make_config(
        database_url,
        sock.getsockname()[1],
        MEDIA__DIRECTORY=str(tmp_path / "media"),
        OPEN311__API_KEYS=f"warga-app={KEY}",
        PRIVACY__KEY="open311-test-key",
    )
    running = await start_gateway(config, sock, clock=clock)
    try:
        yield running
    finally:
        await running.stop()
