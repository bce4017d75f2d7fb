"""Passwords, session tokens, CSRF tokens, roles, the session denylist and rate limits."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import jwt
import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from redis.asyncio import Redis
from sqlmodel import col, select

from app.core.config import Settings
from app.core.db import Database
from app.core.errors import NotAuthenticated
from app.core.models import RevokedSession, Role, utcnow

JWT_ALGORITHM = "HS256"
JWT_AUDIENCE = "openconsult"
JWT_ISSUER = "openconsult"

_hasher = PasswordHasher()
# Verified against when the email is unknown, so a miss costs the same time as a hit.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class SessionClaims:
    """What a valid staff session token says."""

    user_id: uuid.UUID
    clinic_id: uuid.UUID
    role: Role
    jti: str
    auth_time: int
    expires_at: int
    # The user's session epoch when issued; a session of an older epoch has been ended.
    epoch: int = 0


def issue_session_token(
    settings: Settings,
    *,
    user_id: uuid.UUID,
    clinic_id: uuid.UUID,
    role: Role,
    jti: str | None = None,
    auth_time: int | None = None,
    now: int | None = None,
    epoch: int = 0,
) -> tuple[str, SessionClaims]:
    """A token that lives for the idle lifetime, never past the absolute one.

    Refreshing keeps `jti`, `auth_time` and `epoch`, so logout revokes every refreshed copy.
    """
    now = int(time.time()) if now is None else now
    auth_time = now if auth_time is None else auth_time
    expires_at = min(
        now + settings.session_idle_minutes * 60, auth_time + settings.session_max_hours * 3600
    )
    claims = SessionClaims(
        user_id=user_id,
        clinic_id=clinic_id,
        role=role,
        jti=jti or secrets.token_hex(16),
        auth_time=auth_time,
        expires_at=expires_at,
        epoch=epoch,
    )
    payload = {
        "sub": str(user_id),
        "clinic": str(clinic_id),
        "role": role.value,
        "jti": claims.jti,
        "iat": now,
        "auth_time": auth_time,
        "epoch": epoch,
        "exp": expires_at,
        "aud": JWT_AUDIENCE,
        "iss": JWT_ISSUER,
    }
    return jwt.encode(payload, settings.secret, algorithm=JWT_ALGORITHM), claims


def decode_session_token(settings: Settings, token: str) -> SessionClaims:
    """Check signature, algorithm, audience, issuer and both lifetimes; raise NotAuthenticated."""
    try:
        payload = jwt.decode(
            token,
            settings.secret,
            algorithms=[JWT_ALGORITHM],
            audience=JWT_AUDIENCE,
            issuer=JWT_ISSUER,
            options={"require": ["exp", "iat", "sub", "jti", "aud", "iss", "auth_time"]},
        )
        auth_time = int(payload["auth_time"])
        if auth_time + settings.session_max_hours * 3600 < time.time():
            raise NotAuthenticated("Your session has ended; please sign in again.")
        return SessionClaims(
            user_id=uuid.UUID(payload["sub"]),
            clinic_id=uuid.UUID(payload["clinic"]),
            role=Role(payload["role"]),
            jti=str(payload["jti"]),
            auth_time=auth_time,
            expires_at=int(payload["exp"]),
            epoch=int(payload.get("epoch", 0)),
        )
    except jwt.ExpiredSignatureError:
        raise NotAuthenticated("Your session has expired; please sign in again.") from None
    except (jwt.InvalidTokenError, KeyError, ValueError):
        raise NotAuthenticated("The session token is not valid.") from None


def csrf_token_for(settings: Settings, jti: str) -> str:
    """Bound to one session: a token stolen from another session does not fit."""
    return hmac.new(settings.secret.encode(), f"csrf:{jti}".encode(), hashlib.sha256).hexdigest()


def csrf_token_matches(settings: Settings, jti: str, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(csrf_token_for(settings, jti), presented)


class SessionDenylist(Protocol):
    async def revoke(self, jti: str, expires_at: datetime) -> None: ...
    async def is_revoked(self, jti: str) -> bool: ...
    async def any_revoked(self, keys: list[str]) -> bool: ...


def epoch_key(user_id: uuid.UUID, epoch: int) -> str:
    """The deny-list entry that says every session a user holds from `epoch` has ended."""
    return f"epoch:{user_id.hex}:{epoch}"


async def publish_ended_epochs(
    denylist: SessionDenylist,
    settings: Settings,
    user_id: uuid.UUID,
    *,
    old_epoch: int,
    new_epoch: int,
) -> None:
    """Tell every process (through the deny-list sign-out uses) that the user's sessions from
    `old_epoch` up to `new_epoch` have ended: their open sockets close at their next event.
    HTTP reads the epoch from the user row; a socket asks the deny-list, as for a sign-out."""
    until = utcnow() + timedelta(hours=settings.session_max_hours)
    for epoch in range(old_epoch, new_epoch):
        await denylist.revoke(epoch_key(user_id, epoch), until)


class DatabaseDenylist:
    """The embedded default: revoked sessions kept in the database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def revoke(self, jti: str, expires_at: datetime) -> None:
        async with self.db.session() as session:
            if await session.get(RevokedSession, jti) is None:
                session.add(RevokedSession(jti=jti, expires_at=expires_at))
                await session.commit()

    async def is_revoked(self, jti: str) -> bool:
        async with self.db.session() as session:
            return await session.get(RevokedSession, jti) is not None

    async def any_revoked(self, keys: list[str]) -> bool:
        """One query for several entries (a socket's session and its user's epoch)."""
        async with self.db.session() as session:
            query = select(RevokedSession.jti).where(col(RevokedSession.jti).in_(keys)).limit(1)
            return (await session.exec(query)).first() is not None

    async def prune(self) -> int:
        """Forget revocations of sessions that have ended anyway; return how many."""
        async with self.db.session() as session:
            result = await session.exec(
                sa.delete(RevokedSession).where(col(RevokedSession.expires_at) < utcnow())
            )
            await session.commit()
            return int(result.rowcount or 0)


class RedisDenylist:
    """Revoked sessions in Redis, each key expiring with the session it revokes."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix + "revoked:"

    async def revoke(self, jti: str, expires_at: datetime) -> None:
        ttl = max(1, int((expires_at - utcnow()).total_seconds()) + 60)
        await self.redis.set(self.prefix + jti, "1", ex=ttl)

    async def is_revoked(self, jti: str) -> bool:
        return bool(await self.redis.exists(self.prefix + jti))

    async def any_revoked(self, keys: list[str]) -> bool:
        return bool(await self.redis.exists(*(self.prefix + key for key in keys)))


class RateLimiter(Protocol):
    async def hit(self, key: str, window_seconds: int) -> int:
        """Count one attempt under `key`; return the attempts inside the window."""
        ...


class MemoryRateLimiter:
    """Per-process sliding window; the embedded default runs one process."""

    def __init__(self) -> None:
        self._hits: dict[str, deque[float]] = defaultdict(deque)

    async def hit(self, key: str, window_seconds: int) -> int:
        now = time.monotonic()
        hits = self._hits[key]
        while hits and hits[0] <= now - window_seconds:
            hits.popleft()
        hits.append(now)
        return len(hits)


class RedisRateLimiter:
    """Fixed window counters shared by every process."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix + "rate:"

    async def hit(self, key: str, window_seconds: int) -> int:
        bucket = int(time.time() // window_seconds)
        name = f"{self.prefix}{key}:{bucket}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(name)
            pipe.expire(name, window_seconds + 5)
            count, _ = await pipe.execute()
        return int(count)


def session_is_current(claims: SessionClaims, session_epoch: int) -> bool:
    """Whether nothing has ended the user's sessions since this one began."""
    return claims.epoch == session_epoch


def session_expiry(claims: SessionClaims, settings: Settings) -> datetime:
    """When the session can no longer be refreshed: the end of its absolute lifetime."""
    return datetime.fromtimestamp(claims.auth_time, UTC) + timedelta(
        hours=settings.session_max_hours
    )
