"""A real coturn, configured by the shipped deploy/coturn/turnserver.conf, in a test's network
namespace; and a test certificate authority a browser trusts the way a real one does (its NSS
database), for TURN over TLS.

Only what differs on a test machine is given on the command line: the secret, the addresses,
the relay port range, the certificate, where the pid file goes. The shipped file refuses peers
in private ranges (SSRF through TURN); the app node's relay has a private address here, as it
does next to coturn in most deployments, so it is allowed by `allowed-peer-ip`, as an operator
allows theirs.
"""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support import netns

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "coturn" / "turnserver.conf"
TURN_PORT = 3478
TLS_PORT = 5349
RELAY_PORTS = (49152, 49252)  # coturn's UDP relay ports (min-port, max-port)


def executable() -> str | None:
    return shutil.which("turnserver") or (
        "/usr/bin/turnserver" if Path("/usr/bin/turnserver").exists() else None
    )


@dataclass(frozen=True)
class Turn:
    pid: int
    log: Path
    address: str  # where browsers reach it (the public address)


@contextmanager
def turn_server(
    network: netns.Network,
    directory: Path,
    *,
    secret: str,
    allowed_peer: str,
    tls: tuple[Path, Path] | None = None,
) -> Iterator[Turn]:
    """coturn in the server namespace on its private address, reached by browsers at the public
    one; ready once the client namespace connects to its TCP (and TLS) port."""
    turnserver = executable()
    if turnserver is None:
        raise RuntimeError("coturn is not installed: apt-get install -y coturn")
    low, high = RELAY_PORTS
    command = [
        turnserver,
        "-c", str(CONFIG),
        f"--static-auth-secret={secret}",
        f"--listening-ip={network.server_ip}",
        f"--relay-ip={network.server_ip}",
        f"--allowed-peer-ip={allowed_peer}",
        f"--min-port={low}",
        f"--max-port={high}",
        f"--pidfile={directory / 'turnserver.pid'}",
        "--no-dtls",  # no browser uses DTLS to its TURN server
    ]  # fmt: skip
    if tls is None:
        command.append("--no-tls")
    else:
        cert, key = tls
        command += [f"--cert={cert}", f"--pkey={key}"]
    ports = [TURN_PORT] + ([TLS_PORT] if tls else [])
    ready = _connects_command(network.client, network.public_ip, ports)
    with netns.running(network.server, command, ready=ready, timeout=30) as proc:
        yield Turn(proc.pid, proc.log, network.public_ip)


def _connects_command(ns: netns.Namespace, host: str, ports: Sequence[int]) -> list[str]:
    script = (
        "import socket, sys\n"
        "for port in sys.argv[2:]:\n"
        "    socket.create_connection((sys.argv[1], int(port)), timeout=2).close()"
    )
    return ns.command(sys.executable, "-c", script, host, *map(str, ports))


_USAGES = (
    "digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
    "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only",
)  # fmt: skip


@dataclass(frozen=True)
class Certificates:
    ca: Path  # the authority's certificate (PEM)
    cert: Path  # the server's certificate, signed by it
    key: Path  # the server's private key


def make_test_ca(directory: Path, ip: str) -> Certificates:
    """A fresh certificate authority and a server certificate for `ip` (a SAN) signed by it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    signs = ("digital_signature", "key_cert_sign", "crl_sign")
    ca_usage = x509.KeyUsage(**{usage: usage in signs for usage in _USAGES})
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "OpenConsult test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(ca_usage, critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ip)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    out = Certificates(directory / "ca.pem", directory / "cert.pem", directory / "key.pem")
    out.ca.write_bytes(ca_cert.public_bytes(pem))
    out.cert.write_bytes(cert.public_bytes(pem))
    out.key.write_bytes(
        key.private_bytes(
            pem, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
    )
    return out


def browser_home_trusting(home: Path, ca: Path) -> Path:
    """A HOME whose NSS database (where Chromium on Linux keeps the user's trusted roots)
    trusts `ca` for servers, as `certutil` puts it there on a person's machine."""
    certutil = shutil.which("certutil")
    if certutil is None:
        raise RuntimeError("certutil is not installed: apt-get install -y libnss3-tools")
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    db = f"sql:{nssdb}"
    for args in (["-N", "--empty-password"], ["-A", "-t", "C,,", "-n", "testca", "-i", str(ca)]):
        subprocess.run([certutil, "-d", db, *args], check=True, capture_output=True, timeout=30)
    return home
