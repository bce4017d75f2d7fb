"""Visit guests over HTTP: the provider's invitations and attendance, the guest's way in."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.core import audit
from app.core.models import utcnow
from app.web.api import read_json
from app.web.identity import actor_of, client_addr
from app.web.keys import DATABASE, SETTINGS
from signaling.checkin import service as checkin
from signaling.checkin.routes import ConsentIn, DeviceCheckIn
from signaling.visit import attendance, guests
from signaling.visit.guest_tokens import (
    GUEST_COOKIE,
    guest_expiry,
    issue_guest_session,
    read_guest_session,
    set_guest_cookie,
)
from signaling.visit.guests import GuestArrival
from signaling.visit.namespace import guests_changed
from signaling.visit.pages import visit_attendee
from signaling.visit.service import Attendee

routes = web.RouteTableDef()


def _clean(value: str) -> str:
    cleaned = " ".join(value.split())
    if not cleaned:
        raise ValueError("must not be blank")
    return cleaned


class GuestInviteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field(min_length=1, max_length=60, description="e.g. Interpreter, Daughter")

    _label = field_validator("label")(_clean)


class GuestNameIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=120)

    _name = field_validator("name")(_clean)


# ---- the provider's side ---------------------------------------------------------------------


async def _audit_provider(request: web.Request, who: Attendee, action: str) -> None:
    await audit.record(
        request.app[DATABASE],
        action=action,
        outcome=audit.SUCCESS,
        actor=actor_of(request),
        object_type="visit",
        object_id=who.visit.id,
        patient_id=who.visit.patient_id,
    )


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
    await _audit_provider(request, who, "visit.guest_invite")
    await guests_changed(request.app, who.visit.id)
    return web.json_response(_invitation(request, guests.guest_public(guest), token), status=201)


@routes.get("/api/visits/{visit_id}/guests")
async def list_guests(request: web.Request) -> web.Response:
    who = await visit_attendee(request)
    guests.require_provider(who)
    async with request.app[DATABASE].session() as session:
        found = await guests.guests_of(session, who.visit.id)
        links = [await guests.link_token(session, request.app[SETTINGS], g) for g in found]
    await _audit_provider(request, who, "visit.guest_list")
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
    await _audit_provider(request, who, "visit.attendance_read")
    return web.json_response(found, headers={"Cache-Control": "no-store"})


# ---- the guest's side --------------------------------------------------------------------------


async def _arrival(request: web.Request, *, named: bool = True) -> GuestArrival:
    async with request.app[DATABASE].session() as session:
        arrival = await guests.resolve_link(
            session, request.app[SETTINGS], request.match_info["token"]
        )
    if named:
        claims = read_guest_session(request.app[SETTINGS], request.cookies.get(GUEST_COOKIE))
        guests.require_named(arrival, claims)
    return arrival


async def _audit_guest(request: web.Request, arrival: GuestArrival, action: str) -> None:
    await audit.record(
        request.app[DATABASE],
        action=action,
        outcome=audit.SUCCESS,
        actor=audit.Actor(
            str(arrival.guest.id), "guest", str(arrival.visit.clinic_id), client_addr(request)
        ),
        object_type="visit",
        object_id=arrival.visit.id,
        patient_id=arrival.visit.patient_id,
    )


@routes.get("/guest/{token}")
async def guest_page(request: web.Request) -> web.StreamResponse:
    """A guest's way in: the check-in page without the patient's date-of-birth step."""
    async with request.app[DATABASE].session() as session:
        arrival = await guests.resolve_link(
            session, request.app[SETTINGS], request.match_info["token"]
        )
    return aiohttp_jinja2.render_template(
        "signaling/join.html",
        request,
        {
            "state": "open",
            "kind": "guest",
            "label": arrival.guest.label,
            "provider_name": arrival.provider.full_name,
            "token": request.match_info["token"],
        },
    )


@routes.get("/api/guest/{token}/status")
async def guest_status(request: web.Request) -> web.Response:
    arrival = await _arrival(request, named=False)
    claims = read_guest_session(request.app[SETTINGS], request.cookies.get(GUEST_COOKIE))
    progress = guests.progress(arrival)
    if claims is None or claims.guest_id != arrival.guest.id:
        progress["step"] = "name"  # another browser with the link starts from the name
    return web.json_response(progress | {"messages": []})


@routes.post("/api/guest/{token}/name")
async def guest_name(request: web.Request) -> web.Response:
    body = await read_json(request, GuestNameIn)
    arrival = await _arrival(request, named=False)
    async with request.app[DATABASE].session() as session:
        session.add(arrival.guest)
        await guests.give_name(session, arrival, body.name)
    await _audit_guest(request, arrival, "visit.guest_name")
    settings = request.app[SETTINGS]
    response = web.json_response(guests.progress(arrival))
    token = issue_guest_session(
        settings, arrival.guest.id, arrival.visit.id, guest_expiry(settings, arrival.appointment)
    )
    set_guest_cookie(response, settings, token)
    await guests_changed(request.app, arrival.visit.id)
    return response


@routes.get("/api/guest/{token}/consent")
async def guest_consent_text(request: web.Request) -> web.Response:
    arrival = await _arrival(request)
    async with request.app[DATABASE].session() as session:
        document = await guests.consent_document(session, arrival)
    return web.json_response(checkin.consent_public(document))


@routes.post("/api/guest/{token}/consent")
async def guest_accept_consent(request: web.Request) -> web.Response:
    body = await read_json(request, ConsentIn)
    arrival = await _arrival(request)
    async with request.app[DATABASE].session() as session:
        session.add(arrival.guest)
        await guests.accept_consent(session, arrival, version=body.version)
    await _audit_guest(request, arrival, "visit.guest_consent")
    return web.json_response(guests.progress(arrival))


@routes.post("/api/guest/{token}/device-check")
async def guest_device_check(request: web.Request) -> web.Response:
    body = await read_json(request, DeviceCheckIn)
    arrival = await _arrival(request)
    async with request.app[DATABASE].session() as session:
        session.add(arrival.guest)
        await guests.record_device_check(session, arrival, body.model_dump())
    await _audit_guest(request, arrival, "visit.guest_device_check")
    return web.json_response(guests.progress(arrival))


@routes.post("/api/guest/{token}/waiting")
async def guest_waiting(request: web.Request) -> web.Response:
    arrival = await _arrival(request)
    async with request.app[DATABASE].session() as session:
        session.add(arrival.guest)
        await guests.enter_waiting(session, arrival)
    await _audit_guest(request, arrival, "visit.guest_waiting")
    await guests_changed(request.app, arrival.visit.id)
    return web.json_response(guests.progress(arrival))


@routes.get("/api/guest/{token}/ping")
async def guest_ping(request: web.Request) -> web.Response:
    """For the network check: the page times a few round trips to the server."""
    await _arrival(request)
    return web.json_response({"server_time": utcnow().isoformat()})
