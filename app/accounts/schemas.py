"""Shapes of the accounts API."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from app.core.models import Role


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    password: str = Field(min_length=1, max_length=1024)


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    full_name: str = Field(min_length=1, max_length=200)
    role: Role
    password: str = Field(min_length=12, max_length=1024)


class UserPublic(BaseModel):
    id: uuid.UUID
    clinic_id: uuid.UUID
    email: str
    full_name: str
    role: Role
    is_active: bool
    locked_until: datetime | None
    created_at: datetime


class ClinicPublic(BaseModel):
    id: uuid.UUID
    name: str
    timezone: str
    phone: str | None = None


class ClinicUpdate(BaseModel):
    """What an admin changes of their clinic: the phone number patients are told to call."""

    model_config = ConfigDict(extra="forbid")

    phone: str | None = Field(
        default=None,
        max_length=40,
        pattern=r"^\+?[0-9][0-9 ()./-]{2,38}$",
        description="Digits, spaces and + ( ) . / -; null clears it",
    )
