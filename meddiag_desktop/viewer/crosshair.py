"""The linked crosshair: where the other two planes cut a view, drawn as two thin lines.

Each line takes the colour of the plane it stands for (axial red, coronal green, sagittal
yellow, as in 3D Slicer), so a reader sees at a glance which view a line leads to. The lines
stop a few screen pixels short of the cursor, so they never hide the small lesion under it.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QLineF, QRectF
from PySide6.QtGui import QColor, QPainter, QPen

from meddiag_desktop.viewer.plane_geometry import Plane, PlaneMapping

PLANE_COLOURS: dict[Plane, str] = {
    Plane.AXIAL: "#e8615a",
    Plane.CORONAL: "#62c46e",
    Plane.SAGITTAL: "#e6c34a",
}
GAP_PX = 12  # screen pixels left open on each side of the cursor
_LINE_ALPHA = 200
_CROSSHAIR_Z = 30


def line_planes(mapping: PlaneMapping, mappings: dict[Plane, PlaneMapping]) -> tuple[Plane, Plane]:
    """The planes shown by the (vertical, horizontal) crosshair lines of ``mapping``'s view.

    A vertical line marks a fixed column, i.e. the plane cut through the column's array axis.
    """
    by_through = {m.through_axis: plane for plane, m in mappings.items()}
    return by_through[mapping.column_axis], by_through[mapping.row_axis]


class Crosshair(pg.GraphicsObject):
    """Two non-interactive lines across the whole view box, crossing at a point in display mm."""

    def __init__(self, view_box: pg.ViewBox) -> None:
        super().__init__()
        self._x = 0.0
        self._y = 0.0
        self._pens = (self._pen(Plane.SAGITTAL), self._pen(Plane.CORONAL))
        self._bounds: QRectF | None = None
        self._shown = False
        self._enabled = True
        self.setZValue(_CROSSHAIR_Z)
        view_box.addItem(self, ignoreBounds=True)
        self._sync_visibility()

    @staticmethod
    def _pen(plane: Plane) -> QPen:
        colour = QColor(PLANE_COLOURS[plane])
        colour.setAlpha(_LINE_ALPHA)
        pen = QPen(colour, 1)
        pen.setCosmetic(True)
        return pen

    @property
    def position_mm(self) -> tuple[float, float]:
        return self._x, self._y

    @property
    def shown(self) -> bool:
        """Drawn at all: a volume is shown and the reader has not switched crosshairs off."""
        return self._enabled and self._shown

    @property
    def line_colours(self) -> tuple[str, str]:
        """The (vertical, horizontal) line colours as ``#rrggbb``."""
        return self._pens[0].color().name(), self._pens[1].color().name()

    def set_colours(self, vertical: Plane, horizontal: Plane) -> None:
        self._pens = (self._pen(vertical), self._pen(horizontal))
        self.update()

    def set_position(self, x_mm: float, y_mm: float) -> None:
        self._x, self._y = float(x_mm), float(y_mm)
        self._shown = True
        self._sync_visibility()
        self.update()

    def set_enabled(self, enabled: bool) -> None:
        """The reader's choice to show crosshairs at all."""
        self._enabled = enabled
        self._sync_visibility()

    def hide_lines(self) -> None:
        self._shown = False
        self._sync_visibility()

    def _sync_visibility(self) -> None:
        self.setVisible(self.shown)

    # ---- QGraphicsItem -----------------------------------------------------------------------
    def viewTransformChanged(self) -> None:
        self.prepareGeometryChange()
        self._bounds = None
        super().viewTransformChanged()

    def boundingRect(self) -> QRectF:
        if self._bounds is None:
            visible = self.viewRect()
            self._bounds = QRectF() if visible is None else QRectF(visible)
        return self._bounds

    def paint(self, painter: QPainter, *args) -> None:
        area = self.boundingRect()
        if area.isEmpty():
            return
        gap_x = GAP_PX * (self.pixelWidth() or 0.0)
        gap_y = GAP_PX * (self.pixelHeight() or 0.0)
        x, y = self._x, self._y
        painter.setPen(self._pens[0])
        painter.drawLine(QLineF(x, area.top(), x, y - gap_y))
        painter.drawLine(QLineF(x, y + gap_y, x, area.bottom()))
        painter.setPen(self._pens[1])
        painter.drawLine(QLineF(area.left(), y, x - gap_x, y))
        painter.drawLine(QLineF(x + gap_x, y, area.right(), y))
