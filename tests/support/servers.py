"""Real server processes for tests that cross process boundaries."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import aiohttp


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_env(database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCONSULT_")}
    env.pop("REDIS_URL", None)
    env.update(
        {
            "DATABASE_URL": database_url,
            "OPENCONSULT_ENV": "test",
            "OPENCONSULT_SECRET_KEY": "multi-process-secret-" + "z" * 32,
            "OPENCONSULT_DATA_DIR": str(data_dir),
            "OPENCONSULT_LOG_LEVEL": "WARNING",
        }
    )
    if os.environ.get("REDIS_URL"):
        env["REDIS_URL"] = os.environ["REDIS_URL"]
    env.update(extra)
    return env


@contextmanager
def server_process(env: dict[str, str], *, timeout: float = 30) -> Iterator[str]:
    """Run `python -m app serve` on a free loopback port; yield its base URL; stop it.

    The server writes to a temporary file, not a pipe (nobody reads a pipe while the test runs,
    and a full one would freeze the server); its tail is printed on the way out, which pytest
    shows with a failing test.
    """
    port = free_port()
    with tempfile.TemporaryFile("w+", prefix="openconsult-server-") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"server exited early:\n{_tail(log)}")
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise TimeoutError(
                            f"server on {port} did not start in {timeout}s"
                        ) from None
                    time.sleep(0.1)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
            print(f"--- server on port {port}:\n{_tail(log)}")


def _tail(log: IO[str], lines: int = 80) -> str:
    log.flush()
    log.seek(0)
    return "".join(log.readlines()[-lines:])


async def wait_ready(session: aiohttp.ClientSession, base: str) -> None:
    """Poll /readyz until the server answers 200, for at most 20 seconds."""
    async with asyncio.timeout(20):
        while True:
            try:
                async with session.get(f"{base}/readyz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
