"""The one way a handler audits: success, refusal and failure recorded alike in every domain.

A refusal (403, 404) is recorded as denied, any other domain error as a failure, and the error is
raised on; success is recorded after the work. Events name the patient whose data was touched.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from aiohttp import web
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core import audit
from app.core.errors import DomainError
from app.web.identity import Actor
from app.web.keys import DATABASE

T = TypeVar("T")
PatientOf = Callable[[AsyncSession], Awaitable[uuid.UUID | None]]


@dataclass(frozen=True)
class Recorded:
    """What a success event says where it differs from the attempt: only the result can tell
    (the note a read found and its patient, how many rows left the server)."""

    action: str | None = None
    object_type: str | None = None
    object_id: uuid.UUID | str | None = None
    patient_id: uuid.UUID | None = None
    detail: str | None = None


def outcome_of(error: DomainError) -> str:
    return audit.DENIED if error.status in (403, 404) else audit.FAILURE


async def record(
    request: web.Request,
    actor: Actor,
    action: str,
    *,
    outcome: str = audit.SUCCESS,
    object_type: str | None = None,
    object_id: uuid.UUID | str | None = None,
    patient_id: uuid.UUID | str | None = None,
    detail: str | None = None,
) -> None:
    """Append one audit event for `actor`'s `action`."""
    await audit.record(
        request.app[DATABASE],
        action=action,
        outcome=outcome,
        actor=actor.for_audit(),
        object_type=object_type,
        object_id=object_id,
        patient_id=patient_id,
        detail=detail,
    )


async def refused(
    request: web.Request,
    actor: Actor,
    error: DomainError,
    action: str,
    *,
    object_type: str | None = None,
    object_id: uuid.UUID | str | None = None,
    patient_id: uuid.UUID | str | None = None,
) -> DomainError:
    """Record a refusal or failure and hand the error back for raising."""
    await record(
        request,
        actor,
        action,
        outcome=outcome_of(error),
        object_type=object_type,
        object_id=object_id,
        patient_id=patient_id,
        detail=f"{error.status} {error.code}",
    )
    return error


async def run_audited(
    request: web.Request,
    actor: Actor,
    work: Callable[[AsyncSession], Awaitable[T]],
    *,
    action: str,
    object_type: str | None = None,
    object_id: uuid.UUID | str | None = None,
    patient_id: uuid.UUID | None = None,
    patient_of: PatientOf | None = None,
    recorded: Callable[[T], Recorded] | None = None,
    audit_success: bool = True,
    audit_failures: bool = True,
) -> T:
    """Run `work` in a session, then record its outcome; errors are recorded and raised.

    `patient_of` names the patient when only the session can tell (a note's patient), and is
    asked only when `patient_id` is not given; `recorded(result)` says what the success event
    names where the result tells more than the attempt. Without `audit_failures`, only refusals
    (403, 404) are recorded: an error in the caller's own input (400, 409) is raised unrecorded.
    """
    error: DomainError | None = None
    async with request.app[DATABASE].session() as session:
        try:
            result = await work(session)
        except DomainError as exc:
            error = exc
            if patient_id is None and patient_of is not None:
                patient_id = await patient_of(session)
    # Recorded after the session is closed: the audit chain queues its writers and must not
    # wait there while this request still holds a pooled connection.
    if error is not None:
        if not audit_failures and outcome_of(error) == audit.FAILURE:
            raise error
        raise await refused(
            request,
            actor,
            error,
            action,
            object_type=object_type,
            object_id=object_id,
            patient_id=patient_id,
        )
    if audit_success:
        said = recorded(result) if recorded is not None else Recorded()
        await record(
            request,
            actor,
            said.action or action,
            object_type=said.object_type or object_type,
            object_id=said.object_id or object_id,
            patient_id=said.patient_id or patient_id,
            detail=said.detail,
        )
    return result
