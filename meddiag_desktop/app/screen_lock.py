"""The idle lock: after N minutes without input the window is covered, the work kept in memory.

With login on (:mod:`meddiag_desktop.db.login`), no keyboard or mouse input for the site's idle
minutes covers the whole window with an opaque panel asking the signed-in user's password. What
was open (the case, the viewer, an unsaved edit) stays as it was underneath: unlocking shows it
again. The menus, toolbars and panels are disabled while locked and keyboard shortcuts outside
the panel are swallowed, so nothing can be reviewed through it. Only the same user unlocks;
another user closes the app (after which they sign in at the next start).
"""

from __future__ import annotations

import contextlib
import html

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QApplication,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from meddiag_desktop.app.login_dialog import SignInForm
from meddiag_desktop.db.engine import Database
from meddiag_desktop.db.errors import CaseDatabaseError
from meddiag_desktop.db.login import record_screen_lock
from meddiag_desktop.safe_text import printable

_ACTIVITY = frozenset(
    {
        QEvent.Type.KeyPress,
        QEvent.Type.MouseButtonPress,
        QEvent.Type.MouseMove,
        QEvent.Type.Wheel,
        QEvent.Type.TouchBegin,
    }
)
_SHORTCUTS = frozenset({QEvent.Type.Shortcut, QEvent.Type.ShortcutOverride})


class LockPanel(QFrame):
    """The opaque cover: who is signed in, their password, Unlock, Close MedDiag."""

    def __init__(self, database: Database, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("lockPanel")
        self.setAutoFillBackground(True)
        self.setStyleSheet("#lockPanel { background: #101418; }")
        title = QLabel("<h2>Screen locked</h2>")
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        who = html.escape(printable(database.actor))
        self.who = QLabel(
            f"Signed in as <b>{who}</b>. Your open case and unsaved work are kept: type your "
            "password to go on. Someone else? Close MedDiag (unsaved edits are lost) and sign "
            "in at the next start."
        )
        self.who.setTextFormat(Qt.TextFormat.RichText)
        self.who.setWordWrap(True)
        self.form = SignInForm(database, username=database.actor)
        self.unlock_button = QPushButton("Unlock")
        self.unlock_button.setDefault(True)
        self.close_button = QPushButton("Close MedDiag")
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)
        buttons.addWidget(self.unlock_button)
        box = QFrame()
        box.setMaximumWidth(460)
        inner = QVBoxLayout(box)
        inner.addWidget(title)
        inner.addWidget(self.who)
        inner.addSpacing(8)
        inner.addWidget(self.form)
        inner.addLayout(buttons)
        outer = QVBoxLayout(self)
        outer.addStretch(1)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(box, 2)
        row.addStretch(1)
        outer.addLayout(row)
        outer.addStretch(2)
        self.unlock_button.clicked.connect(self.form.try_sign_in)
        self.hide()


class ScreenLock(QObject):
    """Watches the application's input; locks ``window`` after ``idle_minutes`` without any."""

    locked_changed = Signal(bool)

    def __init__(self, window: QMainWindow, database: Database, idle_minutes: int) -> None:
        super().__init__(window)
        self._window = window
        self._db = database
        self._minutes = idle_minutes
        self._locked = False
        self.panel = LockPanel(database, window)
        self.panel.form.signed_in.connect(self._unlocked)
        self.panel.close_button.clicked.connect(window.close)
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(idle_minutes * 60_000)
        self.timer.timeout.connect(self._idle)
        window.installEventFilter(self)  # resizes: the panel keeps covering the window
        app = QApplication.instance()
        if app is not None:
            app.installEventFilter(self)
        self.timer.start()

    @property
    def locked(self) -> bool:
        return self._locked

    @property
    def idle_minutes(self) -> int:
        return self._minutes

    def lock(self, idle: bool = False) -> None:
        """Cover the window now (after the idle time, or on request)."""
        if self._locked:
            return
        self._locked = True
        self.timer.stop()
        self._set_window_usable(False)
        self.panel.setGeometry(self._window.rect())
        self.panel.show()
        self.panel.raise_()
        self.panel.form.focus()
        with contextlib.suppress(CaseDatabaseError):  # locking never fails for the database
            record_screen_lock(self._db, True, self._minutes if idle else None)
        self.locked_changed.emit(True)

    def _idle(self) -> None:
        self.lock(idle=True)

    def _unlocked(self, _database: Database) -> None:
        self._locked = False
        self.panel.hide()
        self._set_window_usable(True)
        with contextlib.suppress(CaseDatabaseError):
            record_screen_lock(self._db, False)
        self.timer.start()
        self.locked_changed.emit(False)

    def _set_window_usable(self, usable: bool) -> None:
        window = self._window
        for widget in (window.centralWidget(), window.menuBar(), window.statusBar()):
            if widget is not None:
                widget.setEnabled(usable)
        for bar in window.findChildren(QWidget, options=Qt.FindChildOption.FindDirectChildrenOnly):
            if bar is not self.panel and bar.inherits("QToolBar"):
                bar.setEnabled(usable)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if watched is self._window and kind == QEvent.Type.Resize and self._locked:
            self.panel.setGeometry(self._window.rect())
        if not self._locked:
            if kind in _ACTIVITY:
                self.timer.start()  # restart the idle count
            return False
        # No review key reaches the window while it is locked.
        return kind in _SHORTCUTS and not self._inside_panel(watched)

    def _inside_panel(self, watched: QObject) -> bool:
        widget = watched if isinstance(watched, QWidget) else None
        while widget is not None:
            if widget is self.panel:
                return True
            widget = widget.parentWidget()
        return False
