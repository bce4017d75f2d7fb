"""A text column stored encrypted: chat lines and messages are sealed with the note keys.

`SealedText("visit_message", "text")` reads and writes plain `str` in Python; in the database the
value is `oc1s:<key id>:<base64 of nonce + AES-256-GCM ciphertext>`, bound to its table and
column (not to its row: the type sees no row). The keyring comes from the engine the statement
runs on (`use_keyring`), so two databases in one process keep their own keys. A value without
the prefix is a row written before encryption: it reads as it is, and key rotation seals it.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.crypto import DecryptionError, Keyring, Sealed

PREFIX = "oc1s:"
_DIALECT_ATTR = "openconsult_keyring"


class NoKeyring(RuntimeError):
    """Sealed text was read or written through a database handle given no keyring."""


def use_keyring(engine: AsyncEngine, keyring: Keyring) -> None:
    """Seal and open this engine's sealed columns with `keyring` (each engine has its dialect)."""
    setattr(engine.sync_engine.dialect, _DIALECT_ATTR, keyring)


def _keyring(dialect: Dialect) -> Keyring:
    keyring = getattr(dialect, _DIALECT_ATTR, None)
    if not isinstance(keyring, Keyring):
        raise NoKeyring("this database handle has no note keyring (Database(..., keyring=...))")
    return keyring


def aad(table: str, column: str) -> bytes:
    return f"{PREFIX}{table}|{column}".encode()


def seal(keyring: Keyring, table: str, column: str, value: str) -> str:
    sealed = keyring.seal(value.encode(), aad=aad(table, column))
    return f"{PREFIX}{sealed.key_id}:{base64.b64encode(sealed.blob).decode()}"


def is_sealed(stored: str) -> bool:
    return stored.startswith(PREFIX)


def key_id_of(stored: str) -> str | None:
    """The key a stored value was sealed with; None for a legacy plain value."""
    if not is_sealed(stored):
        return None
    return stored[len(PREFIX) :].partition(":")[0]


def open_stored(keyring: Keyring, table: str, column: str, stored: str) -> str:
    """The text of a stored value; a legacy plain value is returned as it is."""
    if not is_sealed(stored):
        return stored
    key_id, sep, encoded = stored[len(PREFIX) :].partition(":")
    if not sep:
        raise DecryptionError(f"{table}.{column} holds a malformed sealed value")
    try:
        blob = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise DecryptionError(f"{table}.{column} holds a malformed sealed value") from None
    return keyring.open(Sealed(key_id, blob), aad=aad(table, column)).decode()


class SealedText(sa.types.TypeDecorator[str]):
    """Text encrypted at rest with the engine's note keyring."""

    impl = sa.Text
    cache_ok = True

    def __init__(self, table: str, column: str) -> None:
        super().__init__()
        self.table = table
        self.column = column

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return seal(_keyring(dialect), self.table, self.column, value)

    def process_result_value(self, value: Any | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        stored = str(value)
        if not is_sealed(stored):
            return stored
        return open_stored(_keyring(dialect), self.table, self.column, stored)

    def coerce_compared_value(self, op: Any, value: Any) -> sa.types.TypeEngine[Any]:
        # A comparison would compare ciphertexts; compare the stored text as it is.
        return sa.Text()


def stored(column: Any) -> Any:
    """The column as stored (ciphertext), for queries and updates that must not seal or open."""
    return sa.type_coerce(column, sa.Text)
