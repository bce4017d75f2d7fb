"""FHIR R4 export of the record: Patient/$everything as a Bundle, and single Compositions.

Signed notes become Compositions (LOINC 11488-4 Consult note); each addendum is its own
Composition (LOINC 55107-7 Addendum) that `appends` the note. Drafts are never exported.
The patient's appointments and video visits join the Bundle as Appointment and Encounter,
their intake answers as QuestionnaireResponse, their photos and documents as DocumentReference.
"""

from __future__ import annotations

import html
import json
import uuid
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from aiohttp import web
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.attachments import fhir as attachment_fhir
from app.attachments import service as attachments
from app.core.errors import NotFound
from app.core.models import AuditEvent, Patient, User, utcnow
from app.intake import service as intake
from app.records import encounters
from app.records.access import READERS, readable_patient
from app.records.consult_notes import present_notes, read_note
from app.records.crypto import Keyring
from app.records.keys import NOTE_KEYRING
from app.records.models import ConsultNote, NoteAddendum, NoteStatus
from app.records.schemas import SECTION_NAMES, AddendumPublic, NotePublic
from app.web.api import path_uuid
from app.web.audited import Recorded, run_audited
from app.web.identity import Actor, authorize, staff_actor
from app.web.keys import SETTINGS
from signaling.models import Visit

Resource = dict[str, Any]
# Reads one resource for the actor: the resource and the patient it is about.
ResourceRead = Callable[[AsyncSession, Actor, uuid.UUID], Awaitable[tuple[Resource, uuid.UUID]]]
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
    session: AsyncSession, *, keyring: Keyring, actor: Actor, patient_id: uuid.UUID
) -> list[Resource]:
    """Patient, the practitioners who saw or wrote about them, appointments, encounters,
    signed notes, addenda, intake answers (QuestionnaireResponse), photos and documents
    (DocumentReference), audit events."""
    patient = await readable_patient(session, actor, patient_id)
    visit_resources, provider_ids = await encounters.visit_resources(session, patient)
    rows = await session.exec(
        select(ConsultNote)
        .where(ConsultNote.patient_id == patient_id)
        .where(ConsultNote.status == NoteStatus.SIGNED)
        .order_by(col(ConsultNote.signed_at), col(ConsultNote.id))
    )
    notes = await present_notes(session, keyring, list(rows.all()))
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
    resources += await intake.patient_responses(session, patient_id)
    resources += await document_references(session, patient_id)
    resources += [audit_resource(e) for e in events.all()]
    return resources


async def document_references(session: AsyncSession, patient_id: uuid.UUID) -> list[Resource]:
    """The patient's photos and documents, each with the visit (Encounter) it came with."""
    files = await attachments.for_patient(session, patient_id)
    appointment_ids = {f.appointment_id for f in files}
    visits = (
        await session.exec(select(Visit).where(col(Visit.appointment_id).in_(appointment_ids)))
    ).all()
    encounter_of = {v.appointment_id: v.id for v in visits}
    return [
        attachment_fhir.document_reference(
            f,
            encounter_id=encounter_of.get(f.appointment_id),
            content_url=attachments.staff_urls(f.appointment_id).content(f),
        )
        for f in files
    ]


async def composition(
    session: AsyncSession, *, keyring: Keyring, actor: Actor, composition_id: uuid.UUID
) -> tuple[Resource, uuid.UUID]:
    """A signed note or an addendum as a Composition, and the patient it is about."""
    addendum = await session.get(NoteAddendum, composition_id)
    note_id = addendum.note_id if addendum is not None else composition_id
    note = await session.get(ConsultNote, note_id)
    if note is None or note.status != NoteStatus.SIGNED or note.clinic_id != actor.clinic_id:
        raise NotFound("No such Composition.")
    public = await read_note(session, keyring=keyring, actor=actor, note_id=note.id)
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
    actor = staff_actor(request, await authorize(request, *READERS))
    pid = path_uuid(request, "patient_id")
    resources = await run_audited(
        request,
        actor,
        partial(everything, keyring=request.app[NOTE_KEYRING], actor=actor, patient_id=pid),
        action="fhir.everything",
        object_type="patient",
        object_id=pid,
        patient_id=pid,
        recorded=lambda resources: Recorded(detail=f"{len(resources)} resources"),
    )
    return fhir_response(bundle(resources, request.app[SETTINGS].base_url))


@routes.get("/fhir/Encounter/{encounter_id}")
async def get_encounter(request: web.Request) -> web.Response:
    return await _read_resource(
        request,
        "encounter",
        lambda session, actor, eid: encounters.encounter(session, actor=actor, encounter_id=eid),
    )


@routes.get("/fhir/Composition/{composition_id}")
async def get_composition(request: web.Request) -> web.Response:
    keyring = request.app[NOTE_KEYRING]
    return await _read_resource(
        request,
        "composition",
        lambda session, actor, cid: composition(
            session, keyring=keyring, actor=actor, composition_id=cid
        ),
    )


async def _read_resource(request: web.Request, kind: str, read: ResourceRead) -> web.Response:
    """One resource of the path (`/fhir/<Kind>/{<kind>_id}`) for a reader, audited as
    `fhir.<kind>.read` naming the patient it is about."""
    actor = staff_actor(request, await authorize(request, *READERS))
    resource_id = path_uuid(request, f"{kind}_id")
    action = f"fhir.{kind}.read"
    resource, _ = await run_audited(
        request,
        actor,
        lambda session: read(session, actor, resource_id),
        action=action,
        object_type=kind,
        object_id=resource_id,
        recorded=lambda found: Recorded(patient_id=found[1]),
    )
    return fhir_response(resource)
