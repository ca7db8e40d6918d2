"""The start-up dialog that asks an encrypted case database's passphrase.

Shown by :func:`~meddiag_desktop.app.main.build_window` only when the database is encrypted
and neither ``$MEDDIAG_DB_PASSPHRASE`` nor the OS keyring gives its key. The passphrase is
checked against the database's key file here (a wrong one keeps the dialog open with the
reason), never logged, and handed to the database settings only.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from meddiag_desktop.db.encryption_keys import WrongPassphraseError, unlock


class PassphraseDialog(QDialog):
    """Asks the passphrase of ``database_file`` until it opens it, or the user cancels."""

    def __init__(self, database_file: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.database_file = database_file
        self.passphrase: str | None = None
        self.setWindowTitle("Encrypted case database")
        layout = QVBoxLayout(self)
        intro = QLabel(
            f"The case database <b>{database_file.name}</b> in {database_file.parent} is "
            "encrypted. Enter its passphrase to open it."
        )
        intro.setTextFormat(Qt.TextFormat.RichText)
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.field = QLineEdit()
        self.field.setEchoMode(QLineEdit.EchoMode.Password)
        self.field.setAccessibleName("Passphrase")
        layout.addWidget(self.field)
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color: #c0392b")
        self.problem.hide()
        layout.addWidget(self.problem)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Open | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def accept(self) -> None:
        """Check the passphrase first: only one that opens the database closes the dialog."""
        text = self.field.text()
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)  # the KDF takes ~0.2 s
        try:
            unlock(self.database_file, text)
        except WrongPassphraseError as exc:
            self.problem.setText(str(exc))
            self.problem.show()
            self.field.clear()
            self.field.setFocus()
            return
        finally:
            QApplication.restoreOverrideCursor()
        self.passphrase = text
        super().accept()


def ask_database_passphrase(database_file: Path, parent: QWidget | None = None) -> str | None:
    """The passphrase that opens ``database_file``; None when the user cancelled."""
    dialog = PassphraseDialog(database_file, parent)
    return dialog.passphrase if dialog.exec() == QDialog.DialogCode.Accepted else None
