"""Every scheduling route under /api is described in the OpenAPI document, and every reference
resolves."""

from __future__ import annotations

METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


async def test_scheduling_routes_are_described(client):
    spec = await (await client.get("/api/openapi.json")).json()
    described = {(path, method) for path, ops in spec["paths"].items() for method in ops}
    served = {
        (route.resource.canonical, route.method.lower())
        for route in client.app.router.routes()
        if route.resource
        and route.resource.canonical.startswith("/api/")
        and route.method in METHODS
    }
    assert served - described == set()
    assert described - served == set()
    assert "/api/appointments" in spec["paths"]
    schemas = spec["components"]["schemas"]
    text = str(spec)
    for name in ("BookIn", "BookedPublic", "SlotsPublic", "ScheduleIn", "PatientCreate"):
        assert name in schemas
    assert "#/components/schemas/" in text
    refs = [part.split("'")[0] for part in text.split("#/components/schemas/")[1:]]
    assert all(ref in schemas for ref in refs), set(refs) - set(schemas)
