"""Addenda: corrections appended to a signed consult note, which itself never changes."""

from __future__ import annotations

import uuid

from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.errors import Conflict, PayloadTooLarge
from app.records.access import readable_note, require_provider
from app.records.consult_notes import addendum_public, author_names
from app.records.crypto import Keyring, seal_addendum
from app.records.models import NoteAddendum, NoteStatus
from app.records.schemas import AddendumCreate, AddendumPublic
from app.records.writes import NO_QUEUE, Writes, insert
from app.web.identity import Actor


async def add_addendum(
    session: AsyncSession,
    *,
    keyring: Keyring,
    actor: Actor,
    writes: Writes = NO_QUEUE,
    note_id: uuid.UUID,
    addendum_in: AddendumCreate,
    max_chars: int,
) -> AddendumPublic:
    """Append a correction to a signed note, by any provider of the clinic."""
    author_id = require_provider(actor)
    note = await readable_note(session, actor, note_id)
    if note.status != NoteStatus.SIGNED:
        raise Conflict("This note is still a draft; edit it instead of adding an addendum.")
    chars = len(addendum_in.reason) + len(addendum_in.text)
    if chars > max_chars:
        raise PayloadTooLarge(
            f"The addendum is longer than {max_chars} characters.",
            detail={"max_note_chars": max_chars, "chars": chars},
        )
    addendum_id = uuid.uuid4()
    sealed = seal_addendum(
        keyring,
        addendum_id,
        addendum_in.reason,
        addendum_in.text,
        amends_plan=addendum_in.amends_plan,
    )
    addendum = NoteAddendum(
        id=addendum_id,
        note_id=note.id,
        author_id=author_id,
        key_id=sealed.key_id,
        body=sealed.blob,
    )
    await insert(session, writes, addendum)
    names = await author_names(session, [author_id])
    return addendum_public(keyring, addendum, names)
