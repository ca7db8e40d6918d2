"""A pyqtgraph view box where the mouse wheel pages through slices instead of zooming.

Scrolling is what a reader does most; zoom stays on Ctrl+wheel (and right-drag, pyqtgraph's
default), so nothing is lost.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal

_WHEEL_STEP = 120  # one notch of a standard mouse wheel, in eighths of a degree


class SliceViewBox(pg.ViewBox):
    """Locked-aspect view box that reports wheel notches as slice steps."""

    wheel_scrolled = Signal(int)

    def __init__(self) -> None:
        super().__init__(lockAspect=True, invertY=True, enableMenu=False)
        self._pending_delta = 0

    def wheelEvent(self, ev, axis=None) -> None:
        if ev.modifiers() & Qt.KeyboardModifier.ControlModifier:
            super().wheelEvent(ev, axis)
            return
        self._pending_delta += ev.delta()
        steps = int(self._pending_delta / _WHEEL_STEP)  # touchpads send fractions of a notch
        if steps:
            self._pending_delta -= steps * _WHEEL_STEP
            self.wheel_scrolled.emit(-steps)  # wheel away from you = previous slice
        ev.accept()
