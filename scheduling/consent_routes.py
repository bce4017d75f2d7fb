"""HTTP handlers for a patient's consent to text messages, as staff record it."""

from __future__ import annotations

import uuid

from aiohttp import web
from sqlmodel.ext.asyncio.session import AsyncSession

from app.web.api import model_response, path_uuid
from app.web.audited import Recorded, run_audited
from app.web.identity import authorize, staff_actor
from scheduling import consent
from scheduling.access import clinic_of
from scheduling.models import ConsentWay, TextConsent
from scheduling.patients import get_patient
from scheduling.routes import MANAGERS
from scheduling.schemas import TextConsentIn, TextConsentPublic
from scheduling.views import read_body

routes = web.RouteTableDef()


def consent_public(patient_id: uuid.UUID, row: TextConsent | None) -> TextConsentPublic:
    if row is None:
        return TextConsentPublic(
            patient_id=patient_id,
            agreed=False,
            phone=None,
            given_at=None,
            given_by=None,
            way=None,
            withdrawn_at=None,
        )
    return TextConsentPublic(
        patient_id=patient_id,
        agreed=row.withdrawn_at is None,
        phone=row.phone,
        given_at=row.given_at,
        given_by=row.given_by,
        way=row.way.value,
        withdrawn_at=row.withdrawn_at,
    )


@routes.get("/api/patients/{patient_id}/text-consent")
async def read_consent(request: web.Request) -> web.Response:
    actor = staff_actor(request, await authorize(request, *MANAGERS))
    patient_id = path_uuid(request, "patient_id")

    async def work(session: AsyncSession) -> TextConsent | None:
        patient = await get_patient(session, clinic_id=clinic_of(actor), patient_id=patient_id)
        return await consent.consent_of(session, patient.id)

    row = await run_audited(
        request,
        actor,
        work,
        action="patient.text_consent.read",
        object_type="patient",
        object_id=patient_id,
        recorded=lambda _row: Recorded(patient_id=patient_id),
        audit_failures=False,
    )
    return model_response(consent_public(patient_id, row))


@routes.put("/api/patients/{patient_id}/text-consent")
async def write_consent(request: web.Request) -> web.Response:
    """Staff say the patient agreed to texts on their number (or withdrew); audited."""
    actor = staff_actor(request, await authorize(request, *MANAGERS))
    patient_id = path_uuid(request, "patient_id")
    body = await read_body(request, TextConsentIn)

    async def work(session: AsyncSession) -> TextConsent | None:
        patient = await get_patient(session, clinic_id=clinic_of(actor), patient_id=patient_id)
        row: TextConsent | None
        if body.agreed:
            row = await consent.agree(session, patient, way=ConsentWay.STAFF, by=actor.id)
        else:
            row = await consent.withdraw(session, patient, by=actor.id)
        await session.commit()
        return row

    row = await run_audited(
        request,
        actor,
        work,
        action="patient.text_consent.agree" if body.agreed else "patient.text_consent.withdraw",
        object_type="patient",
        object_id=patient_id,
        recorded=lambda row: Recorded(
            patient_id=patient_id, detail=f"way={row.way.value}" if row else None
        ),
        audit_failures=False,
    )
    return model_response(consent_public(patient_id, row))
