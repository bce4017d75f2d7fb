"""Note encryption: keys from settings, binding to row and field, key rotation."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from app.__main__ import main
from app.core.config import Settings, SettingsError, load_settings, new_note_key
from app.core.db import Database
from app.main import create_app
from app.records.crypto import DecryptionError, Keyring, Sealed, associated_data
from app.records.rotation import rotate_note_key
from tests.conftest import TEST_SECRET
from tests.records.conftest import Ward


def keyring(*entries: str, active: str) -> Keyring:
    settings = load_settings(
        env="test", secret_key=TEST_SECRET, note_keys=",".join(entries), note_active_key=active
    )
    return Keyring.from_settings(settings)


def test_seal_and_open_round_trip() -> None:
    ring = keyring(new_note_key("a"), active="a")
    row = uuid.uuid4()
    sealed = ring.seal(b"plan: rest", aad=associated_data("consult_note", row, "body"))
    assert sealed.key_id == "a" and b"rest" not in sealed.blob
    assert ring.open(sealed, aad=associated_data("consult_note", row, "body")) == b"plan: rest"


def test_ciphertext_moved_to_another_row_or_field_does_not_open() -> None:
    ring = keyring(new_note_key("a"), active="a")
    row, other = uuid.uuid4(), uuid.uuid4()
    sealed = ring.seal(b"secret", aad=associated_data("consult_note", row, "body"))
    with pytest.raises(DecryptionError):
        ring.open(sealed, aad=associated_data("consult_note", other, "body"))
    with pytest.raises(DecryptionError):
        ring.open(sealed, aad=associated_data("note_addendum", row, "body"))
    with pytest.raises(DecryptionError):
        ring.open(sealed, aad=associated_data("consult_note", row, "reason"))
    tampered = Sealed(sealed.key_id, sealed.blob[:-1] + bytes([sealed.blob[-1] ^ 1]))
    with pytest.raises(DecryptionError):
        ring.open(tampered, aad=associated_data("consult_note", row, "body"))


def test_unknown_or_wrong_key_does_not_open() -> None:
    a, b = new_note_key("a"), new_note_key("b")
    row = uuid.uuid4()
    sealed = keyring(a, active="a").seal(b"x", aad=associated_data("t", row, "f"))
    with pytest.raises(DecryptionError, match="not configured"):
        keyring(b, active="b").open(sealed, aad=associated_data("t", row, "f"))
    impostor = "a:" + b.partition(":")[2]
    with pytest.raises(DecryptionError):
        keyring(impostor, active="a").open(sealed, aad=associated_data("t", row, "f"))


@pytest.mark.parametrize(
    ("keys", "active", "message"),
    [
        ("nocolon", None, "keyid:base64key"),
        ("a:not base64!", None, "base64"),
        ("a:AAAA", None, "32 bytes"),
        (f"{new_note_key('a')},{new_note_key('a')}", "a", "twice"),
        (f"{new_note_key('a')},{new_note_key('b')}", None, "active"),
        (new_note_key("a"), "zz", "not listed"),
    ],
)
def test_bad_note_keys_stop_the_app(keys: str, active: str | None, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(env="test", secret_key=TEST_SECRET, note_keys=keys, note_active_key=active)


def test_production_refuses_to_start_without_note_keys(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="OPENCONSULT_NOTE_KEYS"):
        load_settings(env="production", secret_key=TEST_SECRET, data_dir=tmp_path)
    assert not (tmp_path / "note_keys").exists()
    settings = load_settings(
        env="production",
        secret_key=TEST_SECRET,
        note_keys=new_note_key("p1"),
        audit_keys=new_note_key("a1"),
        data_dir=tmp_path,
    )
    assert Keyring.from_settings(settings).active == "p1"


def test_development_key_is_generated_once_in_the_data_folder(tmp_path: Path) -> None:
    first = load_settings(env="development", secret_key=TEST_SECRET, data_dir=tmp_path)
    second = load_settings(env="development", secret_key=TEST_SECRET, data_dir=tmp_path)
    assert first.note_keyring == second.note_keyring
    assert first.note_active_key == "dev1"
    assert (tmp_path / "note_keys").stat().st_mode & 0o077 == 0


async def test_rotation_reencrypts_every_row(
    ward: Ward,
    db: Database,
    settings: Settings,
    settings_factory: Callable[..., Settings],
    aiohttp_client: Any,
) -> None:
    note = await ward.signed_note({"plan": "Before rotation"})
    await ward.addendum(note, "why", "addendum text")
    draft = await ward.create_note({"subjective": "draft text"})
    old_keys = settings.note_keys
    assert isinstance(old_keys, SecretStr)
    rotated = settings_factory(
        note_keys=f"{old_keys.get_secret_value()},{new_note_key('k2')}", note_active_key="k2"
    )
    report = await rotate_note_key(db, Keyring.from_settings(rotated))
    assert (report.notes, report.addenda) == (2, 1)
    async with db.engine.connect() as conn:
        keys = (await conn.execute(sa.text("SELECT key_id FROM consult_note"))).all()
        keys += (await conn.execute(sa.text("SELECT key_id FROM note_addendum"))).all()
    assert {k[0] for k in keys} == {"k2"}
    again = await rotate_note_key(db, Keyring.from_settings(rotated))
    assert (again.notes, again.addenda) == (0, 0)

    # An app that knows only the new key reads everything; the draft kept its version.
    new_only = rotated.note_keys.get_secret_value().split(",")[-1]  # type: ignore[union-attr]
    client = await aiohttp_client(create_app(settings_factory(note_keys=new_only)))
    resp = await client.get(f"/api/notes/{note['id']}", headers=ward.author.headers)
    body = await resp.json()
    assert body["sections"]["plan"] == "Before rotation"
    assert body["addenda"][0]["text"] == "addendum text"
    resp = await client.get(f"/api/notes/{draft['id']}", headers=ward.author.headers)
    body = await resp.json()
    assert body["sections"]["subjective"] == "draft text" and body["version"] == draft["version"]


async def test_rotate_note_key_command(
    ward: Ward, settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    note = await ward.signed_note({"plan": "cli rotation"})
    old = settings.note_keys.get_secret_value()  # type: ignore[union-attr]
    monkeypatch.setenv("OPENCONSULT_ENV", "test")
    monkeypatch.setenv("OPENCONSULT_SECRET_KEY", TEST_SECRET)
    monkeypatch.setenv("DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("OPENCONSULT_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("OPENCONSULT_NOTE_KEYS", f"{old},{new_note_key('cli2')}")
    monkeypatch.setenv("OPENCONSULT_NOTE_ACTIVE_KEY", "cli2")
    assert await _run_main(["rotate-note-key"]) == 0
    assert (
        "re-encrypted 1 notes, 0 addenda, 0 visit chat lines, 0 waiting-room messages, "
        "2 two-step sign-in secrets, 0 intake answer sets and 0 visit attachments "
        "under key 'cli2'" in capsys.readouterr().out
    )
    del note


async def _run_main(argv: list[str]) -> int:
    """The CLI runs its own event loop; run it in a thread from this async test."""
    import asyncio

    return await asyncio.to_thread(main, argv)
