"""create_app composes the domains in any order: the same routes, description and listeners."""

from __future__ import annotations

from aiohttp import web

from app import main
from app.web.events import APPOINTMENT_LISTENERS


def _served(app: web.Application) -> set[tuple[str, str]]:
    return {
        (route.resource.canonical if route.resource else "", route.method)
        for route in app.router.routes()
    }


async def test_domains_compose_in_any_order(aiohttp_client, settings, monkeypatch):
    # One node id for both: each app also serves Socket.IO under its node's own path.
    settings = settings.model_copy(update={"node_id": "node-a"})
    forward = await aiohttp_client(main.create_app(settings))
    monkeypatch.setattr(main, "DOMAINS", tuple(reversed(main.DOMAINS)))
    backward = await aiohttp_client(main.create_app(settings))

    assert _served(forward.app) == _served(backward.app)
    forward_spec = await (await forward.get("/api/openapi.json")).json()
    backward_spec = await (await backward.get("/api/openapi.json")).json()
    assert forward_spec == backward_spec
    assert len(forward.app[APPOINTMENT_LISTENERS]) == len(backward.app[APPOINTMENT_LISTENERS]) > 0
    for client in (forward, backward):
        ready = await client.get("/readyz")
        assert ready.status == 200
