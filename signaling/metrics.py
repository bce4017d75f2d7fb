"""What /metrics shows of the live parts of a visit on this node: the relay's rooms and
counters, the waiting room, the Socket.IO connections. Read at scrape time; no ids in labels."""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from app.web.metrics import add_collector
from signaling.queue.waiting_namespace import WaitingRoomNamespace
from signaling.relay import MEDIA_RELAY, RelayCounters
from signaling.rooms import WAITING_NAMESPACE
from signaling.server import SOCKET_SERVER
from signaling.visit.placement import LOBBY_PREFIX

# (metric name, help, the RelayCounters field); each a counter of the relay's life.
RELAY_COUNTERS = (
    ("packets_forwarded", "RTP packets the packet path sent to viewers", "packets_forwarded"),
    (
        "packets_dropped",
        "RTP packets a viewer did not get (still connecting, waiting for a keyframe, too old, "
        "its transport closed)",
        "packets_dropped",
    ),
    ("frames_forwarded", "Encoded frames the frame path handed to viewers", "frames_forwarded"),
    (
        "frames_dropped",
        "Encoded frames a viewer did not get (waiting for a keyframe, its queue full)",
        "frames_dropped",
    ),
    ("frames_transcoded", "Decoded frames handed to viewers to encode again", "frames_transcoded"),
    ("bytes_forwarded", "Media payload bytes forwarded to viewers (both paths)", "bytes_forwarded"),
)


def _relay_counters(counters: RelayCounters) -> Iterable[Metric]:
    for name, doc, field in RELAY_COUNTERS:
        yield CounterMetricFamily(
            f"openconsult_relay_{name}", doc, value=float(getattr(counters, field))
        )
    requests = CounterMetricFamily(
        "openconsult_relay_keyframe_requests",
        "Keyframe requests: PLI/FIR from viewers, and PLI the relay sent publishers",
        labels=["direction"],
    )
    requests.add_metric(["from_viewers"], counters.keyframe_requests_received)
    requests.add_metric(["to_publishers"], counters.keyframe_requests_sent)
    yield requests


def setup_metrics(app: web.Application) -> None:
    """Add this node's relay, waiting room and socket figures to each scrape."""

    def collect() -> Iterable[Metric]:
        relay = app.get(MEDIA_RELAY)
        rooms = list(relay.rooms.items()) if relay is not None else []
        in_visits = sum(len(r.participants) for rid, r in rooms if not rid.startswith(LOBBY_PREFIX))
        warm = sum(len(r.participants) for rid, r in rooms if rid.startswith(LOBBY_PREFIX))
        yield GaugeMetricFamily(
            "openconsult_participants",
            "People connected to a visit through this node's media relay",
            value=in_visits,
        )
        yield GaugeMetricFamily(
            "openconsult_warm_connections",
            "Connections held warm on this node's relay (waiting patients, providers with "
            "their queue open), nothing routed yet",
            value=warm,
        )
        sio = app[SOCKET_SERVER]
        waiting = sio.namespace_handlers.get(WAITING_NAMESPACE)
        yield GaugeMetricFamily(
            "openconsult_waiting_patients",
            "Patients in the waiting room connected to this node",
            value=waiting.patients_connected() if isinstance(waiting, WaitingRoomNamespace) else 0,
        )
        sockets = GaugeMetricFamily(
            "openconsult_socketio_connections",
            "Socket.IO connections to this node, by namespace",
            labels=["namespace"],
        )
        for namespace in sorted(sio.namespace_handlers):
            connected = sum(1 for _ in sio.manager.get_participants(namespace, None))
            sockets.add_metric([namespace], connected)
        yield sockets
        yield from _relay_counters(relay.counters if relay is not None else RelayCounters())

    add_collector(app, collect)
