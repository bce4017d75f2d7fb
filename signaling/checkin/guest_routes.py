"""A visit guest's check-in over HTTP: their page, their name, then the steps patients take too."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import aiohttp_jinja2
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.models import Clinic
from app.web.api import read_json
from app.web.identity import GUEST_COOKIE, guest_actor, guest_session, set_visitor_cookie
from app.web.keys import DATABASE, SETTINGS
from signaling.checkin import guests
from signaling.checkin.guest_tokens import guest_expiry, issue_guest_session
from signaling.checkin.guests import GuestArrival
from signaling.checkin.steps import Audited, CheckInSteps

GuestsChanged = Callable[[web.Application, uuid.UUID], Awaitable[None]]
# What tells the visit's provider that one of its guests moved on (the visit sets it up).
GUESTS_CHANGED: web.AppKey[GuestsChanged] = web.AppKey("guests_changed")


def one_line(value: str) -> str:
    """A name or label on one line, its spaces collapsed; blank is refused."""
    cleaned = " ".join(value.split())
    if not cleaned:
        raise ValueError("must not be blank")
    return cleaned


class GuestNameIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=120)

    _name = field_validator("name")(one_line)


class GuestCheckIn(CheckInSteps[GuestArrival]):
    """A guest on their way in by the link the provider handed them."""

    prefix = "/api/guest/{token}"
    actions = {
        "consent": "visit.guest_consent",
        "device_check": "visit.guest_device_check",
        "waiting": "visit.guest_waiting",
    }

    async def arrival(self, request: web.Request, *, signed_in: bool = True) -> GuestArrival:
        async with request.app[DATABASE].session() as session:
            arrival = await guests.resolve_link(
                session, request.app[SETTINGS], request.match_info["token"]
            )
        guests.require_same_browser(arrival, guest_session(request))
        if signed_in:
            guests.require_named(arrival, guest_session(request))
        return arrival

    def progress(self, arrival: GuestArrival) -> dict[str, object]:
        return guests.progress(arrival)

    def clinic_of(self, arrival: GuestArrival) -> uuid.UUID:
        return arrival.visit.clinic_id

    def audited(self, request: web.Request, arrival: GuestArrival) -> Audited:
        actor = guest_actor(request, arrival.guest.id, arrival.visit.clinic_id)
        return Audited(actor, "visit", arrival.visit.id, arrival.visit.patient_id)

    async def accept_consent(
        self, request: web.Request, session: AsyncSession, arrival: GuestArrival, version: int
    ) -> dict[str, object]:
        session.add(arrival.guest)
        await guests.accept_consent(session, arrival, version=version)
        return {}

    async def record_device_check(
        self, session: AsyncSession, arrival: GuestArrival, result: dict[str, object]
    ) -> None:
        session.add(arrival.guest)
        await guests.record_device_check(session, arrival, result)

    async def enter_waiting(self, session: AsyncSession, arrival: GuestArrival) -> None:
        session.add(arrival.guest)
        await guests.enter_waiting(session, arrival)

    async def waiting_changed(self, request: web.Request, arrival: GuestArrival) -> None:
        await request.app[GUESTS_CHANGED](request.app, arrival.visit.id)


GUESTS = GuestCheckIn()
routes = web.RouteTableDef()


@routes.get("/guest/{token}")
async def guest_page(request: web.Request) -> web.StreamResponse:
    """A guest's way in: the check-in page without the patient's date-of-birth step."""
    try:
        arrival = await GUESTS.arrival(request, signed_in=False)
    except guests.GuestLinkInUse as exc:
        return await _link_in_use_page(request, exc)
    async with request.app[DATABASE].session() as session:
        clinic = await session.get(Clinic, arrival.visit.clinic_id)
    return aiohttp_jinja2.render_template(
        "signaling/join.html",
        request,
        {
            "state": "open",
            "kind": "guest",
            "label": arrival.guest.label,
            "provider_name": arrival.provider.full_name,
            "token": request.match_info["token"],
            "clinic_name": clinic.name if clinic else None,
            "clinic_phone": clinic.phone if clinic else None,
        },
    )


@routes.get("/api/guest/{token}/status")
async def guest_status(request: web.Request) -> web.Response:
    arrival = await GUESTS.arrival(request, signed_in=False)
    claims = guest_session(request)
    progress = guests.progress(arrival)
    if claims is None or claims.guest_id != arrival.guest.id:
        progress["step"] = "name"  # the link's first browser starts from the name
    return web.json_response(progress | {"messages": []})


@routes.post("/api/guest/{token}/name")
async def guest_name(request: web.Request) -> web.Response:
    body = await read_json(request, GuestNameIn)
    arrival = await GUESTS.arrival(request, signed_in=False)
    async with request.app[DATABASE].session() as session:
        session.add(arrival.guest)
        await guests.give_name(session, arrival, body.name)
    await GUESTS.audit(request, arrival, "visit.guest_name")
    settings = request.app[SETTINGS]
    response = web.json_response(guests.progress(arrival))
    token = issue_guest_session(
        settings, arrival.guest.id, arrival.visit.id, guest_expiry(settings, arrival.appointment)
    )
    set_visitor_cookie(response, settings, GUEST_COOKIE, token)
    await request.app[GUESTS_CHANGED](request.app, arrival.visit.id)
    return response


# Consent, device check, waiting room and ping: the steps a patient takes too.
GUESTS.add_routes(routes)


async def _link_in_use_page(request: web.Request, exc: guests.GuestLinkInUse) -> web.StreamResponse:
    """Someone else's guest link: why it does not open, and the clinic to call (not the staff
    start page, which a patient or guest has no use for)."""
    async with request.app[DATABASE].session() as session:
        arrival = await guests.resolve_link(
            session, request.app[SETTINGS], request.match_info["token"]
        )
        clinic = await session.get(Clinic, arrival.visit.clinic_id)
    return aiohttp_jinja2.render_template(
        "signaling/join.html",
        request,
        {
            "state": "in_use",
            "reason": exc.message,
            "code": exc.code,
            "clinic_name": clinic.name if clinic else None,
            "clinic_phone": clinic.phone if clinic else None,
        },
        status=exc.status,
    )
