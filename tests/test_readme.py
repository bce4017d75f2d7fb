"""The README opens with the two commands, CI runs the same test command, settings are listed."""

from __future__ import annotations

import re
from pathlib import Path

from app.core.config import setting_names

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```sh\n(.+?)\n```", text.split("## ", 1)[0])


def test_readme_opens_with_exactly_two_commands():
    commands = _readme_commands()
    assert len(commands) == 2
    run, test = commands
    assert "python -m app seed-demo" in run and "python -m app serve" in run
    assert test.endswith(".venv/bin/pytest")


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert _readme_commands()[1] in ci


def test_every_setting_is_documented():
    readme = (ROOT / "README.md").read_text()
    missing = {name for name in setting_names() if f"`{name}`" not in readme}
    assert missing == set()
