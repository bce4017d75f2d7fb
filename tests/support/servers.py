"""Real server processes on loopback, for tests and benchmarks that cross process boundaries.

`app_server(server_env(...))` runs `python -m app serve` on a free port and yields a `Server`
once /healthz answers; `serving(...)` does the same for any other command. The process writes to
a log file, not a pipe (nobody reads a pipe while a test runs, and a full one would freeze the
server); its tail is printed when the server fails to start, dies on its own, or the code using
it raises. It is stopped by its PID: SIGTERM, then SIGKILL if it does not exit in time.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"


@dataclass(frozen=True)
class Server:
    url: str  # http://127.0.0.1:PORT, no trailing slash
    pid: int
    log: Path
    process: subprocess.Popen[bytes] | None = None  # to wait for its exit code


@contextmanager
def redis_server(port: int | None = None) -> Iterator[str]:
    """A redis-server of the test's own on a free loopback port (no persistence), yielding its
    URL; stopped by its PID. Tests that stop Redis use this, never the machine's shared one."""
    port = port or free_port()
    with tempfile.TemporaryDirectory(prefix="openconsult-redis-") as tmp:
        log = Path(tmp) / "redis.log"
        with log.open("w") as out:
            proc = subprocess.Popen(
                [
                    "redis-server",
                    "--port",
                    str(port),
                    "--bind",
                    HOST,
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    tmp,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    with socket.create_connection((HOST, port), timeout=1) as sock:
                        sock.sendall(b"PING\r\n")
                        if sock.recv(16).startswith(b"+PONG"):
                            break
                except OSError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start:\n{tail(log)}")
                time.sleep(0.05)
            yield f"redis://{HOST}:{port}/0"
        finally:
            _stop(proc)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def server_env(
    database_url: str, data_dir: Path, *, redis_url: str | None = None, **extra: str
) -> dict[str, str]:
    """This process's environment without its OpenConsult settings, plus a test server's: no
    background jobs (no-show sweep, outbox), warnings and errors logged.

    With Redis, every server started with this environment shares one fresh key prefix.
    `extra` adds or overrides variables (`OPENCONSULT_SECRET_KEY=...`).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCONSULT_")}
    env.pop("REDIS_URL", None)
    env.update(
        {
            "DATABASE_URL": database_url,
            "OPENCONSULT_ENV": "test",
            "OPENCONSULT_SECRET_KEY": "server-process-secret-" + "z" * 32,
            "OPENCONSULT_DATA_DIR": str(data_dir),
            "OPENCONSULT_LOG_LEVEL": "WARNING",
            "OPENCONSULT_BACKGROUND_TASKS": "false",
            # SIGTERM drains: a live visit left by a test would otherwise hold the stop.
            "OPENCONSULT_DRAIN_TIMEOUT_SECONDS": "5",
        }
    )
    if redis_url:
        env["REDIS_URL"] = redis_url
        env["OPENCONSULT_REDIS_KEY_PREFIX"] = f"octest:{uuid.uuid4().hex}:"
    env.update(extra)
    return env


@contextmanager
def app_server(
    env: Mapping[str, str], *, port: int | None = None, health: str = "/healthz"
) -> Iterator[Server]:
    """`python -m app serve` on 127.0.0.1 (a free port unless given), ready when `health` is 200."""
    port = port or free_port()
    command = [sys.executable, "-m", "app", "serve", "--host", HOST, "--port", str(port)]
    with serving(command, port=port, env=env, health=health) as server:
        yield server


@asynccontextmanager
async def started_app_server(
    env: Mapping[str, str], *, port: int | None = None, health: str = "/healthz"
) -> AsyncIterator[Server]:
    """`app_server` for an async test: its start and stop (seconds each on a loaded machine)
    run in a thread, so the test's event loop keeps serving the sockets it holds open. A loop
    blocked that long misses its Engine.IO pings, and the python-socketio client then stops
    sending for good while it still says it is connected."""
    manager = app_server(env, port=port, health=health)
    server = await asyncio.to_thread(manager.__enter__)
    try:
        yield server
    except BaseException as exc:
        if not await asyncio.to_thread(manager.__exit__, type(exc), exc, exc.__traceback__):
            raise
    else:
        await asyncio.to_thread(manager.__exit__, None, None, None)


@contextmanager
def serving(
    command: Sequence[str],
    *,
    port: int,
    env: Mapping[str, str],
    health: str = "/healthz",
    timeout: float = 60,
) -> Iterator[Server]:
    """Run `command` (a server listening on 127.0.0.1:`port`) from the repository root; yield it
    once GET `health` answers 200, for at most `timeout` seconds; stop it on the way out."""
    with tempfile.TemporaryDirectory(prefix="openconsult-server-") as tmp:
        log = Path(tmp) / "server.log"
        with log.open("w") as out:
            proc = subprocess.Popen(
                list(command), cwd=ROOT, env=dict(env), stdout=out, stderr=subprocess.STDOUT
            )
        server = Server(url=f"http://{HOST}:{port}", pid=proc.pid, log=log, process=proc)
        failed = True
        try:
            _wait_healthy(proc, server.url + health, timeout)
            yield server
            failed = proc.poll() is not None  # it died on its own meanwhile
        finally:
            _stop(proc)
            if failed:
                print(f"--- {' '.join(command)} (pid {proc.pid}):\n{tail(log)}", file=sys.stderr)


def tail(log: Path, lines: int = 80) -> str:
    return "".join(log.read_text(errors="replace").splitlines(keepends=True)[-lines:])


def _wait_healthy(proc: subprocess.Popen[bytes], url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except (OSError, http.client.HTTPException):
            pass  # not listening yet, or not ready (urllib's errors are OSErrors)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer 200 within {timeout}s")
        time.sleep(0.1)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
