"""Periodic jobs: one runner for every "do this every N seconds while the app runs"."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[object]]


async def every(seconds: float, job: Job, *, name: str, first_run_now: bool = False) -> None:
    """Run `job` every `seconds` until cancelled; a failing run is logged, never fatal."""
    if not first_run_now:
        await asyncio.sleep(seconds)
    while True:
        try:
            await job()
        except Exception:
            log.exception("periodic job %s failed; it runs again in %s s", name, seconds)
        await asyncio.sleep(seconds)


def run_periodically(
    app: web.Application,
    name: str,
    seconds: Callable[[web.Application], float],
    job: Callable[[web.Application], Job | None],
    *,
    first_run_now: bool = False,
) -> None:
    """Run `job(app)` every `seconds(app)` from startup to cleanup.

    Both are called once the app starts (after the data layer opened), so a job may use
    whatever the app holds by then; `job` returning None means "not in this configuration".
    """

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        work = job(app)
        if work is None:
            yield
            return
        task = asyncio.create_task(
            every(seconds(app), work, name=name, first_run_now=first_run_now), name=name
        )
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(lifetime)
