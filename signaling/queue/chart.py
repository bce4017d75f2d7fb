"""What staff who may read the record see of a patient in the queue before they admit them.

Only providers and admins of the clinic (the record's readers) get these facts: the way to the
record, the patient's age, the reason they gave, their answers, the red-flag cards their intake
answers raise, and when their last note was signed. Schedulers watching the clinic's queues see
names and states, as before.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import date, datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.models import Role

#: (session, clinic, patients) -> when each patient's last note was signed.
LastSignedNotes = Callable[
    [AsyncSession, uuid.UUID, list[uuid.UUID]], Awaitable[dict[uuid.UUID, datetime]]
]

#: Who may read the record (app.records.access.READERS), so who gets a chart link and facts.
RECORD_READERS = frozenset({Role.PROVIDER.value, Role.ADMIN.value})


def record_url(patient_id: uuid.UUID) -> str:
    return f"/records/patients/{patient_id}"


def age_on(birth_date: date, day: date) -> int:
    """Full years of age on `day`."""
    before_birthday = (day.month, day.day) < (birth_date.month, birth_date.day)
    return day.year - birth_date.year - before_birthday
