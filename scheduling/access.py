"""Whose calendars an actor may use: their clinic's, and a provider only their own."""

from __future__ import annotations

import uuid

from app.core.errors import Forbidden
from app.core.models import Role
from app.web.identity import Actor


def clinic_of(actor: Actor) -> uuid.UUID:
    """The clinic whose calendars `actor` works in; only clinic staff use scheduling."""
    if not actor.is_staff or actor.clinic_id is None:
        raise Forbidden("Only clinic staff use the calendar.")
    return actor.clinic_id


def own_calendar(actor: Actor, provider_id: uuid.UUID, *, of: str = "calendar") -> None:
    """A provider may see their own calendar (and the appointments `of` it) only."""
    if actor.has_role(Role.PROVIDER) and actor.id != provider_id:
        raise Forbidden(f"Providers see their own {of} only.")
