"""Minimum necessary: reading a record outside the care relationship takes breaking the glass,
which is audited, lasts OPENCONSULT_BREAK_GLASS_MINUTES and is listed for the clinic's admins.

Matrix: every role x the patient in their care / another patient of the clinic / another clinic's
patient, before and after breaking the glass, and after it expires (expiry set to explicit times).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import col, select

from app.core.db import Database
from app.core.models import AuditEvent
from app.records.models import BreakGlassAccess
from tests.conftest import Factory, cookie_login
from tests.records.conftest import Ward

PEOPLE = ["author", "colleague", "bystander", "admin", "scheduler", "outsider", "outside_admin"]
# Reading the ward patient's record (record API, notes, page, FHIR, a signed note).
BEFORE = {
    "author": 200,
    "colleague": 200,
    "bystander": 403,
    "admin": 403,
    "scheduler": 403,
    "outsider": 404,
    "outside_admin": 404,
}
# Breaking the glass for the ward patient: 400 for those who have them in their care already.
BREAK = {
    "author": 400,
    "colleague": 400,
    "bystander": 201,
    "admin": 201,
    "scheduler": 403,
    "outsider": 404,
    "outside_admin": 404,
}
AFTER = {**BEFORE, "bystander": 200, "admin": 200}
REASON = "Covering for Dr. Okafor on call tonight."


def reads(ward: Ward, note: dict[str, Any]) -> list[str]:
    pid = ward.patient.id
    return [
        f"/api/patients/{pid}/record",
        f"/api/patients/{pid}/notes",
        f"/records/patients/{pid}",
        f"/fhir/Patient/{pid}/$everything",
        f"/api/notes/{note['id']}",
        f"/records/notes/{note['id']}",
        f"/fhir/Composition/{note['id']}",
    ]


async def statuses(ward: Ward, path: str) -> dict[str, int]:
    return {
        who: (await ward.client.get(path, headers=getattr(ward, who).headers)).status
        for who in PEOPLE
    }


async def break_all(ward: Ward) -> dict[str, int]:
    got = {}
    for who in PEOPLE:
        resp = await ward.client.post(
            f"/api/patients/{ward.patient.id}/break-glass",
            json={"reason": REASON},
            headers=getattr(ward, who).headers,
        )
        got[who] = resp.status
    return got


async def expire(db: Database, at: datetime) -> None:
    async with db.session() as session:
        for access in (await session.exec(select(BreakGlassAccess))).all():
            access.expires_at = at
            session.add(access)
        await session.commit()


async def test_matrix_before_after_and_expired(ward: Ward, db: Database) -> None:
    note = await ward.signed_note({"plan": "Antibiotics for 7 days."})
    for path in reads(ward, note):
        assert await statuses(ward, path) == BEFORE, path
    assert await break_all(ward) == BREAK
    for path in reads(ward, note):
        assert await statuses(ward, path) == AFTER, path
    # The access ends at its expiry: before it, still open; a second after, closed.
    now = datetime.now(UTC)
    await expire(db, now + timedelta(minutes=10))
    assert (await statuses(ward, reads(ward, note)[0])) == AFTER
    await expire(db, now - timedelta(seconds=1))
    for path in reads(ward, note):
        assert await statuses(ward, path) == BEFORE, path


async def test_the_glass_opens_one_patient_only(ward: Ward, factory: Factory) -> None:
    other = await factory.patient(ward.clinic)
    await ward.break_glass(ward.bystander)
    resp = await ward.client.get(f"/api/patients/{other.id}/record", headers=ward.bystander.headers)
    assert resp.status == 403
    assert (await resp.json())["error"]["code"] == "break_glass_required"
    # The author's care of the ward patient says nothing of another patient either.
    resp = await ward.client.get(f"/api/patients/{other.id}/record", headers=ward.author.headers)
    assert resp.status == 403


async def test_breaking_the_glass_never_shows_a_draft_nor_lets_an_admin_write(
    ward: Ward,
) -> None:
    draft = await ward.create_note({"plan": "private thoughts"})
    await ward.break_glass(ward.bystander)
    await ward.break_glass(ward.admin)
    for who in (ward.bystander, ward.admin):
        resp = await ward.client.get(f"/api/notes/{draft['id']}", headers=who.headers)
        assert resp.status == 403
        notes = await ward.client.get(f"/api/patients/{ward.patient.id}/notes", headers=who.headers)
        assert await notes.json() == []
    resp = await ward.client.post(
        f"/api/patients/{ward.patient.id}/notes", json={}, headers=ward.admin.headers
    )
    assert resp.status == 403
    # A provider who broke the glass may write (an emergency note).
    resp = await ward.client.post(
        f"/api/patients/{ward.patient.id}/notes", json={}, headers=ward.bystander.headers
    )
    assert resp.status == 201


@pytest.mark.parametrize(
    ("reason", "field"),
    [
        ("", "reason"),
        ("why      ", "reason"),
        ("x" * 501, "reason"),
        ("a\x00bcdefghijkl", "reason"),
    ],
)
async def test_a_reason_is_required(ward: Ward, reason: str, field: str) -> None:
    resp = await ward.client.post(
        f"/api/patients/{ward.patient.id}/break-glass",
        json={"reason": reason},
        headers=ward.admin.headers,
    )
    assert resp.status == 400
    assert field in (await resp.json())["error"]["fields"]
    resp = await ward.client.get(
        f"/api/patients/{ward.patient.id}/record", headers=ward.admin.headers
    )
    assert resp.status == 403


async def test_breaking_the_glass_is_audited_with_the_reason(ward: Ward, db: Database) -> None:
    opened = await ward.break_glass(ward.admin, REASON)
    created = datetime.fromisoformat(opened["created_at"])
    expires = datetime.fromisoformat(opened["expires_at"])
    assert expires - created == timedelta(minutes=60)  # OPENCONSULT_BREAK_GLASS_MINUTES
    assert opened["reason"] == REASON and opened["open"] is True
    async with db.session() as session:
        events = (
            await session.exec(
                select(AuditEvent)
                .where(AuditEvent.action == "record.break_glass")
                .order_by(col(AuditEvent.id))
            )
        ).all()
    assert len(events) == 1
    event = events[0]
    assert event.outcome == "success" and event.actor_id == str(ward.admin.account.id)
    assert event.patient_id == str(ward.patient.id) and REASON in (event.detail or "")


async def test_admins_review_their_clinics_accesses(ward: Ward, db: Database) -> None:
    await ward.break_glass(ward.bystander, "Patient called after hours with chest pain.")
    await ward.break_glass(ward.admin, REASON)
    await expire(db, datetime.now(UTC) - timedelta(minutes=1))
    await ward.break_glass(ward.admin, "Reviewing a complaint about the last visit.")
    resp = await ward.client.get("/api/break-glass", headers=ward.admin.headers)
    assert resp.status == 200
    rows = await resp.json()
    assert [(r["user_id"], r["reason"], r["open"]) for r in rows] == [
        (str(ward.admin.account.id), "Reviewing a complaint about the last visit.", True),
        (str(ward.admin.account.id), REASON, False),
        (str(ward.bystander.account.id), "Patient called after hours with chest pain.", False),
    ]
    first = rows[-1]
    assert first["patient_id"] == str(ward.patient.id)
    assert first["patient_name"] == f"{ward.patient.given_name} {ward.patient.family_name}"
    assert first["user_name"] and first["user_role"] == "provider"
    newest = rows[0]
    assert datetime.fromisoformat(newest["expires_at"]) - datetime.fromisoformat(
        newest["created_at"]
    ) == timedelta(minutes=60)
    # Only the clinic's admins, and only their clinic's.
    resp = await ward.client.get("/api/break-glass", headers=ward.outside_admin.headers)
    assert resp.status == 200 and await resp.json() == []
    for who in ("author", "bystander", "scheduler", "outsider"):
        resp = await ward.client.get("/api/break-glass", headers=getattr(ward, who).headers)
        assert resp.status == 403, who
    resp = await ward.client.get("/records/break-glass", headers=ward.admin.headers)
    page = await resp.text()
    assert resp.status == 200 and "Patient called after hours with chest pain." in page
    assert (
        await ward.client.get("/records/break-glass", headers=ward.bystander.headers)
    ).status == 403


async def test_the_record_page_offers_the_form(
    client: TestClient, ward: Ward, factory: Factory
) -> None:
    """A provider outside the patient's care opens the record page in a browser session: the
    page asks for a reason; the form (with the CSRF token) opens the record."""
    client.session.cookie_jar.clear()
    token = await cookie_login(client, ward.bystander.account)
    url = f"/records/patients/{ward.patient.id}"
    resp = await client.get(url)
    page = await resp.text()
    assert resp.status == 403 and "Break the glass" in page and 'name="reason"' in page
    assert ward.patient.family_name in page
    resp = await client.post(
        f"{url}/break-glass", data={"reason": "short", "csrf_token": token}, allow_redirects=False
    )
    assert resp.status == 400 and "at least 10 characters" in await resp.text()
    resp = await client.post(f"{url}/break-glass", data={"reason": REASON}, allow_redirects=False)
    assert resp.status == 403  # no CSRF token
    resp = await client.post(
        f"{url}/break-glass", data={"reason": REASON, "csrf_token": token}, allow_redirects=False
    )
    assert resp.status == 303 and resp.headers["Location"] == url
    resp = await client.get(url)
    page = await resp.text()
    assert resp.status == 200 and "Consult notes" in page
    assert "you broke the glass" in page  # the reader is told the record is open to them for now
