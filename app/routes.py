"""Role landing pages, health probes, the clinic's audit trail and the OpenAPI description."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web
from pydantic import BaseModel, Field

from app.accounts.routes import landing_for
from app.api import parse_model
from app.core import audit
from app.core.models import Role
from app.keys import DATABASE, OPENAPI, REDIS
from app.security import authorize, optional_staff

routes = web.RouteTableDef()


@routes.get("/")
async def home(request: web.Request) -> web.StreamResponse:
    staff = await optional_staff(request)
    raise web.HTTPSeeOther(landing_for(staff.role) if staff else "/login")


def _landing(role: Role, template: str) -> web.RouteDef:
    async def page(request: web.Request) -> web.StreamResponse:
        staff = await authorize(request, role)
        return aiohttp_jinja2.render_template(template, request, {"staff": staff})

    return web.get(landing_for(role), page, name=f"landing_{role.value}")


LANDING_ROUTES = [
    _landing(Role.ADMIN, "accounts/admin.html"),
    _landing(Role.SCHEDULER, "accounts/scheduler.html"),
    _landing(Role.PROVIDER, "accounts/provider.html"),
]


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
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
    ready = all(v == "ok" for v in checks.values())
    return web.json_response(
        {"status": "ready" if ready else "not ready", "checks": checks},
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
    return web.json_response([e.model_dump(mode="json", exclude={"prev_hash"}) for e in events])


@routes.get("/api/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI])
