"""Staff review walk-in records that may duplicate another, and merge or keep them (audited)."""

from __future__ import annotations

import uuid

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from app.core.models import Patient, Role
from app.web.api import path_uuid, read_json
from app.web.audited import run_audited
from app.web.identity import authorize, staff_actor
from app.web.keys import DATABASE
from scheduling import merging
from scheduling.views import record_patients

routes = web.RouteTableDef()
MANAGERS = (Role.ADMIN, Role.SCHEDULER)


class MergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    into: uuid.UUID


def _shown(patient: Patient) -> dict[str, object]:
    return {
        "id": str(patient.id),
        "given_name": patient.given_name,
        "family_name": patient.family_name,
        "birth_date": patient.birth_date.isoformat(),
        "email": patient.email,
        "phone": patient.phone,
        "created_at": patient.created_at.isoformat(),
    }


@routes.get("/api/patient-reviews")
async def list_reviews(request: web.Request) -> web.Response:
    """Records flagged for review, each with the records it may duplicate."""
    staff = await authorize(request, *MANAGERS)
    async with request.app[DATABASE].session() as session:
        reviews = await merging.flagged(session, staff.clinic_id)
    shown = [r.patient for r in reviews] + [c for r in reviews for c in r.candidates]
    await record_patients(request, staff_actor(request, staff), "patient.review_read", shown)
    return web.json_response(
        [
            {"patient": _shown(r.patient), "candidates": [_shown(c) for c in r.candidates]}
            for r in reviews
        ]
    )


@routes.post("/api/patients/{patient_id}/merge")
async def merge(request: web.Request) -> web.Response:
    """Merge this record into `into`: its appointments, visits and notes move there."""
    staff = await authorize(request, *MANAGERS)
    duplicate_id = path_uuid(request, "patient_id")
    body = await read_json(request, MergeIn)
    actor = staff_actor(request, staff)
    duplicate, kept = await run_audited(
        request,
        actor,
        lambda session: merging.merge(session, staff.clinic_id, duplicate_id, body.into),
        action="patient.merge",
        object_type="patient",
        object_id=duplicate_id,
        patient_id=duplicate_id,
        audit_success=False,
    )
    await record_patients(request, actor, "patient.merge", [duplicate, kept])
    return web.json_response({"merged": _shown(duplicate), "into": _shown(kept)})


@routes.post("/api/patients/{patient_id}/keep-separate")
async def keep_separate(request: web.Request) -> web.Response:
    """A flagged record is another person after all: keep it, clear the flag."""
    staff = await authorize(request, *MANAGERS)
    patient_id = path_uuid(request, "patient_id")
    patient = await run_audited(
        request,
        staff_actor(request, staff),
        lambda session: merging.keep_separate(session, staff.clinic_id, patient_id),
        action="patient.keep_separate",
        object_type="patient",
        object_id=patient_id,
        patient_id=patient_id,
    )
    return web.json_response(_shown(patient))
