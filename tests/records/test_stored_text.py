"""Text stored before the input rule existed still opens: a lone surrogate never makes a
patient's record unreadable (the API and the pages show U+FFFD in its place)."""

from __future__ import annotations

import uuid

from app.core.config import Settings
from app.core.db import Database
from app.records.crypto import Keyring, seal_addendum, seal_sections
from app.records.models import ConsultNote, NoteAddendum
from app.records.schemas import NoteSections
from tests.records.conftest import Ward


async def test_a_signed_note_stored_with_a_lone_surrogate_still_renders(
    ward: Ward, db: Database, settings: Settings
) -> None:
    note = await ward.signed_note({"plan": "Rest and fluids."})
    addendum_id = uuid.UUID((await ward.addendum(note, "Lab result", "Negative."))["id"])

    # What an autosave wrote before the rule: the encrypted JSON kept the half emoji.
    keyring = Keyring.from_settings(settings)
    async with db.session() as session:
        row = await session.get(ConsultNote, uuid.UUID(note["id"]))
        addendum = await session.get(NoteAddendum, addendum_id)
        assert row is not None and addendum is not None
        sealed = seal_sections(keyring, row.id, NoteSections(plan="Rest \ud83d and fluids."))
        row.key_id, row.body = sealed.key_id, sealed.blob
        sealed = seal_addendum(keyring, addendum.id, "Lab \ud83d", "Negative \udc00.")
        addendum.key_id, addendum.body = sealed.key_id, sealed.blob
        session.add_all([row, addendum])
        await session.commit()

    headers = ward.colleague.headers
    resp = await ward.client.get(f"/api/patients/{ward.patient.id}/record", headers=headers)
    assert resp.status == 200, await resp.text()
    shown = (await resp.json())["notes"][0]
    assert shown["sections"]["plan"] == "Rest \ufffd and fluids."
    assert shown["addenda"][0]["reason"] == "Lab \ufffd"
    assert shown["addenda"][0]["text"] == "Negative \ufffd."

    resp = await ward.client.get(f"/api/notes/{note['id']}", headers=headers)
    assert resp.status == 200 and (await resp.json())["sections"]["plan"].startswith("Rest \ufffd")
    for page in (f"/records/patients/{ward.patient.id}", f"/records/notes/{note['id']}"):
        resp = await ward.client.get(page, headers=headers)
        assert resp.status == 200, page
        assert "Rest \ufffd and fluids." in await resp.text()
