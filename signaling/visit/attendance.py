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
    """The visit's times, its length, and each participant once, in the order they first came.

    A reload or a network drop leaves one stretch and starts another; the provider reads one
    line per person: first joined, last left, the time present in all, and how many stretches.
    """
    rows = await session.exec(
        select(VisitParticipant)
        .where(VisitParticipant.visit_id == visit.id)
        .order_by(col(VisitParticipant.joined_at))
    )
    people: dict[tuple[str, uuid.UUID], list[VisitParticipant]] = {}
    for row in rows.all():
        people.setdefault((row.role, row.person_id), []).append(row)
    end = visit.ended_at
    return {
        "visit_id": str(visit.id),
        "started_at": visit.started_at.isoformat(),
        "ended_at": end.isoformat() if end else None,
        "duration_seconds": int((end - visit.started_at).total_seconds()) if end else None,
        "participants": [_person(stretches) for stretches in people.values()],
    }


def _person(stretches: list[VisitParticipant]) -> dict[str, object]:
    first, latest = stretches[0], stretches[-1]
    all_left = all(s.left_at is not None for s in stretches)
    left_at = max(s.left_at for s in stretches if s.left_at is not None) if all_left else None
    return {
        "role": first.role,
        "name": latest.name,
        "joined_at": first.joined_at.isoformat(),
        "left_at": left_at.isoformat() if left_at else None,
        "seconds": sum(
            int((s.left_at - s.joined_at).total_seconds()) for s in stretches if s.left_at
        )
        if all_left
        else None,
        "stretches": len(stretches),
    }
