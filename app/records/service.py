"""Consult notes: drafts with optimistic autosave, signing (locks), addenda, and record reads.

Functions take a session, the keyring and the viewer; they know nothing of HTTP. Ownership is
checked here: another clinic's patient or note is "not found", a colleague's draft is forbidden.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass

from sqlmodel import col, or_, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.errors import Conflict, Forbidden, InvalidInput, NotFound, PayloadTooLarge
from app.core.models import Patient, Role, User, utcnow
from app.records.crypto import (
    Keyring,
    open_addendum,
    open_sections,
    seal_addendum,
    seal_sections,
)
from app.records.models import ConsultNote, NoteAddendum, NoteStatus
from app.records.schemas import (
    AddendumCreate,
    AddendumPublic,
    NoteCreate,
    NotePublic,
    NoteSave,
    NoteSections,
)
from scheduling.models import Appointment

READERS = frozenset({Role.PROVIDER, Role.ADMIN})
# Writers pass `writes=db.write_queue()` so a burst of saves queues instead of contending.
NO_QUEUE: AbstractAsyncContextManager[object] = nullcontext()


class VersionConflict(Conflict):
    code = "version_conflict"


class NoteSigned(Conflict):
    code = "note_signed"


@dataclass(frozen=True)
class Viewer:
    """Who acts on the record (the service's view of a signed-in staff member)."""

    id: uuid.UUID
    role: Role
    clinic_id: uuid.UUID


@dataclass(frozen=True)
class SaveResult:
    note: NotePublic
    encrypt_seconds: float


# --- access -----------------------------------------------------------------------------


def _require_reader(viewer: Viewer) -> None:
    if viewer.role not in READERS:
        raise Forbidden("Only providers and admins of the clinic read patient records.")


def _require_provider(viewer: Viewer) -> None:
    if viewer.role != Role.PROVIDER:
        raise Forbidden("Only providers write consult notes.")


async def readable_patient(session: AsyncSession, viewer: Viewer, patient_id: uuid.UUID) -> Patient:
    """The patient if the viewer may read their record; another clinic's patient is not found."""
    _require_reader(viewer)
    patient = await session.get(Patient, patient_id)
    if patient is None or patient.clinic_id != viewer.clinic_id:
        raise NotFound("No such patient.")
    return patient


async def _note_of_clinic(
    session: AsyncSession, viewer: Viewer, note_id: uuid.UUID, *, fresh: bool = False
) -> ConsultNote:
    _require_reader(viewer)
    note = await session.get(ConsultNote, note_id, populate_existing=fresh)
    if note is None or note.clinic_id != viewer.clinic_id:
        raise NotFound("No such note.")
    if note.status == NoteStatus.DRAFT and note.author_id != viewer.id:
        raise Forbidden("A draft is visible only to its author until it is signed.")
    return note


async def note_patient_id(
    session: AsyncSession, viewer: Viewer, note_id: uuid.UUID
) -> uuid.UUID | None:
    """The patient of a note of the viewer's clinic (for auditing refusals), else None."""
    note = await session.get(ConsultNote, note_id)
    return note.patient_id if note is not None and note.clinic_id == viewer.clinic_id else None


async def _end_reads(session: AsyncSession) -> None:
    """End the read transaction: a request must not sit on a pooled connection while it waits
    in the write queue, or the writer ahead of it (needing a connection) can never finish."""
    await session.commit()


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


# --- reading ----------------------------------------------------------------------------


async def _author_names(session: AsyncSession, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
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


def _addendum_public(
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
    names = await _author_names(session, authors)
    return [
        NotePublic(
            id=note.id,
            patient_id=note.patient_id,
            clinic_id=note.clinic_id,
            author_id=note.author_id,
            author_name=names.get(note.author_id, ""),
            appointment_id=note.appointment_id,
            status=note.status,
            version=note.version,
            sections=open_sections(keyring, note),
            created_at=note.created_at,
            updated_at=note.updated_at,
            signed_at=note.signed_at,
            addenda=[_addendum_public(keyring, a, names) for a in addenda[note.id]],
        )
        for note in notes
    ]


async def read_note(
    session: AsyncSession, *, keyring: Keyring, viewer: Viewer, note_id: uuid.UUID
) -> NotePublic:
    note = await _note_of_clinic(session, viewer, note_id)
    return (await present_notes(session, keyring, [note]))[0]


async def patient_notes(
    session: AsyncSession, *, keyring: Keyring, viewer: Viewer, patient_id: uuid.UUID
) -> list[NotePublic]:
    """Signed notes of the patient and the viewer's own drafts, oldest first."""
    await readable_patient(session, viewer, patient_id)
    rows = await session.exec(
        select(ConsultNote)
        .where(ConsultNote.patient_id == patient_id)
        .where(or_(ConsultNote.status == NoteStatus.SIGNED, ConsultNote.author_id == viewer.id))
        .order_by(col(ConsultNote.created_at), col(ConsultNote.id))
    )
    return await present_notes(session, keyring, list(rows.all()))


# --- writing ----------------------------------------------------------------------------


async def create_draft(
    session: AsyncSession,
    *,
    keyring: Keyring,
    viewer: Viewer,
    writes: AbstractAsyncContextManager[object] = NO_QUEUE,
    patient_id: uuid.UUID,
    note_in: NoteCreate,
    max_chars: int,
) -> NotePublic:
    _require_provider(viewer)
    patient = await readable_patient(session, viewer, patient_id)
    _check_size(note_in.sections, max_chars)
    if note_in.appointment_id is not None:
        await _check_appointment(session, patient, note_in.appointment_id)
    note_id = uuid.uuid4()
    sealed = seal_sections(keyring, note_id, note_in.sections)
    note = ConsultNote(
        id=note_id,
        patient_id=patient.id,
        author_id=viewer.id,
        clinic_id=patient.clinic_id,
        appointment_id=note_in.appointment_id,
        key_id=sealed.key_id,
        body=sealed.blob,
    )
    await _end_reads(session)
    async with writes:
        session.add(note)
        await session.commit()
    return (await present_notes(session, keyring, [note]))[0]


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


async def _current_or_conflict(
    session: AsyncSession, keyring: Keyring, viewer: Viewer, note_id: uuid.UUID
) -> Conflict:
    """After a guarded update matched no row: why, with what the client needs to recover."""
    note = await _note_of_clinic(session, viewer, note_id, fresh=True)
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
    viewer: Viewer,
    writes: AbstractAsyncContextManager[object] = NO_QUEUE,
    note_id: uuid.UUID,
    save: NoteSave,
    max_chars: int,
) -> SaveResult:
    """Replace the draft's text if it is still at `save.version`; otherwise a 409 with the
    current version and text, so two tabs never silently overwrite each other."""
    _require_provider(viewer)
    note = await _note_of_clinic(session, viewer, note_id)
    if note.author_id != viewer.id:
        raise Forbidden("Only the author edits a draft.")
    if note.status == NoteStatus.SIGNED:
        raise _signed_error(note)
    _check_size(save.sections, max_chars)
    started = time.perf_counter()
    sealed = seal_sections(keyring, note.id, save.sections)
    encrypt_seconds = time.perf_counter() - started
    saved_at = utcnow()
    await _end_reads(session)
    async with writes:
        result = await session.exec(
            update(ConsultNote)
            .where(col(ConsultNote.id) == note.id)
            .where(col(ConsultNote.version) == save.version)
            .where(col(ConsultNote.status) == NoteStatus.DRAFT)
            .values(
                body=sealed.blob,
                key_id=sealed.key_id,
                version=col(ConsultNote.version) + 1,
                updated_at=saved_at,
            )
        )
        await session.commit()
    if result.rowcount != 1:
        raise await _current_or_conflict(session, keyring, viewer, note.id)
    # The guarded update wrote exactly this; no need to read and decrypt it back. A draft has
    # no addenda.
    names = await _author_names(session, [note.author_id])
    public = NotePublic(
        id=note.id,
        patient_id=note.patient_id,
        clinic_id=note.clinic_id,
        author_id=note.author_id,
        author_name=names.get(note.author_id, ""),
        appointment_id=note.appointment_id,
        status=NoteStatus.DRAFT,
        version=save.version + 1,
        sections=save.sections,
        created_at=note.created_at,
        updated_at=saved_at,
        signed_at=None,
        addenda=[],
    )
    return SaveResult(note=public, encrypt_seconds=encrypt_seconds)


async def sign_note(
    session: AsyncSession,
    *,
    keyring: Keyring,
    viewer: Viewer,
    note_id: uuid.UUID,
    version: int,
    writes: AbstractAsyncContextManager[object] = NO_QUEUE,
) -> NotePublic:
    """Sign the draft as it is at `version`; from then on it is locked."""
    _require_provider(viewer)
    note = await _note_of_clinic(session, viewer, note_id)
    if note.author_id != viewer.id:
        raise Forbidden("Only the author signs a note.")
    if note.status == NoteStatus.SIGNED:
        raise _signed_error(note)
    now = utcnow()
    await _end_reads(session)
    async with writes:
        result = await session.exec(
            update(ConsultNote)
            .where(col(ConsultNote.id) == note.id)
            .where(col(ConsultNote.version) == version)
            .where(col(ConsultNote.status) == NoteStatus.DRAFT)
            .values(
                status=NoteStatus.SIGNED,
                version=col(ConsultNote.version) + 1,
                signed_at=now,
                updated_at=now,
            )
        )
        await session.commit()
    if result.rowcount != 1:
        raise await _current_or_conflict(session, keyring, viewer, note.id)
    return await read_note(session, keyring=keyring, viewer=viewer, note_id=note.id)


async def add_addendum(
    session: AsyncSession,
    *,
    keyring: Keyring,
    viewer: Viewer,
    writes: AbstractAsyncContextManager[object] = NO_QUEUE,
    note_id: uuid.UUID,
    addendum_in: AddendumCreate,
    max_chars: int,
) -> AddendumPublic:
    """Append a correction to a signed note; the note itself never changes."""
    _require_provider(viewer)
    note = await _note_of_clinic(session, viewer, note_id)
    if note.status != NoteStatus.SIGNED:
        raise Conflict("This note is still a draft; edit it instead of adding an addendum.")
    chars = len(addendum_in.reason) + len(addendum_in.text)
    if chars > max_chars:
        raise PayloadTooLarge(
            f"The addendum is longer than {max_chars} characters.",
            detail={"max_note_chars": max_chars, "chars": chars},
        )
    addendum_id = uuid.uuid4()
    sealed = seal_addendum(
        keyring,
        addendum_id,
        addendum_in.reason,
        addendum_in.text,
        amends_plan=addendum_in.amends_plan,
    )
    addendum = NoteAddendum(
        id=addendum_id,
        note_id=note.id,
        author_id=viewer.id,
        key_id=sealed.key_id,
        body=sealed.blob,
    )
    await _end_reads(session)
    async with writes:
        session.add(addendum)
        await session.commit()
    names = await _author_names(session, [viewer.id])
    return _addendum_public(keyring, addendum, names)
