"""The provider's visit note: opened once, by the visit's own provider only."""

from __future__ import annotations

from datetime import timedelta

from app.core.db import Database
from tests.records.conftest import Ward
from tests.records.visits import (
    events,
    hold_visit,
    open_note,
)


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
