"""Shapes of the records API."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.records.models import NoteStatus
from scheduling.schemas import PatientPublic

# Order of the sections on screen and in the FHIR Composition.
SECTION_NAMES = ("chief_complaint", "subjective", "objective", "assessment", "plan", "free_text")


class NoteSections(BaseModel):
    """The text of a note; a section not named here is refused (400)."""

    model_config = ConfigDict(extra="forbid")

    chief_complaint: str = ""
    subjective: str = ""
    objective: str = ""
    assessment: str = ""
    plan: str = ""
    free_text: str = ""

    def total_chars(self) -> int:
        return sum(len(getattr(self, name)) for name in SECTION_NAMES)


class NoteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    appointment_id: uuid.UUID | None = None
    sections: NoteSections = Field(default_factory=NoteSections)


class NoteSave(BaseModel):
    """An autosave: the whole text and the version it was edited from."""

    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, le=2**31 - 1)
    sections: NoteSections


class NoteSign(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, le=2**31 - 1)


class AddendumCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500)
    text: str = Field(min_length=1)
    # Shown to the patient in their visit summary, beside the signed plan it corrects.
    amends_plan: bool = False


class AddendumPublic(BaseModel):
    id: uuid.UUID
    note_id: uuid.UUID
    author_id: uuid.UUID
    author_name: str
    reason: str
    text: str
    amends_plan: bool = False
    created_at: datetime


class NotePublic(BaseModel):
    id: uuid.UUID
    patient_id: uuid.UUID
    clinic_id: uuid.UUID
    author_id: uuid.UUID
    author_name: str
    appointment_id: uuid.UUID | None
    status: NoteStatus
    version: int
    sections: NoteSections
    created_at: datetime
    updated_at: datetime
    signed_at: datetime | None
    addenda: list[AddendumPublic]


class PatientRecord(BaseModel):
    """Demographics and the notes the viewer may read, oldest first."""

    patient: PatientPublic
    notes: list[NotePublic]


class BreakGlassCreate(BaseModel):
    """Why the staff member must read a record outside their care relationship."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=10, max_length=500)


class BreakGlassPublic(BaseModel):
    """One break-glass access, as the person who opened it and the clinic's admins see it."""

    id: uuid.UUID
    patient_id: uuid.UUID
    patient_name: str
    user_id: uuid.UUID
    user_name: str
    user_role: str
    reason: str
    created_at: datetime
    expires_at: datetime
    open: bool
