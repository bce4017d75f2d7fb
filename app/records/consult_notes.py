"""Reading consult notes: one note, a patient's notes, each with its addenda, decrypted.

Functions take a session, the keyring and the acting `Actor`; they know nothing of HTTP.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.models import Patient, User
from app.records.access import readable_note, readable_patient
from app.records.crypto import Keyring, open_addendum, open_sections
from app.records.models import ConsultNote, NoteAddendum, NoteStatus
from app.records.schemas import AddendumPublic, NotePublic, NoteSections
from app.web.identity import Actor


async def author_names(session: AsyncSession, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    wanted = set(ids)
    if not wanted:
        return {}
    rows = await session.exec(select(User.id, User.full_name).where(col(User.id).in_(wanted)))
    return {user_id: name for user_id, name in rows.all()}


async def _addenda_of(
    session: AsyncSession, note_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[NoteAddendum]]:
    by_note: dict[uuid.UUID, list[NoteAddendum]] = {i: [] for i in note_ids}
    if not note_ids:
        return by_note
    rows = await session.exec(
        select(NoteAddendum)
        .where(col(NoteAddendum.note_id).in_(note_ids))
        .order_by(col(NoteAddendum.created_at), col(NoteAddendum.id))
    )
    for addendum in rows.all():
        by_note[addendum.note_id].append(addendum)
    return by_note


def addendum_public(
    keyring: Keyring, addendum: NoteAddendum, names: dict[uuid.UUID, str]
) -> AddendumPublic:
    reason, text, amends_plan = open_addendum(keyring, addendum)
    return AddendumPublic(
        id=addendum.id,
        note_id=addendum.note_id,
        author_id=addendum.author_id,
        author_name=names.get(addendum.author_id, ""),
        reason=reason,
        text=text,
        amends_plan=amends_plan,
        created_at=addendum.created_at,
    )


async def present_notes(
    session: AsyncSession, keyring: Keyring, notes: list[ConsultNote]
) -> list[NotePublic]:
    """Decrypt notes and their addenda into their public shape."""
    addenda = await _addenda_of(session, [n.id for n in notes])
    authors = {n.author_id for n in notes} | {
        a.author_id for rows in addenda.values() for a in rows
    }
    names = await author_names(session, authors)
    return [
        note_public(
            note,
            open_sections(keyring, note),
            names,
            [addendum_public(keyring, a, names) for a in addenda[note.id]],
        )
        for note in notes
    ]


def note_public(
    note: ConsultNote,
    sections: NoteSections,
    names: dict[uuid.UUID, str],
    addenda: list[AddendumPublic],
) -> NotePublic:
    """One note in its public shape, from text and addenda already opened."""
    return NotePublic(
        id=note.id,
        patient_id=note.patient_id,
        clinic_id=note.clinic_id,
        author_id=note.author_id,
        author_name=names.get(note.author_id, ""),
        appointment_id=note.appointment_id,
        status=note.status,
        version=note.version,
        sections=sections,
        created_at=note.created_at,
        updated_at=note.updated_at,
        signed_at=note.signed_at,
        addenda=addenda,
    )


async def read_note(
    session: AsyncSession, *, keyring: Keyring, actor: Actor, note_id: uuid.UUID
) -> NotePublic:
    note = await readable_note(session, actor, note_id)
    return (await present_notes(session, keyring, [note]))[0]


async def patient_notes(
    session: AsyncSession, *, keyring: Keyring, actor: Actor, patient_id: uuid.UUID
) -> list[NotePublic]:
    """Signed notes of the patient and the actor's own drafts, oldest first."""
    await readable_patient(session, actor, patient_id)
    rows = await session.exec(
        select(ConsultNote)
        .where(ConsultNote.patient_id == patient_id)
        .where(or_(ConsultNote.status == NoteStatus.SIGNED, ConsultNote.author_id == actor.id))
        .order_by(col(ConsultNote.created_at), col(ConsultNote.id))
    )
    return await present_notes(session, keyring, list(rows.all()))


async def patient_record(
    session: AsyncSession, *, keyring: Keyring, actor: Actor, patient_id: uuid.UUID
) -> tuple[Patient, list[NotePublic]]:
    """The patient and the notes of theirs the actor may read."""
    patient = await readable_patient(session, actor, patient_id)
    return patient, await patient_notes(
        session, keyring=keyring, actor=actor, patient_id=patient_id
    )
