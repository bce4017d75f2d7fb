"""Intake tables: a clinic's questionnaire and rules per visit type, and each visit's answers."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.core.models import utc_column, utcnow
from app.core.sealed import SealedText


class IntakeForm(SQLModel, table=True):
    """What a clinic asks before one visit type, and the red-flag rules run on the answers."""

    __tablename__ = "intake_form"
    __table_args__ = (sa.UniqueConstraint("appointment_type_id"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    clinic_id: uuid.UUID = Field(foreign_key="clinic.id", index=True)
    appointment_type_id: uuid.UUID = Field(foreign_key="appointment_type.id")
    questionnaire: str = Field(sa_type=sa.Text)  # FHIR Questionnaire JSON
    rules: str = Field(sa_type=sa.Text)  # JSON list of rules
    updated_by: uuid.UUID | None = Field(default=None, foreign_key="staff_user.id")
    updated_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())


class IntakeResponse(SQLModel, table=True):
    """A patient's answers for one appointment, sealed at rest; saved as they type."""

    __tablename__ = "intake_response"

    appointment_id: uuid.UUID = Field(foreign_key="appointment.id", primary_key=True)
    clinic_id: uuid.UUID = Field(foreign_key="clinic.id", index=True)
    patient_id: uuid.UUID = Field(foreign_key="patient.id", index=True)
    # The questionnaire as the patient saw it, so a later edit by the clinic cannot change them.
    questionnaire: str = Field(sa_type=sa.Text)
    answers: str = Field(sa_type=SealedText("intake_response", "answers"))  # JSON, sealed
    submitted_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())
