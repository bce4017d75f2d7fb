"""The second factor: TOTP (RFC 6238) from an authenticator app, and single-use recovery codes.

A code is accepted for the current 30-second step and one step either side (clocks drift), and
never twice: the newest accepted step is kept, and a code of that step or an older one is refused.
Wrong codes count toward the account's lock exactly like wrong passwords.
"""

from __future__ import annotations

import hmac
import secrets
import time
from enum import StrEnum

import pyotp
import segno
import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts.models import MfaRecoveryCode, StaffMfa
from app.core.auth import hash_password, verify_password
from app.core.errors import Conflict, DomainError, NotFound
from app.core.models import Clinic, Role, User, utcnow

STEP_SECONDS = 30
DRIFT_STEPS = 1
RECOVERY_CODE_COUNT = 10
ISSUER = "OpenConsult"
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # nothing to misread (no 0/o, 1/l/i)


class Stage(StrEnum):
    """What stands between a correct password and a session."""

    NONE = "none"
    VERIFY = "verify"  # enrolled: give a code
    ENROL = "enrol"  # required but not enrolled: enrol first


class WrongCode(DomainError):
    status = 401
    code = "mfa_code_wrong"


class CodeReused(DomainError):
    status = 401
    code = "mfa_code_reused"


def mfa_required(user: User, clinic: Clinic) -> bool:
    """Every admin, and everyone in a clinic that requires it."""
    return user.role == Role.ADMIN or clinic.require_mfa


async def enrolled(session: AsyncSession, user_id: object) -> StaffMfa | None:
    mfa = await session.get(StaffMfa, user_id)
    return mfa if mfa is not None and mfa.enabled_at is not None else None


async def stage_of(session: AsyncSession, user: User) -> Stage:
    if await enrolled(session, user.id) is not None:
        return Stage.VERIFY
    clinic = await session.get(Clinic, user.clinic_id)
    return Stage.ENROL if clinic is not None and mfa_required(user, clinic) else Stage.NONE


async def enrolled_user_ids(session: AsyncSession, user_ids: list[object]) -> set[object]:
    if not user_ids:
        return set()
    query = select(StaffMfa.user_id).where(
        col(StaffMfa.user_id).in_(user_ids), col(StaffMfa.enabled_at).is_not(None)
    )
    return set((await session.exec(query)).all())


async def begin_enrolment(session: AsyncSession, user: User) -> StaffMfa:
    """A pending secret for this user; the same one again until confirmed (a reload of the
    enrolment page must not invalidate the QR code just scanned)."""
    mfa = await session.get(StaffMfa, user.id)
    if mfa is not None and mfa.enabled_at is not None:
        raise Conflict("Two-step sign-in is already set up for this account.")
    if mfa is None:
        mfa = StaffMfa(user_id=user.id, secret=pyotp.random_base32())
        session.add(mfa)
        await session.commit()
        await session.refresh(mfa)
    return mfa


def provisioning_uri(mfa: StaffMfa, user: User, clinic_name: str) -> str:
    return pyotp.TOTP(mfa.secret).provisioning_uri(
        name=user.email, issuer_name=f"{ISSUER} ({clinic_name})"
    )


def qr_svg(uri: str) -> str:
    """The otpauth URI as an inline SVG QR code (segno: pure Python, no image library)."""
    qr = segno.make(uri, error="m")
    svg: str = qr.svg_inline(
        scale=5, border=4, omitsize=True, title="QR code for your authenticator app"
    )
    return svg


def _matching_step(secret: str, code: str, now: float) -> int | None:
    totp = pyotp.TOTP(secret)
    current = int(now // STEP_SECONDS)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _normalized(code: str) -> str:
    return "".join(ch for ch in code.lower() if ch.isalnum())


async def _use_step(session: AsyncSession, user_id: object, step: int) -> bool:
    """Record `step` as used unless it, or a later one, already was (atomic: two requests with
    one code cannot both pass)."""
    result = await session.exec(
        sa.update(StaffMfa)
        .where(col(StaffMfa.user_id) == user_id)
        .where(sa.or_(col(StaffMfa.last_step).is_(None), col(StaffMfa.last_step) < step))
        .values(last_step=step)
    )
    await session.commit()
    return bool(result.rowcount)


async def _use_recovery_code(session: AsyncSession, user_id: object, code: str) -> bool:
    query = select(MfaRecoveryCode).where(
        MfaRecoveryCode.user_id == user_id, col(MfaRecoveryCode.used_at).is_(None)
    )
    for row in (await session.exec(query)).all():
        if verify_password(row.code_hash, code):
            result = await session.exec(
                sa.update(MfaRecoveryCode)
                .where(col(MfaRecoveryCode.id) == row.id, col(MfaRecoveryCode.used_at).is_(None))
                .values(used_at=utcnow())
            )
            await session.commit()
            return bool(result.rowcount)
    return False


async def check_code(
    session: AsyncSession, *, mfa: StaffMfa, code: str, now: float | None = None
) -> str:
    """Accept a TOTP code or an unused recovery code; return which ("totp" or "recovery")."""
    now = time.time() if now is None else now
    plain = _normalized(code)
    if plain.isdigit() and len(plain) == 6:
        step = _matching_step(mfa.secret, plain, now)
        if step is None:
            raise WrongCode("That code is not right; check the time on your phone and try again.")
        if not await _use_step(session, mfa.user_id, step):
            raise CodeReused("That code was just used; wait for the next one.")
        return "totp"
    if len(plain) >= 8 and await _use_recovery_code(session, mfa.user_id, plain):
        return "recovery"
    raise WrongCode("That code is not right; check the time on your phone and try again.")


async def confirm_enrolment(
    session: AsyncSession, *, user: User, code: str, now: float | None = None
) -> list[str]:
    """Enable the pending secret once a code from it arrives; return fresh recovery codes."""
    mfa = await session.get(StaffMfa, user.id)
    if mfa is None:
        raise NotFound("Start setting up two-step sign-in first.")
    if mfa.enabled_at is not None:
        raise Conflict("Two-step sign-in is already set up for this account.")
    plain = _normalized(code)
    now = time.time() if now is None else now
    step = _matching_step(mfa.secret, plain, now) if plain.isdigit() else None
    if step is None:
        raise WrongCode("That code is not right; check the time on your phone and try again.")
    mfa.enabled_at = utcnow()
    mfa.last_step = step
    session.add(mfa)
    codes = [_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    for recovery in codes:
        session.add(
            MfaRecoveryCode(user_id=user.id, code_hash=hash_password(_normalized(recovery)))
        )
    await session.commit()
    return codes


def _recovery_code() -> str:
    raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


async def remaining_recovery_codes(session: AsyncSession, user_id: object) -> int:
    query = (
        select(sa.func.count())
        .select_from(MfaRecoveryCode)
        .where(col(MfaRecoveryCode.user_id) == user_id, col(MfaRecoveryCode.used_at).is_(None))
    )
    return int((await session.exec(query)).one())


async def reset(session: AsyncSession, *, user: User) -> None:
    """Forget the user's second factor and end their sessions; they enrol again if required."""
    await session.exec(sa.delete(MfaRecoveryCode).where(col(MfaRecoveryCode.user_id) == user.id))
    await session.exec(sa.delete(StaffMfa).where(col(StaffMfa.user_id) == user.id))
    await session.exec(
        sa.update(User)
        .where(col(User.id) == user.id)
        .values(session_epoch=col(User.session_epoch) + 1)
    )
    await session.commit()
