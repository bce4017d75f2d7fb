"""Shapes of the accounts API."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from app.accounts.passwords import MAX_LENGTH, password_problem
from app.core.models import Role


def _checked(password: str, *context: object) -> str:
    problem = password_problem(password, context=[str(c) for c in context if c])
    if problem is not None:
        raise PydanticCustomError("weak_password", problem)
    return password


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    password: str = Field(min_length=1, max_length=MAX_LENGTH)
    # Only when one email and password open accounts in several clinics (see `authenticate`).
    clinic_id: uuid.UUID | None = None


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    full_name: str = Field(min_length=1, max_length=200)
    role: Role
    password: str = Field(max_length=MAX_LENGTH)

    @field_validator("password")
    @classmethod
    def _password_rule(cls, password: str, info: ValidationInfo) -> str:
        return _checked(password, info.data.get("email"), info.data.get("full_name"))


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(min_length=1, max_length=MAX_LENGTH)
    new_password: str = Field(max_length=MAX_LENGTH)


class MfaCode(BaseModel):
    """A code from the authenticator app (6 digits) or a recovery code."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=64)
    # API clients between the password and the second factor; browsers use a cookie.
    mfa_token: str | None = Field(default=None, max_length=2048)


class MfaStart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mfa_token: str | None = Field(default=None, max_length=2048)


class ClinicSecurity(BaseModel):
    model_config = ConfigDict(extra="forbid")

    require_mfa: bool


class UserPublic(BaseModel):
    id: uuid.UUID
    clinic_id: uuid.UUID
    email: str
    full_name: str
    role: Role
    is_active: bool
    locked_until: datetime | None
    created_at: datetime
    mfa_enabled: bool = False


class ClinicPublic(BaseModel):
    id: uuid.UUID
    name: str
    timezone: str
    phone: str | None = None
    require_mfa: bool = False


class ClinicUpdate(BaseModel):
    """What an admin changes of their clinic: the phone number patients are told to call."""

    model_config = ConfigDict(extra="forbid")

    phone: str | None = Field(
        default=None,
        max_length=40,
        pattern=r"^\+?[0-9][0-9 ()./-]{2,38}$",
        description="Digits, spaces and + ( ) . / -; null clears it",
    )
