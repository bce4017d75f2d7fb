"""Account rules: sign-in with lockout, passwords, creating and finding users within one clinic."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts import mfa
from app.accounts.passwords import password_problem
from app.accounts.schemas import UserCreate
from app.core.auth import RateLimiter, hash_password, verify_password
from app.core.config import Settings
from app.core.errors import (
    AccountLocked,
    Conflict,
    DomainError,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    TooManyRequests,
)
from app.core.models import Clinic, User, utcnow

BAD_CREDENTIALS = "Email or password is incorrect."


def normalize_email(email: str) -> str:
    return email.strip().lower()


class SignInRefused(NotAuthenticated):
    """A refused sign-in, worded alike whatever the reason: an unknown email, a wrong password
    and a locked account all read "Email or password is incorrect." to the caller. The reason
    (`why`) goes only to the audit trail; admins see locks on their staff list."""

    def __init__(self, why: str) -> None:
        super().__init__(BAD_CREDENTIALS)
        self.why = why


class ClinicChoiceRequired(DomainError):
    """One email and password open accounts in several clinics: the caller picks one. Only
    someone who knows each account's password gets here, so naming the clinics tells nothing."""

    status = 409
    code = "clinic_choice_required"


def is_locked(user: User, now: datetime | None = None) -> bool:
    return user.locked_until is not None and user.locked_until > (now or utcnow())


async def check_address_rate(
    limiter: RateLimiter, settings: Settings, key: str, client_addr: str | None
) -> None:
    window = settings.login_address_window_minutes * 60
    if await limiter.hit(f"{key}:{client_addr}", window) > settings.login_max_per_address:
        raise TooManyRequests(
            "Too many sign-in attempts from this address; wait a few minutes and try again.",
            retry_after=window,
        )


async def authenticate(
    session: AsyncSession,
    *,
    settings: Settings,
    limiter: RateLimiter,
    email: str,
    password: str,
    client_addr: str | None,
    clinic_id: uuid.UUID | None = None,
) -> User:
    """The user whose credentials these are; counts failures and locks the account.

    An email is unique within a clinic, so it may name accounts in several clinics: the
    password tells them apart (each is checked, so that costs one hash per account).
    """
    await check_address_rate(limiter, settings, "login-addr", client_addr)
    query = select(User).where(User.email == normalize_email(email))
    if clinic_id is not None:
        query = query.where(User.clinic_id == clinic_id)
    candidates = list((await session.exec(query.order_by(col(User.created_at)))).all())
    if not candidates:
        verify_password(None, password)  # as long as a real check takes
        raise SignInRefused("unknown_email")
    matching = [u for u in candidates if verify_password(u.password_hash, password)]
    now = utcnow()
    if not matching:
        for user in candidates:
            if not is_locked(user, now):
                await count_failure(session, user=user, settings=settings)
        locked = all(is_locked(u, now) for u in candidates)
        raise SignInRefused("account_locked" if locked else "wrong_password")
    usable = [u for u in matching if not is_locked(u, now)]
    if not usable:
        raise SignInRefused("account_locked")
    if len(usable) > 1:
        clinics = [await get_clinic(session, u.clinic_id) for u in usable]
        raise ClinicChoiceRequired(
            "This email and password open accounts in several clinics; choose the clinic and "
            "type your password again.",
            detail={"clinics": [{"id": str(c.id), "name": c.name} for c in clinics]},
        )
    user = usable[0]
    if not user.is_active:
        raise NotAuthenticated("This account is deactivated; ask your clinic's admin.")
    # Failures are cleared when a session is issued, not here: with a second factor to come,
    # a known password must not buy another round of code guesses.
    return user


async def clear_failures(session: AsyncSession, user: User) -> None:
    if user.failed_logins or user.locked_until:
        user.failed_logins = 0
        user.locked_until = None
        session.add(user)
        await session.commit()


async def count_failure(session: AsyncSession, *, user: User, settings: Settings) -> bool:
    """Count a failed attempt atomically (parallel guesses must not be lost); lock at the limit.
    Return whether this attempt locked the account."""
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
        return True
    await session.commit()
    return False


def locked_error(user: User, settings: Settings) -> AccountLocked:
    """Said only to someone who has proved the password (the second-factor step)."""
    assert user.locked_until is not None
    until = user.locked_until.strftime("%H:%M UTC")
    return AccountLocked(
        f"This account is locked after {settings.login_max_failures} failed attempts. "
        f"Try again after {until}, or ask your clinic's admin to unlock it."
    )


EMAIL_TAKEN = "A user with this email already exists in your clinic."


async def create_user(session: AsyncSession, *, clinic_id: uuid.UUID, user_in: UserCreate) -> User:
    """A new user of this clinic. Only this clinic's users are looked at: whether the address
    is used in another clinic is none of this admin's business (emails are unique per clinic)."""
    email = normalize_email(str(user_in.email))
    taken = select(User.id).where(User.email == email, User.clinic_id == clinic_id)
    if (await session.exec(taken)).first():
        raise Conflict(EMAIL_TAKEN, fields={"email": "already used in your clinic"})
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
        raise Conflict(EMAIL_TAKEN, fields={"email": "already used in your clinic"}) from None
    await session.refresh(user)
    return user


async def change_password(
    session: AsyncSession,
    *,
    settings: Settings,
    user_id: uuid.UUID,
    current_password: str,
    new_password: str,
) -> User:
    """Set a new password (the current one proves it is the person); every session of the
    user ends (the caller's own gets a new token)."""
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.")
    if not verify_password(user.password_hash, current_password):
        if await count_failure(session, user=user, settings=settings):
            raise locked_error(user, settings)
        raise InvalidInput(
            "Your current password is not right.", fields={"current_password": "not right"}
        )
    clinic = await get_clinic(session, user.clinic_id)
    problem = password_problem(new_password, context=[user.email, user.full_name, clinic.name])
    if problem is not None:
        raise InvalidInput(problem, fields={"new_password": problem})
    user.password_hash = hash_password(new_password)
    user.session_epoch += 1
    user.failed_logins = 0
    session.add(user)
    await session.commit()
    await session.refresh(user)
    return user


async def set_require_mfa(
    session: AsyncSession, *, clinic_id: uuid.UUID, required: bool
) -> tuple[Clinic, list[User]]:
    """Turn the clinic's rule on or off. Turning it on ends the sessions of staff without a
    second factor, so their next sign-in enrols them; those staff are returned too (each at
    their new session epoch)."""
    clinic = await get_clinic(session, clinic_id)
    clinic.require_mfa = required
    session.add(clinic)
    ended: list[User] = []
    if required:
        users = await list_clinic_users(session, clinic_id=clinic_id)
        with_mfa = await mfa.enrolled_user_ids(session, [u.id for u in users])
        for user in users:
            if user.id not in with_mfa:
                user.session_epoch += 1
                session.add(user)
                ended.append(user)
    await session.commit()
    await session.refresh(clinic)
    return clinic, ended


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
