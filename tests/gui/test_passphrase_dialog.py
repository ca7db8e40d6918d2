"""The start-up passphrase dialog of an encrypted case database, and the hook that shows it."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QDialog

from meddiag_desktop.app.main import build_window
from meddiag_desktop.app.passphrase_dialog import PassphraseDialog
from meddiag_desktop.db import encryption_keys
from meddiag_desktop.db.encryption_conversion import encrypt_database
from meddiag_desktop.db.encryption_keys import (
    PASSPHRASE_ENVIRONMENT_VARIABLE,
    KdfParameters,
    PassphraseRequiredError,
)
from meddiag_desktop.db.engine import Database, DatabaseSettings

pytestmark = pytest.mark.gui
PASSPHRASE = "correct horse battery staple"


@pytest.fixture
def encrypted_file(settings: QSettings, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The settings' database, encrypted (cheap KDF: the tests check behaviour)."""
    monkeypatch.delenv(PASSPHRASE_ENVIRONMENT_VARIABLE, raising=False)
    monkeypatch.setattr(encryption_keys, "keyring_key", lambda _path: None)
    path = Path(str(settings.value("database/location")))
    Database.open(DatabaseSettings(url=str(path))).close()
    encrypt_database(path, PASSPHRASE, kdf=KdfParameters(1, 64, 1))
    return path


def test_a_wrong_passphrase_keeps_the_dialog_open_with_the_reason(
    qtbot, encrypted_file: Path
) -> None:
    dialog = PassphraseDialog(encrypted_file)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.field.setText("not the passphrase")
    dialog.accept()
    assert dialog.isVisible() and dialog.passphrase is None
    assert "this passphrase does not open it" in dialog.problem.text()
    assert dialog.field.text() == ""
    dialog.field.setText(PASSPHRASE)
    dialog.accept()
    assert dialog.result() == QDialog.DialogCode.Accepted and dialog.passphrase == PASSPHRASE


def test_the_app_asks_for_the_passphrase_of_an_encrypted_database(
    qtbot, settings: QSettings, encrypted_file: Path
) -> None:
    asked: list[Path] = []

    def ask(path: Path) -> str | None:
        asked.append(path)
        return PASSPHRASE

    window = build_window(settings, ask)
    qtbot.addWidget(window)
    try:
        assert asked == [encrypted_file.resolve()]
        assert window.database.key is not None
    finally:
        window.close()
        window.database.close()
    with pytest.raises(PassphraseRequiredError):
        build_window(settings, lambda _path: None)  # cancelled: main() shows why and exits
