"""The first image view: one slice of a volume in the acquisition plane, paged with the wheel.

Pixels are placed in millimetres (``ImageItem.setRect``) so the aspect ratio follows the pixel
spacing, and slices are shown in radiological convention with the patient side at each edge.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QSlider,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from meddiag_desktop.display.window_level import WindowLevel, presets_for
from meddiag_desktop.domain import Volume
from meddiag_desktop.viewer.display_orientation import DisplayOrientation, orientation_of
from meddiag_desktop.viewer.slice_box import SliceViewBox

_BACKGROUND = "#000000"
_PLACEHOLDER = "Open a folder or a file (Ctrl+O, Ctrl+Shift+O) or drop it here"
_PAGE_STEP = 10


class SliceView(QWidget):
    """Shows one slice of a :class:`Volume` with a slider, window presets and warnings."""

    slice_changed = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._volume: Volume | None = None
        self._orientation = DisplayOrientation()
        self._presets: tuple[WindowLevel, ...] = ()
        self._window: WindowLevel | None = None
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._build()

    # ---- layout ----------------------------------------------------------------------------
    def _build(self) -> None:
        self.warnings_label = QLabel()
        self.warnings_label.setObjectName("volumeWarnings")
        self.warnings_label.setWordWrap(True)
        self.warnings_label.hide()

        self._box = SliceViewBox()
        self._image = pg.ImageItem()
        self._box.addItem(self._image)
        self._box.wheel_scrolled.connect(self.step_slices)
        self.graphics = pg.GraphicsView(background=_BACKGROUND)
        self.graphics.setCentralItem(self._box)
        self.graphics.setAcceptDrops(False)  # let files dropped on the image reach the window

        self._edge_labels = {
            name: self._edge_label() for name in ("top", "bottom", "left", "right")
        }
        canvas = QWidget()
        canvas.setObjectName("sliceCanvas")
        grid = QGridLayout(canvas)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(0)
        grid.addWidget(self._edge_labels["top"], 0, 1)
        grid.addWidget(self._edge_labels["left"], 1, 0)
        grid.addWidget(self.graphics, 1, 1)
        grid.addWidget(self._edge_labels["right"], 1, 2)
        grid.addWidget(self._edge_labels["bottom"], 2, 1)

        placeholder = QLabel(_PLACEHOLDER)
        placeholder.setObjectName("viewerPlaceholder")
        placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        placeholder.setWordWrap(True)
        self._stack = QStackedWidget()
        self._stack.addWidget(placeholder)
        self._stack.addWidget(canvas)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.warnings_label)
        layout.addWidget(self._stack, 1)
        layout.addLayout(self._controls())
        self._set_controls_enabled(False)

    def _edge_label(self) -> QLabel:
        label = QLabel()
        label.setObjectName("orientationLabel")
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        label.setMinimumWidth(24)
        return label

    def _controls(self) -> QHBoxLayout:
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setPageStep(_PAGE_STEP)
        self.slider.valueChanged.connect(self._show_slice)
        self.slice_label = QLabel("Slice - / -")
        self.slice_label.setMinimumWidth(110)
        self.window_box = QComboBox()
        self.window_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.window_box.setToolTip("Window/level preset (width and centre in scanner units)")
        self.window_box.currentIndexChanged.connect(self._preset_chosen)
        self.info_label = QLabel()
        self.info_label.setObjectName("sliceInfo")
        row = QHBoxLayout()
        row.setContentsMargins(8, 6, 8, 6)
        row.addWidget(self.slice_label)
        row.addWidget(self.slider, 1)
        row.addWidget(self.window_box)
        row.addWidget(self.info_label)
        return row

    def _set_controls_enabled(self, enabled: bool) -> None:
        self.slider.setEnabled(enabled)
        self.window_box.setVisible(enabled)  # an empty preset box only confuses

    # ---- public API ------------------------------------------------------------------------
    @property
    def volume(self) -> Volume | None:
        return self._volume

    @property
    def slice_index(self) -> int:
        return self.slider.value()

    @property
    def slice_count(self) -> int:
        return 0 if self._volume is None else self._volume.shape_zyx[0]

    @property
    def window_level(self) -> WindowLevel | None:
        return self._window

    def image_array(self) -> np.ndarray | None:
        """The array currently painted (after flips), for tests and later overlays."""
        return self._image.image

    def set_volume(self, volume: Volume) -> None:
        """Show ``volume`` from its middle slice with its default window."""
        self._volume = volume
        self._orientation = orientation_of(volume)
        self._presets = presets_for(volume)
        self._window = self._presets[0]
        self._show_warnings(volume.warnings)
        self._set_edge_labels(self._orientation)
        sx, sy, sz = volume.spacing_xyz_mm
        self.info_label.setText(f"{sx:.2f} × {sy:.2f} × {sz:.2f} mm")
        self.window_box.blockSignals(True)
        self.window_box.clear()
        for preset in self._presets:
            self.window_box.addItem(f"{preset.name}  ({preset.label()})")
        self.window_box.setCurrentIndex(0)
        self.window_box.blockSignals(False)
        self.slider.blockSignals(True)
        self.slider.setRange(0, volume.shape_zyx[0] - 1)
        self.slider.setValue(volume.shape_zyx[0] // 2)
        self.slider.blockSignals(False)
        self._set_controls_enabled(True)
        self._stack.setCurrentIndex(1)
        self._show_slice(self.slider.value())
        self._box.autoRange(padding=0.02)

    def clear(self) -> None:
        """Back to the empty state (a new folder is being opened)."""
        self._volume = None
        self._image.clear()
        self._show_warnings(())
        self.slider.setRange(0, 0)
        self.slice_label.setText("Slice - / -")
        self.info_label.clear()
        self.window_box.clear()
        self._set_controls_enabled(False)
        self._stack.setCurrentIndex(0)

    def set_slice(self, index: int) -> None:
        self.slider.setValue(index)  # QSlider clamps to the range

    def step_slices(self, steps: int) -> None:
        if self._volume is not None:
            self.set_slice(self.slice_index + steps)

    def set_window(self, window: WindowLevel) -> None:
        self._window = window
        self._image.setLevels((window.low, window.high))

    # ---- internals -------------------------------------------------------------------------
    def _show_slice(self, index: int) -> None:
        if self._volume is None or self._window is None:
            return
        shown = self._orientation.apply(self._volume.array_zyx[index])
        self._image.setImage(shown, autoLevels=False, levels=(self._window.low, self._window.high))
        width_mm, height_mm = self._orientation.pixel_size_mm(self._volume)
        rows, columns = shown.shape
        self._image.setRect(QRectF(0, 0, columns * width_mm, rows * height_mm))
        self.slice_label.setText(f"Slice {index + 1} / {self.slice_count}")
        self.slice_changed.emit(index)

    def _preset_chosen(self, row: int) -> None:
        if 0 <= row < len(self._presets):
            self.set_window(self._presets[row])

    def _show_warnings(self, warnings: tuple[str, ...]) -> None:
        self.warnings_label.setText("\n".join(f"⚠ {w}" for w in warnings))
        self.warnings_label.setVisible(bool(warnings))

    def _set_edge_labels(self, orientation: DisplayOrientation) -> None:
        for name, label in self._edge_labels.items():
            label.setText(getattr(orientation, name))

    def keyPressEvent(self, event: QKeyEvent) -> None:
        steps = {
            Qt.Key.Key_Up: -1,
            Qt.Key.Key_Down: 1,
            Qt.Key.Key_PageUp: -_PAGE_STEP,
            Qt.Key.Key_PageDown: _PAGE_STEP,
        }.get(Qt.Key(event.key()))
        if steps is None:
            super().keyPressEvent(event)
        else:
            self.step_slices(steps)
