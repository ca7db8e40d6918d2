"""The brush and the eraser: drag in any plane view to paint or clear a lesion label.

The tool turns view positions (display millimetres) into stamps of a :class:`MaskEditor`; one
press-drag-release is one undo step. Between two mouse positions it stamps the swept band, so a
fast drag leaves no gaps. The circle cursor has the brush's size in millimetres, so it shows what
a stamp will cover at any zoom.
"""

from __future__ import annotations

from enum import StrEnum

import pyqtgraph as pg
from PySide6.QtCore import QObject, QRectF, Qt, Signal
from PySide6.QtWidgets import QGraphicsEllipseItem

from meddiag_desktop.viewer.mask_editor import MaskEditor, RowColumn
from meddiag_desktop.viewer.plane_geometry import PlaneMapping
from meddiag_desktop.viewer.view_tool import PlaneViewLike

MIN_RADIUS_MM = 0.25
MAX_RADIUS_MM = 100.0
_RADIUS_STEP = 1.25  # one `[` or `]` press
_PAINT_COLOUR = "#4fc3f7"
_ERASE_COLOUR = "#ff8a80"
_CURSOR_Z = 30


class BrushMode(StrEnum):
    PAINT = "paint"
    ERASE = "erase"


class BrushTool(QObject):
    """Paints ``label`` (or erases) a disc of ``radius_mm`` along the drag.

    ``mask_edited`` fires after every stamp that changed voxels (refresh the overlays);
    ``stroke_finished(changed)`` after the release (update undo buttons, measure findings again).
    """

    mask_edited = Signal()
    stroke_finished = Signal(bool)

    def __init__(
        self,
        editor: MaskEditor | None = None,
        mode: BrushMode | str = BrushMode.PAINT,
        radius_mm: float = 5.0,
        label: int = 1,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._editor = editor
        self.mode = BrushMode(mode)
        self.name = "brush" if self.mode is BrushMode.PAINT else "eraser"
        self._radius_mm = _clamped(radius_mm)
        self.label = label
        self.erase_label: int | None = None  # None: the eraser clears every label
        self._cursor = QGraphicsEllipseItem()
        self._cursor.setZValue(_CURSOR_Z)
        self._cursor.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self._cursor_box: pg.ViewBox | None = None
        self._cursor_mm = (0.0, 0.0)
        self._style_cursor()
        self._last: tuple[PlaneViewLike, int, RowColumn] | None = None  # view, slice, position
        self._changed_in_stroke = False

    # ---- settings -------------------------------------------------------------------------
    @property
    def editor(self) -> MaskEditor | None:
        return self._editor

    def set_editor(self, editor: MaskEditor | None) -> None:
        """Edit another label map (another case, or none)."""
        self._end_stroke()
        self._editor = editor

    @property
    def radius_mm(self) -> float:
        return self._radius_mm

    def set_radius_mm(self, radius_mm: float) -> None:
        self._radius_mm = _clamped(radius_mm)
        self._place_cursor()

    def step_radius(self, steps: int) -> float:
        """Grow (positive) or shrink the brush by 25 % per step; returns the new radius."""
        self.set_radius_mm(self._radius_mm * _RADIUS_STEP**steps)
        return self._radius_mm

    # ---- ViewTool -------------------------------------------------------------------------
    def press(self, view: PlaneViewLike, x_mm: float, y_mm: float) -> None:
        self.hover(view, x_mm, y_mm)
        if self._editor is None or view.mapping is None:
            return
        self._end_stroke()
        self._editor.begin_stroke()
        self._changed_in_stroke = False
        self._stamp(view, view.mapping, x_mm, y_mm)

    def drag(self, view: PlaneViewLike, x_mm: float, y_mm: float) -> None:
        self.hover(view, x_mm, y_mm)
        if self._editor is None or view.mapping is None or not self._editor.in_stroke:
            return
        self._stamp(view, view.mapping, x_mm, y_mm)

    def release(self, view: PlaneViewLike, x_mm: float, y_mm: float) -> None:
        self.drag(view, x_mm, y_mm)
        self._end_stroke()

    def deactivate(self) -> None:
        self._end_stroke()
        self.hide_cursor()

    # ---- cursor ---------------------------------------------------------------------------
    def hover(self, view: PlaneViewLike, x_mm: float, y_mm: float) -> None:
        """Move the circle cursor (call on mouse moves without a button, if the view can)."""
        if self._cursor_box is not view.view_box:
            self.hide_cursor()
            view.view_box.addItem(self._cursor, ignoreBounds=True)
            self._cursor_box = view.view_box
        self._cursor_mm = (x_mm, y_mm)
        self._place_cursor()
        self._cursor.setVisible(True)

    def hide_cursor(self) -> None:
        if self._cursor_box is not None:
            self._cursor_box.removeItem(self._cursor)
            self._cursor_box = None

    @property
    def cursor_item(self) -> QGraphicsEllipseItem:
        return self._cursor

    # ---- internals ------------------------------------------------------------------------
    def _stamp(self, view: PlaneViewLike, mapping: PlaneMapping, x_mm: float, y_mm: float) -> None:
        assert self._editor is not None
        here = (y_mm / mapping.pixel_height_mm - 0.5, x_mm / mapping.pixel_width_mm - 0.5)
        slice_index = view.slice_index
        previous = None
        if self._last is not None and self._last[0] is view and self._last[1] == slice_index:
            previous = self._last[2]
        if self.mode is BrushMode.PAINT:
            changed = self._editor.paint(
                mapping, slice_index, here, self._radius_mm, self.label, previous_rc=previous
            )
        else:
            changed = self._editor.erase(
                mapping,
                slice_index,
                here,
                self._radius_mm,
                self.erase_label,
                previous_rc=previous,
            )
        self._last = (view, slice_index, here)
        if changed:
            self._changed_in_stroke = True
            self.mask_edited.emit()

    def _end_stroke(self) -> None:
        self._last = None
        if self._editor is None or not self._editor.in_stroke:
            return
        self._editor.end_stroke()
        changed, self._changed_in_stroke = self._changed_in_stroke, False
        self.stroke_finished.emit(changed)

    def _place_cursor(self) -> None:
        x, y, r = *self._cursor_mm, self._radius_mm
        self._cursor.setRect(QRectF(x - r, y - r, 2 * r, 2 * r))

    def _style_cursor(self) -> None:
        paint = self.mode is BrushMode.PAINT
        pen = pg.mkPen(_PAINT_COLOUR if paint else _ERASE_COLOUR, width=1.5)
        if not paint:
            pen.setStyle(Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        self._cursor.setPen(pen)


def _clamped(radius_mm: float) -> float:
    return min(max(float(radius_mm), MIN_RADIUS_MM), MAX_RADIUS_MM)
