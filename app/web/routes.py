"""Platform routes: health probes, the clinic's audit trail and the OpenAPI description."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field

from app.core import audit
from app.core.models import Role
from app.web.api import parse_model
from app.web.audited import record
from app.web.identity import authorize, staff_actor
from app.web.keys import DATABASE, OPENAPI_FRAGMENTS, REDIS
from app.web.nodes import NODE
from app.web.openapi import build_spec

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers. Never depends on the database or Redis (a Redis outage
    must not get every node restarted at once)."""
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    checks: dict[str, str] = {}
    try:
        await request.app[DATABASE].ping()
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unreachable: {type(exc).__name__}"
    redis = request.app[REDIS]
    if redis is not None:
        try:
            await redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"unreachable: {type(exc).__name__}"
    node = request.app[NODE]
    # A draining node takes no new work: the proxy stops sending it any.
    checks["node"] = "draining" if node.draining else "ok"
    ready = all(v == "ok" for v in checks.values())
    status = "ready" if ready else "draining" if node.draining else "not ready"
    return web.json_response(
        {"status": status, "node": node.id, "checks": checks},
        status=200 if ready else 503,
    )


class AuditQuery(BaseModel):
    limit: int = Field(default=100, ge=1, le=500)
    before_id: int | None = Field(default=None, ge=1)


@routes.get("/api/audit-events")
async def audit_events(request: web.Request) -> web.Response:
    staff = await authorize(request, Role.ADMIN)
    query = parse_model(AuditQuery, dict(request.query))
    events = await audit.events_for_clinic(
        request.app[DATABASE], staff.clinic_id, limit=query.limit, before_id=query.before_id
    )
    # Reading the trail is itself on the trail (recorded after the page is read).
    await record(
        request,
        staff_actor(request, staff),
        "audit.read",
        object_type="audit_events",
        detail=f"{len(events)} events" + (f" before {query.before_id}" if query.before_id else ""),
    )
    return web.json_response([e.model_dump(mode="json", exclude={"prev_hash"}) for e in events])


@routes.get("/api/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(build_spec(request.app[OPENAPI_FRAGMENTS]))
