"""What the clinic queue may show of a record before the admit: the last signed note's time."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.records.models import ConsultNote, NoteStatus


async def last_signed_notes(
    session: AsyncSession, clinic_id: uuid.UUID, patient_ids: list[uuid.UUID]
) -> dict[uuid.UUID, datetime]:
    """When each patient's latest note of this clinic was signed (patients with none absent)."""
    if not patient_ids:
        return {}
    query = (
        select(ConsultNote.patient_id, sa.func.max(ConsultNote.signed_at))
        .where(
            ConsultNote.clinic_id == clinic_id,
            ConsultNote.status == NoteStatus.SIGNED,
            col(ConsultNote.patient_id).in_(patient_ids),
        )
        .group_by(col(ConsultNote.patient_id))
    )
    return {patient: signed for patient, signed in (await session.exec(query)).all() if signed}
