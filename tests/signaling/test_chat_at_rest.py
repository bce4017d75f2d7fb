"""Visit chat and waiting-room messages are encrypted at rest with the note keys: the database
(file, dump, plain SQL) holds no readable line, the people in the visit still read them, and key
rotation seals them under the new key."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from pydantic import SecretStr
from sqlmodel import select

from app.core.config import Settings, new_note_key
from app.core.crypto import Keyring
from app.core.db import Database
from app.core.models import utcnow
from app.records.rotation import rotate_note_key
from signaling.models import VisitMessage, WaitingMessage
from tests.signaling.conftest import (
    WaitingFactory,
    check_in,
    cookie_header,
    staff_headers,
)

WAITING_TEXT = "About your chest pain: running 10 minutes late"
CHAT_TEXT = "The chest pain started this morning"
LEGACY_TEXT = "Typed before chat was encrypted"


async def raw_texts(db: Database, table: str) -> list[str]:
    """The column as plain SQL reads it, as anyone with a dump or the file would."""
    async with db.engine.connect() as conn:
        rows = await conn.execute(sa.text(f"SELECT text FROM {table} ORDER BY sent_at"))
        return [str(row[0]) for row in rows]


async def message_and_chat(
    server, http_clients, waiting: WaitingFactory, sockets
) -> tuple[str, dict[str, str]]:
    """A provider messages a waiting patient, admits them, and the patient chats: the visit id
    and the provider's headers."""
    v = await waiting.visitable()
    http = http_clients()
    await check_in(http, v.token)
    url = str(server.make_url("/"))
    provider_headers = await staff_headers(url.rstrip("/"), v.provider)
    clinic = await sockets(url, "/clinic", provider_headers)
    patient_waiting = await sockets(url, "/waiting", cookie_header(http))
    ack = await clinic.call(
        "message", {"appointment_id": str(v.appointment.id), "text": WAITING_TEXT}
    )
    assert ack["ok"] is True
    assert (await patient_waiting.wait_for("message"))["text"] == WAITING_TEXT
    status = await (await http.get(f"/api/join/{v.token}/status")).json()
    assert [m["text"] for m in status["messages"]] == [WAITING_TEXT]

    admitted = await clinic.call("admit", {"appointment_id": str(v.appointment.id)})
    visit_id = str(admitted["visit_id"])
    provider = await sockets(url, "/visit", provider_headers, {"visit_id": visit_id})
    patient = await sockets(url, "/visit", cookie_header(http), {"visit_id": visit_id})
    await provider.wait_for("joined")
    await patient.wait_for("joined")
    assert (await patient.call("chat", {"text": CHAT_TEXT}))["ok"] is True
    assert (await provider.wait_for("chat"))["text"] == CHAT_TEXT
    later = await sockets(url, "/visit", provider_headers, {"visit_id": visit_id})
    assert [m["text"] for m in (await later.wait_for("joined"))["messages"]] == [CHAT_TEXT]
    return visit_id, provider_headers


async def test_chat_and_waiting_messages_are_not_readable_in_the_database(
    server, http_clients, waiting: WaitingFactory, sockets, db: Database, settings: Settings
):
    await message_and_chat(server, http_clients, waiting, sockets)
    (waiting_raw,) = await raw_texts(db, "waiting_message")
    (chat_raw,) = await raw_texts(db, "visit_message")
    for raw in (waiting_raw, chat_raw):
        assert "chest pain" not in raw and raw.startswith("oc1s:dev1:"), raw
    if db.is_sqlite:
        path = Path(settings.resolved_database_url.removeprefix("sqlite+aiosqlite:///"))
        for part in path.parent.glob(path.name + "*"):  # the file, its WAL and shared memory
            assert b"chest pain" not in part.read_bytes(), part.name


async def test_rotation_seals_chat_under_the_new_key_and_seals_older_plain_lines(
    server, http_clients, waiting: WaitingFactory, sockets, db: Database, settings: Settings
):
    visit_id, provider_headers = await message_and_chat(server, http_clients, waiting, sockets)
    # A line stored before this release, in plain text: the visit still shows it.
    async with db.engine.begin() as conn:
        await conn.execute(
            sa.insert(VisitMessage).values(
                id=uuid.uuid4(),
                visit_id=uuid.UUID(visit_id),
                author_role="provider",
                author_name="Dr Old",
                text=sa.type_coerce(LEGACY_TEXT, sa.Text),
                sent_at=utcnow() + timedelta(seconds=1),
            )
        )
    assert LEGACY_TEXT in await raw_texts(db, "visit_message")
    url = str(server.make_url("/"))
    joined = await (
        await sockets(url, "/visit", provider_headers, {"visit_id": visit_id})
    ).wait_for("joined")
    assert [m["text"] for m in joined["messages"]] == [CHAT_TEXT, LEGACY_TEXT]

    old_keys = settings.note_keys.get_secret_value()  # type: ignore[union-attr]
    rotated = settings.model_copy(
        update={"note_keys": SecretStr(f"{old_keys},{new_note_key('k2')}"), "note_active_key": "k2"}
    )
    report = await rotate_note_key(db, Keyring.from_settings(rotated))
    assert (report.chat_lines, report.waiting_messages) == (2, 1)
    for table in ("visit_message", "waiting_message"):
        for raw in await raw_texts(db, table):
            assert raw.startswith("oc1s:k2:") and "chest pain" not in raw, raw

    reader = Database.from_settings(rotated)
    try:
        async with reader.session() as session:
            chat = {m.text for m in (await session.exec(select(VisitMessage))).all()}
            waiting_texts = [m.text for m in (await session.exec(select(WaitingMessage))).all()]
        assert chat == {CHAT_TEXT, LEGACY_TEXT}
        assert waiting_texts == [WAITING_TEXT]
    finally:
        await reader.dispose()
    again = await rotate_note_key(db, Keyring.from_settings(rotated))
    assert (again.chat_lines, again.waiting_messages) == (0, 0)
