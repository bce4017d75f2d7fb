"""Debian's headless Chromium driven by Playwright, for e2e tests and bench/relay.py.

`playwright install` is neither needed nor possible here: Playwright is pointed at the system
browser. The flags are the ones that worked headless: fake camera and microphone without a
permission prompt, no sandbox, GPU, QUIC or background traffic, and WebRTC over loopback.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from playwright.async_api import Browser, Playwright, async_playwright

EXECUTABLE = "/usr/bin/chromium"
ARGS = [
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


def executable() -> str:
    """$CHROMIUM, else Debian's /usr/bin/chromium, else whichever Chromium is on PATH."""
    path = os.environ.get("CHROMIUM") or (
        EXECUTABLE
        if os.path.exists(EXECUTABLE)
        else shutil.which("chromium") or shutil.which("chromium-browser")
    )
    if not path:
        raise RuntimeError("Chromium is not installed: apt-get install -y chromium")
    return path


async def launch(pw: Playwright, **options: Any) -> Browser:
    """Chromium with the flags above; `options` go to Playwright's launch (e.g. timeout)."""
    return await pw.chromium.launch(executable_path=executable(), args=ARGS, **options)


@asynccontextmanager
async def launched(**options: Any) -> AsyncIterator[Browser]:
    """A browser for the length of the block, closed with its Playwright driver."""
    async with async_playwright() as pw:
        browser = await launch(pw, **options)
        try:
            yield browser
        finally:
            await browser.close()
