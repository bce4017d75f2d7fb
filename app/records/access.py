"""Who may read and write the patient record.

Providers and admins of the clinic read it; only providers write consult notes. Another clinic's
patient or note is "not found", never "forbidden"; a colleague's draft is forbidden.
"""

from __future__ import annotations

import uuid

from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.errors import Forbidden, NotFound
from app.core.models import Patient, Role
from app.records.models import ConsultNote, NoteStatus
from app.web.identity import Actor

READERS = (Role.PROVIDER, Role.ADMIN)


def require_reader(actor: Actor) -> None:
    if not actor.has_role(*READERS):
        raise Forbidden("Only providers and admins of the clinic read patient records.")


def require_provider(actor: Actor) -> uuid.UUID:
    """The acting provider's id, the author of what they write."""
    if not actor.has_role(Role.PROVIDER) or actor.id is None:
        raise Forbidden("Only providers write consult notes.")
    return actor.id


async def readable_patient(session: AsyncSession, actor: Actor, patient_id: uuid.UUID) -> Patient:
    """The patient if the actor may read their record; another clinic's patient is not found."""
    require_reader(actor)
    patient = await session.get(Patient, patient_id)
    if patient is None or patient.clinic_id != actor.clinic_id:
        raise NotFound("No such patient.")
    return patient


async def readable_note(
    session: AsyncSession, actor: Actor, note_id: uuid.UUID, *, fresh: bool = False
) -> ConsultNote:
    """A signed note of the actor's clinic, or the actor's own draft."""
    require_reader(actor)
    note = await session.get(ConsultNote, note_id, populate_existing=fresh)
    if note is None or note.clinic_id != actor.clinic_id:
        raise NotFound("No such note.")
    if note.status == NoteStatus.DRAFT and note.author_id != actor.id:
        raise Forbidden("A draft is visible only to its author until it is signed.")
    return note


async def note_patient_id(
    session: AsyncSession, actor: Actor, note_id: uuid.UUID
) -> uuid.UUID | None:
    """The patient of a note of the actor's clinic (for auditing refusals), else None."""
    note = await session.get(ConsultNote, note_id)
    return note.patient_id if note is not None and note.clinic_id == actor.clinic_id else None
