"""Signed tokens that are not staff sessions: join links, patient and guest sessions.

Each kind has its own audience, so one can never stand in for another; all are HS256 under the
app's secret key and carry the issuer "openconsult".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import jwt

ISSUER = "openconsult"
_ALGORITHM = "HS256"

T = TypeVar("T")


def sign(secret: str, audience: str, claims: dict[str, Any]) -> str:
    return jwt.encode({"aud": audience, "iss": ISSUER, **claims}, secret, algorithm=_ALGORITHM)


def verify(
    secret: str,
    token: str | None,
    *,
    audience: str,
    required: Sequence[str],
    build: Callable[[dict[str, Any]], T],
) -> T | None:
    """`build(claims)` of a token we issued for `audience`; None for anything else (another
    audience, a bad signature, expired, a claim missing or malformed)."""
    if not token:
        return None
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[_ALGORITHM],
            audience=audience,
            issuer=ISSUER,
            options={"require": ["aud", "iss", *required]},
        )
        return build(claims)
    except (jwt.PyJWTError, ValueError, TypeError, KeyError):
        return None
