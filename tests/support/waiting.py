"""Waiting on a condition with a deadline, for tests and benchmarks (never a fixed sleep)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def wait_for(check: Callable[[], Any | Awaitable[Any]], limit: float, what: str) -> Any:
    """Call `check()` (plain or async) until it returns something true, and return that;
    fail with an AssertionError naming `what` after `limit` seconds."""
    deadline = time.monotonic() + limit
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit}s waiting for {what}")
        await asyncio.sleep(0.05)
