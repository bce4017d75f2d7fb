"""FHIR Encounter and Appointment of a video visit, against who may and may not read them."""

from __future__ import annotations

from datetime import datetime, timedelta

from aiohttp.test_utils import TestClient
from fhir.resources.R4B.appointment import Appointment as FhirAppointment
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.practitioner import Practitioner

from app.core.db import Database
from tests.records.conftest import Ward
from tests.records.visits import (
    ACT_CODE,
    confirm_identity,
    end_visit,
    events,
    hold_visit,
    write_and_sign,
)


async def test_encounter_read_follows_the_records_rules(ward: Ward, db: Database) -> None:
    held = await hold_visit(db, ward, started_ago=timedelta(minutes=10))
    url = f"/fhir/Encounter/{held.visit.id}"
    resp = await ward.client.get(url, headers=ward.author.headers)
    assert resp.status == 200 and resp.content_type == "application/fhir+json"
    live = await resp.json()
    Encounter.model_validate(live)
    assert live["status"] == "in-progress" and "end" not in live["period"]

    await end_visit(db, held)
    await ward.break_glass(ward.admin)  # the admin is in no patient's care
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
        (ward.bystander, 403),
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
    assert [e.outcome for e in reads].count("denied") == 4
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
    await ward.break_glass(ward.admin)

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
    # The ward's month-old appointments (the care relationship) first, then the visits'.
    care = [str(a.id) for a in ward.care_appointments]
    assert [a["id"] for a in appointments] == [
        *care,
        str(held.appointment.id),
        str(later.appointment.id),
    ]
    assert [a["status"] for a in appointments] == ["fulfilled"] * 3 + ["checked-in"]
    assert [(e["id"], e["status"]) for e in encounters] == [
        (str(held.visit.id), "finished"),
        (str(later.visit.id), "in-progress"),
    ]
    assert data["total"] == len(data["entry"])
