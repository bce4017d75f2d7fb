"""FHIR R4 export, validated with fhir.resources' R4B models plus checks of code values."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.appointment import Appointment
from fhir.resources.R4B.auditevent import AuditEvent
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.composition import Composition
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.practitioner import Practitioner

from tests.conftest import Factory
from tests.records.conftest import Ward

MODELS = {
    "Patient": Patient,
    "Appointment": Appointment,
    "Practitioner": Practitioner,
    "Composition": Composition,
    "AuditEvent": AuditEvent,
}


def by_type(bundle: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for entry in bundle["entry"]:
        out.setdefault(entry["resource"]["resourceType"], []).append(entry["resource"])
    return out


async def test_everything_bundle_validates_and_carries_the_record(ward: Ward) -> None:
    note = await ward.signed_note(
        {"chief_complaint": "Cough", "assessment": "Bronchitis <acute>", "plan": "Rest\nFluids"}
    )
    resp = await ward.client.post(
        f"/api/notes/{note['id']}/addenda",
        json={"reason": "Result", "text": "X-ray clear"},
        headers=ward.colleague.headers,
    )
    addendum = await resp.json()
    await ward.create_note({"plan": "draft, not exported"})

    resp = await ward.client.get(
        f"/fhir/Patient/{ward.patient.id}/$everything", headers=ward.author.headers
    )
    assert resp.status == 200
    assert resp.content_type == "application/fhir+json"
    data = await resp.json()
    Bundle.model_validate(data)
    assert data["type"] == "searchset" and data["total"] == len(data["entry"])
    for entry in data["entry"]:
        resource = entry["resource"]
        MODELS[resource["resourceType"]].model_validate(resource)
        assert entry["fullUrl"].endswith(f"/fhir/{resource['resourceType']}/{resource['id']}")

    kinds = by_type(data)
    assert [p["id"] for p in kinds["Patient"]] == [str(ward.patient.id)]
    assert kinds["Patient"][0]["birthDate"] == "1984-03-12"
    assert {p["id"] for p in kinds["Practitioner"]} == {
        str(ward.author.account.id),
        str(ward.colleague.account.id),
    }
    compositions = {c["id"]: c for c in kinds["Composition"]}
    assert set(compositions) == {note["id"], addendum["id"]}  # the draft is not exported

    main = compositions[note["id"]]
    assert main["status"] == "final"
    assert main["type"]["coding"][0] == {
        "system": "http://loinc.org",
        "code": "11488-4",
        "display": "Consult note",
    }
    assert main["subject"]["reference"] == f"Patient/{ward.patient.id}"
    assert main["author"][0]["reference"] == f"Practitioner/{ward.author.account.id}"
    assert main["attester"][0]["mode"] == "legal"
    codes = [s["code"]["coding"][0]["code"] for s in main["section"]]
    assert codes == ["10154-3", "51848-0", "18776-5"]
    assessment = main["section"][1]["text"]
    assert assessment["status"] == "generated"
    assert "Bronchitis &lt;acute&gt;" in assessment["div"]
    assert "Rest<br/>Fluids" in main["section"][2]["text"]["div"]

    extra = compositions[addendum["id"]]
    assert extra["type"]["coding"][0]["code"] == "55107-7"
    assert extra["relatesTo"] == [
        {"code": "appends", "targetReference": {"reference": f"Composition/{note['id']}"}}
    ]
    assert extra["author"][0]["reference"] == f"Practitioner/{ward.colleague.account.id}"

    audits = kinds["AuditEvent"]
    assert audits, "the patient's audit events are part of the export"
    for event in audits:
        assert event["type"]["code"] == "rest"
        assert event["action"] in {"C", "R", "U", "D", "E"}
        assert event["outcome"] in {"0", "4", "8", "12"}
        assert event["entity"][0]["what"]["reference"] == f"Patient/{ward.patient.id}"
        assert len(event["agent"]) >= 1
    subtypes = [e["subtype"][0]["code"] for e in audits]
    assert "note.sign" in subtypes and "note.addendum.create" in subtypes


async def test_composition_endpoint(ward: Ward) -> None:
    note = await ward.signed_note({"plan": "Plan text"})
    resp = await ward.client.post(
        f"/api/notes/{note['id']}/addenda",
        json={"reason": "why", "text": "what"},
        headers=ward.author.headers,
    )
    addendum = await resp.json()
    await ward.break_glass(ward.admin)
    resp = await ward.client.get(f"/fhir/Composition/{note['id']}", headers=ward.admin.headers)
    assert resp.status == 200
    composition = Composition.model_validate(await resp.json())
    assert composition.id == note["id"] and composition.status == "final"
    resp = await ward.client.get(f"/fhir/Composition/{addendum['id']}", headers=ward.admin.headers)
    body = await resp.json()
    Composition.model_validate(body)
    assert body["relatesTo"][0]["code"] == "appends"
    resp = await ward.client.get(f"/fhir/Composition/{note['id']}", headers=ward.outsider.headers)
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "not_found"


async def test_everything_of_an_empty_record(ward: Ward, factory: Factory) -> None:
    # A new patient, in no one's care yet: the admin breaks the glass to export them.
    ward.patient = await factory.patient(ward.clinic)
    await ward.break_glass(ward.admin)
    resp = await ward.client.get(
        f"/fhir/Patient/{ward.patient.id}/$everything", headers=ward.admin.headers
    )
    data = await resp.json()
    Bundle.model_validate(data)
    # The patient, and the audit event of the admin's breaking the glass.
    assert [e["resource"]["resourceType"] for e in data["entry"]] == ["Patient", "AuditEvent"]
    assert data["entry"][1]["resource"]["subtype"][0]["code"] == "record.break_glass"
