"""Tables of the waiting room: check-ins, consent texts and acceptances, messages, visits."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.core.models import utc_column, utcnow
from app.core.sealed import SealedText


class CheckIn(SQLModel, table=True):
    """A patient's way from their join link to the provider: identity, consent, devices, queue."""

    __tablename__ = "check_in"

    appointment_id: uuid.UUID = Field(foreign_key="appointment.id", primary_key=True)
    clinic_id: uuid.UUID = Field(foreign_key="clinic.id", index=True)
    provider_id: uuid.UUID = Field(foreign_key="staff_user.id", index=True)
    patient_id: uuid.UUID = Field(foreign_key="patient.id", index=True)
    identity_failures: int = 0
    # The link version (the appointment's version) the wrong dates of birth were typed into: a
    # re-issued link (a reschedule) starts with no failures and no lock.
    failures_version: int | None = None
    identity_verified_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    link_locked_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    consent_id: uuid.UUID | None = Field(default=None, foreign_key="consent_record.id")
    device_check: str | None = Field(default=None, max_length=500)
    device_checked_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    waiting_since: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    left_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    admitted_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    visit_id: uuid.UUID | None = Field(default=None, foreign_key="visit.id")
    updated_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())

    def locks(self, version: int) -> bool:
        """Whether the link of this appointment version is locked (a re-issued link is not)."""
        return self.link_locked_at is not None and self.failures_version in (None, version)


class ConsentDocument(SQLModel, table=True):
    """One version of a clinic's telehealth consent text; versions are never edited."""

    __tablename__ = "consent_document"
    __table_args__ = (sa.UniqueConstraint("clinic_id", "version"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    clinic_id: uuid.UUID = Field(foreign_key="clinic.id", index=True)
    version: int
    title: str = Field(max_length=200)
    body: str = Field(sa_type=sa.Text)
    created_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())


class ConsentRecord(SQLModel, table=True):
    """A patient's acceptance of one consent version, for one appointment."""

    __tablename__ = "consent_record"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    appointment_id: uuid.UUID = Field(foreign_key="appointment.id", index=True)
    patient_id: uuid.UUID = Field(foreign_key="patient.id", index=True)
    document_id: uuid.UUID = Field(foreign_key="consent_document.id")
    version: int
    accepted_at: datetime = Field(sa_column=utc_column())
    client_addr: str | None = Field(default=None, max_length=64)


class WaitingMessage(SQLModel, table=True):
    """A line between the clinic and a waiting patient ("running 10 minutes late", "OK, thanks").

    The patient's reason for the visit, given at check-in, is kept here too (kind "reason").
    """

    __tablename__ = "waiting_message"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    appointment_id: uuid.UUID = Field(foreign_key="appointment.id", index=True)
    author_id: uuid.UUID | None = Field(default=None, foreign_key="staff_user.id")
    sender: str = Field(default="clinic", max_length=10)  # "clinic" or "patient"
    kind: str = Field(default="message", max_length=10)  # "message" or "reason"
    # Encrypted at rest with the note keys (at most 500 characters, checked on input).
    text: str = Field(sa_type=SealedText("waiting_message", "text"))
    sent_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())


class ProviderDelay(SQLModel, table=True):
    """How late a provider says they are running today; waiting patients read it in words."""

    __tablename__ = "provider_delay"

    provider_id: uuid.UUID = Field(foreign_key="staff_user.id", primary_key=True)
    minutes: int
    set_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())


class Visit(SQLModel, table=True):
    """The video visit an admit starts (FHIR Encounter, class virtual)."""

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    appointment_id: uuid.UUID = Field(foreign_key="appointment.id", unique=True)
    clinic_id: uuid.UUID = Field(foreign_key="clinic.id", index=True)
    provider_id: uuid.UUID = Field(foreign_key="staff_user.id", index=True)
    patient_id: uuid.UUID = Field(foreign_key="patient.id", index=True)
    started_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())
    ended_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))


class VisitMessage(SQLModel, table=True):
    """A chat line written during a visit, kept with the visit."""

    __tablename__ = "visit_message"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    visit_id: uuid.UUID = Field(foreign_key="visit.id", index=True)
    author_role: str = Field(max_length=20)
    author_name: str = Field(max_length=200)
    # Encrypted at rest with the note keys (at most 1000 characters, checked on input).
    text: str = Field(sa_type=SealedText("visit_message", "text"))
    sent_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())


class VisitGuest(SQLModel, table=True):
    """Someone the provider invites into a visit (an interpreter, a family member), by link."""

    __tablename__ = "visit_guest"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    visit_id: uuid.UUID = Field(foreign_key="visit.id", index=True)
    clinic_id: uuid.UUID = Field(foreign_key="clinic.id", index=True)
    invited_by: uuid.UUID = Field(foreign_key="staff_user.id")
    label: str = Field(max_length=60)
    name: str | None = Field(default=None, max_length=120)
    consent_version: int | None = None
    consent_accepted_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    device_check: str | None = Field(default=None, max_length=500)
    waiting_since: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    admitted_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    revoked_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())


class VisitParticipant(SQLModel, table=True):
    """One stretch of someone's presence in a visit, from connecting to the relay to leaving."""

    __tablename__ = "visit_participant"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    visit_id: uuid.UUID = Field(foreign_key="visit.id", index=True)
    role: str = Field(max_length=20)
    person_id: uuid.UUID
    name: str = Field(max_length=200)
    joined_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())
    left_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
