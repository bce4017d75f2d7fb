"""Settings fail fast on values the app cannot run with."""

from __future__ import annotations

import pytest

from app.core.config import SettingsError, load_settings

TEST_NOTE_KEYS = "k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="  # a test key, not a secret
TEST_AUDIT_KEYS = "a1:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI="  # a test key, not a secret


@pytest.mark.parametrize("secret", [None, "changeme", "change-me", "short-but-real"])
def test_production_refuses_missing_placeholder_or_short_secrets(secret, tmp_path):
    values = {"env": "production", "data_dir": tmp_path, "note_keys": TEST_NOTE_KEYS}
    if secret is not None:
        values["secret_key"] = secret
    with pytest.raises(SettingsError, match="OPENCONSULT_SECRET_KEY"):
        load_settings(**values)


def test_production_accepts_a_real_secret(tmp_path):
    settings = load_settings(
        env="production",
        secret_key="s" * 40,
        note_keys=TEST_NOTE_KEYS,
        audit_keys=TEST_AUDIT_KEYS,
        data_dir=tmp_path,
    )
    assert settings.secure_cookies is True
    assert not (tmp_path / "secret_key").exists()


def test_development_generates_and_keeps_a_secret(tmp_path):
    first = load_settings(env="development", data_dir=tmp_path)
    second = load_settings(env="development", data_dir=tmp_path)
    assert len(first.secret) >= 32
    assert first.secret == second.secret
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_database_urls_are_normalised(tmp_path, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    pg = load_settings(DATABASE_URL="postgresql://u@h/db", data_dir=tmp_path)
    assert pg.resolved_database_url == "postgresql+asyncpg://u@h/db"
    default = load_settings(data_dir=tmp_path)
    assert default.resolved_database_url.startswith("sqlite+aiosqlite:///")
    assert default.is_sqlite


def test_out_of_range_values_name_the_setting(tmp_path):
    with pytest.raises(SettingsError, match="OPENCONSULT_SESSION_IDLE_MINUTES"):
        load_settings(session_idle_minutes=0, data_dir=tmp_path)


def test_relay_forwarding_is_packet_unless_set_to_frame(tmp_path):
    assert load_settings(data_dir=tmp_path).relay_forwarding == "packet"
    assert load_settings(data_dir=tmp_path, relay_forwarding="frame").relay_forwarding == "frame"
    with pytest.raises(SettingsError, match="OPENCONSULT_RELAY_FORWARDING"):
        load_settings(data_dir=tmp_path, relay_forwarding="frames")
