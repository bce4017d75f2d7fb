"""Tables of accounts: a staff member's TOTP second factor and their recovery codes."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.core.models import utc_column, utcnow
from app.core.sealed import SealedText


class StaffMfa(SQLModel, table=True):
    """A staff member's TOTP secret; enrolment is pending until a first code confirms it.

    The secret is sealed at rest with the note keys, like chat (a secret stored before reads as
    it is until `rotate-note-key` seals it)."""

    __tablename__ = "staff_mfa"

    user_id: uuid.UUID = Field(foreign_key="staff_user.id", primary_key=True)
    secret: str = Field(sa_type=SealedText("staff_mfa", "secret"))
    enabled_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    # The newest TOTP time step accepted: a code of that step or an older one is never
    # accepted again (RFC 6238 section 5.2).
    last_step: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger()))
    created_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())


class MfaRecoveryCode(SQLModel, table=True):
    """One single-use recovery code, hashed like a password."""

    __tablename__ = "mfa_recovery_code"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="staff_user.id", index=True)
    code_hash: str = Field(max_length=255)
    used_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
