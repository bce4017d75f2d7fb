"""Half signed in: the password was right, the second factor is still to come.

That state is a short-lived token of its own audience (a cookie for browsers, `mfa_token` for
API clients). It is not a session: the staff identity (`app.web.identity`) reads only session
tokens, so a half-signed-in caller reaches nothing but the second-factor step.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from aiohttp import web
from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts.mfa import Stage
from app.core import tokens
from app.core.config import Settings
from app.core.errors import NotAuthenticated
from app.core.models import User

PENDING_COOKIE = "oc_mfa"
PENDING_AUDIENCE = "openconsult:mfa-pending"
PENDING_SECONDS = 600  # time to find the phone, or to scan a QR code and type the first code
EXPIRED = "Your sign-in took too long; please sign in again."


@dataclass(frozen=True)
class Pending:
    user_id: uuid.UUID
    epoch: int
    stage: Stage


def issue(settings: Settings, user: User, stage: Stage) -> str:
    claims = {
        "sub": str(user.id),
        "ep": user.session_epoch,
        "stage": stage.value,
        "exp": int(time.time()) + PENDING_SECONDS,
    }
    return tokens.sign(settings.secret, PENDING_AUDIENCE, claims)


def read(settings: Settings, token: str | None) -> Pending | None:
    return tokens.verify(
        settings.secret,
        token,
        audience=PENDING_AUDIENCE,
        required=("sub", "ep", "stage", "exp"),
        build=lambda c: Pending(uuid.UUID(str(c["sub"])), int(c["ep"]), Stage(str(c["stage"]))),
    )


def presented(request: web.Request, body_token: str | None = None) -> str | None:
    return body_token or request.cookies.get(PENDING_COOKIE)


async def pending_user(
    session: AsyncSession, settings: Settings, token: str | None, *stages: Stage
) -> User:
    """The user a valid pending token of one of `stages` names, still able to sign in."""
    pending = read(settings, token)
    if pending is None or pending.stage not in stages:
        raise NotAuthenticated(EXPIRED)
    user = await session.get(User, pending.user_id)
    if user is None or not user.is_active or user.session_epoch != pending.epoch:
        raise NotAuthenticated(EXPIRED)
    return user


def set_cookie(response: web.StreamResponse, settings: Settings, token: str) -> None:
    response.set_cookie(
        PENDING_COOKIE,
        token,
        httponly=True,
        samesite="Strict",
        secure=settings.secure_cookies,
        path="/",
        max_age=PENDING_SECONDS,
    )


def clear_cookie(response: web.StreamResponse) -> None:
    response.del_cookie(PENDING_COOKIE, path="/")
