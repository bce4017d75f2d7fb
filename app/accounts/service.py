"""Account rules: sign-in with lockout, creating and finding users within one clinic."""

from __future__ import annotations

import uuid
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts.schemas import UserCreate
from app.core.auth import RateLimiter, hash_password, verify_password
from app.core.config import Settings
from app.core.errors import AccountLocked, Conflict, NotAuthenticated, NotFound, TooManyRequests
from app.core.models import Clinic, User, utcnow

BAD_CREDENTIALS = "Email or password is incorrect."


def normalize_email(email: str) -> str:
    return email.strip().lower()


async def authenticate(
    session: AsyncSession,
    *,
    settings: Settings,
    limiter: RateLimiter,
    email: str,
    password: str,
    client_addr: str | None,
) -> User:
    """The user whose credentials these are; counts failures and locks the account."""
    window = settings.login_address_window_minutes * 60
    if await limiter.hit(f"login-addr:{client_addr}", window) > settings.login_max_per_address:
        raise TooManyRequests(
            "Too many sign-in attempts from this address; wait a few minutes and try again.",
            retry_after=window,
        )
    user = (await session.exec(select(User).where(User.email == normalize_email(email)))).first()
    now = utcnow()
    if user is not None and user.locked_until is not None and user.locked_until > now:
        raise locked_error(user, settings)
    if not verify_password(user.password_hash if user else None, password):
        if user is not None:
            await _count_failure(session, user=user, settings=settings)
        raise NotAuthenticated(BAD_CREDENTIALS)
    if not user or not user.is_active:
        raise NotAuthenticated("This account is deactivated; ask your clinic's admin.")
    if user.failed_logins or user.locked_until:
        user.failed_logins = 0
        user.locked_until = None
        session.add(user)
        await session.commit()
    return user


async def _count_failure(session: AsyncSession, *, user: User, settings: Settings) -> None:
    """Count a failed attempt atomically (parallel guesses must not be lost); lock at the limit."""
    failures = (
        await session.exec(
            sa.update(User)
            .where(col(User.id) == user.id)
            .values(failed_logins=col(User.failed_logins) + 1)
            .returning(col(User.failed_logins))
        )
    ).scalar_one()
    if failures >= settings.login_max_failures:
        user.locked_until = utcnow() + timedelta(minutes=settings.login_lockout_minutes)
        await session.exec(
            sa.update(User)
            .where(col(User.id) == user.id)
            .values(failed_logins=0, locked_until=user.locked_until)
        )
        await session.commit()
        raise locked_error(user, settings)
    await session.commit()


def locked_error(user: User, settings: Settings) -> AccountLocked:
    assert user.locked_until is not None
    until = user.locked_until.strftime("%H:%M UTC")
    return AccountLocked(
        f"This account is locked after {settings.login_max_failures} failed sign-in attempts. "
        f"Try again after {until}, or ask your clinic's admin to unlock it."
    )


async def create_user(session: AsyncSession, *, clinic_id: uuid.UUID, user_in: UserCreate) -> User:
    email = normalize_email(str(user_in.email))
    if (await session.exec(select(User.id).where(User.email == email))).first():
        raise Conflict("A user with this email already exists.", fields={"email": "already used"})
    user = User(
        clinic_id=clinic_id,
        email=email,
        full_name=user_in.full_name.strip(),
        role=user_in.role,
        password_hash=hash_password(user_in.password),
    )
    session.add(user)
    try:
        await session.commit()
    except sa.exc.IntegrityError:
        await session.rollback()
        raise Conflict(
            "A user with this email already exists.", fields={"email": "already used"}
        ) from None
    await session.refresh(user)
    return user


async def get_clinic_user(
    session: AsyncSession, *, clinic_id: uuid.UUID, user_id: uuid.UUID
) -> User:
    """A user of this clinic; one of another clinic is reported as not existing."""
    user = await session.get(User, user_id)
    if user is None or user.clinic_id != clinic_id:
        raise NotFound("No such user.")
    return user


async def list_clinic_users(session: AsyncSession, *, clinic_id: uuid.UUID) -> list[User]:
    query = select(User).where(User.clinic_id == clinic_id).order_by(col(User.full_name))
    return list((await session.exec(query)).all())


async def unlock_user(session: AsyncSession, *, user: User) -> User:
    user.failed_logins = 0
    user.locked_until = None
    session.add(user)
    await session.commit()
    await session.refresh(user)
    return user


async def get_clinic(session: AsyncSession, clinic_id: uuid.UUID) -> Clinic:
    clinic = await session.get(Clinic, clinic_id)
    if clinic is None:
        raise NotFound("No such clinic.")
    return clinic


async def set_clinic_phone(session: AsyncSession, clinic: Clinic, phone: str | None) -> Clinic:
    """The number patients are told to call (a locked link, a visit they cannot reach)."""
    clinic.phone = phone.strip() if phone else None
    session.add(clinic)
    await session.commit()
    await session.refresh(clinic)
    return clinic
