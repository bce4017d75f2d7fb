"""FHIR R4 export of the record: Patient/$everything as a Bundle, and single Compositions.

Signed notes become Compositions (LOINC 11488-4 Consult note); each addendum is its own
Composition (LOINC 55107-7 Addendum) that `appends` the note. Drafts are never exported.
The patient's appointments and video visits join the Bundle as Appointment and Encounter.
"""

from __future__ import annotations

import html
import json
import uuid
from typing import Any

from aiohttp import web
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.errors import NotFound
from app.core.models import AuditEvent, Patient, Role, User, utcnow
from app.records import encounters, service
from app.records.crypto import Keyring
from app.records.keys import NOTE_KEYRING
from app.records.models import ConsultNote, NoteAddendum, NoteStatus
from app.records.routes import record_event, run_audited, viewer_of
from app.records.schemas import SECTION_NAMES, AddendumPublic, NotePublic
from app.web.api import path_uuid
from app.web.identity import authorize
from app.web.keys import SETTINGS

Resource = dict[str, Any]
LOINC = "http://loinc.org"
FHIR_JSON = "application/fhir+json"

SECTION_CODES = {
    "chief_complaint": ("10154-3", "Chief complaint"),
    "subjective": ("61150-9", "Subjective"),
    "objective": ("61149-1", "Objective"),
    "assessment": ("51848-0", "Assessment"),
    "plan": ("18776-5", "Plan of care"),
    "free_text": ("48767-8", "Annotation comment"),
}
CONSULT_NOTE_TYPE = {"coding": [{"system": LOINC, "code": "11488-4", "display": "Consult note"}]}
ADDENDUM_TYPE = {"coding": [{"system": LOINC, "code": "55107-7", "display": "Addendum Document"}]}
AUDIT_TYPE = {
    "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
    "code": "rest",
    "display": "RESTful Operation",
}
# R4 AuditEvent.outcome: 0 success, 4 minor failure (a refusal or bad request), 8 serious.
AUDIT_OUTCOMES = {"success": "0", "denied": "4", "failure": "4"}


def _narrative(text: str) -> Resource:
    lines = "<br/>".join(html.escape(line) for line in text.splitlines()) or html.escape(text)
    return {
        "status": "generated",
        "div": f'<div xmlns="http://www.w3.org/1999/xhtml"><p>{lines}</p></div>',
    }


def _instant(value: Any) -> str:
    return str(value.isoformat(timespec="milliseconds"))


def patient_resource(patient: Patient) -> Resource:
    resource: Resource = {
        "resourceType": "Patient",
        "id": str(patient.id),
        "name": [{"use": "official", "family": patient.family_name, "given": [patient.given_name]}],
        "birthDate": patient.birth_date.isoformat(),
        "communication": [
            {
                "language": {
                    "coding": [{"system": "urn:ietf:bcp:47", "code": patient.preferred_language}]
                },
                "preferred": True,
            }
        ],
    }
    telecom = []
    if patient.email:
        telecom.append({"system": "email", "value": patient.email})
    if patient.phone:
        telecom.append({"system": "phone", "value": patient.phone})
    if telecom:
        resource["telecom"] = telecom
    return resource


def practitioner_resource(user: User) -> Resource:
    return {
        "resourceType": "Practitioner",
        "id": str(user.id),
        "active": user.is_active,
        "name": [{"text": user.full_name}],
    }


def note_composition(note: NotePublic) -> Resource:
    assert note.signed_at is not None
    author = {"reference": f"Practitioner/{note.author_id}", "display": note.author_name}
    resource: Resource = {
        "resourceType": "Composition",
        "id": str(note.id),
        "status": "final",
        "type": CONSULT_NOTE_TYPE,
        "subject": {"reference": f"Patient/{note.patient_id}"},
        "date": _instant(note.signed_at),
        "author": [author],
        "title": "Consult note",
        "attester": [{"mode": "legal", "time": _instant(note.signed_at), "party": author}],
    }
    sections = []
    for name in SECTION_NAMES:
        text = getattr(note.sections, name)
        if text.strip():
            code, display = SECTION_CODES[name]
            sections.append(
                {
                    "title": display,
                    "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
                    "text": _narrative(text),
                }
            )
    if sections:
        resource["section"] = sections
    return resource


def addendum_composition(note: NotePublic, addendum: AddendumPublic) -> Resource:
    author = {"reference": f"Practitioner/{addendum.author_id}", "display": addendum.author_name}
    return {
        "resourceType": "Composition",
        "id": str(addendum.id),
        "status": "final",
        "type": ADDENDUM_TYPE,
        "subject": {"reference": f"Patient/{note.patient_id}"},
        "date": _instant(addendum.created_at),
        "author": [author],
        "title": "Addendum to consult note",
        "relatesTo": [
            {"code": "appends", "targetReference": {"reference": f"Composition/{note.id}"}}
        ],
        "section": [
            {"title": "Reason", "text": _narrative(addendum.reason)},
            {"title": "Addendum", "text": _narrative(addendum.text)},
        ],
    }


def _audit_action(action: str) -> str:
    """FHIR's C/R/U/D/E for one of the trail's action names."""
    verb = action.rsplit(".", 1)[-1]
    if verb in {"read", "list", "everything"}:
        return "R"
    if verb == "create":
        return "C"
    if verb in {"save", "sign"}:
        return "U"
    return "E"


def audit_resource(event: AuditEvent) -> Resource:
    agent: Resource = {"requestor": True}
    if event.actor_id:
        agent["who"] = {
            "identifier": {"system": "urn:openconsult:staff", "value": event.actor_id},
            "display": event.actor_role or "staff",
        }
    if event.client_addr:
        agent["network"] = {"address": event.client_addr, "type": "2"}
    resource: Resource = {
        "resourceType": "AuditEvent",
        "id": f"audit-{event.id}",
        "type": AUDIT_TYPE,
        "subtype": [{"system": "urn:openconsult:audit-action", "code": event.action}],
        "action": _audit_action(event.action),
        "recorded": _instant(event.at),
        "outcome": AUDIT_OUTCOMES.get(event.outcome, "8"),
        "agent": [agent],
        "source": {"observer": {"display": "OpenConsult"}},
        "entity": [{"what": {"reference": f"Patient/{event.patient_id}"}}],
    }
    if event.detail:
        resource["outcomeDesc"] = event.detail
    return resource


async def everything(
    session: AsyncSession, *, keyring: Keyring, viewer: service.Viewer, patient_id: uuid.UUID
) -> list[Resource]:
    """Patient, the practitioners who saw or wrote about them, appointments, encounters,
    signed notes, addenda, audit events."""
    patient = await service.readable_patient(session, viewer, patient_id)
    visit_resources, provider_ids = await encounters.visit_resources(session, patient)
    rows = await session.exec(
        select(ConsultNote)
        .where(ConsultNote.patient_id == patient_id)
        .where(ConsultNote.status == NoteStatus.SIGNED)
        .order_by(col(ConsultNote.signed_at), col(ConsultNote.id))
    )
    notes = await service.present_notes(session, keyring, list(rows.all()))
    author_ids = {n.author_id for n in notes} | {a.author_id for n in notes for a in n.addenda}
    wanted = author_ids | provider_ids
    users = (await session.exec(select(User).where(col(User.id).in_(wanted)))).all()
    events = await session.exec(
        select(AuditEvent)
        .where(AuditEvent.patient_id == str(patient_id))
        .order_by(col(AuditEvent.id))
    )
    resources = [patient_resource(patient)]
    resources += [practitioner_resource(u) for u in sorted(users, key=lambda u: str(u.id))]
    resources += visit_resources
    for note in notes:
        resources.append(note_composition(note))
        resources += [addendum_composition(note, a) for a in note.addenda]
    resources += [audit_resource(e) for e in events.all()]
    return resources


async def composition(
    session: AsyncSession, *, keyring: Keyring, viewer: service.Viewer, composition_id: uuid.UUID
) -> tuple[Resource, uuid.UUID]:
    """A signed note or an addendum as a Composition, and the patient it is about."""
    addendum = await session.get(NoteAddendum, composition_id)
    note_id = addendum.note_id if addendum is not None else composition_id
    note = await session.get(ConsultNote, note_id)
    if note is None or note.status != NoteStatus.SIGNED or note.clinic_id != viewer.clinic_id:
        raise NotFound("No such Composition.")
    public = await service.read_note(session, keyring=keyring, viewer=viewer, note_id=note.id)
    if addendum is None:
        return note_composition(public), note.patient_id
    match = next(a for a in public.addenda if a.id == addendum.id)
    return addendum_composition(public, match), note.patient_id


def bundle(resources: list[Resource], base_url: str) -> Resource:
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": "searchset",
        "timestamp": _instant(utcnow()),
        "total": len(resources),
        "entry": [
            {
                "fullUrl": f"{base_url}/fhir/{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match" if r["resourceType"] == "Patient" else "include"},
            }
            for r in resources
        ],
    }


def fhir_response(resource: Resource) -> web.Response:
    return web.Response(
        text=json.dumps(resource, separators=(",", ":")), content_type=FHIR_JSON, charset="utf-8"
    )


routes = web.RouteTableDef()


@routes.get("/fhir/Patient/{patient_id}/$everything")
async def patient_everything(request: web.Request) -> web.Response:
    staff = await authorize(request, Role.PROVIDER, Role.ADMIN)
    pid = path_uuid(request, "patient_id")
    viewer = viewer_of(staff)
    keyring = request.app[NOTE_KEYRING]
    resources = await run_audited(
        request,
        staff,
        lambda s: everything(s, keyring=keyring, viewer=viewer, patient_id=pid),
        action="fhir.everything",
        object_type="patient",
        object_id=pid,
        patient_id=pid,
    )
    await record_event(
        request,
        staff,
        action="fhir.everything",
        object_type="patient",
        object_id=pid,
        patient_id=pid,
        detail=f"{len(resources)} resources",
    )
    return fhir_response(bundle(resources, request.app[SETTINGS].base_url))


@routes.get("/fhir/Encounter/{encounter_id}")
async def get_encounter(request: web.Request) -> web.Response:
    staff = await authorize(request, Role.PROVIDER, Role.ADMIN)
    eid = path_uuid(request, "encounter_id")
    viewer = viewer_of(staff)
    resource, patient_id = await run_audited(
        request,
        staff,
        lambda s: encounters.encounter(s, viewer=viewer, encounter_id=eid),
        action="fhir.encounter.read",
        object_type="encounter",
        object_id=eid,
    )
    await record_event(
        request,
        staff,
        action="fhir.encounter.read",
        object_type="encounter",
        object_id=eid,
        patient_id=patient_id,
    )
    return fhir_response(resource)


@routes.get("/fhir/Composition/{composition_id}")
async def get_composition(request: web.Request) -> web.Response:
    staff = await authorize(request, Role.PROVIDER, Role.ADMIN)
    cid = path_uuid(request, "composition_id")
    viewer = viewer_of(staff)
    keyring = request.app[NOTE_KEYRING]
    resource, patient_id = await run_audited(
        request,
        staff,
        lambda s: composition(s, keyring=keyring, viewer=viewer, composition_id=cid),
        action="fhir.composition.read",
        object_type="composition",
        object_id=cid,
    )
    await record_event(
        request,
        staff,
        action="fhir.composition.read",
        object_type="composition",
        object_id=cid,
        patient_id=patient_id,
    )
    return fhir_response(resource)
