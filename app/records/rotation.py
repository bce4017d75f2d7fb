"""Re-encrypt every note, addendum, visit chat line, waiting-room message and staff TOTP secret
under the active key (after a new key was added); chat and secrets stored before encryption are
sealed on the way."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import col, select, update

from app.accounts.models import StaffMfa
from app.attachments import service as attachments
from app.attachments.models import Attachment
from app.core import sealed as sealed_text
from app.core.db import Database
from app.intake.models import IntakeResponse
from app.records.crypto import Keyring, Sealed, associated_data
from app.records.models import ConsultNote, NoteAddendum
from signaling.models import VisitMessage, WaitingMessage


@dataclass(frozen=True)
class RotationReport:
    notes: int
    addenda: int
    chat_lines: int = 0
    waiting_messages: int = 0
    mfa_secrets: int = 0
    intake_answers: int = 0
    attachments: int = 0


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


async def _rotate_sealed_text(
    db: Database,
    keyring: Keyring,
    model: type[VisitMessage]
    | type[WaitingMessage]
    | type[StaffMfa]
    | type[IntakeResponse]
    | type[Attachment],
    key: str,
    column: str,
    batch: int,
) -> int:
    """Seal again each `column` not under the active key (plain legacy text included)."""
    table = str(model.__tablename__)
    row_key = col(getattr(model, key))
    stored = sealed_text.stored(getattr(model, column))
    current = f"{sealed_text.PREFIX}{keyring.active}:%"
    done = 0
    while True:
        async with db.session() as session:
            rows = (
                await session.exec(
                    select(row_key, stored).where(stored.not_like(current)).limit(batch)
                )
            ).all()
            if not rows:
                return done
            for row_id, old in rows:
                text = sealed_text.open_stored(keyring, table, column, old)
                new = sealed_text.seal(keyring, table, column, text)
                # The guard keeps a concurrent write's (or rotation's) work.
                result = await session.exec(
                    sa.update(model)
                    .where(row_key == row_id)
                    .where(stored == old)
                    .values({column: sa.type_coerce(new, sa.Text)})
                )
                done += result.rowcount
            await session.commit()


async def _rotate_attachments(db: Database, keyring: Keyring, batch: int) -> int:
    """A visit's photos and documents: their bytes, names and details."""
    done = 0
    while True:
        async with db.session() as session:
            count = await attachments.reseal_contents(session, keyring, batch)
        if not count:
            break
        done += count
    for column in ("title", "details"):
        await _rotate_sealed_text(db, keyring, Attachment, "id", column, batch)
    return done


async def rotate_note_key(db: Database, keyring: Keyring, *, batch: int = 200) -> RotationReport:
    """Re-encrypt rows not under the active key; raises DecryptionError on a row it cannot open."""
    notes = await _rotate_notes(db, keyring, batch)
    addenda = await _rotate_addenda(db, keyring, batch)
    chat_lines = await _rotate_sealed_text(db, keyring, VisitMessage, "id", "text", batch)
    waiting = await _rotate_sealed_text(db, keyring, WaitingMessage, "id", "text", batch)
    secrets = await _rotate_sealed_text(db, keyring, StaffMfa, "user_id", "secret", batch)
    intake_answers = await _rotate_sealed_text(
        db, keyring, IntakeResponse, "appointment_id", "answers", batch
    )
    files = await _rotate_attachments(db, keyring, batch)
    return RotationReport(
        notes=notes,
        addenda=addenda,
        chat_lines=chat_lines,
        waiting_messages=waiting,
        mfa_secrets=secrets,
        intake_answers=intake_answers,
        attachments=files,
    )
