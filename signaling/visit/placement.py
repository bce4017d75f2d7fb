"""Which node a visit runs on: the load this node reports, the placement at the first join, and
the endpoint that names a visit's owner (app/web/nodes.py keeps the registry and the leases)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from app.web.nodes import NODE, NodeLoad, place_visit
from signaling.relay.relay import MEDIA_RELAY
from signaling.visit.attendees import visit_attendee
from signaling.visit.routing import placement_public

routes = web.RouteTableDef()

LOBBY_PREFIX = "waiting:"  # warm connections wait in rooms of their own (signaling/visit/warm.py)


def node_load(app: web.Application, joined: Callable[[], set[str]]) -> NodeLoad:
    """Visits with someone in them here (connected to the relay, or joined on a socket), and
    everyone connected to this node's relay (waiting patients' warm connections too)."""
    relay = app.get(MEDIA_RELAY)
    rooms = relay.rooms if relay is not None else {}
    visits = {rid for rid, room in rooms.items() if room.participants}
    live = {rid for rid in visits if not rid.startswith(LOBBY_PREFIX)} | joined()
    participants = sum(len(room.participants) for room in rooms.values())
    return NodeLoad(frozenset(live), participants)


def setup_placement(
    app: web.Application,
    joined: Callable[[], set[str]],
    close_sockets: Callable[[str], Awaitable[None]],
) -> None:
    """This node reports its visits; a visit placed elsewhere (this node froze and lost its
    lease) is let go here: its relay room ends and its sockets close, so its pages reconnect."""
    node = app[NODE]
    node.load = lambda: node_load(app, joined)

    async def let_go(visit_id: str) -> None:
        await app[MEDIA_RELAY].end(visit_id)
        await close_sockets(visit_id)

    node.on_lost.append(let_go)
    app.add_routes(routes)


@routes.post("/api/visits/{visit_id}/placement")
async def visit_placement(request: web.Request) -> web.Response:
    """The node that runs the visit (placed now if nobody runs it) and the Socket.IO path a
    proxy routes to it; 503 `try_again` while the registry (Redis) is out."""
    who = await visit_attendee(request)
    placement = await place_visit(request.app, who.visit.id)
    return web.json_response(placement_public(placement), headers={"Cache-Control": "no-store"})
