"""Visit guests over HTTP, the provider's side: invitations and attendance.

The guest's own pages and API are check-in's (`signaling.checkin.guest_routes`).
"""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.web.api import read_json
from app.web.keys import DATABASE, SETTINGS
from signaling.checkin.guest_routes import one_line
from signaling.visit import attendance, guests
from signaling.visit.attendees import record_visit, visit_attendee
from signaling.visit.namespace import guests_changed

routes = web.RouteTableDef()


class GuestInviteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field(min_length=1, max_length=60, description="e.g. Interpreter, Daughter")

    _label = field_validator("label")(one_line)


def _invitation(
    request: web.Request, guest_public: dict[str, object], token: str
) -> dict[str, object]:
    path = f"/guest/{token}"
    return guest_public | {"path": path, "url": f"{request.app[SETTINGS].base_url}{path}"}


@routes.post("/api/visits/{visit_id}/guests")
async def invite_guest(request: web.Request) -> web.Response:
    """The visit's provider invites a guest; the answer carries the link to hand them."""
    body = await read_json(request, GuestInviteIn)
    who = await visit_attendee(request)
    async with request.app[DATABASE].session() as session:
        guest, token = await guests.invite(session, request.app[SETTINGS], who, body.label)
    await record_visit(request, who, "visit.guest_invite")
    await guests_changed(request.app, who.visit.id)
    return web.json_response(_invitation(request, guests.guest_public(guest), token), status=201)


@routes.get("/api/visits/{visit_id}/guests")
async def list_guests(request: web.Request) -> web.Response:
    who = await visit_attendee(request)
    guests.require_provider(who)
    async with request.app[DATABASE].session() as session:
        found = await guests.guests_of(session, who.visit.id)
        links = [await guests.link_token(session, request.app[SETTINGS], g) for g in found]
    await record_visit(request, who, "visit.guest_list")
    return web.json_response(
        {
            "guests": [
                _invitation(request, guests.guest_public(g), token)
                for g, token in zip(found, links, strict=True)
            ]
        }
    )


@routes.get("/api/visits/{visit_id}/attendance")
async def visit_attendance(request: web.Request) -> web.Response:
    """Who took part in the visit, when, and how long the visit lasted (provider only)."""
    who = await visit_attendee(request)
    guests.require_provider(who)
    async with request.app[DATABASE].session() as session:
        found = await attendance.summary(session, who.visit)
    await record_visit(request, who, "visit.attendance_read")
    return web.json_response(found, headers={"Cache-Control": "no-store"})
