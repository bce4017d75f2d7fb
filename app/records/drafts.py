"""Writing a consult note: a draft, its optimistic autosave, and signing, which locks it.

Only the author edits or signs their draft. An autosave names the version it was edited from;
if the note moved on meanwhile it is refused with the current text, so two tabs never silently
overwrite each other. Corrections to a signed note are addenda (app.records.addenda).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from sqlmodel import col, update
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.errors import Conflict, Forbidden, InvalidInput, PayloadTooLarge
from app.core.models import Patient, utcnow
from app.records.access import readable_note, readable_patient, require_provider
from app.records.consult_notes import author_names, note_public, present_notes, read_note
from app.records.crypto import Keyring, seal_sections
from app.records.models import ConsultNote, NoteStatus
from app.records.schemas import NoteCreate, NotePublic, NoteSave, NoteSections
from app.records.writes import NO_QUEUE, Writes, end_reads, insert
from app.web.identity import Actor
from scheduling.models import Appointment


class VersionConflict(Conflict):
    code = "version_conflict"


class NoteSigned(Conflict):
    code = "note_signed"


@dataclass(frozen=True)
class SaveResult:
    note: NotePublic
    encrypt_seconds: float


def _check_size(sections: NoteSections, max_chars: int) -> None:
    if sections.total_chars() > max_chars:
        raise PayloadTooLarge(
            f"The note is longer than {max_chars} characters.",
            detail={"max_note_chars": max_chars, "chars": sections.total_chars()},
        )


def _signed_error(note: ConsultNote) -> NoteSigned:
    return NoteSigned(
        "This note is signed and locked; corrections are added as addenda.",
        detail={
            "status": note.status.value,
            "version": note.version,
            "addenda_url": f"/api/notes/{note.id}/addenda",
        },
    )


async def _check_appointment(
    session: AsyncSession, patient: Patient, appointment_id: uuid.UUID
) -> None:
    """A note names only an appointment of its own patient (the visit summary trusts it)."""
    appointment = await session.get(Appointment, appointment_id)
    if appointment is None or appointment.patient_id != patient.id:
        raise InvalidInput(
            "That appointment is not one of this patient's.",
            fields={"appointment_id": "not an appointment of this patient"},
        )


async def create_draft(
    session: AsyncSession,
    *,
    keyring: Keyring,
    actor: Actor,
    writes: Writes = NO_QUEUE,
    patient_id: uuid.UUID,
    note_in: NoteCreate,
    max_chars: int,
) -> NotePublic:
    author_id = require_provider(actor)
    patient = await readable_patient(session, actor, patient_id)
    _check_size(note_in.sections, max_chars)
    if note_in.appointment_id is not None:
        await _check_appointment(session, patient, note_in.appointment_id)
    note_id = uuid.uuid4()
    sealed = seal_sections(keyring, note_id, note_in.sections)
    note = ConsultNote(
        id=note_id,
        patient_id=patient.id,
        author_id=author_id,
        clinic_id=patient.clinic_id,
        appointment_id=note_in.appointment_id,
        key_id=sealed.key_id,
        body=sealed.blob,
    )
    await insert(session, writes, note)
    return (await present_notes(session, keyring, [note]))[0]


async def _authors_draft(
    session: AsyncSession, actor: Actor, note_id: uuid.UUID, *, not_author: str
) -> ConsultNote:
    """The actor's own note, still a draft: the only note they may change."""
    author_id = require_provider(actor)
    note = await readable_note(session, actor, note_id)
    if note.author_id != author_id:
        raise Forbidden(not_author)
    if note.status == NoteStatus.SIGNED:
        raise _signed_error(note)
    return note


async def _update_draft(
    session: AsyncSession,
    writes: Writes,
    note_id: uuid.UUID,
    version: int,
    values: dict[str, object],
) -> bool:
    """Write `values` and the next version if the note is still a draft at `version`."""
    await end_reads(session)
    async with writes:
        result = await session.exec(
            update(ConsultNote)
            .where(col(ConsultNote.id) == note_id)
            .where(col(ConsultNote.version) == version)
            .where(col(ConsultNote.status) == NoteStatus.DRAFT)
            .values(version=col(ConsultNote.version) + 1, **values)
        )
        await session.commit()
    return result.rowcount == 1


async def _current_or_conflict(
    session: AsyncSession, keyring: Keyring, actor: Actor, note_id: uuid.UUID
) -> Conflict:
    """After a guarded update matched no row: why, with what the client needs to recover."""
    note = await readable_note(session, actor, note_id, fresh=True)
    if note.status == NoteStatus.SIGNED:
        return _signed_error(note)
    current = (await present_notes(session, keyring, [note]))[0]
    return VersionConflict(
        f"The note was saved elsewhere (now version {note.version}); merge before saving again.",
        detail={"current": current.model_dump(mode="json")},
    )


async def save_draft(
    session: AsyncSession,
    *,
    keyring: Keyring,
    actor: Actor,
    writes: Writes = NO_QUEUE,
    note_id: uuid.UUID,
    save: NoteSave,
    max_chars: int,
) -> SaveResult:
    """Replace the draft's text if it is still at `save.version`; otherwise a 409 with the
    current version and text."""
    note = await _authors_draft(
        session, actor, note_id, not_author="Only the author edits a draft."
    )
    _check_size(save.sections, max_chars)
    started = time.perf_counter()
    sealed = seal_sections(keyring, note.id, save.sections)
    encrypt_seconds = time.perf_counter() - started
    saved_at = utcnow()
    values = {"body": sealed.blob, "key_id": sealed.key_id, "updated_at": saved_at}
    if not await _update_draft(session, writes, note.id, save.version, values):
        raise await _current_or_conflict(session, keyring, actor, note.id)
    # The guarded update wrote exactly this; no need to read and decrypt it back. A draft has
    # no addenda.
    names = await author_names(session, [note.author_id])
    public = note_public(note, save.sections, names, []).model_copy(
        update={"version": save.version + 1, "updated_at": saved_at}
    )
    return SaveResult(note=public, encrypt_seconds=encrypt_seconds)


async def sign_note(
    session: AsyncSession,
    *,
    keyring: Keyring,
    actor: Actor,
    note_id: uuid.UUID,
    version: int,
    writes: Writes = NO_QUEUE,
) -> NotePublic:
    """Sign the draft as it is at `version`; from then on it is locked."""
    note = await _authors_draft(session, actor, note_id, not_author="Only the author signs a note.")
    now = utcnow()
    values = {"status": NoteStatus.SIGNED, "signed_at": now, "updated_at": now}
    if not await _update_draft(session, writes, note.id, version, values):
        raise await _current_or_conflict(session, keyring, actor, note.id)
    return await read_note(session, keyring=keyring, actor=actor, note_id=note.id)
