"""The README's first screen gives the two commands, and CI runs the test one verbatim."""

from __future__ import annotations

import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    first_screen = "\n".join(text.splitlines()[:30])
    return re.findall(r"```sh\n(.+?)\n```", first_screen)


def test_first_screen_has_start_and_test_commands() -> None:
    commands = _readme_commands()
    assert any("meddiag-desktop" in c for c in commands), commands
    assert any("pytest" in c for c in commands), commands


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    test_command = next(c for c in _readme_commands() if "pytest" in c)
    ci_lines = (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert test_command in ci_lines


def test_readme_says_not_a_medical_device() -> None:
    assert "not a medical device" in (REPO_ROOT / "README.md").read_text(encoding="utf-8")
