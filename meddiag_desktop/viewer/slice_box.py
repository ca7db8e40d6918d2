"""pyqtgraph view boxes where the mouse wheel pages through slices instead of zooming.

Scrolling is what a reader does most; zoom stays on Ctrl+wheel, so nothing is lost.
:class:`SliceViewBox` (the single-plane view) keeps pyqtgraph's right-drag zoom;
:class:`PlaneViewBox` (the MPR views) gives the buttons the jobs they have in a PACS.
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


class PlaneViewBox(SliceViewBox):
    """The view box of one MPR plane: every mouse button has the job a reader expects.

    - left: press/drag/release in view coordinates (millimetres), for the crosshair or a tool;
    - middle-drag: pan (pyqtgraph's own translation);
    - right-drag: window/level, reported as the screen-pixel offset since the drag started;
    - wheel: slice steps; Ctrl+wheel: zoom about the pointer (from :class:`SliceViewBox`).
    """

    left_pressed = Signal(float, float)
    left_dragged = Signal(float, float)
    left_released = Signal(float, float)
    window_drag_started = Signal()
    window_dragged = Signal(float, float)  # dx, dy in screen pixels since the drag started

    def mouseClickEvent(self, ev) -> None:
        if ev.button() != Qt.MouseButton.LeftButton:
            ev.ignore()
            return
        ev.accept()
        point = self.mapToView(ev.pos())
        self.left_pressed.emit(point.x(), point.y())
        self.left_released.emit(point.x(), point.y())

    def mouseDragEvent(self, ev, axis=None) -> None:
        button = ev.button()
        if button == Qt.MouseButton.MiddleButton:
            super().mouseDragEvent(ev, axis)  # pan
            return
        ev.accept()
        if button == Qt.MouseButton.RightButton:
            if ev.isStart():
                self.window_drag_started.emit()
            offset = ev.screenPos() - ev.buttonDownScreenPos(button)
            self.window_dragged.emit(offset.x(), offset.y())
        elif button == Qt.MouseButton.LeftButton:
            point = self.mapToView(ev.pos())
            if ev.isStart():
                start = self.mapToView(ev.buttonDownPos(button))
                self.left_pressed.emit(start.x(), start.y())
            if ev.isFinish():
                self.left_released.emit(point.x(), point.y())
            else:
                self.left_dragged.emit(point.x(), point.y())
