"""Tables of the core: clinics, staff users, patients, revoked sessions and the audit trail."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, date, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Stores aware datetimes as UTC; SQLite keeps no zone, so it is put back on read."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where UTC is required")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_column(*, nullable: bool = False, index: bool = False) -> sa.Column[datetime]:
    return sa.Column(UTCDateTime(), nullable=nullable, index=index)


class Role(enum.StrEnum):
    ADMIN = "admin"
    SCHEDULER = "scheduler"
    PROVIDER = "provider"


class Clinic(SQLModel, table=True):
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(max_length=200, unique=True)
    timezone: str = Field(default="UTC", max_length=64)
    # Shown to patients who need a person: a locked join link, a visit they cannot reach.
    phone: str | None = Field(default=None, max_length=40)
    # Every staff member must pass a second factor (admins always must).
    require_mfa: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())


class UserBase(SQLModel):
    email: str = Field(max_length=254)
    full_name: str = Field(max_length=200)
    role: Role = Field(
        sa_type=sa.Enum(
            Role, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e]
        )
    )


class User(UserBase, table=True):
    __tablename__ = "staff_user"
    # Unique per clinic, not across clinics: an admin creating a user must not learn that the
    # address is used in another clinic (sign-in tells such accounts apart by their password).
    __table_args__ = (sa.UniqueConstraint("clinic_id", "email", name="uq_staff_user_clinic_email"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    clinic_id: uuid.UUID = Field(foreign_key="clinic.id", index=True)
    email: str = Field(max_length=254, index=True)
    password_hash: str = Field(max_length=255)
    is_active: bool = True
    failed_logins: int = 0
    # Sessions carry the epoch they were issued in; raising it ends all of them (a password
    # change, an MFA reset, MFA becoming required).
    session_epoch: int = 0
    locked_until: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())


class Patient(SQLModel, table=True):
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    clinic_id: uuid.UUID = Field(foreign_key="clinic.id", index=True)
    given_name: str = Field(max_length=100)
    family_name: str = Field(max_length=100, index=True)
    birth_date: date
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=40)
    preferred_language: str = Field(default="en", max_length=35)
    timezone: str = Field(default="UTC", max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())
    # A walk-in whose name and date of birth match a record but whose contact does not: staff
    # check it, then merge it into the other record or keep both.
    needs_review: bool = False
    # Set when staff merged this record into another; its data now belongs to that one.
    merged_into: uuid.UUID | None = None


class RevokedSession(SQLModel, table=True):
    """Sessions ended by logout, kept until their absolute expiry (denylist by `jti`)."""

    __tablename__ = "revoked_session"

    jti: str = Field(primary_key=True, max_length=64)
    expires_at: datetime = Field(sa_column=utc_column(index=True))


class AuditEvent(SQLModel, table=True):
    """One line of the append-only, hash-chained audit trail."""

    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_column=utc_column(index=True))
    actor_id: str | None = Field(default=None, max_length=64)
    actor_role: str | None = Field(default=None, max_length=20)
    clinic_id: str | None = Field(default=None, max_length=64, index=True)
    action: str = Field(max_length=64)
    object_type: str | None = Field(default=None, max_length=64)
    object_id: str | None = Field(default=None, max_length=64)
    patient_id: str | None = Field(default=None, max_length=64, index=True)
    client_addr: str | None = Field(default=None, max_length=64)
    outcome: str = Field(max_length=20)
    detail: str | None = Field(default=None, max_length=500)
    prev_hash: str = Field(max_length=64)
    # HMAC-SHA256 under the audit key `key_id`; events from before the chain was keyed have no
    # key id and a plain SHA-256 here.
    hash: str = Field(max_length=64, unique=True)
    key_id: str | None = Field(default=None, max_length=32)
