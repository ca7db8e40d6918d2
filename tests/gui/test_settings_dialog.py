"""The settings dialog edits AppSettings and will not accept a database that cannot work."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from meddiag_desktop.app.app_settings import AppSettings, Theme
from meddiag_desktop.app.settings_dialog import (
    SettingsDialog,
    database_problem,
    model_folder_problem,
)

pytestmark = pytest.mark.gui


def _dialog(qtbot, settings: AppSettings) -> SettingsDialog:
    dialog = SettingsDialog(settings)
    qtbot.addWidget(dialog)
    return dialog


def test_edits_and_returns_settings(qtbot, tmp_path: Path, artifacts_dir: Path) -> None:
    start = AppSettings(provider="cpu")
    dialog = _dialog(qtbot, start)
    assert dialog.settings() == start and dialog.ok_button.isEnabled()
    dialog.model_folder.setText(str(tmp_path))
    dialog.database.setText(str(tmp_path / "cases.sqlite3"))
    dialog.provider.setCurrentIndex(dialog.provider.findData("auto"))
    dialog.theme.setCurrentIndex(dialog.theme.findData("light"))
    assert dialog.ok_button.isEnabled() and dialog.problems() == []
    dialog.ok_button.click()
    assert dialog.result() == SettingsDialog.DialogCode.Accepted
    assert dialog.settings() == AppSettings(
        model_folder=str(tmp_path),
        database=str(tmp_path / "cases.sqlite3"),
        provider="auto",
        theme=Theme.LIGHT,
    )


def test_a_bad_database_path_says_why(qtbot, tmp_path: Path, artifacts_dir: Path) -> None:
    dialog = _dialog(qtbot, AppSettings())
    dialog.database.setText(str(tmp_path))  # a folder
    assert not dialog.ok_button.isEnabled()
    assert dialog.database_problem.isVisibleTo(dialog)
    assert "is a folder: give a file name" in dialog.database_problem.text()
    dialog.model_folder.setText(str(tmp_path / "missing"))
    assert "does not exist" in dialog.model_folder_problem.text()
    dialog.resize(680, 300)
    dialog.show()
    qtbot.wait(20)
    dialog.grab().save(str(artifacts_dir / "settings_dialog_problem.png"))
    dialog.accept()  # OK via the keyboard is refused too
    assert dialog.isVisible() and dialog.result() != SettingsDialog.DialogCode.Accepted

    dialog.database.setText("")
    dialog.model_folder.setText("")
    assert dialog.ok_button.isEnabled() and not dialog.database_problem.isVisibleTo(dialog)


def test_database_problems(tmp_path: Path) -> None:
    assert database_problem("") == ""
    assert database_problem(str(tmp_path / "new" / "deeper" / "cases.sqlite3")) == ""
    assert database_problem("postgresql+psycopg://reader@server/meddiag") == ""
    assert "unsupported database URL" in database_problem("mysql://server/db")
    text_file = tmp_path / "notes.txt"
    text_file.write_text("not a database")
    assert "is not a SQLite database" in database_problem(str(text_file))
    assert "is a file, so" in database_problem(str(text_file / "cases.sqlite3"))
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        try:
            assert "cannot be written" in database_problem(str(locked / "cases.sqlite3"))
        finally:
            locked.chmod(0o700)
    assert model_folder_problem(str(text_file)).endswith("is a file, not a folder")
