"""Who a walk-in is: their details, the contact they gave (normalised), and the clinic's record
of them, matched or made (flagged for staff to review when unsure)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.models import Clinic, Patient
from scheduling import phones


@dataclass(frozen=True)
class WalkInDetails:
    given_name: str
    family_name: str
    birth_date: date
    email: str | None
    phone: str | None
    reason: str


def normal_email(email: str | None) -> str | None:
    return email.strip().lower() if email and email.strip() else None


def normal_phone(phone: str | None) -> str | None:
    if not phone:
        return None
    digits = re.sub(r"\D", "", phone)
    if not digits:
        return None
    return ("+" if phone.strip().startswith("+") else "") + digits


def phone_key(phone: str | None, region: str | None) -> str | None:
    """A number to compare by: E.164 when it reads as one (in the clinic's country), else digits."""
    if not phone:
        return None
    return phones.e164(phone, region) or normal_phone(phone)


def contact_of(details: WalkInDetails) -> str:
    contact = normal_email(details.email) or normal_phone(details.phone)
    assert contact is not None  # the input requires one
    return contact


async def match_patient(
    session: AsyncSession, clinic_id: uuid.UUID, details: WalkInDetails
) -> tuple[Patient, str]:
    """The clinic's record of this person, or a new one; and how it was found.

    Same name (any case), date of birth and contact: that record ("matched"). Same name and date
    of birth with another contact: a new record flagged for staff to review ("review"), never
    a guess. Otherwise a new record ("new").
    """
    clinic = await session.get(Clinic, clinic_id)
    region = phones.region_of(clinic.phone) if clinic else None
    email, phone = normal_email(details.email), phone_key(details.phone, region)
    query = select(Patient).where(
        Patient.clinic_id == clinic_id,
        Patient.birth_date == details.birth_date,
        sa.func.lower(col(Patient.family_name)) == details.family_name.strip().lower(),
        sa.func.lower(col(Patient.given_name)) == details.given_name.strip().lower(),
        col(Patient.merged_into).is_(None),
    )
    same_person = list((await session.exec(query.order_by(col(Patient.created_at)))).all())
    for patient in same_person:
        if (email and normal_email(patient.email) == email) or (
            phone and phone_key(patient.phone, region) == phone
        ):
            return patient, "matched"
    patient = Patient(
        clinic_id=clinic_id,
        given_name=details.given_name.strip(),
        family_name=details.family_name.strip(),
        birth_date=details.birth_date,
        email=email,
        # E.164 when the number reads as one, so texts can reach it; else as the patient wrote it.
        phone=(phones.e164(details.phone, region) or details.phone.strip())
        if details.phone
        else None,
        timezone=clinic.timezone if clinic else "UTC",
        needs_review=bool(same_person),
    )
    session.add(patient)
    await session.flush()
    return patient, "review" if same_person else "new"
