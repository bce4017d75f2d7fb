"""A real nginx in front of real app nodes, configured by the shipped deploy/nginx.conf.

`render(...)` rewrites only what differs on a test machine: the `nodes:` block (each node's
upstream, the pool of all nodes, the node-id map) for the test's own node ids and loopback
ports, the plain-HTTP `listen`, and where nginx keeps its pid, logs and temporary files; the
TLS server is dropped unless a certificate is given. Everything else (the locations, the
websocket headers, X-Forwarded-For) is the file operators run.

`node_cluster(env)` starts three app nodes (ids app1..app3, as shipped) behind that nginx.
`nginx_proxy({"app1": server.url, ...})` starts that nginx on a free loopback port with a prefix
directory of its own, yields it once it answers through to a node, and stops it by its PID. The
machine's own nginx is never started, stopped or reloaded.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from tests.support.servers import HOST, Server, app_server, free_port, tail

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
CONFIG = DEPLOY / "nginx.conf"
LOCATIONS = DEPLOY / "openconsult_locations.conf"
SHIPPED_NODES = {"app1": "app1:8080", "app2": "app2:8080", "app3": "app3:8080"}

_NODES_BLOCK = re.compile(r"^ *# nodes: begin\n.*?^ *# nodes: end\n", re.M | re.S)
_TLS_BLOCK = re.compile(r"^ *# tls: begin\n.*?^ *# tls: end\n", re.M | re.S)
_LISTEN_HTTP = "listen 80;  # listen: http"
_MAIN = "worker_processes auto;"
_UNKNOWN_NODE = "  # unknown node: any node answers 404, the page re-asks"


def executable() -> str | None:
    """nginx on PATH, or Debian's /usr/sbin/nginx (sbin is not on every PATH)."""
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None


def nodes_block(nodes: Mapping[str, str], pages_via: Sequence[str] | None = None) -> str:
    """The `nodes:` part of deploy/nginx.conf for these nodes (id -> host:port or URL); pages
    and the API go to the nodes in `pages_via` (default: all)."""
    addresses = {node_id: _address(target) for node_id, target in nodes.items()}
    pool = [addresses[node_id] for node_id in (pages_via or list(addresses))]
    lines = ["    # nodes: begin"]
    for node_id, address in addresses.items():
        lines.append(f"    upstream node_{node_id} {{ server {address} max_fails=0; }}")
    lines.append("    upstream openconsult_any {")
    for address in pool:
        lines.append(f"        server {address} max_fails=1 fail_timeout=3s;")
    lines.append("    }")
    lines.append("    map $node_id $node_upstream {")
    lines.append(f"        default openconsult_any;{_UNKNOWN_NODE}")
    for node_id in addresses:
        lines.append(f"        {node_id} node_{node_id};")
    lines.append("    }")
    lines.append("    # nodes: end")
    return "\n".join(lines) + "\n"


def render(
    nodes: Mapping[str, str],
    *,
    port: int,
    prefix: Path,
    tls: tuple[Path, Path] | None = None,
    tls_port: int | None = None,
    pages_via: Sequence[str] | None = None,
) -> str:
    """deploy/nginx.conf for a test: these nodes, 127.0.0.1:`port`, files under `prefix`."""
    text = CONFIG.read_text()
    for marker in (_LISTEN_HTTP, _MAIN):
        if marker not in text:
            raise ValueError(f"deploy/nginx.conf lost its marker {marker!r}")
    text = _NODES_BLOCK.sub(lambda _: nodes_block(nodes, pages_via), text, count=1)
    text = text.replace(_LISTEN_HTTP, f"listen {HOST}:{port};")
    if tls is None:
        text = _TLS_BLOCK.sub("", text, count=1)
    else:
        cert, key = tls
        text = text.replace("listen 443 ssl;", f"listen {HOST}:{tls_port or free_port()} ssl;")
        text = text.replace("/etc/nginx/certs/fullchain.pem", str(cert))
        text = text.replace("/etc/nginx/certs/privkey.pem", str(key))
    main = "\n".join(
        [
            "worker_processes 1;",
            f"pid {prefix}/nginx.pid;",
            f"error_log {prefix}/error.log warn;",
            # Running as root, workers would switch to `nobody`: keep them the test's user.
            *(["user root;"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),
        ]
    )
    text = text.replace(_MAIN, main, 1)
    temp = "\n".join(
        f"    {kind}_temp_path {prefix}/{kind}_temp;"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return text.replace("http {\n", "http {\n" + temp + "\n", 1)


def write_config(
    directory: Path,
    nodes: Mapping[str, str],
    *,
    port: int,
    tls: tuple[Path, Path] | None = None,
    pages_via: Sequence[str] | None = None,
) -> Path:
    """The rendered nginx.conf and the shipped locations file beside it; the config's path."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "nginx.conf"
    config.write_text(render(nodes, port=port, prefix=directory, tls=tls, pages_via=pages_via))
    shutil.copyfile(LOCATIONS, directory / LOCATIONS.name)
    return config


def check_config(config: Path) -> subprocess.CompletedProcess[str]:
    """`nginx -t` on a rendered config (its own prefix and error log: nothing of the machine's)."""
    nginx = executable()
    if nginx is None:
        raise RuntimeError("nginx is not installed: apt-get install -y nginx")
    prefix = config.parent
    return subprocess.run(
        [nginx, "-t", "-p", str(prefix), "-c", str(config), "-e", str(prefix / "error.log")],
        capture_output=True,
        text=True,
        timeout=30,
    )


@dataclass(frozen=True)
class Proxy:
    url: str  # http://127.0.0.1:PORT, no trailing slash
    port: int
    pid: int
    prefix: Path
    config: Path

    def node_url(self, node_id: str) -> str:
        """Where a page reaches node `node_id`'s own Socket.IO path through this proxy."""
        return f"{self.url}/node/{node_id}/socket.io/"

    def error_log(self) -> str:
        path = self.prefix / "error.log"
        return tail(path) if path.exists() else ""


@contextmanager
def nginx_proxy(
    nodes: Mapping[str, str],
    *,
    port: int | None = None,
    timeout: float = 20,
    pages_via: Sequence[str] | None = None,
) -> Iterator[Proxy]:
    """nginx with deploy/nginx.conf in front of `nodes` (id -> URL or host:port), on a free
    loopback port; ready once GET /healthz answers 200 through it; stopped by its PID.
    `pages_via` pins pages, the API and the non-visit sockets to those nodes (a test's way to
    force "this browser goes through node 1"); visit sockets still go to their owner."""
    nginx = executable()
    if nginx is None:
        raise RuntimeError("nginx is not installed: apt-get install -y nginx")
    port = port or free_port()
    with tempfile.TemporaryDirectory(prefix="openconsult-nginx-") as tmp:
        prefix = Path(tmp)
        config = write_config(prefix, nodes, port=port, pages_via=pages_via)
        error_log = prefix / "error.log"
        proc = subprocess.Popen(
            [
                nginx,
                "-p",
                str(prefix),
                "-c",
                str(config),
                "-e",
                str(error_log),
                "-g",
                "daemon off;",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        proxy = Proxy(f"http://{HOST}:{port}", port, proc.pid, prefix, config)
        failed = True
        try:
            _wait_answering(proc, proxy, timeout)
            yield proxy
            failed = proc.poll() is not None
        finally:
            _stop(proc)
            if failed:
                print(f"--- nginx (pid {proc.pid}):\n{proxy.error_log()}", file=sys.stderr)


def _address(target: str) -> str:
    if "://" in target:
        parts = urlsplit(target)
        return f"{parts.hostname}:{parts.port}"
    return target


def _wait_answering(proc: subprocess.Popen[bytes], proxy: Proxy, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"nginx exited with {proc.returncode}:\n{proxy.error_log()}")
        try:
            with urllib.request.urlopen(proxy.url + "/healthz", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (OSError, urllib.error.HTTPError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"nginx did not answer within {timeout}s:\n{proxy.error_log()}")
        time.sleep(0.1)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)  # nginx's fast shutdown: open websockets are closed
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


NODE_IDS = ("app1", "app2", "app3")  # the shipped config's node ids


@dataclass(frozen=True)
class Cluster:
    """App nodes (id -> Server) behind one nginx; pages and sockets go through `proxy`."""

    proxy: Proxy
    nodes: dict[str, Server]

    @property
    def url(self) -> str:
        return self.proxy.url


@contextmanager
def node_cluster(
    env: Mapping[str, str], node_ids: Sequence[str] = NODE_IDS, **extra: str
) -> Iterator[Cluster]:
    """`python -m app serve` once per node id (each with its OPENCONSULT_NODE_ID and its
    internal URL, on a free port; ready at /readyz), behind `nginx_proxy`. `env` holds the
    shared settings (DATABASE_URL, REDIS_URL, key prefix); `extra` adds to every node's."""
    with ExitStack() as stack:
        nodes: dict[str, Server] = {}
        for node_id in node_ids:
            port = free_port()
            node_env = dict(
                env,
                OPENCONSULT_NODE_ID=node_id,
                OPENCONSULT_NODE_URL=f"http://{HOST}:{port}",
                OPENCONSULT_TRUSTED_PROXIES=HOST,
                **extra,
            )
            nodes[node_id] = stack.enter_context(app_server(node_env, port=port, health="/readyz"))
        proxy = stack.enter_context(nginx_proxy({i: s.url for i, s in nodes.items()}))
        yield Cluster(proxy, nodes)
