"""Photos and documents of a visit: adding one (checked, limited, sealed), listing, reading.

Callers decide who may ask (the patient of the appointment's link, the record's readers); these
functions take the appointment and plain arguments and know nothing of HTTP.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import unicodedata
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.attachments.content import Checked
from app.attachments.models import Attachment, AttachmentContent
from app.core.config import Settings
from app.core.crypto import Keyring, Sealed, associated_data
from app.core.errors import Conflict, NotFound
from scheduling.models import Appointment

TITLE_MAX = 120


class TooManyAttachments(Conflict):
    code = "too_many_attachments"


def content_aad(attachment_id: uuid.UUID) -> bytes:
    return associated_data("attachment_content", attachment_id, "body")


def clean_title(filename: str | None, checked: Checked) -> str:
    """A name to show and to download under: printable, short, with the extension of what it is."""
    stem = (filename or "").rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    stem = stem.rsplit(".", 1)[0] if "." in stem else stem
    stem = unicodedata.normalize("NFC", stem)
    stem = "".join(ch for ch in stem if unicodedata.category(ch)[0] not in "CZ" or ch == " ")
    stem = (
        re.sub(r"\s+", " ", stem).strip(" .")[:TITLE_MAX]
        or {
            "image": "Photo",
            "pdf": "Document",
            "dicom": "DICOM file",
        }[checked.kind]
    )
    return f"{stem}.{checked.extension}"


async def count_for(session: AsyncSession, appointment_id: uuid.UUID) -> int:
    found = await session.exec(
        select(func.count())
        .select_from(Attachment)
        .where(Attachment.appointment_id == appointment_id)
    )
    return int(found.one())


async def add(
    session: AsyncSession,
    settings: Settings,
    keyring: Keyring,
    appointment: Appointment,
    checked: Checked,
    filename: str | None,
) -> Attachment:
    """Store a checked file on the appointment, sealed; the count limit holds per appointment."""
    # One patient's uploads queue on their appointment's row, so two at once cannot both pass
    # the count (PostgreSQL; SQLite writes one at a time anyway).
    await session.exec(
        select(Appointment.id).where(col(Appointment.id) == appointment.id).with_for_update()
    )
    if await count_for(session, appointment.id) >= settings.attachments_per_appointment:
        raise TooManyAttachments(
            f"This visit already has {settings.attachments_per_appointment} files, the most "
            "it can hold.",
            fields={"file": "too many files"},
            detail={"max_files": settings.attachments_per_appointment},
        )
    attachment = Attachment(
        appointment_id=appointment.id,
        clinic_id=appointment.clinic_id,
        patient_id=appointment.patient_id,
        kind=checked.kind,
        content_type=checked.content_type,
        title=clean_title(filename, checked),
        details=json.dumps(checked.details, separators=(",", ":")),
        size=len(checked.data),
        sha256=hashlib.sha256(checked.data).hexdigest(),
        sha1=base64.b64encode(hashlib.sha1(checked.data, usedforsecurity=False).digest()).decode(),
    )
    sealed = keyring.seal(checked.data, aad=content_aad(attachment.id))
    session.add(attachment)
    await session.flush()
    session.add(
        AttachmentContent(attachment_id=attachment.id, key_id=sealed.key_id, body=sealed.blob)
    )
    await session.commit()
    await session.refresh(attachment)
    return attachment


async def for_appointment(session: AsyncSession, appointment_id: uuid.UUID) -> list[Attachment]:
    rows = await session.exec(
        select(Attachment)
        .where(Attachment.appointment_id == appointment_id)
        .order_by(col(Attachment.created_at), col(Attachment.id))
    )
    return list(rows.all())


async def for_patient(session: AsyncSession, patient_id: uuid.UUID) -> list[Attachment]:
    rows = await session.exec(
        select(Attachment)
        .where(Attachment.patient_id == patient_id)
        .order_by(col(Attachment.created_at), col(Attachment.id))
    )
    return list(rows.all())


async def of_appointment(
    session: AsyncSession, appointment_id: uuid.UUID, attachment_id: uuid.UUID
) -> Attachment:
    """One attachment of this appointment; any other is not found."""
    attachment = await session.get(Attachment, attachment_id)
    if attachment is None or attachment.appointment_id != appointment_id:
        raise NotFound("No such file.")
    return attachment


async def clinic_appointment(
    session: AsyncSession, clinic_id: uuid.UUID | None, appointment_id: uuid.UUID
) -> Appointment:
    """One of the clinic's appointments; another clinic's is not found."""
    appointment = await session.get(Appointment, appointment_id)
    if appointment is None or appointment.clinic_id != clinic_id:
        raise NotFound("No such appointment.")
    return appointment


async def content_of(session: AsyncSession, keyring: Keyring, attachment: Attachment) -> bytes:
    """The attachment's bytes, opened."""
    row = await session.get(AttachmentContent, attachment.id)
    if row is None:
        raise NotFound("No such file.")
    return keyring.open(Sealed(row.key_id, row.body), aad=content_aad(attachment.id))


def details_of(attachment: Attachment) -> dict[str, Any]:
    details: dict[str, Any] = json.loads(attachment.details)
    return details


@dataclass(frozen=True)
class Urls:
    """Where a viewer downloads each file: the patient's link or the staff API."""

    base: str

    def content(self, attachment: Attachment) -> str:
        return f"{self.base}/{attachment.id}/content"


def staff_urls(appointment_id: uuid.UUID) -> Urls:
    """Where staff download an appointment's files."""
    return Urls(f"/api/appointments/{appointment_id}/attachments")


def public(attachment: Attachment, urls: Urls) -> dict[str, object]:
    return {
        "id": str(attachment.id),
        "appointment_id": str(attachment.appointment_id),
        "kind": attachment.kind,
        "content_type": attachment.content_type,
        "title": attachment.title,
        "size": attachment.size,
        "sha256": attachment.sha256,
        "created_at": attachment.created_at.isoformat(),
        "details": details_of(attachment),
        "content_url": urls.content(attachment),
    }


async def reseal_contents(session: AsyncSession, keyring: Keyring, batch: int) -> int:
    """Seal again, under the active key, up to `batch` attachments' bytes; how many were."""
    rows = (
        await session.exec(
            select(AttachmentContent.attachment_id, AttachmentContent.key_id)
            .where(col(AttachmentContent.key_id) != keyring.active)
            .limit(batch)
        )
    ).all()
    done = 0
    for attachment_id, key_id in rows:
        row = await session.get(AttachmentContent, attachment_id)
        if row is None or row.key_id != key_id:
            continue
        aad = content_aad(attachment_id)
        sealed = keyring.seal(keyring.open(Sealed(key_id, row.body), aad=aad), aad=aad)
        result = await session.exec(
            sa.update(AttachmentContent)
            .where(col(AttachmentContent.attachment_id) == attachment_id)
            .where(col(AttachmentContent.key_id) == key_id)
            .values(key_id=sealed.key_id, body=sealed.blob)
        )
        done += result.rowcount
        session.expunge(row)
    await session.commit()
    return done
