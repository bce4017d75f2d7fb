"""Real networks for browser tests: network namespaces, veth pairs, routes, NAT and firewalls.

`nat_network()` builds three namespaces joined by veth pairs and deletes them on the way out,
whatever happened inside:

    client (browser)  ──  router  ──  server (app node, coturn)
    10.77.1.2/24   10.77.1.1 | 10.77.2.1   10.77.2.2/24

The router is both ends of the internet: it masquerades the client's network (a home NAT) and
maps a public address, 203.0.113.10, 1:1 onto the server's private one (a cloud VM's public IP):
the client reaches the server only through that public address, and nobody reaches the
client unless it spoke first. `block_udp=True` makes the client's network drop every UDP
packet it sends (the hospital guest Wi-Fi that allows only web traffic).

Namespace names carry this process's id and a counter, so parallel runs never share one. The
addresses are the same in every run: they exist only inside the namespaces.

Commands run in a namespace with `ip netns exec`, which enters it and execs the command: a
process started that way has the command's own PID, and is stopped by it.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.servers import ROOT, tail

CLIENT_IP = "10.77.1.2"
CLIENT_GATEWAY = "10.77.1.1"
SERVER_IP = "10.77.2.2"
SERVER_GATEWAY = "10.77.2.1"
# The server's public address (TEST-NET-3): mapped onto SERVER_IP by the router.
PUBLIC_IP = "203.0.113.10"

_counter = itertools.count()


def unavailable() -> str | None:
    """Why these tests cannot run here (not root, `ip` or `iptables` missing), or None."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "iptables"):
        if _which(tool) is None:
            return f"`{tool}` is not installed (apt-get install -y iproute2 iptables)"
    return None


def _which(tool: str) -> str | None:
    return shutil.which(tool) or next(
        (p for d in ("/usr/sbin", "/sbin") if os.access(p := f"{d}/{tool}", os.X_OK)), None
    )


def _ip() -> str:
    found = _which("ip")
    assert found, "ip is not installed"
    return found


@dataclass(frozen=True)
class Namespace:
    name: str

    def command(self, *args: str) -> list[str]:
        """`args` as a command line run inside this namespace."""
        return [_ip(), "netns", "exec", self.name, *args]

    def run(self, *args: str, timeout: float = 30) -> str:
        """Run a command in this namespace; its output, or CalledProcessError with it."""
        done = subprocess.run(
            self.command(*args), capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} in {self.name}: {done.stderr or done.stdout}")
        return done.stdout

    def iptables(self, *rule: str) -> str:
        return self.run(_which("iptables") or "iptables", "-w", *rule)


@contextmanager
def namespace(role: str) -> Iterator[Namespace]:
    """A fresh network namespace with its loopback up; deleted on the way out."""
    ns = Namespace(f"oc-{role}-{os.getpid()}-{next(_counter)}")
    subprocess.run([_ip(), "netns", "add", ns.name], check=True, timeout=30)
    try:
        ns.run(_ip(), "link", "set", "lo", "up")
        yield ns
    finally:
        # Deleting a namespace deletes its veth ends (and their peers) with it.
        subprocess.run([_ip(), "netns", "delete", ns.name], check=False, timeout=30)


def veth(a: Namespace, a_if: str, a_cidr: str, b: Namespace, b_if: str, b_cidr: str) -> None:
    """A veth pair from namespace `a` to `b`, each end addressed and up."""
    pair = ["link", "add", a_if, "netns", a.name, "type", "veth"]
    subprocess.run([_ip(), *pair, "peer", "name", b_if, "netns", b.name], check=True, timeout=30)
    for ns, name, cidr in ((a, a_if, a_cidr), (b, b_if, b_cidr)):
        ns.run(_ip(), "addr", "add", cidr, "dev", name)
        ns.run(_ip(), "link", "set", name, "up")


@dataclass(frozen=True)
class Network:
    client: Namespace
    router: Namespace
    server: Namespace
    client_ip: str = CLIENT_IP
    server_ip: str = SERVER_IP
    public_ip: str = PUBLIC_IP


@contextmanager
def nat_network(*, block_udp: bool = False, server_routed: bool = False) -> Iterator[Network]:
    """client -- router (NAT both ways) -- server, as the module docstring draws it.
    `server_routed`: the client also reaches the server's private address (a routed network,
    still masqueraded), so the relay's own candidates work without an announced address."""
    with (
        namespace("client") as client,
        namespace("router") as router,
        namespace("server") as server,
    ):
        veth(client, "lan0", f"{CLIENT_IP}/24", router, "lan", f"{CLIENT_GATEWAY}/24")
        veth(router, "wan", f"{SERVER_GATEWAY}/24", server, "eth0", f"{SERVER_IP}/24")
        client.run(_ip(), "route", "add", "default", "via", CLIENT_GATEWAY)
        server.run(_ip(), "route", "add", "default", "via", SERVER_GATEWAY)
        router.run("sysctl", "-qw", "net.ipv4.ip_forward=1")
        # The server's 1:1 public address, and the client network's masquerade.
        router.iptables(
            "-t", "nat", "-A", "PREROUTING", "-d", PUBLIC_IP, "-j", "DNAT",
            "--to-destination", SERVER_IP,
        )  # fmt: skip
        router.iptables("-t", "nat", "-A", "POSTROUTING", "-o", "wan", "-j", "MASQUERADE")
        # Only replies, and what was sent to the public address, cross the router: the
        # server's private address and the client are out of reach from the other side.
        router.iptables("-P", "FORWARD", "DROP")
        router.iptables(
            "-A", "FORWARD", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"
        )
        router.iptables(
            "-A", "FORWARD", "-i", "lan", "-m", "conntrack", "--ctstate", "DNAT", "-j", "ACCEPT"
        )
        if server_routed:
            router.iptables("-A", "FORWARD", "-i", "lan", "-d", SERVER_IP, "-j", "ACCEPT")
        if block_udp:
            client.iptables("-A", "OUTPUT", "-p", "udp", "-j", "DROP")
        yield Network(client, router, server)


def count_packets(ns: Namespace, chain: str, name: str, *match: str) -> None:
    """An accounting rule: packets in `chain` (filter table) matching `match` are counted
    under `name` (read with `counted`) and go on as before."""
    ns.iptables("-A", chain, *match, "-m", "comment", "--comment", name, "-j", "RETURN")


def counted(ns: Namespace, chain: str, name: str) -> int:
    """Packets the accounting rule `name` has seen."""
    listing = ns.iptables("-L", chain, "-n", "-v", "-x")
    for line in listing.splitlines():
        if f"/* {name} */" in line:
            return int(line.split()[0])
    raise AssertionError(f"no accounting rule {name!r} in {chain}:\n{listing}")


@dataclass(frozen=True)
class Process:
    pid: int
    log: Path
    process: subprocess.Popen[bytes]


@contextmanager
def running(
    ns: Namespace,
    command: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    ready: Sequence[str] | None = None,
    timeout: float = 60,
) -> Iterator[Process]:
    """`command` inside `ns` (from the repository root), its output in a log file; ready once
    the command `ready` (run in the client's view, e.g. a URL fetch) succeeds. Stopped by PID:
    SIGTERM, then SIGKILL."""
    with tempfile.TemporaryDirectory(prefix="openconsult-netns-") as tmp:
        log = Path(tmp) / "process.log"
        with log.open("w") as out:
            proc = subprocess.Popen(
                ns.command(*command),
                cwd=ROOT,
                env=dict(env if env is not None else os.environ),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        failed = True
        try:
            if ready is not None:
                _wait_ready(proc, ready, timeout, log)
            yield Process(proc.pid, log, proc)
            failed = proc.poll() is not None
        finally:
            _stop(proc)
            if failed:
                print(f"--- {' '.join(command)} (pid {proc.pid}):\n{tail(log)}", file=sys.stderr)


def fetch_command(ns: Namespace, url: str) -> list[str]:
    """A command that succeeds when GET `url` from inside `ns` answers 200."""
    curl = shutil.which("curl")
    if curl:  # starts faster than Python on a loaded machine
        return ns.command(curl, "-sf", "-o", "/dev/null", "--max-time", "2", url)
    script = (
        "import sys, urllib.request\n"
        "sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=2).status == 200 else 1)"
    )
    return ns.command(sys.executable, "-c", script, url)


def _wait_ready(
    proc: subprocess.Popen[bytes], ready: Sequence[str], timeout: float, log: Path
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode} before it was ready:\n{tail(log)}")
        done = subprocess.run(list(ready), capture_output=True, timeout=30, check=False)
        if done.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"not ready within {timeout}s:\n{tail(log)}")
        time.sleep(0.2)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@dataclass(frozen=True)
class AppNode:
    url: str  # the public URL a browser in the client namespace uses
    pid: int
    log: Path


@contextmanager
def app_node(network: Network, env: Mapping[str, str], *, port: int = 8080) -> Iterator[AppNode]:
    """`python -m app serve` in the server namespace on its private address; ready once the
    client namespace gets /healthz through the router at the public address."""
    url = f"http://{network.public_ip}:{port}"
    command = [sys.executable, "-m", "app", "serve", "--host", network.server_ip]
    command += ["--port", str(port)]
    env = dict(env, OPENCONSULT_PUBLIC_URL=url)
    with running(
        network.server, command, env=env, ready=fetch_command(network.client, url + "/healthz")
    ) as proc:
        yield AppNode(url, proc.pid, proc.log)


def chromium_wrapper(directory: Path, ns: Namespace, chromium: str) -> Path:
    """An executable that runs `chromium` inside `ns`: Playwright launches it in place of the
    browser, and talks to it over the pipes `ip netns exec` hands on."""
    script = directory / "chromium-in-netns"
    script.write_text(f'#!/bin/sh\nexec {_ip()} netns exec {ns.name} {chromium} "$@"\n')
    script.chmod(0o755)
    return script


def reachable_database_url(url: str) -> str | None:
    """The test's database as a process in another namespace reaches it: a SQLite file as is;
    PostgreSQL on this machine's loopback through its Unix socket (loopback is per namespace,
    the file system is not); None when neither works."""
    if url.startswith("sqlite"):
        return url
    for local in ("@127.0.0.1:5432/", "@localhost:5432/"):
        if local in url and Path("/var/run/postgresql/.s.PGSQL.5432").exists():
            return url.replace(local, "@/", 1) + "?host=/var/run/postgresql"
    return None
