"""Drafts, autosave with versions, signing, addenda, and bad input through the JSON API."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import col, select

from app.core.db import Database
from app.core.models import AuditEvent
from tests.records.conftest import Ward

SOAP = {
    "chief_complaint": "Sore throat for three days",
    "subjective": "Painful swallowing, no fever.",
    "objective": "Tonsils red, no exudate.",
    "assessment": "Viral pharyngitis",
    "plan": "Fluids, lozenges, return if worse.",
    "free_text": "Discussed warning signs.",
}


async def test_draft_autosave_sign_addendum(ward: Ward) -> None:
    note = await ward.create_note({"chief_complaint": "Sore throat"})
    assert note["status"] == "draft" and note["version"] == 1
    assert note["sections"]["chief_complaint"] == "Sore throat"
    assert note["author_name"] == ward.author.account.user.full_name

    resp = await ward.save(note, SOAP)
    assert resp.status == 200, await resp.text()
    assert "encrypt;dur=" in resp.headers["Server-Timing"]
    saved = await resp.json()
    assert saved["version"] == 2 and saved["sections"] == SOAP

    resp = await ward.client.get(f"/api/notes/{note['id']}", headers=ward.author.headers)
    assert (await resp.json())["sections"] == SOAP

    resp = await ward.client.post(
        f"/api/notes/{note['id']}/sign", json={"version": 2}, headers=ward.author.headers
    )
    assert resp.status == 200, await resp.text()
    signed = await resp.json()
    assert signed["status"] == "signed" and signed["signed_at"] and signed["version"] == 3

    resp = await ward.client.post(
        f"/api/notes/{note['id']}/addenda",
        json={"reason": "Lab result", "text": "Rapid strep negative."},
        headers=ward.author.headers,
    )
    assert resp.status == 201, await resp.text()
    first = await resp.json()
    resp = await ward.client.post(
        f"/api/notes/{note['id']}/addenda",
        json={"reason": "Follow-up call", "text": "Feeling better."},
        headers=ward.colleague.headers,
    )
    assert resp.status == 201
    await ward.break_glass(ward.admin)
    resp = await ward.client.get(f"/api/notes/{note['id']}/addenda", headers=ward.admin.headers)
    addenda = await resp.json()
    assert [a["reason"] for a in addenda] == ["Lab result", "Follow-up call"]
    assert addenda[0]["id"] == first["id"]
    assert addenda[1]["author_id"] == str(ward.colleague.account.id)

    # The signed text is never changed by addenda.
    resp = await ward.client.get(f"/api/notes/{note['id']}", headers=ward.author.headers)
    final = await resp.json()
    assert final["sections"] == SOAP and final["version"] == 3 and len(final["addenda"]) == 2


async def test_second_tab_gets_409_with_current_version_and_text(ward: Ward) -> None:
    note = await ward.create_note()
    tab_a = await ward.save(note, {"plan": "from tab A"}, version=1)
    assert tab_a.status == 200
    tab_b = await ward.save(note, {"plan": "from tab B"}, version=1)
    assert tab_b.status == 409
    error = (await tab_b.json())["error"]
    assert error["code"] == "version_conflict"
    assert error["detail"]["current"]["version"] == 2
    assert error["detail"]["current"]["sections"]["plan"] == "from tab A"
    # Tab B merges onto the current version and saves.
    merged = await ward.save(note, {"plan": "from tab A\nfrom tab B"}, version=2)
    assert merged.status == 200
    assert (await merged.json())["version"] == 3


async def test_signed_note_is_locked_and_409_names_addenda(ward: Ward) -> None:
    note = await ward.signed_note({"plan": "Original plan"})
    resp = await ward.save(note, {"plan": "Rewritten"}, version=note["version"])
    assert resp.status == 409
    error = (await resp.json())["error"]
    assert error["code"] == "note_signed"
    assert "addend" in error["message"].lower()
    assert error["detail"]["addenda_url"] == f"/api/notes/{note['id']}/addenda"
    resp = await ward.client.post(
        f"/api/notes/{note['id']}/sign",
        json={"version": note["version"]},
        headers=ward.author.headers,
    )
    assert resp.status == 409
    resp = await ward.client.get(f"/api/notes/{note['id']}", headers=ward.author.headers)
    assert (await resp.json())["sections"]["plan"] == "Original plan"


async def test_addendum_to_a_draft_is_refused(ward: Ward) -> None:
    note = await ward.create_note()
    resp = await ward.client.post(
        f"/api/notes/{note['id']}/addenda",
        json={"reason": "x", "text": "y"},
        headers=ward.author.headers,
    )
    assert resp.status == 409


async def test_sign_with_stale_version_is_409(ward: Ward) -> None:
    note = await ward.create_note()
    assert (await ward.save(note, {"plan": "newer"})).status == 200
    resp = await ward.client.post(
        f"/api/notes/{note['id']}/sign", json={"version": 1}, headers=ward.author.headers
    )
    assert resp.status == 409
    assert (await resp.json())["error"]["detail"]["current"]["sections"]["plan"] == "newer"


async def test_unknown_section_is_400_and_nothing_stored(ward: Ward) -> None:
    note = await ward.create_note({"plan": "kept"})
    resp = await ward.save(note, {"plan": "changed", "diagnosis_codes": "J02.9"})
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["code"] == "invalid_input"
    assert "sections.diagnosis_codes" in error["fields"]
    resp = await ward.client.post(
        f"/api/patients/{ward.patient.id}/notes",
        json={"sections": {"history": "x"}},
        headers=ward.author.headers,
    )
    assert resp.status == 400
    resp = await ward.client.get(f"/api/notes/{note['id']}", headers=ward.author.headers)
    body = await resp.json()
    assert body["version"] == 1 and body["sections"]["plan"] == "kept"


async def test_oversized_note_is_413_with_limit_and_nothing_stored(ward: Ward) -> None:
    limit = 50_000
    note = await ward.create_note({"plan": "kept"})
    resp = await ward.save(note, {"plan": "x" * (limit - 10), "subjective": "y" * 11})
    assert resp.status == 413
    error = (await resp.json())["error"]
    assert error["code"] == "payload_too_large"
    assert error["detail"]["max_note_chars"] == limit
    resp = await ward.client.post(
        f"/api/patients/{ward.patient.id}/notes",
        json={"sections": {"plan": "x" * (limit + 1)}},
        headers=ward.author.headers,
    )
    assert resp.status == 413
    resp = await ward.client.get(
        f"/api/patients/{ward.patient.id}/notes", headers=ward.author.headers
    )
    notes = await resp.json()
    assert len(notes) == 1 and notes[0]["version"] == 1 and notes[0]["sections"]["plan"] == "kept"


async def test_body_beyond_the_request_limit_is_413(ward: Ward) -> None:
    note = await ward.create_note()
    resp = await ward.save(note, {"plan": "x" * (2 * 1024 * 1024)})
    assert resp.status == 413
    assert (await resp.json())["error"]["code"] == "payload_too_large"


async def test_malformed_input_is_400_or_404_never_500(ward: Ward) -> None:
    note = await ward.create_note()
    h = ward.author.headers
    cases = [
        await ward.client.put(
            f"/api/notes/{note['id']}",
            data=b"{nope",
            headers={**h, "Content-Type": "application/json"},
        ),
        await ward.client.put(
            f"/api/notes/{note['id']}", json={"version": "two", "sections": {}}, headers=h
        ),
        await ward.client.put(
            f"/api/notes/{note['id']}", json={"version": 0, "sections": {}}, headers=h
        ),
        await ward.client.put(
            f"/api/notes/{note['id']}", json={"version": 1, "sections": {"plan": 5}}, headers=h
        ),
        await ward.client.put(f"/api/notes/{note['id']}", json=[1, 2], headers=h),
        await ward.client.post(f"/api/notes/{note['id']}/sign", json={}, headers=h),
        await ward.client.post(
            f"/api/patients/{ward.patient.id}/notes", json={"appointment_id": "x"}, headers=h
        ),
    ]
    assert [r.status for r in cases] == [400] * len(cases)
    for path in ("/api/notes/not-a-uuid", "/fhir/Composition/123", "/api/patients/zzz/record"):
        resp = await ward.client.get(path, headers=h)
        assert resp.status == 404, path
        assert (await resp.json())["error"]["code"] == "not_found"


async def test_raw_rows_hold_no_plaintext(ward: Ward, db: Database) -> None:
    secret_words = "Zyxwvut-unique-marker-pharyngitis"
    note = await ward.create_note({"assessment": secret_words})
    resp = await ward.client.post(
        f"/api/notes/{note['id']}/sign", json={"version": 1}, headers=ward.author.headers
    )
    assert resp.status == 200
    resp = await ward.client.post(
        f"/api/notes/{note['id']}/addenda",
        json={"reason": secret_words + "-reason", "text": secret_words + "-addendum"},
        headers=ward.author.headers,
    )
    assert resp.status == 201
    async with db.engine.connect() as conn:
        dumped = []
        for table in ("consult_note", "note_addendum", "audit_event"):
            rows = (await conn.execute(sa.text(f"SELECT * FROM {table}"))).all()
            assert rows or table == "audit_event"
            dumped += [repr(tuple(r)) for r in rows]
            for row in rows:
                for value in row:
                    if isinstance(value, (bytes, memoryview)):
                        raw = bytes(value)
                        assert b"Zyxwvut" not in raw and b"pharyngitis" not in raw
        notes = (await conn.execute(sa.text("SELECT key_id FROM consult_note"))).all()
        assert {r[0] for r in notes} == {"dev1"}
    text = "\n".join(dumped)
    assert "Zyxwvut" not in text and "pharyngitis" not in text


async def test_every_read_and_write_is_audited_with_the_patient(ward: Ward, db: Database) -> None:
    note = await ward.create_note()
    await ward.save(note, {"plan": "p"})
    await ward.client.get(f"/api/notes/{note['id']}", headers=ward.author.headers)
    await ward.client.post(
        f"/api/notes/{note['id']}/sign", json={"version": 2}, headers=ward.author.headers
    )
    await ward.client.post(
        f"/api/notes/{note['id']}/addenda",
        json={"reason": "r", "text": "t"},
        headers=ward.author.headers,
    )
    await ward.break_glass(ward.admin)
    await ward.client.get(f"/api/patients/{ward.patient.id}/record", headers=ward.admin.headers)
    await ward.client.get(
        f"/fhir/Patient/{ward.patient.id}/$everything", headers=ward.admin.headers
    )
    await ward.save(note, {"plan": "late edit"}, version=3)  # refused: signed
    async with db.session() as session:
        events = (
            await session.exec(
                select(AuditEvent)
                .where(col(AuditEvent.action).not_like("auth.%"))
                .order_by(col(AuditEvent.id))
            )
        ).all()
    actions = [(e.action, e.outcome) for e in events]
    assert actions == [
        ("note.create", "success"),
        ("note.save", "success"),
        ("note.read", "success"),
        ("note.sign", "success"),
        ("note.addendum.create", "success"),
        ("record.break_glass", "success"),
        ("record.read", "success"),
        ("fhir.everything", "success"),
        ("note.save", "failure"),
    ]
    assert {e.patient_id for e in events} == {str(ward.patient.id)}
