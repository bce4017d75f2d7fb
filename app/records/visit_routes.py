"""The record during and after a video visit: the provider's note for the visit, and the
summary the patient reads from their join link once the visit has ended."""

from __future__ import annotations

from aiohttp import web
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core import audit
from app.core.errors import DomainError
from app.core.models import Role
from app.records import visits
from app.records.keys import NOTE_KEYRING
from app.records.routes import record_event, run_audited, viewer_of
from app.records.schemas import NotePublic
from app.web.api import model_response, path_uuid
from app.web.identity import PATIENT_COOKIE, authorize, client_addr, read_patient_token
from app.web.keys import DATABASE, SETTINGS
from signaling.checkin import service as checkin

routes = web.RouteTableDef()


@routes.post("/api/visits/{visit_id}/note")
async def open_visit_note(request: web.Request) -> web.Response:
    """The visit's provider opens their note for it: the existing one, or a new draft."""
    staff = await authorize(request, Role.PROVIDER)
    visit_id = path_uuid(request, "visit_id")
    viewer = viewer_of(staff)
    keyring = request.app[NOTE_KEYRING]
    max_chars = request.app[SETTINGS].max_note_chars

    async def work(session: AsyncSession) -> tuple[NotePublic, bool]:
        return await visits.open_visit_note(
            session,
            keyring=keyring,
            viewer=viewer,
            writes=request.app[DATABASE].write_queue(),
            visit_id=visit_id,
            max_chars=max_chars,
        )

    note, created = await run_audited(
        request, staff, work, action="visit.note.open", object_type="visit", object_id=visit_id
    )
    await record_event(
        request,
        staff,
        action="note.create" if created else "note.read",
        object_type="consult_note",
        object_id=note.id,
        patient_id=note.patient_id,
        detail=f"visit {visit_id}",
    )
    return model_response(note, status=201 if created else 200)


@routes.get("/api/join/{token}/summary")
async def visit_summary(request: web.Request) -> web.Response:
    """The patient's summary of their ended visit (their session from the link required)."""
    settings = request.app[SETTINGS]
    async with request.app[DATABASE].session() as session:
        arrival = await checkin.resolve_link(
            session, settings, request.match_info["token"], after_visit=True
        )
    clinic_id = str(arrival.appointment.clinic_id)
    try:
        checkin.require_patient(
            arrival, read_patient_token(settings, request.cookies.get(PATIENT_COOKIE))
        )
    except checkin.NeedsStep as error:
        # Not (yet) the patient: the link alone names nobody.
        stranger = audit.Actor(None, None, clinic_id, client_addr(request))
        await _audit_summary(request, arrival, stranger, audit.DENIED, error.code)
        raise
    actor = audit.Actor(str(arrival.patient.id), "patient", clinic_id, client_addr(request))
    try:
        async with request.app[DATABASE].session() as session:
            summary = await visits.visit_summary(
                session, keyring=request.app[NOTE_KEYRING], appointment_id=arrival.appointment.id
            )
    except DomainError as error:
        await _audit_summary(request, arrival, actor, audit.FAILURE, error.code)
        raise
    detail = "signed plan" if summary.ready else "not signed yet"
    await _audit_summary(request, arrival, actor, audit.SUCCESS, detail)
    response = model_response(summary)
    response.headers["Cache-Control"] = "no-store"
    return response


async def _audit_summary(
    request: web.Request,
    arrival: checkin.Arrival,
    actor: audit.Actor,
    outcome: str,
    detail: str,
) -> None:
    await audit.record(
        request.app[DATABASE],
        action="visit.summary.read",
        outcome=outcome,
        actor=actor,
        object_type="appointment",
        object_id=arrival.appointment.id,
        patient_id=arrival.patient.id,
        detail=detail,
    )
