"""/metrics: this process's figures in Prometheus's text format, and who may read them.

Each app has its own `CollectorRegistry` (tests build many apps in one process; the library's
global registry would refuse the second). What lives elsewhere (the relay's counters, the node's
load, the outbox in the database) is read at scrape time: domains add a collector (`add_collector`,
called on each scrape) or an async refresh run before it (`on_scrape`). No label value ever
carries patient data: routes are named by their template (`/api/visits/{visit_id}/placement`),
never by the URL asked for; audit events by their action.

Access: with `OPENCONSULT_METRICS_TOKEN`, a scrape sends `Authorization: Bearer <token>`; without
it, only a direct peer on a loopback or private address that nothing forwarded (no
`X-Forwarded-For`, `Forwarded` or `X-Real-IP`: a request through the proxy always has one) may
read them. deploy/openconsult_locations.conf answers /metrics 404 from outside either way.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from app.web.keys import DATABASE, SETTINGS
from app.web.nodes import NODE

log = logging.getLogger(__name__)

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
FORWARDING_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")
UNMATCHED = "unmatched"  # a path no route serves: its text (tokens, guesses) is never a label
# An audit action is a dotted name the code chose ("note.sign"); anything else is not a label.
_ACTION = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
SCRAPE_REFRESH_SECONDS = 5.0

CollectFunction = Callable[[], Iterable[Metric]]
Refresh = Callable[[], Awaitable[None]]


class _Collected(Collector):
    """A collector whose metrics a function yields at each scrape."""

    def __init__(self, collect: CollectFunction) -> None:
        self._collect = collect

    def collect(self) -> Iterable[Metric]:
        return self._collect()


class Metrics:
    """One app's registry, its HTTP instruments and what domains add to a scrape."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_duration = Histogram(
            "openconsult_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template (Socket.IO and "
            "websockets excluded: they stay open)",
            ["method", "route"],
            registry=self.registry,
        )
        self.http_requests = Counter(
            "openconsult_http_requests",
            "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self._refreshes: list[Refresh] = []

    def add_collector(self, collect: CollectFunction) -> None:
        self.registry.register(_Collected(collect))

    def on_scrape(self, refresh: Refresh) -> None:
        self._refreshes.append(refresh)

    async def scrape(self) -> bytes:
        """The text exposition, after each refresh ran (a failing one keeps its last values)."""
        for refresh in self._refreshes:
            try:
                async with asyncio.timeout(SCRAPE_REFRESH_SECONDS):
                    await refresh()
            except Exception as exc:
                log.warning(
                    "metrics: a refresh failed (%s); its last values stay", type(exc).__name__
                )
        return generate_latest(self.registry)


METRICS = web.AppKey("metrics", Metrics)


def add_collector(app: web.Application, collect: CollectFunction) -> None:
    """Call `collect` at each scrape; it yields metric families (values read right then)."""
    app[METRICS].add_collector(collect)


def on_scrape(app: web.Application, refresh: Refresh) -> None:
    """Run `refresh` before each scrape (for values an async read fetches: the database)."""
    app[METRICS].on_scrape(refresh)


def route_name(request: web.BaseRequest) -> str:
    """The route's template (`/api/visits/{visit_id}`), or `unmatched`: never the URL itself."""
    match_info = getattr(request, "match_info", None)
    route = getattr(match_info, "route", None)
    resource = getattr(route, "resource", None)
    if resource is None:
        return UNMATCHED
    return str(resource.canonical)


def _long_lived(request: web.BaseRequest, route: str) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket" or route.endswith(
        "/socket.io/"
    )


@web.middleware
async def measure_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count every request and time those that end when answered."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except asyncio.CancelledError:
        status = 499  # the client went away first (nginx's code for it)
        raise
    finally:
        metrics = request.app[METRICS]
        route = route_name(request)
        method = request.method if request.method in METHODS else "other"
        metrics.http_requests.labels(method, route, str(status)).inc()
        if not _long_lived(request, route):
            metrics.http_duration.labels(method, route).observe(time.perf_counter() - started)


def _error(status: int, code: str, message: str, **headers: str) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message}}, status=status, headers=headers or None
    )


def _local_peer(address: str | None) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_private


def refusal(request: web.Request) -> web.Response | None:
    """Why this request may not read /metrics (a response), or None when it may."""
    token = request.app[SETTINGS].metrics_token
    expected = token.get_secret_value() if token is not None else ""
    if expected:
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            presented.strip().encode(), expected.encode()
        ):
            return _error(
                401,
                "not_authenticated",
                "Metrics need the metrics token (Authorization: Bearer).",
                **{"WWW-Authenticate": 'Bearer realm="openconsult-metrics"'},
            )
        return None
    if any(name in request.headers for name in FORWARDING_HEADERS) or not _local_peer(
        request.remote
    ):
        return _error(
            403,
            "forbidden",
            "Metrics answer only direct requests from this machine or its private network; "
            "set OPENCONSULT_METRICS_TOKEN to scrape from elsewhere.",
        )
    return None


async def metrics_page(request: web.Request) -> web.StreamResponse:
    refused = refusal(request)
    if refused is not None:
        return refused
    body = await request.app[METRICS].scrape()
    return web.Response(
        body=body, headers={"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"}
    )


def _label(name: str) -> str:
    return name if _ACTION.match(name) else "other"


def _platform(app: web.Application) -> CollectFunction:
    def collect() -> Iterable[Metric]:
        node = app[NODE]
        load = node.load()
        yield GaugeMetricFamily(
            "openconsult_visits_live",
            "Visits live on this node (someone in them on the relay, or joined on a socket)",
            value=len(load.visits),
        )
        yield GaugeMetricFamily(
            "openconsult_node_draining", "1 while this node drains, else 0", value=node.draining
        )
        audit = CounterMetricFamily(
            "openconsult_audit_events_written",
            "Audit events this process wrote, by action and outcome",
            labels=["action", "outcome"],
        )
        database = app.get(DATABASE)
        written: dict[tuple[str, str], int] = {}
        for (action, outcome), count in (database.audit_written if database else {}).items():
            key = (_label(action), _label(outcome))
            written[key] = written.get(key, 0) + count
        for labels, count in sorted(written.items()):
            audit.add_metric(list(labels), count)
        yield audit

    return collect


def setup_metrics(app: web.Application) -> None:
    """The registry, the request instruments (the outermost middleware) and GET /metrics."""
    app[METRICS] = Metrics()
    app.middlewares.append(measure_requests)
    app[METRICS].add_collector(_platform(app))
    app.router.add_get("/metrics", metrics_page)
