"""Join links: a signed token naming one appointment and its version, or its short form.

Rescheduling, cancelling or resending bumps the appointment's version, so every older link
stops working. Emails and staff carry the short link `/j/<code>`: a random code stored with the
version it names (`JoinLink`), so the URL bar shows no 250-character token. Long links still work.
"""

from __future__ import annotations

import enum
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core import tokens
from app.core.config import Settings
from app.core.models import utcnow
from scheduling.models import Appointment, AppointmentStatus, JoinLink

JOIN_AUDIENCE = "openconsult:join"


def join_token(settings: Settings, appointment: Appointment) -> str:
    claims = {"sub": str(appointment.id), "ver": appointment.version}
    return tokens.sign(settings.secret, JOIN_AUDIENCE, claims)


def join_url(settings: Settings, appointment: Appointment) -> str:
    return f"{settings.base_url}/join/{join_token(settings, appointment)}"


SHORT_PATH = "/j/"
CODE_BYTES = 18  # 144 random bits: unguessable, 24 characters in the URL
_CODE = re.compile(r"^[A-Za-z0-9_-]{22,64}$")  # signed tokens always hold dots


@dataclass(frozen=True)
class JoinClaim:
    appointment_id: uuid.UUID
    version: int


def new_code() -> str:
    return secrets.token_urlsafe(CODE_BYTES)


def short_url(settings: Settings, code: str) -> str:
    return f"{settings.base_url}{SHORT_PATH}{code}"


async def link_code(session: AsyncSession, appointment: Appointment) -> str:
    """The short code of the appointment's current link version, made on first need.

    Made with INSERT … ON CONFLICT DO NOTHING, so two requests asking at once agree on one code;
    the caller's transaction keeps it (commit it).
    """
    query = select(JoinLink.code).where(
        JoinLink.appointment_id == appointment.id, JoinLink.version == appointment.version
    )
    code = (await session.exec(query)).first()
    if code is not None:
        return code
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(JoinLink)
        .values(
            code=new_code(),
            appointment_id=appointment.id,
            version=appointment.version,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["appointment_id", "version"])
    )
    connection = await session.connection()
    await connection.execute(statement)
    return (await session.exec(query)).one()


async def current_link(session: AsyncSession, settings: Settings, appointment: Appointment) -> str:
    """The short join link patients and staff are given for the appointment as it is now."""
    return short_url(settings, await link_code(session, appointment))


async def codes_of(session: AsyncSession, appointments: list[Appointment]) -> dict[uuid.UUID, str]:
    """The short codes of the appointments' current versions that exist (a list, in one query)."""
    if not appointments:
        return {}
    versions = {a.id: a.version for a in appointments}
    rows = await session.exec(
        select(JoinLink).where(col(JoinLink.appointment_id).in_(list(versions)))
    )
    return {r.appointment_id: r.code for r in rows.all() if versions[r.appointment_id] == r.version}


async def read_join_link(session: AsyncSession, settings: Settings, token: str) -> JoinClaim | None:
    """The appointment version a link names: a short code or a signed token; None if neither."""
    if _CODE.match(token):
        row = await session.get(JoinLink, token)
        return JoinClaim(row.appointment_id, row.version) if row is not None else None
    return read_join_token(settings, token)


def read_join_token(settings: Settings, token: str) -> JoinClaim | None:
    """The appointment a signed token names, or None when it is not one of ours."""
    return tokens.verify(
        settings.secret,
        token,
        audience=JOIN_AUDIENCE,
        required=("sub", "ver"),
        build=lambda c: JoinClaim(uuid.UUID(str(c["sub"])), int(c["ver"])),
    )


class LinkState(enum.StrEnum):
    OPEN = "open"
    TOO_EARLY = "too_early"
    EXPIRED = "expired"
    # The visit took place and the link's window has not closed: it shows the visit summary.
    VISIT_ENDED = "visit_ended"
    CANCELLED = "cancelled"
    REPLACED = "replaced"
    INVALID = "invalid"


def link_state(
    settings: Settings, appointment: Appointment | None, claim: JoinClaim | None, now: datetime
) -> LinkState:
    """Whether a link opens now, and if not, why."""
    if claim is None or appointment is None:
        return LinkState.INVALID
    if appointment.status == AppointmentStatus.CANCELLED:
        return LinkState.CANCELLED
    if claim.version != appointment.version:
        return LinkState.REPLACED
    if appointment.status == AppointmentStatus.NOSHOW:
        return LinkState.EXPIRED
    if now > closes_at(settings, appointment):
        return LinkState.EXPIRED
    if appointment.status == AppointmentStatus.FULFILLED:
        return LinkState.VISIT_ENDED
    if now < opens_at(settings, appointment):
        return LinkState.TOO_EARLY
    return LinkState.OPEN


def opens_at(settings: Settings, appointment: Appointment) -> datetime:
    return appointment.start_at - timedelta(minutes=settings.join_opens_minutes)


def closes_at(settings: Settings, appointment: Appointment) -> datetime:
    """When the link, and the patient session it gave, stop working (summary included)."""
    return appointment.start_at + timedelta(minutes=settings.join_closes_minutes)
