"""Patients as records of a clinic: create, read, find by name or date of birth."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.errors import NotFound
from app.core.models import Clinic, Patient
from scheduling import phones
from scheduling.schemas import PatientCreate


async def create_patient(
    session: AsyncSession, *, clinic_id: uuid.UUID, patient_in: PatientCreate
) -> Patient:
    data = patient_in.model_dump()
    data["email"] = str(data["email"]) if data["email"] else None
    clinic = await session.get(Clinic, clinic_id)
    data["phone"] = phones.normalized(
        data["phone"], phones.region_of(clinic.phone if clinic else None)
    )
    patient = Patient(clinic_id=clinic_id, **data)
    session.add(patient)
    await session.commit()
    return patient


async def get_patient(
    session: AsyncSession, *, clinic_id: uuid.UUID, patient_id: uuid.UUID
) -> Patient:
    patient = await session.get(Patient, patient_id)
    if patient is None or patient.clinic_id != clinic_id:
        raise NotFound("No such patient in your clinic.", fields={"patient_id": "not found"})
    return patient


async def search_patients(
    session: AsyncSession,
    *,
    clinic_id: uuid.UUID,
    text: str | None,
    birth_date: date | None,
    limit: int,
) -> list[Patient]:
    """Patients whose given or family name starts with each word of `text`, and/or born then."""
    query = select(Patient).where(
        Patient.clinic_id == clinic_id, col(Patient.merged_into).is_(None)
    )
    for word in (text or "").split():
        escaped = word.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"{escaped}%"
        query = query.where(
            or_(
                func.lower(col(Patient.given_name)).like(pattern, escape="\\"),
                func.lower(col(Patient.family_name)).like(pattern, escape="\\"),
            )
        )
    if birth_date is not None:
        query = query.where(Patient.birth_date == birth_date)
    rows = await session.exec(
        query.order_by(col(Patient.family_name), col(Patient.given_name)).limit(limit)
    )
    return list(rows.all())
