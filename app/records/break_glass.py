"""Break the glass: a reasoned, time-limited access to one patient's record outside the care
relationship, and the clinic admins' review of those accesses. See app.records.access."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.errors import Forbidden, InvalidInput
from app.core.models import Patient, Role, User, utcnow
from app.records.access import READERS, clinic_patient, in_care
from app.records.models import BreakGlassAccess
from app.records.schemas import BreakGlassCreate, BreakGlassPublic
from app.records.writes import NO_QUEUE, Writes, insert
from app.web.identity import Actor

REVIEW_LIMIT = 500


def require_breaker(actor: Actor) -> uuid.UUID:
    """Providers and admins may break the glass; schedulers never read the record."""
    if not actor.has_role(*READERS) or actor.id is None:
        raise Forbidden("Only providers and admins of the clinic may break the glass.")
    return actor.id


def _public(
    access: BreakGlassAccess, patient: Patient, user: User, now: datetime
) -> BreakGlassPublic:
    return BreakGlassPublic(
        id=access.id,
        patient_id=access.patient_id,
        patient_name=f"{patient.given_name} {patient.family_name}",
        user_id=access.user_id,
        user_name=user.full_name,
        user_role=user.role.value,
        reason=access.reason,
        created_at=access.created_at,
        expires_at=access.expires_at,
        open=access.expires_at > now,
    )


async def break_glass(
    session: AsyncSession,
    *,
    actor: Actor,
    writes: Writes = NO_QUEUE,
    patient_id: uuid.UUID,
    request: BreakGlassCreate,
    minutes: int,
    now: datetime | None = None,
) -> BreakGlassPublic:
    """Open the actor's access to the patient's record for `minutes`, for the reason given."""
    user_id = require_breaker(actor)
    patient = await clinic_patient(session, actor, patient_id)
    reason = " ".join(request.reason.split())
    if len(reason) < 10:
        raise InvalidInput(
            "Say in a few words why you need this record.", fields={"reason": "too short"}
        )
    if await in_care(session, actor, patient_id):
        raise InvalidInput(
            "This patient is in your care: their record is open to you without breaking the glass.",
            fields={"reason": "not needed"},
        )
    moment = now or utcnow()
    access = BreakGlassAccess(
        clinic_id=patient.clinic_id,
        patient_id=patient.id,
        user_id=user_id,
        reason=reason,
        created_at=moment,
        expires_at=moment + timedelta(minutes=minutes),
    )
    await insert(session, writes, access)
    user = await session.get(User, user_id)
    assert user is not None
    return _public(access, patient, user, moment)


async def review(
    session: AsyncSession, *, actor: Actor, now: datetime | None = None
) -> list[BreakGlassPublic]:
    """The clinic's break-glass accesses, newest first (admins only)."""
    if not actor.has_role(Role.ADMIN):
        raise Forbidden("Only the clinic's admins review break-glass accesses.")
    rows = await session.exec(
        select(BreakGlassAccess, Patient, User)
        .join(Patient, col(Patient.id) == col(BreakGlassAccess.patient_id))
        .join(User, col(User.id) == col(BreakGlassAccess.user_id))
        .where(BreakGlassAccess.clinic_id == actor.clinic_id)
        .order_by(col(BreakGlassAccess.created_at).desc(), col(BreakGlassAccess.id))
        .limit(REVIEW_LIMIT)
    )
    moment = now or utcnow()
    return [_public(access, patient, user, moment) for access, patient, user in rows.all()]
