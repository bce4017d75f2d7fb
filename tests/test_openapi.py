"""The OpenAPI description stays true to the routes the app really serves."""

from __future__ import annotations

from aiohttp import web

HTTP_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


def _api_routes(app: web.Application) -> set[tuple[str, str]]:
    found = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource else ""
        if path.startswith("/api/") and route.method in HTTP_METHODS:
            found.add((path, route.method.lower()))
    return found


async def test_every_api_route_is_described_and_nothing_else(client):
    spec = await (await client.get("/api/openapi.json")).json()
    assert spec["openapi"].startswith("3.")
    described = {(path, method) for path, ops in spec["paths"].items() for method in ops}
    served = _api_routes(client.app)
    assert served - described == set(), "routes missing from the OpenAPI description"
    assert described - served == set(), "described routes the app does not serve"


async def test_every_reference_resolves(client):
    spec = await (await client.get("/api/openapi.json")).json()
    schemas = spec["components"]["schemas"]

    def refs(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref":
                    yield value
                else:
                    yield from refs(value)
        elif isinstance(node, list):
            for item in node:
                yield from refs(item)

    for ref in refs(spec):
        assert ref.startswith("#/components/schemas/")
        assert ref.rsplit("/", 1)[1] in schemas, ref
