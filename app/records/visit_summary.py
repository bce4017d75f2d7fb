"""The patient's summary of their ended video visit, which they read from their join link."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.errors import Conflict
from app.core.models import User
from app.records.consult_notes import present_notes
from app.records.crypto import Keyring
from app.records.models import ConsultNote, NoteStatus
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
    note = (await present_notes(session, keyring, [signed]))[0] if signed else None
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
