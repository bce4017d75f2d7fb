"""The record of a video visit: the provider's visit note, the patient's summary from the join
link, and FHIR Encounter/Appointment, each against who may and may not see them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from fhir.resources.R4B.appointment import Appointment as FhirAppointment
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.practitioner import Practitioner
from sqlmodel import col, select

from app.core.db import Database
from app.core.models import AuditEvent, utcnow
from app.records.crypto import seal_sections
from app.records.keys import NOTE_KEYRING
from app.records.models import ConsultNote, NoteStatus
from app.records.schemas import NoteSections
from app.web.keys import SETTINGS
from scheduling.links import join_token
from scheduling.models import Appointment, AppointmentStatus, AppointmentType, ProviderSchedule
from signaling.models import Visit
from tests.conftest import Factory
from tests.records.conftest import Person, Ward

ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
BIRTH_DATE = "1984-03-12"  # the ward patient's (tests.conftest.Factory.patient)


@dataclass
class HeldVisit:
    appointment: Appointment
    visit: Visit
    token: str


async def hold_visit(
    db: Database, ward: Ward, *, provider: Person | None = None, started_ago: timedelta
) -> HeldVisit:
    """An appointment of the ward's patient that started `started_ago`, with its visit."""
    provider = provider or ward.author
    start = datetime.now(UTC) - started_ago
    kind = AppointmentType(clinic_id=ward.clinic.id, name="Video 20", duration_minutes=20)
    async with db.session() as session:
        found = await session.exec(
            select(ProviderSchedule).where(ProviderSchedule.provider_id == provider.account.id)
        )
        if found.first() is None:
            session.add(
                ProviderSchedule(
                    clinic_id=ward.clinic.id, provider_id=provider.account.id, timezone="UTC"
                )
            )
        session.add(kind)
        await session.flush()
        appointment = Appointment(
            clinic_id=ward.clinic.id,
            provider_id=provider.account.id,
            patient_id=ward.patient.id,
            appointment_type_id=kind.id,
            start_at=start,
            end_at=start + timedelta(minutes=20),
            busy_until=start + timedelta(minutes=20),
            status=AppointmentStatus.CHECKED_IN,
        )
        session.add(appointment)
        await session.flush()
        visit = Visit(
            appointment_id=appointment.id,
            clinic_id=ward.clinic.id,
            provider_id=provider.account.id,
            patient_id=ward.patient.id,
            started_at=start + timedelta(minutes=1),
        )
        session.add(visit)
        await session.commit()
    token = join_token(ward.client.app[SETTINGS], appointment)
    return HeldVisit(appointment, visit, token)


async def end_visit(db: Database, held: HeldVisit) -> None:
    """What the provider's "End visit" does (signaling.visit.service.end_visit)."""
    async with db.session() as session:
        visit = await session.get(Visit, held.visit.id)
        appointment = await session.get(Appointment, held.appointment.id)
        assert visit is not None and appointment is not None
        visit.ended_at = utcnow()
        appointment.status = AppointmentStatus.FULFILLED
        session.add_all([visit, appointment])
        await session.commit()
        held.visit = visit


async def open_note(ward: Ward, held: HeldVisit, who: Person | None = None) -> Any:
    who = who or ward.author
    return await ward.client.post(f"/api/visits/{held.visit.id}/note", headers=who.headers)


async def write_and_sign(ward: Ward, held: HeldVisit, sections: dict[str, str]) -> dict[str, Any]:
    note = await (await open_note(ward, held)).json()
    resp = await ward.save(note, sections)
    assert resp.status == 200, await resp.text()
    return await ward.sign(await resp.json())


async def confirm_identity(client: TestClient, token: str) -> None:
    resp = await client.post(f"/api/join/{token}/identity", json={"birth_date": BIRTH_DATE})
    assert resp.status == 200, await resp.text()


async def events(db: Database, action: str) -> list[AuditEvent]:
    async with db.session() as session:
        rows = await session.exec(
            select(AuditEvent).where(AuditEvent.action == action).order_by(col(AuditEvent.id))
        )
        return list(rows.all())


# --- the provider's note for the visit ------------------------------------------------------


async def test_the_visit_note_is_opened_once_and_only_by_the_visits_provider(
    ward: Ward, db: Database
) -> None:
    held = await hold_visit(db, ward, started_ago=timedelta(minutes=5))
    first = await open_note(ward, held)
    assert first.status == 201, await first.text()
    note = await first.json()
    assert note["status"] == "draft" and note["appointment_id"] == str(held.appointment.id)
    assert note["patient_id"] == str(ward.patient.id)
    again = await open_note(ward, held)
    assert again.status == 200 and (await again.json())["id"] == note["id"]

    for who, status in [
        (ward.colleague, 404),  # a provider of the clinic, but not this visit's
        (ward.outsider, 404),
        (ward.admin, 403),
        (ward.scheduler, 403),
        (ward.outside_admin, 403),
    ]:
        resp = await open_note(ward, held, who)
        assert resp.status == status, (who.account.user.role, await resp.text())
        body = await resp.json()
        assert set(body) == {"error"} and body["error"]["code"]
    resp = await ward.client.post(f"/api/visits/{held.visit.id}/note")
    assert resp.status == 401

    refusals = [e for e in await events(db, "visit.note.open") if e.outcome == "denied"]
    assert len(refusals) == 2
    created = await events(db, "note.create")
    assert [e.patient_id for e in created] == [str(ward.patient.id)]


async def test_the_note_panel_fragment_is_the_authors_editor(ward: Ward, db: Database) -> None:
    held = await hold_visit(db, ward, started_ago=timedelta(minutes=5))
    note = await (await open_note(ward, held)).json()
    resp = await ward.client.get(f"/records/notes/{note['id']}/panel", headers=ward.author.headers)
    assert resp.status == 200
    html = await resp.text()
    assert 'id="note-editor"' in html and 'data-editable="true"' in html
    assert "<html" not in html  # a fragment, not a page
    resp = await ward.client.get(
        f"/records/notes/{note['id']}/panel", headers=ward.colleague.headers
    )
    assert resp.status == 403  # a colleague's draft
    resp = await ward.client.get(
        f"/records/notes/{note['id']}/panel", headers=ward.outsider.headers
    )
    assert resp.status == 404


# --- the patient's summary ---------------------------------------------------------------


async def test_the_summary_shows_only_the_signed_plan_and_its_amendments(
    ward: Ward, db: Database, client: TestClient
) -> None:
    held = await hold_visit(db, ward, started_ago=timedelta(minutes=30))
    await confirm_identity(client, held.token)  # during the visit, as the patient did
    url = f"/api/join/{held.token}/summary"

    resp = await client.get(url)
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "visit_not_ended"

    note = await (await open_note(ward, held)).json()
    await ward.save(note, {"plan": "Draft plan words", "assessment": "Draft assessment"})
    await end_visit(db, held)
    resp = await client.get(url)
    assert resp.status == 200
    pending = await resp.json()
    assert pending["ready"] is False and pending["plan"] is None
    assert pending["message"] == "Your provider has not finished the visit summary yet."
    assert "Draft" not in await resp.text()
    assert pending["duration_seconds"] >= 0 and pending["provider_name"] == "Test Provider"

    note = await (await open_note(ward, held)).json()
    resp = await ward.save(
        note,
        {
            "chief_complaint": "Internal complaint",
            "assessment": "Internal assessment",
            "plan": "Rest, fluids, call if worse",
            "free_text": "Internal free text",
        },
    )
    await ward.sign(await resp.json())
    for reason, text, amends in [
        ("Dose", "Take ibuprofen 400 mg", True),
        ("Lab", "Internal lab remark", False),
    ]:
        resp = await ward.client.post(
            f"/api/notes/{note['id']}/addenda",
            json={"reason": reason, "text": text, "amends_plan": amends},
            headers=ward.author.headers,
        )
        assert resp.status == 201 and (await resp.json())["amends_plan"] is amends

    resp = await client.get(url)
    assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
    summary = await resp.json()
    assert summary["ready"] is True and summary["message"] is None
    assert summary["plan"] == "Rest, fluids, call if worse"
    assert [a["text"] for a in summary["amendments"]] == ["Take ibuprofen 400 mg"]
    assert "Internal" not in await resp.text()

    reads = await events(db, "visit.summary.read")
    assert [(e.outcome, e.actor_role, e.detail) for e in reads] == [
        ("failure", "patient", "visit_not_ended"),
        ("success", "patient", "not signed yet"),
        ("success", "patient", "signed plan"),
    ]
    assert {e.patient_id for e in reads} == {str(ward.patient.id)}


async def test_the_summary_needs_this_patients_session(
    ward: Ward, db: Database, client: TestClient
) -> None:
    held = await hold_visit(db, ward, started_ago=timedelta(minutes=30))
    other = await hold_visit(db, ward, provider=ward.colleague, started_ago=timedelta(minutes=40))
    await write_and_sign(ward, held, {"plan": "Secret plan"})
    await end_visit(db, held)
    url = f"/api/join/{held.token}/summary"

    # The patient of another appointment (their session is for that one) and staff: no summary.
    await confirm_identity(client, other.token)
    for headers in ({}, ward.author.headers, ward.admin.headers):
        resp = await client.get(url, headers=headers)
        assert resp.status == 409, await resp.text()
        assert (await resp.json())["error"]["code"] == "step_missing"
        assert "Secret plan" not in await resp.text()

    # A made-up or altered link is not found.
    resp = await client.get(f"/api/join/{held.token}x/summary")
    assert resp.status == 404

    # After the visit the patient may confirm again (a browser without the session) to read it.
    client.session.cookie_jar.clear()
    await confirm_identity(client, held.token)
    resp = await client.get(url)
    assert resp.status == 200 and (await resp.json())["plan"] == "Secret plan"

    denied = [e for e in await events(db, "visit.summary.read") if e.outcome == "denied"]
    assert len(denied) == 3 and all(e.actor_id is None for e in denied)


async def test_the_summary_ignores_notes_of_other_patients_naming_the_appointment(
    ward: Ward, db: Database, client: TestClient, factory: Factory
) -> None:
    held = await hold_visit(db, ward, started_ago=timedelta(minutes=30))
    await confirm_identity(client, held.token)
    await write_and_sign(ward, held, {"plan": "The right plan"})
    await end_visit(db, held)
    # A note about someone else cannot name this appointment (nor one that does not exist)…
    stranger = await factory.patient(ward.clinic)
    for appointment_id in (held.appointment.id, uuid.uuid4()):
        resp = await ward.client.post(
            f"/api/patients/{stranger.id}/notes",
            json={"appointment_id": str(appointment_id), "sections": {"plan": "Not yours"}},
            headers=ward.author.headers,
        )
        assert resp.status == 400
        assert (await resp.json())["error"]["fields"] == {
            "appointment_id": "not an appointment of this patient"
        }
    # …and a row written before that check, signed later, is still not shown.
    keyring = ward.client.app[NOTE_KEYRING]
    rogue_id = uuid.uuid4()
    sealed = seal_sections(keyring, rogue_id, NoteSections(plan="Not yours"))
    async with db.session() as session:
        session.add(
            ConsultNote(
                id=rogue_id,
                patient_id=stranger.id,
                author_id=ward.author.account.id,
                clinic_id=ward.clinic.id,
                appointment_id=held.appointment.id,
                status=NoteStatus.SIGNED,
                signed_at=utcnow() + timedelta(minutes=1),
                key_id=sealed.key_id,
                body=sealed.blob,
            )
        )
        await session.commit()
    resp = await client.get(f"/api/join/{held.token}/summary")
    assert resp.status == 200 and (await resp.json())["plan"] == "The right plan"
    note = await (await open_note(ward, held)).json()
    assert note["patient_id"] == str(ward.patient.id)


async def test_the_summary_and_the_link_close_with_the_links_window(
    ward: Ward, db: Database, client: TestClient
) -> None:
    held = await hold_visit(db, ward, started_ago=timedelta(minutes=100))
    await confirm_identity(client, held.token)
    await write_and_sign(ward, held, {"plan": "Gargle salt water"})
    await end_visit(db, held)
    page = await client.get(f"/join/{held.token}")
    assert page.status == 200
    html = await page.text()
    assert 'id="visit-summary"' in html and "visit_summary.js" in html
    assert ward.patient.family_name not in html and "Gargle" not in html

    # The window (start + OPENCONSULT_JOIN_CLOSES_MINUTES, 120 by default) closes.
    async with db.session() as session:
        appointment = await session.get(Appointment, held.appointment.id)
        assert appointment is not None
        appointment.start_at -= timedelta(minutes=30)
        session.add(appointment)
        await session.commit()
    resp = await client.get(f"/api/join/{held.token}/summary")
    assert resp.status == 410 and (await resp.json())["error"]["code"] == "link_not_open"
    page = await client.get(f"/join/{held.token}")
    assert page.status == 410 and "expired" in await page.text()


async def test_an_ended_visit_opens_no_other_check_in_step(
    ward: Ward, db: Database, client: TestClient
) -> None:
    held = await hold_visit(db, ward, started_ago=timedelta(minutes=10))
    await confirm_identity(client, held.token)
    await end_visit(db, held)
    for method, step in [("GET", "status"), ("GET", "consent"), ("POST", "waiting")]:
        resp = await client.request(method, f"/api/join/{held.token}/{step}")
        assert resp.status == 410, (step, await resp.text())


# --- FHIR Encounter and Appointment --------------------------------------------------------


async def test_encounter_read_follows_the_records_rules(ward: Ward, db: Database) -> None:
    held = await hold_visit(db, ward, started_ago=timedelta(minutes=10))
    url = f"/fhir/Encounter/{held.visit.id}"
    resp = await ward.client.get(url, headers=ward.author.headers)
    assert resp.status == 200 and resp.content_type == "application/fhir+json"
    live = await resp.json()
    Encounter.model_validate(live)
    assert live["status"] == "in-progress" and "end" not in live["period"]

    await end_visit(db, held)
    for who in (ward.author, ward.colleague, ward.admin):
        resp = await ward.client.get(url, headers=who.headers)
        assert resp.status == 200
    body = await resp.json()
    Encounter.model_validate(body)
    assert body["status"] == "finished"
    assert body["class"] == {"system": ACT_CODE, "code": "VR", "display": "virtual"}
    assert body["subject"]["reference"] == f"Patient/{ward.patient.id}"
    assert body["appointment"] == [{"reference": f"Appointment/{held.appointment.id}"}]
    assert [p["individual"]["reference"] for p in body["participant"]] == [
        f"Practitioner/{ward.author.account.id}"
    ]
    start = datetime.fromisoformat(body["period"]["start"])
    end = datetime.fromisoformat(body["period"]["end"])
    assert abs(start - held.visit.started_at) < timedelta(milliseconds=1) and start < end

    for who, status in [
        (ward.scheduler, 403),
        (ward.outsider, 404),
        (ward.outside_admin, 404),
    ]:
        resp = await ward.client.get(url, headers=who.headers)
        assert resp.status == status
        assert (await resp.json())["error"]["code"]
    resp = await ward.client.get(url)
    assert resp.status == 401
    resp = await ward.client.get(
        f"/fhir/Encounter/{held.appointment.id}", headers=ward.author.headers
    )
    assert resp.status == 404

    reads = await events(db, "fhir.encounter.read")
    assert [e.outcome for e in reads].count("success") == 4
    assert [e.outcome for e in reads].count("denied") == 3
    assert {e.patient_id for e in reads if e.outcome == "success"} == {str(ward.patient.id)}


async def test_a_patient_session_reads_no_encounter(
    ward: Ward, db: Database, client: TestClient
) -> None:
    held = await hold_visit(db, ward, started_ago=timedelta(minutes=10))
    await confirm_identity(client, held.token)
    resp = await client.get(f"/fhir/Encounter/{held.visit.id}")
    assert resp.status == 401


async def test_everything_carries_appointments_and_encounters(ward: Ward, db: Database) -> None:
    held = await hold_visit(db, ward, started_ago=timedelta(minutes=30))
    await end_visit(db, held)
    later = await hold_visit(db, ward, provider=ward.colleague, started_ago=timedelta(minutes=5))
    await write_and_sign(ward, held, {"plan": "Plan"})

    resp = await ward.client.get(
        f"/fhir/Patient/{ward.patient.id}/$everything", headers=ward.admin.headers
    )
    assert resp.status == 200
    data = await resp.json()
    Bundle.model_validate(data)
    resources = [e["resource"] for e in data["entry"]]
    ids = {(r["resourceType"], r["id"]) for r in resources}
    appointments = [r for r in resources if r["resourceType"] == "Appointment"]
    encounters = [r for r in resources if r["resourceType"] == "Encounter"]
    for appointment in appointments:
        FhirAppointment.model_validate(appointment)
        assert len(appointment["participant"]) == 2
    for encounter in encounters:
        Encounter.model_validate(encounter)
        assert encounter["class"]["code"] == "VR" and encounter["participant"]
        # Every reference an Encounter makes resolves inside the Bundle.
        assert ("Appointment", encounter["appointment"][0]["reference"].split("/")[1]) in ids
        practitioner = encounter["participant"][0]["individual"]["reference"].split("/")[1]
        assert ("Practitioner", practitioner) in ids
    for practitioner in (r for r in resources if r["resourceType"] == "Practitioner"):
        Practitioner.model_validate(practitioner)
    assert [a["id"] for a in appointments] == [str(held.appointment.id), str(later.appointment.id)]
    assert [a["status"] for a in appointments] == ["fulfilled", "checked-in"]
    assert [(e["id"], e["status"]) for e in encounters] == [
        (str(held.visit.id), "finished"),
        (str(later.visit.id), "in-progress"),
    ]
    assert data["total"] == len(data["entry"])
