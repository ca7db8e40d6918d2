"""One plane (axial, coronal or sagittal) of a volume, as a reader sees it in an MPR layout.

The view shows what it is told: :meth:`PlaneView.set_cursor` puts it on the slice through the
cursor voxel and draws the crosshair there. What the reader does (click, drag, wheel, keys) comes
out as requests (``cursor_requested`` with the voxel asked for, ``window_dragged``, ...) that
the owner (:class:`~meddiag_desktop.viewer.mpr_viewer.MprViewer`) applies to all three views, so
one cursor voxel is the only state they share.

Display coordinates are millimetres (see :mod:`~meddiag_desktop.viewer.plane_geometry`): the
image is placed with ``setRect(0, 0, *mapping.size_mm)`` in a view box with a locked aspect,
so anisotropic voxels keep their physical shape. Left-button events go to the active
:class:`~meddiag_desktop.viewer.view_tool.ViewTool`, if any, with positions in those millimetres.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPointF, QRect, QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetrics,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPixmap,
    QResizeEvent,
)
from PySide6.QtWidgets import (
    QFrame,
    QStyle,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from meddiag_desktop.display.window_level import SliceWindower
from meddiag_desktop.domain import Volume
from meddiag_desktop.viewer.crosshair import PLANE_COLOURS, Crosshair
from meddiag_desktop.viewer.keymap import command_for_key
from meddiag_desktop.viewer.overlay import OverlayLayer, OverlayStyle, RegionBox
from meddiag_desktop.viewer.plane_geometry import Plane, PlaneMapping, VoxelZYX
from meddiag_desktop.viewer.slice_box import PlaneViewBox
from meddiag_desktop.viewer.view_tool import ViewTool

PAGE_STEP = 10
_MARGIN = 6
_EDGE_BOX = 26
_INACTIVE_BORDER = "#26282c"
_TEXT_COLOUR = "#d8dadf"
_EDGE_COLOUR = "#e3b341"
_RIM_OFFSETS = ((-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (1, 1), (-1, 1), (1, -1))
# which LPS axis each plane cuts, and the letters for its positive and negative sides
_THROUGH_LPS = {
    Plane.AXIAL: (2, "S", "I"),
    Plane.CORONAL: (1, "P", "A"),
    Plane.SAGITTAL: (0, "L", "R"),
}
_STYLE = """
QToolButton#viewMaximise { background: transparent; border: none; padding: 1px; }
QToolButton#viewMaximise:hover { background: #3a3d43; border-radius: 3px; }
"""


class Annotation(QWidget):
    """One line of text over the image, outlined in black so it reads over bone and air alike.

    A drop shadow is too faint over bright bone; a dark rim around each glyph is what reading
    software does. Rendered once per text into a pixmap; transparent to the mouse.
    """

    def __init__(
        self, parent: QWidget, colour: str = _TEXT_COLOUR, bold: bool = False, scale: float = 1.0
    ) -> None:
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self._text = ""
        self._cache: QPixmap | None = None
        self._colour = QColor(colour)
        self._alignment = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop
        font = QFont(self.font())
        font.setBold(bold)
        font.setPointSizeF(font.pointSizeF() * scale)
        self.setFont(font)

    def text(self) -> str:
        return self._text

    def setText(self, text: str) -> None:
        if text != self._text:
            self._text = text
            self._cache = None
            self.update()

    def clear(self) -> None:
        self.setText("")

    def setAlignment(self, alignment: Qt.AlignmentFlag) -> None:
        self._alignment = alignment
        self._cache = None
        self.update()

    def resizeEvent(self, event: QResizeEvent) -> None:
        self._cache = None
        super().resizeEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        # the viewport under it repaints on every slice: draw the outlined text once, then blit
        if not self._text or self.width() <= 0 or self.height() <= 0:
            return
        if self._cache is None:
            self._cache = self._render()
        QPainter(self).drawPixmap(0, 0, self._cache)

    def _render(self) -> QPixmap:
        ratio = self.devicePixelRatioF()
        pixmap = QPixmap(round(self.width() * ratio), round(self.height() * ratio))
        pixmap.setDevicePixelRatio(ratio)
        pixmap.fill(Qt.GlobalColor.transparent)
        metrics = QFontMetrics(self.font())
        width = metrics.horizontalAdvance(self._text)
        align = self._alignment
        x: float
        y: float
        if align & Qt.AlignmentFlag.AlignRight:
            x = self.width() - width - 2
        elif align & Qt.AlignmentFlag.AlignHCenter:
            x = (self.width() - width) / 2
        else:
            x = 2
        if align & Qt.AlignmentFlag.AlignBottom:
            y = self.height() - metrics.descent() - 2
        elif align & Qt.AlignmentFlag.AlignVCenter:
            y = (self.height() + metrics.ascent() - metrics.descent()) / 2
        else:
            y = metrics.ascent() + 2
        painter = QPainter(pixmap)
        painter.setFont(self.font())
        painter.setPen(QColor(0, 0, 0, 235))  # a dark rim: the text drawn shifted each way
        for dx, dy in _RIM_OFFSETS:
            painter.drawText(QPointF(x + dx, y + dy), self._text)
        painter.setPen(self._colour)
        painter.drawText(QPointF(x, y), self._text)
        painter.end()
        return pixmap


class SmoothImageItem(pg.ImageItem):
    """A grey image drawn with bilinear filtering when scaled, as reading software does.

    Nearest-neighbour scaling turns thick coronal/sagittal slices into staircases; the label
    overlay stays unfiltered so its edges remain exact voxels.
    """

    smooth = True

    def paint(self, painter: QPainter, *args) -> None:
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.smooth)
        super().paint(painter, *args)


class PlaneView(QFrame):
    """A black view of one plane with crosshair, overlay, corner annotations and edge letters."""

    cursor_requested = Signal(object)  # (z, y, x) the reader asked for
    hovered = Signal(object)  # (z, y, x) under the pointer, or None when it is off the image
    slice_changed = Signal(int)  # a new slice is shown (tools show that slice's measurements)
    window_drag_started = Signal()
    window_dragged = Signal(float, float)  # screen pixels right/down since the drag started
    maximise_requested = Signal()
    activated = Signal()  # clicked into: keys go to this view from now on

    def __init__(self, plane: Plane, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plane = plane
        self._volume: Volume | None = None
        self._mapping: PlaneMapping | None = None
        self._windower: SliceWindower | None = None
        self._cursor: VoxelZYX = (0, 0, 0)
        self._slice_index = -1
        self._raw: np.ndarray | None = None
        self._labels: np.ndarray | None = None
        self._rejected_zyx: np.ndarray | None = None  # (N, 3) voxels of rejected findings
        self._region: RegionBox | None = None
        self._tool: ViewTool | None = None
        self._last_hover: VoxelZYX | None = None
        self._hover_mm: tuple[float, float] | None = None  # pointer position while over the view
        self.setObjectName("planeView")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setStyleSheet(_STYLE)
        self._build()
        self.set_active(False)

    # ---- building ----------------------------------------------------------------------------
    def _build(self) -> None:
        self._box = PlaneViewBox()
        self._box.setMenuEnabled(False)
        self.graphics = pg.GraphicsView(background="#000000")
        self.graphics.setCentralItem(self._box)
        self.graphics.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys reach this frame
        self.graphics.setAcceptDrops(False)  # files dropped on the image reach the window
        self.graphics.setFrameShape(QFrame.Shape.NoFrame)
        self._image = SmoothImageItem()
        self._box.addItem(self._image)
        self.overlay = OverlayLayer(self._box)
        self.crosshair = Crosshair(self._box)

        viewport = self.graphics.viewport()
        self._title = Annotation(viewport, PLANE_COLOURS[self.plane], bold=True)
        self._title.setText(self.plane.value.upper())
        self._slice_label = Annotation(viewport)
        self._window_label = Annotation(viewport)
        self._position_label = Annotation(viewport)
        self._position_label.setAlignment(Qt.AlignmentFlag.AlignRight)
        self._edges = {side: Annotation(viewport, _EDGE_COLOUR, True, 1.15) for side in _SIDES}
        for side, label in self._edges.items():
            label.setAlignment(_SIDES[side])
        self.maximise_button = QToolButton(viewport)
        self.maximise_button.setObjectName("viewMaximise")
        self.maximise_button.setToolTip("Maximise this view (F or double-click)")
        self.maximise_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.maximise_button.clicked.connect(self.maximise_requested)
        self.set_maximised(False)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(1, 1, 1, 1)
        layout.addWidget(self.graphics)

        self._box.wheel_scrolled.connect(self.step_slices)
        self._box.left_pressed.connect(self._left_pressed)
        self._box.left_dragged.connect(self._left_dragged)
        self._box.left_released.connect(self._left_released)
        self._box.window_drag_started.connect(self.window_drag_started)
        self._box.window_dragged.connect(self.window_dragged)
        self.graphics.scene().sigMouseMoved.connect(self._mouse_moved)
        viewport.installEventFilter(self)
        self._place_annotations()

    # ---- what tools and the viewer read (PlaneViewLike) --------------------------------------
    @property
    def mapping(self) -> PlaneMapping | None:
        return self._mapping

    @property
    def slice_index(self) -> int:
        return self._slice_index

    @property
    def slice_count(self) -> int:
        return 0 if self._mapping is None else self._mapping.slice_count

    @property
    def volume(self) -> Volume | None:
        return self._volume

    @property
    def view_box(self) -> pg.ViewBox:
        return self._box

    @property
    def image_item(self) -> pg.ImageItem:
        return self._image

    @property
    def tool(self) -> ViewTool | None:
        return self._tool

    @property
    def crosshair_position_mm(self) -> tuple[float, float] | None:
        """Where the crosshair lines cross, in display mm (None before a volume)."""
        return self.crosshair.position_mm if self._mapping is not None else None

    def voxel_at_mm(self, x_mm: float, y_mm: float) -> VoxelZYX | None:
        """The voxel shown at display position ``(x_mm, y_mm)`` of this slice; None outside."""
        if self._mapping is None:
            return None
        pixel = self._mapping.pixel_at_mm(x_mm, y_mm)
        if pixel is None:
            return None
        return self._mapping.voxel_at(self._slice_index, *pixel)

    def annotations(self) -> dict[str, str]:
        """The texts drawn over the image (corners and edges), for tests and screen readers."""
        texts = {
            "title": self._title.text(),
            "slice": self._slice_label.text(),
            "window": self._window_label.text(),
            "position": self._position_label.text(),
        }
        texts.update({side: label.text() for side, label in self._edges.items()})
        return texts

    # ---- what the viewer sets ----------------------------------------------------------------
    def set_volume(
        self,
        volume: Volume,
        mapping: PlaneMapping,
        windower: SliceWindower,
        line_planes: tuple[Plane, Plane],
    ) -> None:
        """Show ``volume`` through ``mapping``; the first :meth:`set_cursor` picks the slice."""
        self._volume = volume
        self._mapping = mapping
        self._windower = windower
        self._slice_index = -1
        self._labels = None
        self._rejected_zyx = None
        self._region = None
        self.overlay.show_labels(None, (1.0, 1.0))
        self.overlay.show_highlight(None)
        self.crosshair.set_colours(*line_planes)
        for side, label in self._edges.items():
            label.setText(getattr(mapping, side))
        self.set_window_text()
        self.reset_view()

    def clear(self) -> None:
        self._volume = None
        self._mapping = None
        self._windower = None
        self._raw = None
        self._labels = None
        self._rejected_zyx = None
        self._region = None
        self._slice_index = -1
        self._hover_mm = None
        self._last_hover = None
        self._image.clear()
        self.overlay.show_labels(None, (1.0, 1.0))
        self.overlay.show_highlight(None)
        self.crosshair.hide_lines()
        for label in (self._slice_label, self._window_label, self._position_label):
            label.clear()
        for label in self._edges.values():
            label.clear()

    def set_cursor(self, voxel: VoxelZYX) -> None:
        """Show the slice through ``voxel`` with the crosshair on it."""
        if self._mapping is None or self._volume is None:
            return
        self._cursor = voxel
        index, row, column = self._mapping.display_of(voxel)
        if index != self._slice_index:
            self._show_slice(index)
        self.crosshair.set_position(*self._mapping.centre_mm(row, column))

    def refresh_image(self) -> None:
        """Repaint the grey image after the window changed."""
        if self._raw is not None and self._windower is not None:
            self._image.setImage(self._windower.to_uint8(self._raw), levels=None)
        self.set_window_text()

    def set_window_text(self) -> None:
        window = None if self._windower is None else self._windower.window
        self._window_label.setText("" if window is None else window.label())

    def set_labels(self, labels_zyx: np.ndarray | None) -> None:
        """Draw ``labels_zyx`` (checked by the caller) over this view; None removes it."""
        self._labels = labels_zyx
        self.refresh_overlay()

    def refresh_overlay(self) -> None:
        """Redraw the overlay of the shown slice (after the label map was edited in place)."""
        mapping = self._mapping
        if self._labels is None or mapping is None or self._slice_index < 0:
            self.overlay.show_labels(None, (1.0, 1.0))
            return
        plane = mapping.extract(self._labels, self._slice_index)
        self.overlay.show_labels(
            plane, (mapping.pixel_width_mm, mapping.pixel_height_mm), self._rejected_plane(mapping)
        )

    def set_rejected_voxels(self, voxels_zyx: np.ndarray | None) -> None:
        """Voxels (N, 3: z, y, x) of rejected findings, drawn grey and dotted; None: none."""
        self._rejected_zyx = voxels_zyx if voxels_zyx is not None and voxels_zyx.size else None
        self.refresh_overlay()

    def _rejected_plane(self, mapping: PlaneMapping) -> np.ndarray | None:
        """The rejected voxels on the shown slice as a bool image of the slice, or None."""
        voxels = self._rejected_zyx
        if voxels is None:
            return None
        through = mapping.voxel_at(self._slice_index, 0, 0)[mapping.through_axis]
        on = voxels[voxels[:, mapping.through_axis] == through]
        if on.size == 0:
            return None
        rows, columns = on[:, mapping.row_axis], on[:, mapping.column_axis]
        if mapping.flip_rows:
            rows = mapping.rows - 1 - rows
        if mapping.flip_columns:
            columns = mapping.columns - 1 - columns
        plane = np.zeros((mapping.rows, mapping.columns), dtype=bool)
        plane[rows, columns] = True
        return plane

    def set_overlay_lut(self, lut: np.ndarray) -> None:
        self.overlay.set_lut(lut)

    def set_overlay_style(self, style: OverlayStyle) -> None:
        mode_changed = style.mode is not self.overlay.style.mode
        self.overlay.set_style(style)
        if mode_changed:
            self.refresh_overlay()

    def set_region(self, region: RegionBox | None) -> None:
        self._region = region
        self._show_region()

    def set_tool(self, tool: ViewTool | None) -> None:
        self._tool = tool
        cursor = Qt.CursorShape.CrossCursor if tool is not None else Qt.CursorShape.ArrowCursor
        self.graphics.viewport().setCursor(cursor)

    def reset_view(self) -> None:
        """Fit the whole slice in the view (undoes zoom and pan)."""
        if self._mapping is not None:
            self._box.setRange(self._image_rect(), padding=0.02)

    def set_active(self, active: bool) -> None:
        """Mark the view that takes keyboard input with a border in its plane's colour."""
        colour = PLANE_COLOURS[self.plane] if active else _INACTIVE_BORDER
        self.setStyleSheet(_STYLE + f"QFrame#planeView {{ border: 1px solid {colour}; }}")

    def set_maximised(self, maximised: bool) -> None:
        icon = (
            QStyle.StandardPixmap.SP_TitleBarNormalButton
            if maximised
            else QStyle.StandardPixmap.SP_TitleBarMaxButton
        )
        self.maximise_button.setIcon(self.style().standardIcon(icon))
        self.maximise_button.setToolTip(
            "Back to four views (F or double-click)"
            if maximised
            else "Maximise this view (F or double-click)"
        )

    # ---- reader's requests -------------------------------------------------------------------
    def step_slices(self, steps: int) -> None:
        if self._mapping is not None:
            self.go_to_slice(self._slice_index + steps)

    def go_to_slice(self, index: int) -> None:
        """Ask for the cursor on slice ``index`` (clamped), keeping its row and column."""
        if self._mapping is None:
            return
        index = int(np.clip(index, 0, self._mapping.slice_count - 1))
        _, row, column = self._mapping.display_of(self._cursor)
        voxel = self._mapping.voxel_at(index, row, column)
        if voxel != self._cursor:
            self.cursor_requested.emit(voxel)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        steps = _KEY_STEPS.get(command_for_key(event))
        if self._mapping is None or steps is None:
            super().keyPressEvent(event)  # the viewer handles maximise, crosshair, presets
            return
        if steps == "first":
            self.go_to_slice(0)
        elif steps == "last":
            self.go_to_slice(self._mapping.slice_count - 1)
        else:
            self.step_slices(int(steps))

    # ---- mouse -------------------------------------------------------------------------------
    def _left_pressed(self, x_mm: float, y_mm: float) -> None:
        if self._tool is not None:
            self._tool.press(self, x_mm, y_mm)
        else:
            self._move_cursor_to(x_mm, y_mm)

    def _left_dragged(self, x_mm: float, y_mm: float) -> None:
        if self._tool is not None:
            self._tool.drag(self, x_mm, y_mm)
        else:
            self._move_cursor_to(x_mm, y_mm)

    def _left_released(self, x_mm: float, y_mm: float) -> None:
        if self._tool is not None:
            self._tool.release(self, x_mm, y_mm)
        else:
            self._move_cursor_to(x_mm, y_mm)

    def _move_cursor_to(self, x_mm: float, y_mm: float) -> None:
        """The crosshair follows the pointer, held inside the image when dragged past it."""
        mapping = self._mapping
        if mapping is None or self._slice_index < 0:
            return
        row = int(np.clip(np.floor(y_mm / mapping.pixel_height_mm), 0, mapping.rows - 1))
        column = int(np.clip(np.floor(x_mm / mapping.pixel_width_mm), 0, mapping.columns - 1))
        voxel = mapping.voxel_at(self._slice_index, row, column)
        if voxel != self._cursor:
            self.cursor_requested.emit(voxel)

    def _mouse_moved(self, scene_pos) -> None:
        if self._mapping is None or self._slice_index < 0:
            return
        point = self._box.mapSceneToView(scene_pos)
        self._hover_mm = (point.x(), point.y())
        self._report_hover(self.voxel_at_mm(*self._hover_mm))

    def _report_hover(self, voxel: VoxelZYX | None) -> None:
        if voxel != self._last_hover:
            self._last_hover = voxel
            self.hovered.emit(voxel)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind == QEvent.Type.MouseButtonPress:
            self.setFocus(Qt.FocusReason.MouseFocusReason)
            self.activated.emit()
        elif kind == QEvent.Type.MouseButtonDblClick:
            # seen here, not in pyqtgraph: its scene reports the first click of the pair instead
            if isinstance(event, QMouseEvent) and event.button() == Qt.MouseButton.LeftButton:
                self.maximise_requested.emit()
        elif kind == QEvent.Type.Leave:
            self._hover_mm = None
            self._report_hover(None)
        elif kind == QEvent.Type.Resize:
            self._place_annotations()
        return super().eventFilter(watched, event)

    # ---- drawing -----------------------------------------------------------------------------
    def _image_rect(self) -> QRectF:
        if self._mapping is None:
            return QRectF()
        return QRectF(0, 0, *self._mapping.size_mm)

    def _show_slice(self, index: int) -> None:
        assert self._mapping is not None and self._volume is not None
        assert self._windower is not None
        self._slice_index = index
        self._raw = self._mapping.extract(self._volume.array_zyx, index)
        self._image.setImage(self._windower.to_uint8(self._raw), levels=None)
        self._image.setRect(self._image_rect())  # pyqtgraph needs the image before its rect
        self.refresh_overlay()
        self._show_region()
        self._slice_label.setText(f"Slice {index + 1} / {self._mapping.slice_count}")
        self._position_label.setText(self._slice_position_text())
        if self._hover_mm is not None:  # scrolling under a still pointer: a new voxel under it
            self._report_hover(self.voxel_at_mm(*self._hover_mm))
        self.slice_changed.emit(index)

    def _show_region(self) -> None:
        rect = None
        if self._region is not None and self._mapping is not None and self._slice_index >= 0:
            rect = self._region.displayed(self._mapping, self._slice_index)
        self.overlay.show_highlight(rect)

    def _slice_position_text(self) -> str:
        """Where this slice cuts the patient, e.g. ``I 180.0 mm`` for an axial slice."""
        assert self._volume is not None
        z, y, x = self._cursor
        axis, positive, negative = _THROUGH_LPS[self.plane]
        value = self._volume.index_to_lps((x, y, z))[axis]
        return f"{positive if value >= 0 else negative} {abs(value):.1f} mm"

    def _place_annotations(self) -> None:
        area = self.graphics.viewport().rect()
        w, h, m = area.width(), area.height(), _MARGIN
        half = max(w // 2 - m, 1)
        button = self.maximise_button.sizeHint()
        self.maximise_button.move(w - button.width() - m + 2, m - 2)
        line = QFontMetrics(self._slice_label.font()).height() + 4
        self._title.setGeometry(m, m, half, line)
        self._slice_label.setGeometry(m, m + line, half, line)
        bottom = h - m - line
        self._window_label.setGeometry(m, bottom, half, line)
        self._position_label.setGeometry(w - m - half, bottom, half, line)
        box = _EDGE_BOX
        self._edges["top"].setGeometry(QRect((w - box) // 2, 2, box, box))
        self._edges["bottom"].setGeometry(QRect((w - box) // 2, h - box - 2, box, box))
        self._edges["left"].setGeometry(QRect(2, (h - box) // 2, box, box))
        self._edges["right"].setGeometry(QRect(w - box - 2, (h - box) // 2, box, box))


_SIDES = {
    "top": Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop,
    "bottom": Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom,
    "left": Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
    "right": Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
}
# the keys themselves are in the keymap; here, what each paging command does
_KEY_STEPS: dict[str, int | str] = {
    "viewer.previous_slice": -1,
    "viewer.next_slice": 1,
    "viewer.back_10": -PAGE_STEP,
    "viewer.forward_10": PAGE_STEP,
    "viewer.first_slice": "first",
    "viewer.last_slice": "last",
}
