"""A headless Chromium (the system's, not a Playwright download) and a running gateway for page tests.

Playwright's own browser download is avoided on purpose: CI machines and newcomers' laptops have no
business fetching a browser build at test time; `apt-get install chromium` is enough.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import playwright.async_api as playwright_api
import pytest

from tests.harness import RunningGateway, bound_socket, make_config, start_gateway

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@pytest.fixture
async def gateway(database_url: str, tmp_path: Path) -> AsyncIterator[RunningGateway]:
    sock = bound_socket()
    config = make_config(database_url, sock.getsockname()[1], MEDIA__DIRECTORY=str(tmp_path / "media"))
    running = await start_gateway(config, sock)
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    # No skip: a browser test that cannot run is a failure (scripts/test.sh installs chromium).
    assert executable is not None, "chromium is not installed: apt-get install chromium"
    async with playwright_api.async_playwright() as p:
        launched = await p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
