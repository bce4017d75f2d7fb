"""The relay's media ports: one UDP port for every connection, or a port range, and the
addresses its host candidates announce.

aioice binds one random UDP port per host address for every connection and announces the
interfaces' own addresses. Like Jitsi Videobridge (UDP 10000), LiveKit (`rtc.udp_port`) and
mediasoup's WebRtcServer, the relay can instead serve every participant on one socket
(`OPENCONSULT_RTC_UDP_PORT`), demultiplexed the way pion's UDPMux does it:

- a STUN binding request goes to the connection whose local ICE username fragment opens its
  USERNAME ("localufrag:remoteufrag"); once its MESSAGE-INTEGRITY checks out with that
  connection's password, the sender's address (ip, port) belongs to that connection;
- a STUN response goes to the connection that sent the request (by transaction id); a
  successful check also gives its address to that connection;
- anything else (DTLS, SRTP, SRTCP) goes by the sender's address.

What matches nothing is dropped and counted. A connection that closes gives back its ufrag and
addresses. `OPENCONSULT_RTC_UDP_PORTS` gives each connection a socket of its own on a free port
of a range (the same machinery with one tenant per socket). `OPENCONSULT_RTC_ANNOUNCED_IPS`
puts these addresses into the host candidates in place of the interfaces' (1:1 NAT, containers,
as mediasoup's announcedAddress and LiveKit's use_external_ip).

These sockets are IPv4 and bound to 0.0.0.0 (the kernel picks the source address by route, as
LiveKit's and mediasoup's wildcard listeners do); IPv6 host candidates are left out then, and
so are TURN candidates (the relay has no TURN server of its own). With none of the three
settings, aioice's own gathering runs unchanged.

Every aioice internal used is here; aioice is pinned exactly (pyproject) and
tests/signaling/test_aiortc_hooks.py fails if an upgrade moves one.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import random
import socket
from collections import Counter
from collections.abc import Sequence
from typing import Any, cast

from aioice import Candidate, Connection, stun
from aioice.candidate import candidate_foundation, candidate_priority
from aioice.ice import StunProtocol, server_reflexive_candidate
from aioice.utils import random_string
from aiortc import RTCPeerConnection

from signaling.relay import hooks

logger = logging.getLogger(__name__)

AIOICE_VERSION = "0.13.0"
BIND_HOST = "0.0.0.0"  # noqa: S104 (media must reach the relay from any interface)
SHARED_RECEIVE_BUFFER = 4 * 1024 * 1024  # the kernel caps it at net.core.rmem_max
OWN_RECEIVE_BUFFER = 262_144  # aioice's own figure for its per-connection sockets
UFRAG_LENGTH = 16  # aioice's default 4 characters collide too often on a busy port
MUX_MARK = "_openconsult_media_ports"


class NoFreeMediaPort(Exception):
    """Every port of OPENCONSULT_RTC_UDP_PORTS is taken."""


def parse_port_range(text: str) -> tuple[int, int]:
    """Parse OPENCONSULT_RTC_UDP_PORTS: "40000-40099" -> (40000, 40099)."""
    low, _, high = text.partition("-")
    return int(low), int(high)


def _is_stun(data: bytes) -> bool:
    return bool(data) and data[0] < 4  # RFC 7983: 0-3 STUN, 20-63 DTLS, 128-191 RTP/RTCP


class MediaSocket(asyncio.DatagramProtocol):
    """One UDP socket shared by the ICE connections attached to it."""

    def __init__(self, *, shared: bool) -> None:
        self.shared = shared
        self.transport: asyncio.DatagramTransport | None = None
        self.dropped: Counter[str] = Counter()
        self._by_ufrag: dict[str, list[MuxProtocol]] = {}
        self._by_address: dict[tuple[str, int], MuxProtocol] = {}
        self._by_transaction: dict[bytes, MuxProtocol] = {}
        self._closed = asyncio.get_running_loop().create_future()

    # ------------------------------------------------------------ asyncio protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._closed.done():
            self._closed.set_result(None)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a peer that went away: ICE's consent checks notice.
        logger.debug("media socket error: %s", exc)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        address = (addr[0], addr[1])
        if _is_stun(data):
            self._stun_received(data, address)
            return
        protocol = self._by_address.get(address)
        if protocol is None:
            self.dropped["unknown_address"] += 1
            return
        # What StunProtocol.datagram_received does with a datagram that is not STUN.
        protocol.receiver.data_received(data, protocol.local_candidate.component)

    def _stun_received(self, data: bytes, address: tuple[str, int]) -> None:
        try:
            message = stun.parse_message(data)
        except ValueError:
            self.dropped["malformed"] += 1
            return
        if message.message_class == stun.Class.REQUEST:
            username = message.attributes.get("USERNAME")
            ufrag = username.partition(":")[0] if isinstance(username, str) else ""
            protocols = self._by_ufrag.get(ufrag)
            if not protocols:
                self.dropped["unknown_ufrag"] += 1
                return
            protocol = self._by_address.get(address)
            if protocol not in protocols:
                protocol = protocols[0]
                connection = protocol.receiver
                if address not in self._by_address and message.check_message_integrity(
                    connection.local_password.encode("utf8")
                ):
                    self._learn(address, protocol)
            protocol.datagram_received(data, address)
        elif message.message_class in (stun.Class.RESPONSE, stun.Class.ERROR):
            protocol = self._by_transaction.get(message.transaction_id)
            if protocol is None:
                self.dropped["unknown_transaction"] += 1
                return
            protocol.datagram_received(data, address)
        else:  # indications: keepalives from a known peer
            protocol = self._by_address.get(address)
            if protocol is None:
                self.dropped["unknown_address"] += 1
                return
            protocol.datagram_received(data, address)

    # ------------------------------------------------------------ tenants

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    @property
    def ufrags(self) -> frozenset[str]:
        return frozenset(self._by_ufrag)

    @property
    def addresses(self) -> frozenset[tuple[str, int]]:
        return frozenset(self._by_address)

    def attach(
        self, connection: Connection, hosts: Sequence[str], component: int
    ) -> list[MuxProtocol]:
        """A protocol per announced host for `connection`, all sending on this socket."""
        ufrag = connection.local_username
        if ufrag in self._by_ufrag and self._by_ufrag[ufrag][0].receiver is not connection:
            raise RuntimeError("two ICE connections on one media port share a ufrag")
        protocols = []
        for host in hosts:
            protocol = MuxProtocol(connection, self)
            protocol.local_candidate = Candidate(
                foundation=candidate_foundation("host", "udp", host),
                component=component,
                transport="udp",
                priority=candidate_priority(component, "host"),
                host=host,
                port=self.port,
                type="host",
            )
            protocol.connection_made(SharedTransport(self, protocol))
            protocols.append(protocol)
        self._by_ufrag.setdefault(ufrag, []).extend(protocols)
        return protocols

    def detach(self, protocol: MuxProtocol) -> None:
        ufrag = protocol.receiver.local_username
        protocols = self._by_ufrag.get(ufrag, [])
        if protocol in protocols:
            protocols.remove(protocol)
        if not protocols:
            self._by_ufrag.pop(ufrag, None)
        for address in protocol.addresses:
            if self._by_address.get(address) is protocol:
                del self._by_address[address]
        protocol.addresses.clear()
        if not self.shared and not self._by_ufrag and self.transport is not None:
            self.transport.close()

    def _learn(self, address: tuple[str, int], protocol: MuxProtocol) -> None:
        if address in self._by_address:
            return
        self._by_address[address] = protocol
        protocol.addresses.add(address)

    def expect_response(self, transaction_id: bytes, protocol: MuxProtocol | None) -> None:
        if protocol is None:
            self._by_transaction.pop(transaction_id, None)
        else:
            self._by_transaction[transaction_id] = protocol

    def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(data, addr)

    async def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            await self._closed


class MuxProtocol(StunProtocol):
    """aioice's per-candidate protocol, sending on a shared socket and fed by its demux."""

    def __init__(self, connection: Connection, socket_: MediaSocket) -> None:
        super().__init__(connection)
        self.media_socket = socket_
        self.addresses: set[tuple[str, int]] = set()

    async def request(
        self,
        request: stun.Message,
        addr: tuple[str, int],
        integrity_key: bytes | None = None,
        retransmissions: int | None = None,
    ) -> tuple[stun.Message, tuple[str, int]]:
        self.media_socket.expect_response(request.transaction_id, self)
        try:
            result = await super().request(
                request, addr, integrity_key=integrity_key, retransmissions=retransmissions
            )
        finally:
            self.media_socket.expect_response(request.transaction_id, None)
        if "USERNAME" in request.attributes:  # a connectivity check succeeded: that peer is ours
            self.media_socket._learn(addr, self)
        return result


class SharedTransport(asyncio.DatagramTransport):
    """What one MuxProtocol sees as its transport: the shared socket, closed for it alone."""

    def __init__(self, media_socket: MediaSocket, protocol: MuxProtocol) -> None:
        super().__init__()
        self._socket = media_socket
        self._protocol = protocol
        self._closing = False

    def sendto(self, data: Any, addr: Any = None) -> None:
        if not self._closing:
            self._socket.sendto(bytes(data), addr)

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._socket.detach(self._protocol)
        asyncio.get_running_loop().call_soon(self._protocol.connection_lost, None)

    def abort(self) -> None:
        self.close()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if self._socket.transport is None:
            return default
        return self._socket.transport.get_extra_info(name, default)


async def _open_socket(port: int, *, shared: bool) -> MediaSocket:
    loop = asyncio.get_running_loop()
    transport, media_socket = await loop.create_datagram_endpoint(
        lambda: MediaSocket(shared=shared), local_addr=(BIND_HOST, port), family=socket.AF_INET
    )
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            size = SHARED_RECEIVE_BUFFER if shared else OWN_RECEIVE_BUFFER
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    return media_socket


class MediaPorts:
    """Where the relay's ICE connections get their sockets and which addresses they announce.

    `udp_port`: one socket on that port for every connection. `port_range`: a socket per
    connection on a free port of (low, high). Neither: a random port per connection.
    `announced_ips`: the host candidates' addresses (else the interfaces' IPv4 addresses).
    `loopback` (tests and development): 127.0.0.1 is offered too.
    """

    def __init__(
        self,
        *,
        udp_port: int | None = None,
        port_range: tuple[int, int] | None = None,
        announced_ips: Sequence[str] = (),
        loopback: bool = False,
    ) -> None:
        if udp_port is not None and port_range is not None:
            raise ValueError("one media port or a range of them, not both")
        self.udp_port = udp_port
        self.port_range = port_range
        self.announced_ips = tuple(announced_ips)
        self.loopback = loopback
        self.shared: MediaSocket | None = None
        self._own: set[MediaSocket] = set()
        self._opening = asyncio.Lock()

    @property
    def stock(self) -> bool:
        """aioice's own gathering (plus 127.0.0.1 with `loopback`)."""
        return self.udp_port is None and self.port_range is None and not self.announced_ips

    async def start(self) -> None:
        """Bind the shared port now, so that a port already taken stops the process at start."""
        if self.udp_port is not None and self.shared is None:
            async with self._opening:
                if self.shared is None:
                    try:
                        self.shared = await _open_socket(self.udp_port, shared=True)
                    except OSError as exc:
                        raise OSError(
                            exc.errno,
                            f"cannot bind the relay's media port (OPENCONSULT_RTC_UDP_PORT) "
                            f"UDP {BIND_HOST}:{self.udp_port}: {exc.strerror}",
                        ) from exc
                    logger.info("relay media on UDP port %d", self.shared.port)

    async def close(self) -> None:
        sockets = [s for s in (self.shared, *self._own) if s is not None]
        self.shared = None
        self._own.clear()
        for media_socket in sockets:
            await media_socket.close()

    def stats(self) -> dict[str, int]:
        """Dropped datagrams by reason, and what the shared port knows now."""
        sockets = [s for s in (self.shared, *self._own) if s is not None]
        dropped: Counter[str] = Counter()
        for media_socket in sockets:
            dropped.update(media_socket.dropped)
        result = {f"dropped_{reason}": count for reason, count in dropped.items()}
        if self.shared is not None:
            result["ufrags"] = len(self.shared.ufrags)
            result["addresses"] = len(self.shared.addresses)
        return result

    def install(self, pc: RTCPeerConnection) -> None:
        """Give the connection's ICE agents these ports and addresses. Call after
        setRemoteDescription (the answerer), before setLocalDescription gathers."""
        if self.stock:
            if self.loopback:
                hooks.offer_loopback_candidate(pc)
            return
        for transceiver in pc.getTransceivers():
            self.install_connection(
                transceiver.receiver.transport.transport.iceGatherer._connection
            )

    def install_connection(self, connection: Connection) -> None:
        """Give one aioice connection these ports and addresses, before it gathers."""
        if getattr(connection, MUX_MARK, None) is self:
            return
        # A longer ufrag: it is the demux key of the shared port, unique among thousands.
        connection._local_username = random_string(UFRAG_LENGTH)

        async def gather(
            component: int,
            addresses: list[str],
            timeout: int = 5,  # noqa: ASYNC109 (aioice's own signature)
        ) -> list[Candidate]:
            return await self._gather(connection, component, addresses, timeout)

        connection.get_component_candidates = gather  # type: ignore[method-assign]
        setattr(connection, MUX_MARK, self)

    def _hosts(self, addresses: list[str]) -> list[str]:
        hosts = list(self.announced_ips) or [
            a for a in addresses if ipaddress.ip_address(a).version == 4
        ]
        if self.loopback and "127.0.0.1" not in hosts:
            hosts.append("127.0.0.1")
        return hosts

    async def _socket_for_a_connection(self) -> MediaSocket:
        if self.udp_port is not None:
            await self.start()
            assert self.shared is not None
            return self.shared
        if self.port_range is None:
            media_socket = await _open_socket(0, shared=False)
        else:
            low, high = self.port_range
            ports = list(range(low, high + 1))
            start = random.randrange(len(ports))  # noqa: S311 (spreading, not secrecy)
            for port in ports[start:] + ports[:start]:
                try:
                    media_socket = await _open_socket(port, shared=False)
                except OSError:
                    continue
                break
            else:
                raise NoFreeMediaPort(f"every media port of {low}-{high} is taken")
        self._own.add(media_socket)
        media_socket._closed.add_done_callback(lambda _: self._own.discard(media_socket))
        return media_socket

    async def _gather(
        self,
        connection: Connection,
        component: int,
        addresses: list[str],
        timeout: int,  # noqa: ASYNC109 (aioice's own signature, passed on)
    ) -> list[Candidate]:
        """aioice's `Connection.get_component_candidates`, on this relay's ports."""
        hosts = self._hosts(addresses)
        if not hosts:
            return []
        media_socket = await self._socket_for_a_connection()
        protocols = media_socket.attach(connection, hosts, component)
        connection._protocols += protocols
        candidates = [p.local_candidate for p in protocols]
        if connection.stun_server and not self.announced_ips:
            # Behind NAT with no announced address: ask STUN what the port looks like outside.
            try:
                async with asyncio.timeout(timeout):
                    reflexive, _ = await server_reflexive_candidate(
                        protocols[0], connection.stun_server
                    )
                candidates.append(reflexive)
            except (TimeoutError, OSError, stun.TransactionError) as exc:
                logger.info("no server-reflexive candidate: %s", exc)
        return candidates
