"""The record's side of a video visit: the provider's note for it, and the patient's summary.

Functions take a session and plain arguments and know nothing of HTTP. A visit the viewer may
not see is "not found", like another clinic's patient.
"""

from __future__ import annotations

import uuid
from contextlib import AbstractAsyncContextManager
from datetime import datetime

from pydantic import BaseModel
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.errors import Conflict, NotFound
from app.core.models import Role, User
from app.records import service
from app.records.crypto import Keyring
from app.records.models import ConsultNote, NoteStatus
from app.records.schemas import NoteCreate, NotePublic
from signaling.models import Visit

PENDING_SUMMARY = "Your provider has not finished the visit summary yet."


class VisitNotEnded(Conflict):
    code = "visit_not_ended"


class SummaryAmendment(BaseModel):
    """An addendum its author marked as amending the plan."""

    text: str
    created_at: datetime


class VisitSummary(BaseModel):
    """What the patient reads after the visit: the signed plan only, never a draft or the
    other sections of the note."""

    provider_name: str
    started_at: datetime
    ended_at: datetime
    duration_seconds: int
    ready: bool
    message: str | None
    plan: str | None
    signed_at: datetime | None
    amendments: list[SummaryAmendment]


async def own_visit(session: AsyncSession, viewer: service.Viewer, visit_id: uuid.UUID) -> Visit:
    """The visit, if the viewer is the provider who holds it; anyone else: not found."""
    visit = await session.get(Visit, visit_id)
    if (
        visit is None
        or viewer.role != Role.PROVIDER
        or visit.provider_id != viewer.id
        or visit.clinic_id != viewer.clinic_id
    ):
        raise NotFound("No such visit.")
    return visit


async def open_visit_note(
    session: AsyncSession,
    *,
    keyring: Keyring,
    viewer: service.Viewer,
    writes: AbstractAsyncContextManager[object] = service.NO_QUEUE,
    visit_id: uuid.UUID,
    max_chars: int,
) -> tuple[NotePublic, bool]:
    """The provider's newest note for the visit's appointment, or a new draft; and whether it
    was created now."""
    visit = await own_visit(session, viewer, visit_id)
    rows = await session.exec(
        select(ConsultNote)
        .where(ConsultNote.appointment_id == visit.appointment_id)
        .where(ConsultNote.patient_id == visit.patient_id)
        .where(ConsultNote.author_id == viewer.id)
        .order_by(col(ConsultNote.created_at).desc(), col(ConsultNote.id))
        .limit(1)
    )
    note = rows.first()
    if note is not None:
        return (await service.present_notes(session, keyring, [note]))[0], False
    created = await service.create_draft(
        session,
        keyring=keyring,
        viewer=viewer,
        writes=writes,
        patient_id=visit.patient_id,
        note_in=NoteCreate(appointment_id=visit.appointment_id),
        max_chars=max_chars,
    )
    return created, True


async def visit_summary(
    session: AsyncSession, *, keyring: Keyring, appointment_id: uuid.UUID
) -> VisitSummary:
    """The summary of the appointment's ended visit, from its newest signed note."""
    found = await session.exec(select(Visit).where(Visit.appointment_id == appointment_id))
    visit = found.first()
    if visit is None or visit.ended_at is None:
        raise VisitNotEnded("The visit has not ended yet; its summary follows when it has.")
    provider = await session.get(User, visit.provider_id)
    # A note names its appointment as its author chose; only the visit's own patient's notes
    # in the visit's clinic count.
    rows = await session.exec(
        select(ConsultNote)
        .where(ConsultNote.appointment_id == appointment_id)
        .where(ConsultNote.patient_id == visit.patient_id)
        .where(ConsultNote.clinic_id == visit.clinic_id)
        .where(ConsultNote.status == NoteStatus.SIGNED)
        .order_by(col(ConsultNote.signed_at).desc(), col(ConsultNote.id))
        .limit(1)
    )
    signed = rows.first()
    note = (await service.present_notes(session, keyring, [signed]))[0] if signed else None
    return VisitSummary(
        provider_name=provider.full_name if provider else "",
        started_at=visit.started_at,
        ended_at=visit.ended_at,
        duration_seconds=int((visit.ended_at - visit.started_at).total_seconds()),
        ready=note is not None,
        message=None if note else PENDING_SUMMARY,
        plan=note.sections.plan if note else None,
        signed_at=note.signed_at if note else None,
        amendments=[
            SummaryAmendment(text=a.text, created_at=a.created_at)
            for a in (note.addenda if note else [])
            if a.amends_plan
        ],
    )
