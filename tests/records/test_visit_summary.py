"""The patient's visit summary from the join link: only the signed plan and its amendments,
only for this patient's session, only while the link is open."""

from __future__ import annotations

import uuid
from datetime import timedelta

from aiohttp.test_utils import TestClient

from app.core.db import Database
from app.core.models import utcnow
from app.records.crypto import seal_sections
from app.records.keys import NOTE_KEYRING
from app.records.models import ConsultNote, NoteStatus
from app.records.schemas import NoteSections
from scheduling.models import Appointment
from tests.conftest import Factory
from tests.records.conftest import Ward, put_in_care
from tests.records.visits import (
    confirm_identity,
    end_visit,
    events,
    hold_visit,
    open_note,
    write_and_sign,
)


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
    await put_in_care(db, ward.clinic, stranger, ward.author.account, days_ago=60)
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
