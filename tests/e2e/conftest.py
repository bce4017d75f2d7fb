"""Headless Chromium (Debian's) driven by Playwright against the real app on loopback."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, BrowserContext, async_playwright

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
]


def chromium_path() -> str:
    path = (
        os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    )
    if not path:
        pytest.fail("Chromium is not installed: apt-get install -y chromium")
    return path


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@pytest.fixture
async def live_server(aiohttp_server, app) -> TestServer:
    return await aiohttp_server(app, host="127.0.0.1")


@pytest.fixture
async def context(browser: Browser, live_server: TestServer) -> AsyncIterator[BrowserContext]:
    ctx = await browser.new_context(base_url=str(live_server.make_url("")).rstrip("/"))
    ctx.set_default_timeout(10_000)
    yield ctx
    await ctx.close()
