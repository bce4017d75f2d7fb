"""Who takes part in a visit: the attendee behind a request or a socket, and their audit events."""

from __future__ import annotations

import uuid

from aiohttp import web

from app.core.errors import NotFound
from app.web.api import path_uuid
from app.web.audited import record
from app.web.identity import (
    Actor,
    client_addr,
    guest_session,
    optional_staff,
    patient_session,
    refuse,
    staff_actor,
)
from app.web.keys import DATABASE
from signaling.visit import service as visits
from signaling.visit.service import Attendee


async def attendee_of(request: web.Request, visit_id: uuid.UUID) -> Attendee:
    """The visit's provider, patient or admitted guest this request (or socket) comes from.

    Staff by their session, a patient by theirs, a guest by theirs; anyone else: NotFound.
    """
    staff = await optional_staff(request)
    async with request.app[DATABASE].session() as session:
        return await visits.attendee(
            session,
            visit_id,
            staff_id=staff.id if staff else None,
            patient=patient_session(request),
            guest=guest_session(request),
        )


async def visit_attendee(request: web.Request) -> Attendee:
    """The attendee of the path's visit making this request; anyone else: 404, audited."""
    visit_id = path_uuid(request, "visit_id")
    try:
        return await attendee_of(request, visit_id)
    except NotFound as exc:
        raise await refuse(request, exc, action="visit.open") from None


async def attendee_actor(request: web.Request, who: Attendee) -> Actor:
    """The attendee of an HTTP request as the audit trail records them: the provider as staff."""
    if who.role == visits.PROVIDER:
        staff = await optional_staff(request)
        assert staff is not None  # only their staff session makes someone the provider
        return staff_actor(request, staff)
    return who.actor(client_addr(request))


async def record_visit(request: web.Request, who: Attendee, action: str) -> None:
    """Audit what an attendee did with the visit (its patient's data)."""
    await record(
        request,
        await attendee_actor(request, who),
        action,
        object_type="visit",
        object_id=who.visit.id,
        patient_id=who.visit.patient_id,
    )
