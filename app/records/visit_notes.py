"""The provider's consult note for a video visit: the one they wrote for it, or a new draft.

A visit the actor does not hold is "not found", like another clinic's patient.
"""

from __future__ import annotations

import uuid

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.errors import NotFound
from app.core.models import Role
from app.records.consult_notes import present_notes
from app.records.crypto import Keyring
from app.records.drafts import create_draft
from app.records.models import ConsultNote
from app.records.schemas import NoteCreate, NotePublic
from app.records.writes import NO_QUEUE, Writes
from app.web.identity import Actor
from signaling.models import Visit


async def own_visit(session: AsyncSession, actor: Actor, visit_id: uuid.UUID) -> Visit:
    """The visit, if the actor is the provider who holds it; anyone else: not found."""
    visit = await session.get(Visit, visit_id)
    if (
        visit is None
        or not actor.has_role(Role.PROVIDER)
        or visit.provider_id != actor.id
        or visit.clinic_id != actor.clinic_id
    ):
        raise NotFound("No such visit.")
    return visit


async def open_visit_note(
    session: AsyncSession,
    *,
    keyring: Keyring,
    actor: Actor,
    writes: Writes = NO_QUEUE,
    visit_id: uuid.UUID,
    max_chars: int,
) -> tuple[NotePublic, bool]:
    """The provider's newest note for the visit's appointment, or a new draft; and whether it
    was created now."""
    visit = await own_visit(session, actor, visit_id)
    rows = await session.exec(
        select(ConsultNote)
        .where(ConsultNote.appointment_id == visit.appointment_id)
        .where(ConsultNote.patient_id == visit.patient_id)
        .where(ConsultNote.author_id == actor.id)
        .order_by(col(ConsultNote.created_at).desc(), col(ConsultNote.id))
        .limit(1)
    )
    note = rows.first()
    if note is not None:
        return (await present_notes(session, keyring, [note]))[0], False
    created = await create_draft(
        session,
        keyring=keyring,
        actor=actor,
        writes=writes,
        patient_id=visit.patient_id,
        note_in=NoteCreate(appointment_id=visit.appointment_id),
        max_chars=max_chars,
    )
    return created, True
