"""Who may read and write the patient record: minimum necessary.

A provider reads the record of a patient they have or had an appointment (not cancelled) or a
visit with, and the notes they wrote. Anyone else who may read records (another provider of the
clinic, an admin) must first "break the glass": give a reason, which is audited and opens the
record to them for `OPENCONSULT_BREAK_GLASS_MINUTES`; the clinic's admins review these accesses.
Schedulers never read the record (they book from the patient's demographics, which scheduling
serves) and cannot break the glass. Only providers write consult notes.

Another clinic's patient or note is "not found", never "forbidden"; a colleague's draft is
forbidden, break-glass or not.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.errors import Forbidden, NotFound
from app.core.models import Patient, Role, utcnow
from app.records.models import BreakGlassAccess, ConsultNote, NoteStatus
from app.web.identity import Actor
from scheduling.models import Appointment, AppointmentStatus
from signaling.models import Visit

READERS = (Role.PROVIDER, Role.ADMIN)


class BreakGlassRequired(Forbidden):
    """The actor may read records, but not this patient's without breaking the glass."""

    code = "break_glass_required"


def require_reader(actor: Actor) -> None:
    if not actor.has_role(*READERS):
        raise Forbidden("Only providers and admins of the clinic read patient records.")


def require_provider(actor: Actor) -> uuid.UUID:
    """The acting provider's id, the author of what they write."""
    if not actor.has_role(Role.PROVIDER) or actor.id is None:
        raise Forbidden("Only providers write consult notes.")
    return actor.id


async def in_care(session: AsyncSession, actor: Actor, patient_id: uuid.UUID) -> bool:
    """Whether the actor is a provider who has or had an appointment or a visit with the
    patient (a cancelled appointment does not count)."""
    if not actor.has_role(Role.PROVIDER) or actor.id is None:
        return False
    booked = await session.exec(
        select(Appointment.id)
        .where(Appointment.patient_id == patient_id)
        .where(Appointment.provider_id == actor.id)
        .where(Appointment.status != AppointmentStatus.CANCELLED)
        .limit(1)
    )
    if booked.first() is not None:
        return True
    visited = await session.exec(
        select(Visit.id)
        .where(Visit.patient_id == patient_id)
        .where(Visit.provider_id == actor.id)
        .limit(1)
    )
    return visited.first() is not None


async def open_break_glass(
    session: AsyncSession, actor: Actor, patient_id: uuid.UUID, *, now: datetime | None = None
) -> BreakGlassAccess | None:
    """The actor's break-glass access to the patient still open at `now`, if any."""
    if actor.id is None:
        return None
    rows = await session.exec(
        select(BreakGlassAccess)
        .where(BreakGlassAccess.patient_id == patient_id)
        .where(BreakGlassAccess.user_id == actor.id)
        .where(BreakGlassAccess.clinic_id == actor.clinic_id)
        .where(col(BreakGlassAccess.expires_at) > (now or utcnow()))
        .order_by(col(BreakGlassAccess.expires_at).desc())
        .limit(1)
    )
    return rows.first()


async def require_access(session: AsyncSession, actor: Actor, patient_id: uuid.UUID) -> None:
    """Refuse (break_glass_required) unless the actor cares for the patient or broke the
    glass for them and that access is still open."""
    if await in_care(session, actor, patient_id):
        return
    if await open_break_glass(session, actor, patient_id) is not None:
        return
    raise BreakGlassRequired(
        "This patient is not in your care. To read their record, break the glass: "
        "give a reason, which is recorded and reviewed by the clinic's admins.",
        detail={"patient_id": str(patient_id)},
    )


async def clinic_patient(session: AsyncSession, actor: Actor, patient_id: uuid.UUID) -> Patient:
    """A patient of the actor's clinic; another clinic's patient is not found."""
    patient = await session.get(Patient, patient_id)
    if patient is None or patient.clinic_id != actor.clinic_id:
        raise NotFound("No such patient.")
    return patient


async def readable_patient(session: AsyncSession, actor: Actor, patient_id: uuid.UUID) -> Patient:
    """The patient if the actor may read their record; another clinic's patient is not found."""
    require_reader(actor)
    patient = await clinic_patient(session, actor, patient_id)
    await require_access(session, actor, patient.id)
    return patient


async def readable_note(
    session: AsyncSession, actor: Actor, note_id: uuid.UUID, *, fresh: bool = False
) -> ConsultNote:
    """A signed note of the actor's clinic, or the actor's own draft; a note the actor did not
    write needs access to the patient's record."""
    require_reader(actor)
    note = await session.get(ConsultNote, note_id, populate_existing=fresh)
    if note is None or note.clinic_id != actor.clinic_id:
        raise NotFound("No such note.")
    if note.author_id != actor.id:
        if note.status == NoteStatus.DRAFT:
            raise Forbidden("A draft is visible only to its author until it is signed.")
        await require_access(session, actor, note.patient_id)
    return note


async def note_patient_id(
    session: AsyncSession, actor: Actor, note_id: uuid.UUID
) -> uuid.UUID | None:
    """The patient of a note of the actor's clinic (for auditing refusals), else None."""
    note = await session.get(ConsultNote, note_id)
    return note.patient_id if note is not None and note.clinic_id == actor.clinic_id else None
