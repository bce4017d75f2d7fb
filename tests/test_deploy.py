"""The deployment files speak the app's language: commands and settings that exist."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from app.__main__ import build_parser
from app.core.config import setting_names

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
THIRD_PARTY = {"postgres", "redis"}


def test_compose_sets_only_settings_the_app_knows():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    known = setting_names()
    app_services = {k: v for k, v in compose["services"].items() if k not in THIRD_PARTY}
    assert len(app_services) >= 2, "the compose file runs several app processes"
    for name, service in app_services.items():
        env = service["environment"]
        assert set(env) <= known, f"{name}: unknown settings {set(env) - known}"
        assert env["DATABASE_URL"].startswith("postgresql://")
        assert env["REDIS_URL"].startswith("redis://")
        assert env["OPENCONSULT_ENV"] == "production"
        # Production has no development mailbox: the operator's SMTP server is passed through.
        assert env["OPENCONSULT_SMTP_HOST"] == "${OPENCONSULT_SMTP_HOST:-}"
    assert {"postgres", "redis"} <= set(compose["services"])


def test_dockerfile_runs_a_real_command_with_known_settings():
    text = (DEPLOY / "Dockerfile").read_text()
    assert 'CMD ["python", "-m", "app", "serve"]' in text
    build_parser().parse_args(["serve"])
    app_names = set(re.findall(r"\b(OPENCONSULT_[A-Z_]+)=", text))
    assert app_names and app_names <= setting_names()
