"""Tables of the patient record: consult notes and their addenda, text encrypted at rest."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.core.models import utc_column, utcnow


class NoteStatus(enum.StrEnum):
    DRAFT = "draft"
    SIGNED = "signed"


class ConsultNote(SQLModel, table=True):
    """One consult note. `body` is the AES-GCM ciphertext of its sections (JSON) under `key_id`."""

    __tablename__ = "consult_note"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    patient_id: uuid.UUID = Field(foreign_key="patient.id", index=True)
    author_id: uuid.UUID = Field(foreign_key="staff_user.id", index=True)
    clinic_id: uuid.UUID = Field(foreign_key="clinic.id", index=True)
    # The visit this note belongs to; a foreign key to appointment follows when appointments land.
    appointment_id: uuid.UUID | None = Field(default=None, foreign_key="appointment.id", index=True)
    status: NoteStatus = Field(
        default=NoteStatus.DRAFT,
        sa_type=sa.Enum(
            NoteStatus,
            native_enum=False,
            length=16,
            values_callable=lambda e: [m.value for m in e],
        ),
    )
    # Optimistic concurrency: every save names the version it edited and bumps it by one.
    version: int = Field(default=1, ge=1)
    key_id: str = Field(max_length=32)
    body: bytes = Field(sa_type=sa.LargeBinary())
    created_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())
    signed_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))


class NoteAddendum(SQLModel, table=True):
    """A correction or addition to a signed note; `body` encrypts its reason and text."""

    __tablename__ = "note_addendum"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    note_id: uuid.UUID = Field(foreign_key="consult_note.id", index=True)
    author_id: uuid.UUID = Field(foreign_key="staff_user.id", index=True)
    key_id: str = Field(max_length=32)
    body: bytes = Field(sa_type=sa.LargeBinary())
    created_at: datetime = Field(default_factory=utcnow, sa_column=utc_column(index=True))


class BreakGlassAccess(SQLModel, table=True):
    """A staff member's time-limited access to a patient's record outside their care
    relationship ("break the glass"), with the reason they gave; the clinic's admins review
    these. The reason is stored as given (it names why, not the patient's condition)."""

    __tablename__ = "break_glass_access"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    clinic_id: uuid.UUID = Field(foreign_key="clinic.id", index=True)
    patient_id: uuid.UUID = Field(foreign_key="patient.id", index=True)
    user_id: uuid.UUID = Field(foreign_key="staff_user.id", index=True)
    reason: str = Field(max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_column=utc_column(index=True))
    expires_at: datetime = Field(sa_column=utc_column())
