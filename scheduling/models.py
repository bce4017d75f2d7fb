"""Tables of scheduling: provider schedules and their rules, appointment types, appointments,
and the email outbox."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.core.models import Patient, User, utc_column, utcnow


class AppointmentStatus(enum.StrEnum):
    """FHIR R4 Appointment.status codes used by the clinic."""

    BOOKED = "booked"
    ARRIVED = "arrived"
    CHECKED_IN = "checked-in"
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"
    NOSHOW = "noshow"


# Statuses that hold a provider's time; the database refuses overlaps among them.
ACTIVE_STATUSES = (
    AppointmentStatus.BOOKED,
    AppointmentStatus.ARRIVED,
    AppointmentStatus.CHECKED_IN,
    AppointmentStatus.FULFILLED,
)
OVERLAP_CONSTRAINT = "appointment_no_overlap"


def _enum(kind: type[enum.StrEnum], length: int) -> sa.Enum:
    return sa.Enum(
        kind, native_enum=False, length=length, values_callable=lambda e: [m.value for m in e]
    )


class ProviderSchedule(SQLModel, table=True):
    """A provider's bookable calendar (FHIR Schedule): zone, notice and horizon."""

    __tablename__ = "provider_schedule"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    clinic_id: uuid.UUID = Field(foreign_key="clinic.id", index=True)
    provider_id: uuid.UUID = Field(foreign_key="staff_user.id", unique=True)
    timezone: str = Field(max_length=64)
    min_notice_minutes: int = 60
    horizon_days: int = 60
    updated_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())


class AvailabilityRule(SQLModel, table=True):
    """Weekly hours in the schedule's zone: weekday 0 = Monday."""

    __tablename__ = "availability_rule"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    schedule_id: uuid.UUID = Field(foreign_key="provider_schedule.id", index=True)
    weekday: int
    start_time: time
    end_time: time


class ExceptionKind(enum.StrEnum):
    OFF = "off"
    EXTRA = "extra"


class AvailabilityException(SQLModel, table=True):
    """One date's change: time off (all day when no times) or extra hours."""

    __tablename__ = "availability_exception"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    schedule_id: uuid.UUID = Field(foreign_key="provider_schedule.id", index=True)
    day: date
    kind: ExceptionKind = Field(sa_type=_enum(ExceptionKind, 10))
    start_time: time | None = None
    end_time: time | None = None
    note: str | None = Field(default=None, max_length=200)


class AppointmentType(SQLModel, table=True):
    __tablename__ = "appointment_type"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    clinic_id: uuid.UUID = Field(foreign_key="clinic.id", index=True)
    name: str = Field(max_length=100)
    duration_minutes: int
    buffer_minutes: int = 0


class Appointment(SQLModel, table=True):
    """A booked visit; `busy_until` is the end plus the type's buffer, the span it blocks."""

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    clinic_id: uuid.UUID = Field(foreign_key="clinic.id", index=True)
    provider_id: uuid.UUID = Field(foreign_key="staff_user.id", index=True)
    patient_id: uuid.UUID = Field(foreign_key="patient.id", index=True)
    appointment_type_id: uuid.UUID = Field(foreign_key="appointment_type.id")
    start_at: datetime = Field(sa_column=utc_column(index=True))
    end_at: datetime = Field(sa_column=utc_column())
    busy_until: datetime = Field(sa_column=utc_column())
    status: AppointmentStatus = Field(
        default=AppointmentStatus.BOOKED, sa_type=_enum(AppointmentStatus, 20)
    )
    cancel_reason: str | None = Field(default=None, max_length=500)
    # Bumped by every reschedule or cancel: join links and invites of older versions stop working.
    version: int = 1
    # A walk-in from the clinic's on-demand queue: it starts when the patient arrives, blocks
    # no calendar time, and any provider of the queue may take it until one does.
    on_demand: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())


def appointment_of(
    kind: AppointmentType, *, provider_id: uuid.UUID, patient_id: uuid.UUID, start: datetime
) -> Appointment:
    """A booked appointment of `kind` at `start`: it ends after the kind's length and blocks the
    provider's calendar through its buffer."""
    end = start + timedelta(minutes=kind.duration_minutes)
    return Appointment(
        clinic_id=kind.clinic_id,
        provider_id=provider_id,
        patient_id=patient_id,
        appointment_type_id=kind.id,
        start_at=start,
        end_at=end,
        busy_until=end + timedelta(minutes=kind.buffer_minutes),
    )


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Channel(enum.StrEnum):
    """How an outbox message reaches the patient."""

    EMAIL = "email"
    SMS = "sms"


class OutboxMessage(SQLModel, table=True):
    """An email or a text message waiting to be sent; rows survive restarts and are claimed one
    sender at a time. A text's `to_addr` is the E.164 number, its `subject` a label for staff."""

    __tablename__ = "outbox_message"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    appointment_id: uuid.UUID | None = Field(default=None, foreign_key="appointment.id", index=True)
    kind: str = Field(max_length=40)
    to_addr: str = Field(max_length=254)
    subject: str = Field(max_length=300)
    body_text: str = Field(sa_type=sa.Text)
    ics: str | None = Field(default=None, sa_type=sa.Text)
    status: OutboxStatus = Field(default=OutboxStatus.PENDING, sa_type=_enum(OutboxStatus, 20))
    send_after: datetime = Field(sa_column=utc_column(index=True))
    claimed_until: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=500)
    # "smtp", "sms", or "dev_mailbox" when no server/provider is configured outside production.
    delivered_via: str | None = Field(default=None, max_length=20)
    channel: Channel = Field(
        default=Channel.EMAIL,
        sa_type=_enum(Channel, 10),
        sa_column_kwargs={"server_default": Channel.EMAIL.value},
    )
    # The SMS provider's id of the accepted text (Twilio's message sid).
    provider_ref: str | None = Field(default=None, max_length=64)
    sent_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())


class ConsentWay(enum.StrEnum):
    """How a patient's agreement to text messages was given."""

    STAFF_AT_BOOKING = "staff_at_booking"  # staff say the patient agreed, while booking
    STAFF = "staff"  # staff say so on the patient's consent (not while booking)
    PATIENT_AT_CHECKIN = "patient_at_checkin"  # the patient ticked it while checking in


class TextConsent(SQLModel, table=True):
    """A patient's agreement to get join links and reminders by text, for one number.

    One row per patient: giving it again replaces who/when/how; withdrawing keeps the row with
    `withdrawn_at` set. Texts go only to `phone`, and only while the patient's number is it.
    """

    __tablename__ = "text_consent"

    patient_id: uuid.UUID = Field(foreign_key="patient.id", primary_key=True)
    clinic_id: uuid.UUID = Field(foreign_key="clinic.id", index=True)
    phone: str = Field(max_length=20)
    given_at: datetime = Field(sa_column=utc_column())
    # The staff member who recorded it; None when the patient gave it themselves.
    given_by: uuid.UUID | None = Field(default=None, foreign_key="staff_user.id")
    way: ConsentWay = Field(sa_type=_enum(ConsentWay, 30))
    withdrawn_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    withdrawn_by: uuid.UUID | None = Field(default=None, foreign_key="staff_user.id")


class JoinLink(SQLModel, table=True):
    """The short link (`/j/<code>`) of one version of an appointment's join link.

    The code is random (not derived from the appointment) and names one version: a reschedule,
    cancel or resend bumps the version, so the older code answers like an older long link.
    """

    __tablename__ = "join_link"
    __table_args__ = (sa.UniqueConstraint("appointment_id", "version"),)

    code: str = Field(primary_key=True, max_length=64)
    appointment_id: uuid.UUID = Field(foreign_key="appointment.id", index=True)
    version: int
    created_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())


@dataclass(frozen=True)
class AppointmentView:
    """An appointment with the names a calendar shows."""

    appointment: Appointment
    patient: Patient
    provider: User
    kind: AppointmentType
    timezone: str
