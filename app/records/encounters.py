"""FHIR R4 Appointment and Encounter of a patient's visits, for the record's export.

A video visit is an Encounter of class virtual (v3 ActCode `VR`); its Appointment is rendered by
scheduling's FHIR module, so both exports show the same resource.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.errors import NotFound
from app.core.models import Patient, User
from app.records.access import readable_patient
from app.web.identity import Actor
from scheduling import service as scheduling
from scheduling.fhir import appointment_resource
from scheduling.models import Appointment
from signaling.models import Visit

Resource = dict[str, Any]
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
PARTICIPATION_TYPE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
VIRTUAL = {"system": ACT_CODE, "code": "VR", "display": "virtual"}
PRIMARY_PERFORMER = {
    "coding": [{"system": PARTICIPATION_TYPE, "code": "PPRF", "display": "primary performer"}]
}


def _instant(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encounter_resource(visit: Visit, patient: Patient, provider: User) -> Resource:
    period = {"start": _instant(visit.started_at)}
    if visit.ended_at is not None:
        period["end"] = _instant(visit.ended_at)
    resource: Resource = {
        "resourceType": "Encounter",
        "id": str(visit.id),
        "status": "finished" if visit.ended_at is not None else "in-progress",
        "class": VIRTUAL,
        "subject": {
            "reference": f"Patient/{patient.id}",
            "display": f"{patient.given_name} {patient.family_name}",
        },
        "participant": [
            {
                "type": [PRIMARY_PERFORMER],
                "period": period,
                "individual": {
                    "reference": f"Practitioner/{provider.id}",
                    "display": provider.full_name,
                },
            }
        ],
        "appointment": [{"reference": f"Appointment/{visit.appointment_id}"}],
        "period": period,
    }
    if visit.ended_at is not None:
        minutes = (visit.ended_at - visit.started_at).total_seconds() / 60
        resource["length"] = {
            "value": round(minutes, 1),
            "unit": "min",
            "system": "http://unitsofmeasure.org",
            "code": "min",
        }
    return resource


async def encounter(
    session: AsyncSession, *, actor: Actor, encounter_id: uuid.UUID
) -> tuple[Resource, uuid.UUID]:
    """One visit of the actor's clinic as an Encounter, and the patient it is about."""
    visit = await session.get(Visit, encounter_id)
    if visit is None or visit.clinic_id != actor.clinic_id:
        raise NotFound("No such Encounter.")
    patient = await readable_patient(session, actor, visit.patient_id)
    provider = await session.get(User, visit.provider_id)
    assert provider is not None
    return encounter_resource(visit, patient, provider), patient.id


async def visit_resources(
    session: AsyncSession, patient: Patient
) -> tuple[list[Resource], set[uuid.UUID]]:
    """The patient's Appointments and Encounters, oldest first, and the providers they name."""
    appointments = await session.exec(
        select(Appointment)
        .where(Appointment.patient_id == patient.id)
        .order_by(col(Appointment.start_at), col(Appointment.id))
    )
    resources: list[Resource] = []
    providers: set[uuid.UUID] = set()
    for appointment in appointments.all():
        view = await scheduling.get_view(
            session, clinic_id=patient.clinic_id, appointment_id=appointment.id
        )
        resources.append(appointment_resource(view))
        providers.add(appointment.provider_id)
    visits = await session.exec(
        select(Visit)
        .where(Visit.patient_id == patient.id)
        .order_by(col(Visit.started_at), col(Visit.id))
    )
    for visit in visits.all():
        provider = await session.get(User, visit.provider_id)
        assert provider is not None
        resources.append(encounter_resource(visit, patient, provider))
        providers.add(visit.provider_id)
    return resources, providers
