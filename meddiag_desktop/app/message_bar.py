"""An inline, non-modal message strip for errors and notices.

A modal dialog blocks the reading workflow (and tests); a strip above the images says what went
wrong in plain words, stays until dismissed or replaced, and never shows a traceback.
"""

from __future__ import annotations

from enum import StrEnum

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QWidget

from meddiag_desktop.safe_text import printable


class MessageLevel(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


_PREFIX = {MessageLevel.INFO: "ℹ", MessageLevel.WARNING: "⚠", MessageLevel.ERROR: "✖"}


class MessageBar(QFrame):
    """Shows one message at a time; the level drives the colour through the style sheet."""

    dismissed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("messageBar")
        self._level = MessageLevel.INFO
        self._label = QLabel()
        self._label.setWordWrap(True)
        self._label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton()
        close.setText("✕")
        close.setToolTip("Dismiss")
        close.setAutoRaise(True)
        close.clicked.connect(self.dismiss)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        layout.addWidget(self._label, 1)
        layout.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        self.hide()

    @property
    def level(self) -> MessageLevel:
        return self._level

    def text(self) -> str:
        return self._label.text()

    def show_message(self, text: str, level: MessageLevel = MessageLevel.INFO) -> None:
        self._level = level
        # Messages quote file names and scan headers: never show their control characters.
        self._label.setText(f"{_PREFIX[level]}  {printable(text, keep_lines=True)}")
        self.setProperty("level", str(level))
        self.style().unpolish(self)  # re-evaluate [level="..."] style-sheet selectors
        self.style().polish(self)
        self.show()

    def dismiss(self) -> None:
        self._label.clear()
        self.hide()
        self.dismissed.emit()
