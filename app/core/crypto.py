"""Keys kept outside the database: AES-256-GCM for text at rest, HMAC-SHA256 for the audit chain.

Both keyrings hold several keys by id so keys can be rotated: new data uses the active key and
every stored value names the key it was made with.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import uuid
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app.core import text
from app.core.config import Settings

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


def associated_data(table: str, row_id: uuid.UUID | str, field: str) -> bytes:
    """What the ciphertext is bound to: swapping it to another row or field fails to open."""
    return f"{FORMAT}|{table}|{row_id}|{field}".encode()


class Keyring:
    """The text-at-rest keys (the note keys) by id; new text is sealed under the active one."""

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


class UnknownKey(Exception):
    """A MAC names a key id that is not configured."""


class MacKeyring:
    """The audit keys by id; new events and checkpoints are signed with the newest (last) one."""

    def __init__(self, keys: dict[str, bytes]) -> None:
        if not keys:
            raise ValueError("no audit key given")
        self._keys = dict(keys)
        self.active = next(reversed(self._keys))

    @classmethod
    def from_settings(cls, settings: Settings) -> MacKeyring:
        return cls(settings.audit_keyring)

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def mac(self, key_id: str, message: bytes) -> str:
        """HMAC-SHA256 of `message` under key `key_id`, as 64 hex digits."""
        key = self._keys.get(key_id)
        if key is None:
            raise UnknownKey(f"audit key {key_id!r} is not configured")
        return hmac.new(key, message, hashlib.sha256).hexdigest()

    def matches(self, key_id: str, message: bytes, mac: str) -> bool:
        return hmac.compare_digest(self.mac(key_id, message), mac)
