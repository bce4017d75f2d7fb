"""Duplicate patient records: the ones flagged for review, and merging one into another.

A walk-in whose name and date of birth match a record but whose contact does not gets a record of
its own, flagged; staff (admins, schedulers) then merge it into the other record or keep both.
Merging moves everything that names the duplicate (appointments, check-ins, visits, notes…) to the
kept record; the duplicate stays, marked as merged, so the audit trail's references still resolve.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.errors import Conflict, InvalidInput
from app.core.models import Patient
from scheduling.patients import get_patient


@dataclass(frozen=True)
class Review:
    """A record flagged for review and the records it may duplicate (same name and birth)."""

    patient: Patient
    candidates: list[Patient]


async def flagged(session: AsyncSession, clinic_id: uuid.UUID) -> list[Review]:
    query = (
        select(Patient)
        .where(
            Patient.clinic_id == clinic_id,
            col(Patient.needs_review).is_(True),
            col(Patient.merged_into).is_(None),
        )
        .order_by(col(Patient.created_at))
        .limit(100)
    )
    found = []
    for patient in (await session.exec(query)).all():
        same = select(Patient).where(
            Patient.clinic_id == clinic_id,
            Patient.id != patient.id,
            Patient.birth_date == patient.birth_date,
            sa.func.lower(col(Patient.family_name)) == patient.family_name.lower(),
            sa.func.lower(col(Patient.given_name)) == patient.given_name.lower(),
            col(Patient.merged_into).is_(None),
        )
        found.append(Review(patient, list((await session.exec(same)).all())))
    return found


def _patient_columns() -> list[sa.Column[object]]:
    """Every column of every table that refers to a patient record."""
    columns = []
    for table in SQLModel.metadata.tables.values():
        for column in table.columns:
            if any(fk.column.table.name == "patient" for fk in column.foreign_keys):
                columns.append(column)
    return columns


async def merge(
    session: AsyncSession, clinic_id: uuid.UUID, duplicate_id: uuid.UUID, kept_id: uuid.UUID
) -> tuple[Patient, Patient]:
    """Move everything of `duplicate_id` to `kept_id` (both of the clinic); the kept record
    takes the contact it lacked."""
    if duplicate_id == kept_id:
        raise InvalidInput("A record cannot be merged into itself.", fields={"into": "same"})
    duplicate = await get_patient(session, clinic_id=clinic_id, patient_id=duplicate_id)
    kept = await get_patient(session, clinic_id=clinic_id, patient_id=kept_id)
    if duplicate.merged_into is not None or kept.merged_into is not None:
        raise Conflict("One of these records was merged already.", fields={"into": "merged"})
    for column in _patient_columns():
        await session.exec(
            sa.update(column.table).where(column == duplicate.id).values({column.name: kept.id})
        )
    kept.email = kept.email or duplicate.email
    kept.phone = kept.phone or duplicate.phone
    kept.needs_review = False
    duplicate.merged_into = kept.id
    duplicate.needs_review = False
    session.add_all([kept, duplicate])
    try:
        await session.commit()
    except sa.exc.IntegrityError:
        await session.rollback()
        raise Conflict(
            "These records cannot be merged automatically.", fields={"into": "conflict"}
        ) from None
    return duplicate, kept


async def keep_separate(
    session: AsyncSession, clinic_id: uuid.UUID, patient_id: uuid.UUID
) -> Patient:
    """Staff checked: a different person after all; the flag goes."""
    patient = await get_patient(session, clinic_id=clinic_id, patient_id=patient_id)
    patient.needs_review = False
    session.add(patient)
    await session.commit()
    return patient
