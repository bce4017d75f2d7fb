"""Re-encrypt every note and addendum under the active key (after a new key was added)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import col, select, update

from app.core.db import Database
from app.records.crypto import Keyring, Sealed, associated_data
from app.records.models import ConsultNote, NoteAddendum


@dataclass(frozen=True)
class RotationReport:
    notes: int
    addenda: int


async def _rotate_notes(db: Database, keyring: Keyring, batch: int) -> int:
    done = 0
    while True:
        async with db.session() as session:
            rows = (
                await session.exec(
                    select(
                        ConsultNote.id, ConsultNote.key_id, ConsultNote.body, ConsultNote.version
                    )
                    .where(col(ConsultNote.key_id) != keyring.active)
                    .limit(batch)
                )
            ).all()
            if not rows:
                return done
            for note_id, key_id, body, version in rows:
                aad = associated_data("consult_note", note_id, "body")
                sealed = keyring.seal(keyring.open(Sealed(key_id, body), aad=aad), aad=aad)
                # Guarded like an autosave: a save that landed meanwhile already used the
                # active key, and this row is simply left as that save wrote it.
                result = await session.exec(
                    update(ConsultNote)
                    .where(col(ConsultNote.id) == note_id)
                    .where(col(ConsultNote.version) == version)
                    .where(col(ConsultNote.key_id) == key_id)
                    .values(key_id=sealed.key_id, body=sealed.blob)
                )
                done += result.rowcount
            await session.commit()


async def _rotate_addenda(db: Database, keyring: Keyring, batch: int) -> int:
    done = 0
    while True:
        async with db.session() as session:
            rows = (
                await session.exec(
                    select(NoteAddendum.id, NoteAddendum.key_id, NoteAddendum.body)
                    .where(col(NoteAddendum.key_id) != keyring.active)
                    .limit(batch)
                )
            ).all()
            if not rows:
                return done
            for addendum_id, key_id, body in rows:
                aad = associated_data("note_addendum", addendum_id, "body")
                sealed = keyring.seal(keyring.open(Sealed(key_id, body), aad=aad), aad=aad)
                result = await session.exec(
                    update(NoteAddendum)
                    .where(col(NoteAddendum.id) == addendum_id)
                    .where(col(NoteAddendum.key_id) == key_id)
                    .values(key_id=sealed.key_id, body=sealed.blob)
                )
                done += result.rowcount
            await session.commit()


async def rotate_note_key(db: Database, keyring: Keyring, *, batch: int = 200) -> RotationReport:
    """Re-encrypt rows not under the active key; raises DecryptionError on a row it cannot open."""
    notes = await _rotate_notes(db, keyring, batch)
    addenda = await _rotate_addenda(db, keyring, batch)
    return RotationReport(notes=notes, addenda=addenda)
