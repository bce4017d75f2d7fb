"""Who may read and write the record: each role, own or other clinic, author or not, the
patient in their care or not (before breaking the glass; tests/records/test_break_glass.py
covers after)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import select

from app.core.db import Database
from app.core.models import AuditEvent
from tests.records.conftest import Ward

# Expected status per person for each operation; "outsider"/"outside_admin" are of another clinic;
# the author and the colleague have the patient in their care, the bystander (a provider of the
# clinic) and the admin do not, and have not broken the glass.
READ_RECORD = {
    "author": 200,
    "colleague": 200,
    "admin": 403,
    "scheduler": 403,
    "outsider": 404,
    "outside_admin": 404,
    "bystander": 403,
}
READ_SIGNED = READ_RECORD
READ_DRAFT = {
    "author": 200,
    "colleague": 403,
    "admin": 403,
    "scheduler": 403,
    "outsider": 404,
    "outside_admin": 404,
    "bystander": 403,
}
EDIT_DRAFT = {
    "author": 200,
    "colleague": 403,
    "admin": 403,
    "scheduler": 403,
    "outsider": 404,
    "outside_admin": 403,
    "bystander": 403,
}
CREATE_NOTE = {
    "author": 201,
    "colleague": 201,
    "admin": 403,
    "scheduler": 403,
    "outsider": 404,
    "outside_admin": 403,
    "bystander": 403,
}
ADD_ADDENDUM = {
    "author": 201,
    "colleague": 201,
    "admin": 403,
    "scheduler": 403,
    "outsider": 404,
    "outside_admin": 403,
    "bystander": 403,
}
PEOPLE = list(READ_RECORD)


def headers(ward: Ward, who: str) -> dict[str, str]:
    person = getattr(ward, who)
    h: dict[str, str] = person.headers
    return h


async def statuses(ward: Ward, call: Any) -> dict[str, int]:
    return {who: (await call(headers(ward, who))).status for who in PEOPLE}


async def test_read_record_and_notes(ward: Ward) -> None:
    pid = ward.patient.id
    assert (
        await statuses(ward, lambda h: ward.client.get(f"/api/patients/{pid}/record", headers=h))
        == READ_RECORD
    )
    assert (
        await statuses(ward, lambda h: ward.client.get(f"/api/patients/{pid}/notes", headers=h))
        == READ_RECORD
    )
    assert (
        await statuses(ward, lambda h: ward.client.get(f"/records/patients/{pid}", headers=h))
        == READ_RECORD
    )
    got = await statuses(
        ward, lambda h: ward.client.get(f"/fhir/Patient/{pid}/$everything", headers=h)
    )
    assert got == READ_RECORD


async def test_signed_note_reads(ward: Ward) -> None:
    note = await ward.signed_note()
    for path in (
        f"/api/notes/{note['id']}",
        f"/api/notes/{note['id']}/addenda",
        f"/records/notes/{note['id']}",
        f"/fhir/Composition/{note['id']}",
    ):
        got = await statuses(ward, lambda h, p=path: ward.client.get(p, headers=h))
        assert got == READ_SIGNED, path


async def test_draft_is_private_to_its_author(ward: Ward) -> None:
    note = await ward.create_note({"plan": "private thoughts"})
    got = await statuses(ward, lambda h: ward.client.get(f"/api/notes/{note['id']}", headers=h))
    assert got == READ_DRAFT
    resp = await ward.client.get(
        f"/api/patients/{ward.patient.id}/notes", headers=ward.colleague.headers
    )
    assert await resp.json() == []
    resp = await ward.client.get(
        f"/api/patients/{ward.patient.id}/notes", headers=ward.author.headers
    )
    assert [n["id"] for n in await resp.json()] == [note["id"]]
    resp = await ward.client.get(f"/fhir/Composition/{note['id']}", headers=ward.author.headers)
    assert resp.status == 404  # drafts are not exported


async def test_only_the_author_edits_and_signs_the_draft(ward: Ward) -> None:
    note = await ward.create_note()
    saves = {}
    for who in PEOPLE:
        current = await (
            await ward.client.get(f"/api/notes/{note['id']}", headers=ward.author.headers)
        ).json()
        resp = await ward.client.put(
            f"/api/notes/{note['id']}",
            json={"version": current["version"], "sections": {"plan": who}},
            headers=headers(ward, who),
        )
        saves[who] = resp.status
    assert saves == EDIT_DRAFT
    signs = {}
    for who in reversed(PEOPLE):  # the author last, so the others meet a draft
        current = await (
            await ward.client.get(f"/api/notes/{note['id']}", headers=ward.author.headers)
        ).json()
        resp = await ward.client.post(
            f"/api/notes/{note['id']}/sign",
            json={"version": current["version"]},
            headers=headers(ward, who),
        )
        signs[who] = resp.status
    assert signs == EDIT_DRAFT
    resp = await ward.client.get(f"/api/notes/{note['id']}", headers=ward.author.headers)
    body = await resp.json()
    assert body["sections"]["plan"] == "author" and body["status"] == "signed"


async def test_who_creates_notes_and_addenda(ward: Ward) -> None:
    pid = ward.patient.id
    got = await statuses(
        ward, lambda h: ward.client.post(f"/api/patients/{pid}/notes", json={}, headers=h)
    )
    assert got == CREATE_NOTE
    note = await ward.signed_note()
    got = await statuses(
        ward,
        lambda h: ward.client.post(
            f"/api/notes/{note['id']}/addenda", json={"reason": "r", "text": "t"}, headers=h
        ),
    )
    assert got == ADD_ADDENDUM


async def test_outside_care_the_refusal_asks_to_break_the_glass(ward: Ward) -> None:
    note = await ward.signed_note()
    for who in ("admin", "bystander"):
        for path in (f"/api/patients/{ward.patient.id}/record", f"/api/notes/{note['id']}"):
            resp = await ward.client.get(path, headers=headers(ward, who))
            error = (await resp.json())["error"]
            assert resp.status == 403 and error["code"] == "break_glass_required", (who, path)
            assert error["detail"] == {"patient_id": str(ward.patient.id)}
    # A scheduler is refused by role: breaking the glass is not offered.
    resp = await ward.client.get(
        f"/api/patients/{ward.patient.id}/record", headers=ward.scheduler.headers
    )
    assert (await resp.json())["error"]["code"] == "forbidden"


@pytest.mark.parametrize("who", ["outsider", "scheduler", "colleague", "bystander"])
async def test_refusals_are_audited(ward: Ward, db: Database, who: str) -> None:
    note = await ward.create_note()
    resp = await ward.client.get(f"/api/notes/{note['id']}", headers=headers(ward, who))
    assert resp.status in (403, 404)
    actor = str(getattr(ward, who).account.id)
    async with db.session() as session:
        events = (
            await session.exec(
                select(AuditEvent)
                .where(AuditEvent.actor_id == actor)
                .where(AuditEvent.outcome == "denied")
            )
        ).all()
    assert len(events) == 1
    if who in ("colleague", "bystander"):
        # Same clinic: the refusal names the patient; another clinic's patient is not named.
        assert events[0].action == "note.read" and events[0].patient_id == str(ward.patient.id)
    elif who == "outsider":
        assert events[0].action == "note.read" and events[0].patient_id is None
    else:
        assert events[0].action == "auth.refused"


async def test_unauthenticated_is_401(ward: Ward) -> None:
    note = await ward.create_note()
    resp = await ward.client.get(f"/api/notes/{note['id']}")
    assert resp.status == 401
    resp = await ward.client.get(f"/fhir/Patient/{ward.patient.id}/$everything")
    assert resp.status == 401
    resp = await ward.client.get(f"/records/patients/{ward.patient.id}", allow_redirects=False)
    assert resp.status == 303
