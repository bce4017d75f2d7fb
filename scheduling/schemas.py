"""Shapes of the scheduling API; field validators give 400s that name the field."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, model_validator

from scheduling.models import AppointmentStatus, ExceptionKind


def zone_named(name: str) -> ZoneInfo:
    """The IANA zone `name`; ValueError for anything else."""
    if not name or name != name.strip() or ".." in name or name.startswith("/"):
        raise ValueError(f"unknown time zone {name!r}; use an IANA name like Europe/Berlin")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r}; use an IANA name like Europe/Berlin"
        ) from None


def _check_zone(name: str) -> str:
    zone_named(name)
    return name


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("give a time zone offset, e.g. 2026-03-09T14:00:00Z")
    return value


TimeZoneName = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_check_zone)]
AwareDatetime = Annotated[datetime, AfterValidator(_aware)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PatientCreate(Strict):
    given_name: str = Field(min_length=1, max_length=100)
    family_name: str = Field(min_length=1, max_length=100)
    birth_date: date
    email: EmailStr | None = None
    phone: str | None = Field(default=None, max_length=40)
    preferred_language: str = Field(default="en", min_length=2, max_length=35)
    timezone: TimeZoneName = "UTC"

    @model_validator(mode="after")
    def _birth_not_future(self) -> PatientCreate:
        if self.birth_date > date.today() or self.birth_date.year < 1880:
            raise ValueError("birth_date: must be a real date in the past")
        return self


class PatientPublic(BaseModel):
    id: uuid.UUID
    clinic_id: uuid.UUID
    given_name: str
    family_name: str
    birth_date: date
    email: str | None
    phone: str | None
    preferred_language: str
    timezone: str


class PatientQuery(Strict):
    q: str | None = Field(default=None, max_length=100)
    birth_date: date | None = None
    limit: int = Field(default=20, ge=1, le=100)


class RuleIn(Strict):
    weekday: int = Field(ge=0, le=6, description="0 = Monday … 6 = Sunday")
    start: time
    end: time = Field(description="00:00 means midnight at the end of the day")

    @model_validator(mode="after")
    def _end_after_start(self) -> RuleIn:
        if self.end != time(0) and self.end <= self.start:
            raise ValueError("end: must be after start")
        return self


class ScheduleIn(Strict):
    timezone: TimeZoneName
    min_notice_minutes: int = Field(default=60, ge=0, le=60 * 24 * 30)
    horizon_days: int = Field(default=60, ge=1, le=730)
    rules: list[RuleIn] = Field(default_factory=list, max_length=100)


class RulePublic(BaseModel):
    weekday: int
    start: time
    end: time


class SchedulePublic(BaseModel):
    id: uuid.UUID
    provider_id: uuid.UUID
    timezone: str
    min_notice_minutes: int
    horizon_days: int
    rules: list[RulePublic]


class ExceptionIn(Strict):
    day: date
    kind: ExceptionKind
    start: time | None = None
    end: time | None = None
    note: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _times(self) -> ExceptionIn:
        if (self.start is None) != (self.end is None):
            raise ValueError("end: give both start and end, or neither for the whole day")
        if self.kind == ExceptionKind.EXTRA and self.start is None:
            raise ValueError("start: extra hours need a start and an end")
        if (
            self.start is not None
            and self.end is not None
            and self.end != time(0)
            and self.end <= self.start
        ):
            raise ValueError("end: must be after start")
        return self


class ExceptionPublic(BaseModel):
    id: uuid.UUID
    day: date
    kind: ExceptionKind
    start_time: time | None
    end_time: time | None
    note: str | None


class AppointmentTypeIn(Strict):
    name: str = Field(min_length=1, max_length=100)
    duration_minutes: int = Field(ge=5, le=480)
    buffer_minutes: int = Field(default=0, ge=0, le=240)


class AppointmentTypePublic(BaseModel):
    id: uuid.UUID
    name: str
    duration_minutes: int
    buffer_minutes: int


class SlotQuery(Strict):
    appointment_type_id: uuid.UUID
    start: date = Field(alias="from")
    end: date = Field(alias="to")
    tz: TimeZoneName | None = None

    @model_validator(mode="after")
    def _range(self) -> SlotQuery:
        if self.end < self.start:
            raise ValueError("to: must not be before from")
        if (self.end - self.start).days > 62:
            raise ValueError("to: search at most 62 days at once")
        return self


class SlotPublic(BaseModel):
    start: datetime
    end: datetime
    local_start: str
    local_end: str


class SlotsPublic(BaseModel):
    provider_id: uuid.UUID
    timezone: str = Field(description="The zone of local_start/local_end (the viewer's)")
    provider_timezone: str
    slots: list[SlotPublic]


class BookIn(Strict):
    provider_id: uuid.UUID
    patient_id: uuid.UUID
    appointment_type_id: uuid.UUID
    start: AwareDatetime
    text_consent: bool = Field(
        default=False,
        description="The patient agreed (to the staff member booking) to get the join link and "
        "reminders by text message on their phone number; recorded and audited",
    )


class TextConsentIn(Strict):
    agreed: bool = Field(
        description="true: the patient agreed to texts on their current number; false: withdrawn"
    )


class TextConsentPublic(BaseModel):
    """A patient's consent to text messages: on which number, who recorded it, when and how.

    way: staff_at_booking, staff, patient_at_checkin. `given_by` is None when the patient gave it.
    """

    patient_id: uuid.UUID
    agreed: bool
    phone: str | None
    given_at: datetime | None
    given_by: uuid.UUID | None
    way: str | None
    withdrawn_at: datetime | None


class RescheduleIn(Strict):
    start: AwareDatetime


class CancelIn(Strict):
    reason: str = Field(min_length=1, max_length=500)


class AppointmentQuery(Strict):
    provider_id: uuid.UUID | None = None
    start: date = Field(alias="from")
    end: date = Field(alias="to")
    tz: TimeZoneName | None = None

    @model_validator(mode="after")
    def _range(self) -> AppointmentQuery:
        if self.end < self.start:
            raise ValueError("to: must not be before from")
        if (self.end - self.start).days > 62:
            raise ValueError("to: list at most 62 days at once")
        return self


class WarningPublic(BaseModel):
    """Something staff should act on (e.g. `no_email`: pass the join link on yourself)."""

    code: str
    message: str


class MessagePublic(BaseModel):
    """One email or text message about an appointment and how its delivery went.

    channel: email or sms (then `to` is the E.164 number and `provider_ref` the provider's id).

    status: queued (waiting, or due later), retrying (the last attempt failed; `last_error` says
    why), sent, failed (gave up; `last_error` says why; an admin may retry), withdrawn.
    """

    id: uuid.UUID
    kind: str
    to: str
    subject: str
    status: str
    attempts: int
    last_error: str | None
    send_after: datetime
    sent_at: datetime | None
    delivered_via: str | None
    channel: str = "email"
    provider_ref: str | None = None


class AppointmentPublic(BaseModel):
    id: uuid.UUID
    provider_id: uuid.UUID
    provider_name: str
    patient_id: uuid.UUID
    patient_name: str
    appointment_type_id: uuid.UUID
    appointment_type: str
    start: datetime
    end: datetime
    timezone: str
    local_start: str
    status: AppointmentStatus
    cancel_reason: str | None
    # The patient's current (short) join link; None once it cannot be used (cancelled, no-show).
    join_url: str | None = None
    # The latest due email's delivery status (see MessagePublic), None when none was sent.
    email_status: str | None = None
    # The same for the latest due text message, None when none was sent.
    text_status: str | None = None
    warnings: list[WarningPublic] = []


class AppointmentDetail(AppointmentPublic):
    """One appointment as staff read it: with every email and its delivery."""

    messages: list[MessagePublic]


class BookedPublic(AppointmentPublic):
    join_url: str
    emailed: bool
    # The link goes by text message too (the patient agreed to texts on a valid number).
    texted: bool = False


class TroublePublic(MessagePublic):
    """A failed (or retrying) message of the clinic, with the appointment it is about."""

    appointment_id: uuid.UUID
    patient_name: str
    appointment_start: datetime


class TroublesPublic(BaseModel):
    failed: int
    retrying: int
    messages: list[TroublePublic]
    # True when no SMTP server is configured: emails are kept at /dev/mailbox.
    dev_mailbox: bool
