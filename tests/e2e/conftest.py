"""Headless Chromium (Debian's) driven by Playwright against the real app on loopback."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, BrowserContext

from tests.support import chromium

# The browser flows of one process run once, in the embedded (SQLite) pass of the suite: what
# they add over the API and socket tests, which run on both databases, is the pages themselves.
# The at-scale pass keeps the browser tests across processes (multiprocess). Together the two
# passes stay well inside CI's time limit.
ONCE = pytest.mark.skip(reason="one-process browser flows run once, in the SQLite pass")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    at_scale = bool(os.environ.get("DATABASE_URL"))
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)
            if at_scale and item.get_closest_marker("multiprocess") is None:
                item.add_marker(ONCE)


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
