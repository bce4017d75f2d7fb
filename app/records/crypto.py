"""AES-256-GCM for note text at rest; each ciphertext is bound to its row and field."""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app.core import text
from app.core.config import Settings
from app.records.models import ConsultNote, NoteAddendum
from app.records.schemas import NoteSections

NONCE_BYTES = 12
# Bumped if the layout ever changes; it is part of the associated data, so old rows stay readable
# only under the format they were written with.
FORMAT = "oc1"


class DecryptionError(Exception):
    """A ciphertext did not open: unknown key, wrong key, tampering, or moved to another row."""


@dataclass(frozen=True)
class Sealed:
    key_id: str
    blob: bytes


def associated_data(table: str, row_id: uuid.UUID, field: str) -> bytes:
    """What the ciphertext is bound to: swapping it to another row or field fails to open."""
    return f"{FORMAT}|{table}|{row_id}|{field}".encode()


class Keyring:
    """The note keys by id; new text is sealed under the active one."""

    def __init__(self, keys: dict[str, bytes], active: str) -> None:
        if active not in keys:
            raise ValueError(f"active note key {active!r} is not in the keyring")
        self._ciphers = {key_id: AESGCM(raw) for key_id, raw in keys.items()}
        self.active = active

    @classmethod
    def from_settings(cls, settings: Settings) -> Keyring:
        keys, active = settings.note_keyring
        return cls(keys, active)

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._ciphers)

    def seal(self, plaintext: bytes, *, aad: bytes) -> Sealed:
        nonce = os.urandom(NONCE_BYTES)
        blob = nonce + self._ciphers[self.active].encrypt(nonce, plaintext, aad)
        return Sealed(key_id=self.active, blob=blob)

    def open(self, sealed: Sealed, *, aad: bytes) -> bytes:
        cipher = self._ciphers.get(sealed.key_id)
        if cipher is None:
            raise DecryptionError(f"note key {sealed.key_id!r} is not configured")
        nonce, ciphertext = sealed.blob[:NONCE_BYTES], sealed.blob[NONCE_BYTES:]
        try:
            return cipher.decrypt(nonce, ciphertext, aad)
        except InvalidTag:
            raise DecryptionError("ciphertext does not open under its key and row") from None

    def seal_json(self, value: dict[str, Any], *, aad: bytes) -> Sealed:
        return self.seal(json.dumps(value, separators=(",", ":")).encode(), aad=aad)

    def open_json(self, sealed: Sealed, *, aad: bytes) -> dict[str, Any]:
        value = json.loads(self.open(sealed, aad=aad))
        if not isinstance(value, dict):
            raise DecryptionError("decrypted body is not an object")
        # Text saved before input was checked may hold a lone surrogate, which no page or JSON
        # answer can carry: it reads as U+FFFD (the stored ciphertext stays as it was).
        return {k: text.readable(v) if isinstance(v, str) else v for k, v in value.items()}


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
