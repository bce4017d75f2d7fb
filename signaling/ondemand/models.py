"""Tables of on-demand visits: each clinic's walk-in queue, its providers, and each request."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.core.models import utc_column, utcnow


class OnDemandQueue(SQLModel, table=True):
    """A clinic's walk-in queue: its public code, opening hours and the visit type it books."""

    __tablename__ = "on_demand_queue"

    clinic_id: uuid.UUID = Field(foreign_key="clinic.id", primary_key=True)
    # The public link is /walk-in/<code>; the admin chooses it (letters, digits, dashes).
    code: str = Field(max_length=64, unique=True)
    enabled: bool = False
    # JSON list of {"weekday": 0-6 (Monday 0), "start": "HH:MM", "end": "HH:MM"}, clinic's zone.
    hours: str = Field(default="[]", sa_type=sa.Text)
    appointment_type_id: uuid.UUID = Field(foreign_key="appointment_type.id")
    updated_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())


class OnDemandProvider(SQLModel, table=True):
    """A provider who takes patients from their clinic's walk-in queue."""

    __tablename__ = "on_demand_provider"

    clinic_id: uuid.UUID = Field(foreign_key="clinic.id", primary_key=True)
    provider_id: uuid.UUID = Field(foreign_key="staff_user.id", primary_key=True)


class OnDemandRequest(SQLModel, table=True):
    """One walk-in: who came, from where, with which contact, and who took them."""

    __tablename__ = "on_demand_request"

    appointment_id: uuid.UUID = Field(foreign_key="appointment.id", primary_key=True)
    clinic_id: uuid.UUID = Field(foreign_key="clinic.id", index=True)
    # The contact given, normalised (an email in lower case, or a phone's digits with "+").
    contact: str = Field(max_length=254, index=True)
    arrived_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())
    client_addr: str | None = Field(default=None, max_length=64)
    taken_by: uuid.UUID | None = Field(default=None, foreign_key="staff_user.id")
    taken_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
