"""Headless Chromium (Debian's) driven by Playwright against the real app on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, BrowserContext

from tests.support import chromium


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium.launched() as browser:
        yield browser


@pytest.fixture
async def live_server(aiohttp_server, app) -> TestServer:
    return await aiohttp_server(app, host="127.0.0.1")


@pytest.fixture
async def context(browser: Browser, live_server: TestServer) -> AsyncIterator[BrowserContext]:
    ctx = await browser.new_context(base_url=str(live_server.make_url("")).rstrip("/"))
    ctx.set_default_timeout(10_000)
    yield ctx
    await ctx.close()
