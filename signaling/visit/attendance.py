"""Who took part in a visit and for how long: one row per stretch of presence."""

from __future__ import annotations

import uuid

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.models import utcnow
from signaling.models import Visit, VisitParticipant
from signaling.visit.service import Attendee


async def joined(session: AsyncSession, who: Attendee) -> None:
    """The attendee's media reached the relay; a reconnect keeps the stretch already open."""
    open_row = await _open_row(session, who.visit.id, who.person_id, who.role)
    if open_row is not None:
        return
    session.add(
        VisitParticipant(
            visit_id=who.visit.id, role=who.role, person_id=who.person_id, name=who.name
        )
    )
    await session.commit()


async def left(session: AsyncSession, who: Attendee) -> None:
    row = await _open_row(session, who.visit.id, who.person_id, who.role)
    if row is not None:
        row.left_at = utcnow()
        session.add(row)
        await session.commit()


async def close_all(session: AsyncSession, visit_id: uuid.UUID) -> None:
    """The visit ended: everyone still there leaves with it."""
    rows = await session.exec(
        select(VisitParticipant).where(
            VisitParticipant.visit_id == visit_id, col(VisitParticipant.left_at).is_(None)
        )
    )
    now = utcnow()
    for row in rows.all():
        row.left_at = now
        session.add(row)
    await session.commit()


async def _open_row(
    session: AsyncSession, visit_id: uuid.UUID, person_id: uuid.UUID, role: str
) -> VisitParticipant | None:
    result = await session.exec(
        select(VisitParticipant).where(
            VisitParticipant.visit_id == visit_id,
            VisitParticipant.person_id == person_id,
            VisitParticipant.role == role,
            col(VisitParticipant.left_at).is_(None),
        )
    )
    return result.first()


async def summary(session: AsyncSession, visit: Visit) -> dict[str, object]:
    """The visit's times, its length, and each stretch of each participant, in order."""
    rows = await session.exec(
        select(VisitParticipant)
        .where(VisitParticipant.visit_id == visit.id)
        .order_by(col(VisitParticipant.joined_at))
    )
    end = visit.ended_at
    return {
        "visit_id": str(visit.id),
        "started_at": visit.started_at.isoformat(),
        "ended_at": end.isoformat() if end else None,
        "duration_seconds": int((end - visit.started_at).total_seconds()) if end else None,
        "participants": [
            {
                "role": row.role,
                "name": row.name,
                "joined_at": row.joined_at.isoformat(),
                "left_at": row.left_at.isoformat() if row.left_at else None,
                "seconds": int((row.left_at - row.joined_at).total_seconds())
                if row.left_at
                else None,
            }
            for row in rows.all()
        ],
    }
