"""Attachment tables: what a patient added to an appointment, and its sealed bytes apart.

The bytes live in their own table so listing a visit's attachments never loads them.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.core.models import utc_column, utcnow
from app.core.sealed import SealedText


class Attachment(SQLModel, table=True):
    """A photo, PDF or DICOM file a patient added to one appointment."""

    __tablename__ = "attachment"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    appointment_id: uuid.UUID = Field(foreign_key="appointment.id", index=True)
    clinic_id: uuid.UUID = Field(foreign_key="clinic.id", index=True)
    patient_id: uuid.UUID = Field(foreign_key="patient.id", index=True)
    kind: str = Field(max_length=16)  # image | pdf | dicom
    content_type: str = Field(max_length=64)
    # The name the patient's file had: it may name them, so it is sealed like a note.
    title: str = Field(sa_type=SealedText("attachment", "title"))
    # What the check found (DICOM header fields, a photo's size, a PDF's pages), JSON, sealed.
    details: str = Field(sa_type=SealedText("attachment", "details"))
    size: int  # bytes served (a photo's re-encoded bytes, not the upload's)
    sha256: str = Field(max_length=64)  # hex digest of the bytes served
    sha1: str = Field(max_length=28)  # base64 SHA-1 of the same bytes: FHIR Attachment.hash
    created_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())


class AttachmentContent(SQLModel, table=True):
    """The bytes of one attachment, AES-256-GCM under the note keys, bound to its row."""

    __tablename__ = "attachment_content"

    attachment_id: uuid.UUID = Field(foreign_key="attachment.id", primary_key=True)
    key_id: str = Field(max_length=32)
    body: bytes = Field(sa_type=sa.LargeBinary)
