"""Signing in to the app when login is on: a user name and password before any case shows.

:func:`ask_to_sign_in` runs at start (from :func:`meddiag_desktop.app.main.build_window`) and
returns the database acting as the user whose password matched; the screen lock
(:mod:`meddiag_desktop.app.screen_lock`) reuses :class:`SignInForm` with the name fixed. The
checks, the audit events and the slow-down after failures are the core's
(:func:`meddiag_desktop.db.login.sign_in`); this module only asks and says what it answered.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from meddiag_desktop.db.engine import Database
from meddiag_desktop.db.errors import CaseDatabaseError
from meddiag_desktop.db.login import login_required, sign_in, signed_in_user
from meddiag_desktop.safe_text import printable

APP_TITLE = "MedDiag Desktop"
SignInPrompt = Callable[[Database], Database | None]  # the database as the user, or None: quit


class SignInCancelled(Exception):
    """Nobody signed in (the dialog was closed): the app quits without showing a case."""


def sentence(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


class SignInForm(QWidget):
    """User name, password and the last refusal; :meth:`try_sign_in` asks the core."""

    signed_in = Signal(object)  # Database: acting as the user who signed in

    def __init__(
        self, database: Database, username: str = "", parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._db = database
        self.username = QLineEdit(username)
        self.username.setObjectName("signInName")
        self.username.setPlaceholderText("user name")
        self.username.setReadOnly(bool(username))
        self.password = QLineEdit()
        self.password.setObjectName("signInPassword")
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setPlaceholderText("password")
        self.error = QLabel()
        self.error.setObjectName("signInError")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #ff7b72; font-weight: bold;")
        self.error.hide()
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("User name", self.username)
        form.addRow("Password", self.password)
        form.addRow(self.error)
        self.username.returnPressed.connect(self.password.setFocus)
        self.password.returnPressed.connect(self.try_sign_in)

    def focus(self) -> None:
        (self.password if self.username.text() else self.username).setFocus()

    def try_sign_in(self) -> Database | None:
        """Check the name and password; the signed-in database, or None (the reason shown)."""
        name = self.username.text().strip()
        password = self.password.text()
        self.password.clear()  # never kept in a widget longer than the check
        if not name or not password:
            self._refuse("Type your user name and password.")
            return None
        try:
            signed = sign_in(self._db, name, password)
        except CaseDatabaseError as exc:
            self._refuse(sentence(str(exc)))
            return None
        self.error.hide()
        self.signed_in.emit(signed)
        return signed

    def _refuse(self, message: str) -> None:
        self.error.setText(printable(message))
        self.error.show()
        self.focus()


class LoginDialog(QDialog):
    """The start-up sign-in: nothing of the case database shows until it is accepted."""

    def __init__(self, database: Database, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Sign in — {APP_TITLE}")
        self.setObjectName("loginDialog")
        self.setMinimumWidth(420)
        self.database: Database | None = None
        title = QLabel(f"<h3>Sign in to {APP_TITLE}</h3>")
        where = QLabel(
            "Login is required on this workstation. Your name is recorded with everything you "
            f"review, sign and export.<br><small>Case database: "
            f"{printable(database.display_url)}</small>"
        )
        where.setWordWrap(True)
        where.setTextFormat(Qt.TextFormat.RichText)
        self.form = SignInForm(database)
        self.buttons = QDialogButtonBox()
        self.sign_in_button = self.buttons.addButton(
            "Sign in", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.sign_in_button.setDefault(True)
        self.quit_button = self.buttons.addButton("Quit", QDialogButtonBox.ButtonRole.RejectRole)
        self.buttons.accepted.connect(self.form.try_sign_in)
        self.buttons.rejected.connect(self.reject)
        self.form.signed_in.connect(self._signed_in)
        layout = QVBoxLayout(self)
        layout.addWidget(title)
        layout.addWidget(where)
        layout.addSpacing(6)
        layout.addWidget(self.form)
        layout.addWidget(self.buttons)
        self.form.focus()

    def _signed_in(self, database: Database) -> None:
        self.database = database
        self.accept()


def ask_to_sign_in(database: Database) -> Database | None:
    """Show the sign-in dialog until someone signs in (the database as them) or quits (None)."""
    dialog = LoginDialog(database)
    return dialog.database if dialog.exec() == QDialog.DialogCode.Accepted else None


def user_status_text(database: Database) -> str:
    """Who is working, for the status bar: the signed-in user, or the OS user without login."""
    user = signed_in_user(database)
    who = user.display_name or user.username if user is not None else database.actor
    role = f" ({user.role.value})" if user is not None else ""
    if login_required(database):
        return printable(f"Signed in: {who}{role}")
    return printable(f"{who}{role} · login off")
