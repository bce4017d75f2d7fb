"""The consult note's rows at rest: each ciphertext is bound to its row and field.

The keyring itself lives in `app.core.crypto` (visit chat is sealed with the same keys); its
names are kept here for the record's modules.
"""

from __future__ import annotations

import uuid

from app.core.crypto import (
    FORMAT,
    NONCE_BYTES,
    DecryptionError,
    Keyring,
    Sealed,
    associated_data,
)
from app.records.models import ConsultNote, NoteAddendum
from app.records.schemas import NoteSections

__all__ = [
    "FORMAT",
    "NONCE_BYTES",
    "DecryptionError",
    "Keyring",
    "Sealed",
    "associated_data",
    "open_addendum",
    "open_sections",
    "seal_addendum",
    "seal_sections",
]

# Rows of the record: each ciphertext is bound to its table, row id and field.


def seal_sections(keyring: Keyring, note_id: uuid.UUID, sections: NoteSections) -> Sealed:
    return keyring.seal_json(
        sections.model_dump(), aad=associated_data("consult_note", note_id, "body")
    )


def open_sections(keyring: Keyring, note: ConsultNote) -> NoteSections:
    aad = associated_data("consult_note", note.id, "body")
    return NoteSections.model_validate(keyring.open_json(Sealed(note.key_id, note.body), aad=aad))


def seal_addendum(
    keyring: Keyring, addendum_id: uuid.UUID, reason: str, text: str, *, amends_plan: bool = False
) -> Sealed:
    aad = associated_data("note_addendum", addendum_id, "body")
    body = {"reason": reason, "text": text, "amends_plan": amends_plan}
    return keyring.seal_json(body, aad=aad)


def open_addendum(keyring: Keyring, addendum: NoteAddendum) -> tuple[str, str, bool]:
    """Reason, text, and whether it amends the plan (older addenda carry no such flag)."""
    aad = associated_data("note_addendum", addendum.id, "body")
    value = keyring.open_json(Sealed(addendum.key_id, addendum.body), aad=aad)
    return str(value["reason"]), str(value["text"]), value.get("amends_plan") is True
