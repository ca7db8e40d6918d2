"""The MPR viewer: axial, coronal and sagittal views of a volume with a linked crosshair.

Layout: a 2x2 grid (axial | coronal / sagittal | info panel). The only state the views share is
one cursor voxel ``(z, y, x)``: each view shows the slice through it and draws the crosshair on
it; a click, drag, wheel step or key in any view asks for a new cursor voxel, which the viewer
applies to all three. One window/level applies to all views.

Mouse: left click/drag moves the crosshair (or drives the active tool), wheel = slice, Ctrl+wheel
= zoom, middle-drag = pan, right-drag = window (right = wider) and level (down = higher),
double-click = maximise/restore. Keys (in the view last clicked) come from
:mod:`~meddiag_desktop.viewer.keymap`: Up/Down = 1 slice, PageUp/PageDown = 10, Home/End =
first/last, F = maximise/restore, Ctrl+0 = reset zoom and pan, C = crosshair on/off, 1-9 =
window preset. (``R`` rejects a finding in the workstation, so it no longer resets the view.)

Public API (what the application calls)::

    viewer = MprViewer()
    viewer.set_volume(volume)                    # shows it from its centre, default window
    viewer.clear()                               # back to the empty placeholder
    viewer.set_overlay(labels_zyx, {1: "#ff5050"}, {1: "nodule"})  # None removes it; colours
                                                 # (r, g, b) or "#hex"; names for the legend
    viewer.refresh_overlay()                     # after labels_zyx was edited in place
    viewer.set_overlay_opacity(0.5)
    viewer.set_overlay_mode("filled" | "outline")
    viewer.set_overlay_visible(True)
    viewer.set_rejected_findings([finding, ...])  # drawn grey and dotted (after set_overlay)
    viewer.set_rejected_visible(False)           # ... or not at all
    viewer.highlight_label_region(finding)       # Finding, bbox_index_xyz, slices, mask, voxels;
                                                 # None clears; jump=True also centres on it
    viewer.jump_to_voxel((z, y, x)); viewer.jump_to_lps((l, p, s))
    viewer.set_window(WindowLevel(400, 40))
    viewer.set_active_tool(tool_or_None)         # a ViewTool gets the left button in all views
    viewer.plane_view(Plane.AXIAL)               # -> PlaneView (slice_index, mapping, view_box…)
    viewer.toggle_maximise(); viewer.reset_views(); viewer.set_crosshair_visible(False)
    viewer.cursor_voxel, viewer.window_level, viewer.volume, viewer.presets,
    viewer.overlay_style, viewer.maximised_plane                 # read-only properties
    signals: cursor_moved(object: (z, y, x)), window_changed(object: WindowLevel),
             hover_info_changed(str: readout under the pointer, "" when it leaves the image),
             rejected_visibility_changed(bool)
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from dataclasses import replace

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSlider,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from meddiag_desktop.display.window_level import (
    SliceWindower,
    WindowLevel,
    dragged_window,
    looks_like_ct,
    presets_for,
    value_range,
)
from meddiag_desktop.domain import Finding, Volume
from meddiag_desktop.viewer.crosshair import line_planes
from meddiag_desktop.viewer.keymap import KeyContext, command_for_key, key_names
from meddiag_desktop.viewer.mask_editor import lesion_voxels
from meddiag_desktop.viewer.overlay import (
    Colour,
    OverlayMode,
    OverlayStyle,
    RegionBox,
    check_labels,
    label_lut,
)
from meddiag_desktop.viewer.plane_geometry import (
    Plane,
    PlaneMapping,
    VoxelZYX,
    nearest_voxel,
    plane_mappings,
)
from meddiag_desktop.viewer.plane_view import PlaneView
from meddiag_desktop.viewer.view_tool import ViewTool

_PLACEHOLDER = "Open a folder or a file (Ctrl+O, Ctrl+Shift+O) or drop it here"
_CELLS = {Plane.AXIAL: (0, 0), Plane.CORONAL: (0, 1), Plane.SAGITTAL: (1, 0)}


def _shortcuts_hint() -> str:
    """The panel's one-line reminder, with the keys the keymap gives (F1 lists them all)."""
    return (
        "Wheel, ↑↓, PgUp/PgDn, Home/End: slice · Ctrl+wheel: zoom · middle-drag: pan · "
        f"right-drag: window (↔ width, ↕ level) · {key_names('viewer.preset')}: presets · "
        f"double-click or {key_names('view.maximise')}: maximise · "
        f"{key_names('view.reset')}: reset view · {key_names('view.crosshair')}: crosshair · "
        f"{key_names('help.shortcuts')}: all keys"
    )


_STYLE = """
QWidget#mprViewer, QStackedWidget#mprStack { background: #000000; }
QFrame#mprPanel { background: #17181b; border: 1px solid #26282c; }
QScrollArea#mprPanelCell { background: #17181b; border: none; }
QFrame#mprPanel QLabel { background: transparent; }
QLabel#panelSeries { color: #e6e8eb; font-weight: bold; font-size: 11pt; }
QLabel#panelHeading {
    color: #7d8590; font-size: 8pt; font-weight: bold; letter-spacing: 1px;
    padding-top: 8px; border-bottom: 1px solid #2d3035;
}
QLabel#panelValue { color: #c9ccd1; }
QLabel#panelReadout { color: #e6e8eb; font-family: monospace; }
QLabel#panelHint { color: #6b7078; font-size: 8pt; }
QLabel#mprPlaceholder { color: #8b9099; font-size: 12pt; background: #000000; }
"""


def voxel_readout(volume: Volume, voxel: VoxelZYX, ct: bool) -> str:
    """``-812 HU · voxel (z, y, x) · LPS (l, p, s) mm`` for the voxel (raw value if not CT)."""
    z, y, x = voxel
    raw = volume.array_zyx[z, y, x]
    if ct:
        shown = f"{round(float(raw))} HU"
    elif np.issubdtype(volume.array_zyx.dtype, np.integer):
        shown = f"Value {int(raw)}"
    else:
        shown = f"Value {float(raw):.4g}"
    l_mm, p_mm, s_mm = volume.index_to_lps((x, y, z))
    return (
        f"{shown}  ·  voxel (z {z}, y {y}, x {x})  ·  LPS ({l_mm:.1f}, {p_mm:.1f}, {s_mm:.1f}) mm"
    )


class MprViewer(QWidget):
    """Three linked plane views and an info panel; see the module docstring for the API."""

    cursor_moved = Signal(object)  # (z, y, x)
    window_changed = Signal(object)  # WindowLevel
    hover_info_changed = Signal(str)
    rejected_visibility_changed = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("mprViewer")
        self.setStyleSheet(_STYLE)
        self._volume: Volume | None = None
        self._mappings: dict[Plane, PlaneMapping] = {}
        self._windower: SliceWindower | None = None
        self._presets: tuple[WindowLevel, ...] = ()
        self._is_ct = False
        self._data_span = 1.0
        self._min_width = 1.0
        self._cursor: VoxelZYX = (0, 0, 0)
        self._drag_start: WindowLevel | None = None
        self._labels: np.ndarray | None = None
        self._rejected_zyx: np.ndarray | None = None
        self._style = OverlayStyle()
        self._region: RegionBox | None = None
        self._tool: ViewTool | None = None
        self._active = Plane.AXIAL
        self._maximised: Plane | None = None
        self._build()

    # ---- building ----------------------------------------------------------------------------
    def _build(self) -> None:
        self._views = {plane: PlaneView(plane) for plane in Plane}
        for plane, view in self._views.items():
            view.cursor_requested.connect(self.jump_to_voxel)
            view.hovered.connect(self._hovered)
            view.window_drag_started.connect(self._window_drag_started)
            view.window_dragged.connect(self._window_dragged)
            view.maximise_requested.connect(lambda p=plane: self.toggle_maximise(p))
            view.activated.connect(lambda p=plane: self._activate(p))
        self.panel = InfoPanel()
        self.panel.preset_chosen.connect(self._preset_chosen)
        self.panel.overlay_visible_toggled.connect(self.set_overlay_visible)
        self.panel.overlay_mode_chosen.connect(self.set_overlay_mode)
        self.panel.overlay_opacity_changed.connect(self.set_overlay_opacity)
        self.panel.rejected_visible_toggled.connect(self.set_rejected_visible)
        self.panel.reset_clicked.connect(self.reset_views)
        self.panel.maximise_clicked.connect(lambda: self.toggle_maximise())
        self.panel.crosshair_toggled.connect(self.set_crosshair_visible)

        grid_page = QWidget()
        self._grid = QGridLayout(grid_page)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setSpacing(2)
        for plane, (row, column) in _CELLS.items():
            self._grid.addWidget(self._views[plane], row, column)
        # in a scroll area: the panel's wrapped texts then never push on the grid's rows
        self._panel_cell = QScrollArea()
        self._panel_cell.setObjectName("mprPanelCell")
        self._panel_cell.setWidget(self.panel)
        self._panel_cell.setWidgetResizable(True)
        self._panel_cell.setFrameShape(QFrame.Shape.NoFrame)
        self._panel_cell.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._grid.addWidget(self._panel_cell, 1, 1)
        for index in (0, 1):
            self._grid.setRowStretch(index, 1)
            self._grid.setColumnStretch(index, 1)
        # four equal cells whatever the texts in them: a new readout must never resize the views
        for cell in (*self._views.values(), self._panel_cell):
            cell.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)

        placeholder = QLabel(_PLACEHOLDER)
        placeholder.setObjectName("mprPlaceholder")
        placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        placeholder.setWordWrap(True)
        self._stack = QStackedWidget()
        self._stack.setObjectName("mprStack")
        self._stack.addWidget(placeholder)
        self._stack.addWidget(grid_page)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._stack)
        self._activate(Plane.AXIAL)

    # ---- properties --------------------------------------------------------------------------
    @property
    def volume(self) -> Volume | None:
        return self._volume

    @property
    def cursor_voxel(self) -> VoxelZYX | None:
        return self._cursor if self._volume is not None else None

    @property
    def window_level(self) -> WindowLevel | None:
        return None if self._windower is None else self._windower.window

    @property
    def presets(self) -> tuple[WindowLevel, ...]:
        return self._presets

    @property
    def overlay_labels(self) -> np.ndarray | None:
        """The label map drawn over the views (the caller's array, not a copy)."""
        return self._labels

    @property
    def overlay_style(self) -> OverlayStyle:
        return self._style

    @property
    def maximised_plane(self) -> Plane | None:
        return self._maximised

    @property
    def active_plane(self) -> Plane:
        return self._active

    def plane_view(self, plane: Plane) -> PlaneView:
        return self._views[Plane(plane)]

    # ---- volume ------------------------------------------------------------------------------
    def set_volume(self, volume: Volume) -> None:
        """Show ``volume`` from its centre voxel with its default window; drops the overlay."""
        self._volume = volume
        self._mappings = plane_mappings(volume)
        self._presets = presets_for(volume)
        self._is_ct = looks_like_ct(volume)
        low, high = value_range(volume)
        self._data_span = max(high - low, 1e-6)
        integer = np.issubdtype(volume.array_zyx.dtype, np.integer)
        self._min_width = 1.0 if integer else self._data_span * 1e-4
        self._windower = SliceWindower(volume.array_zyx.dtype, self._presets[0])
        self._labels = None
        self._rejected_zyx = None
        self._region = None
        for plane, view in self._views.items():
            mapping = self._mappings[plane]
            view.set_volume(volume, mapping, self._windower, line_planes(mapping, self._mappings))
        self.panel.show_volume(volume, self._presets)
        self.panel.set_overlay_available(False)
        self._stack.setCurrentIndex(1)
        self._cursor = (-1, -1, -1)
        z, y, x = volume.shape_zyx
        self.jump_to_voxel((z // 2, y // 2, x // 2))
        self._window_applied()

    def clear(self) -> None:
        """Back to the empty state (a new folder is being opened)."""
        if self._maximised is not None:
            self._restore_grid()
        self._volume = None
        self._mappings = {}
        self._windower = None
        self._presets = ()
        self._labels = None
        self._rejected_zyx = None
        self._region = None
        for view in self._views.values():
            view.clear()
        self.panel.clear()
        self._stack.setCurrentIndex(0)

    # ---- cursor ------------------------------------------------------------------------------
    def jump_to_voxel(self, voxel: VoxelZYX) -> None:
        """Move the cursor (all three views and their crosshairs) to ``voxel``, clamped."""
        if self._volume is None:
            return
        clamped = tuple(
            int(np.clip(v, 0, n - 1)) for v, n in zip(voxel, self._volume.shape_zyx, strict=True)
        )
        cursor: VoxelZYX = (clamped[0], clamped[1], clamped[2])
        if cursor == self._cursor:
            return
        self._cursor = cursor
        for view in self._views.values():
            view.set_cursor(cursor)
        self.panel.show_cursor(voxel_readout(self._volume, cursor, self._is_ct))
        self.cursor_moved.emit(cursor)

    def jump_to_lps(self, lps_mm: tuple[float, float, float]) -> None:
        """Move the cursor to the voxel nearest the patient position ``lps_mm``."""
        if self._volume is not None:
            self.jump_to_voxel(nearest_voxel(self._volume, lps_mm))

    # ---- window ------------------------------------------------------------------------------
    def set_window(self, window: WindowLevel) -> None:
        """Show all views with ``window`` (width and level in scanner units)."""
        if self._windower is None or window == self._windower.window:
            return
        self._windower.set_window(window)
        self._window_applied()

    def _window_applied(self) -> None:
        assert self._windower is not None
        for view in self._views.values():
            view.refresh_image()
        self.panel.show_window(self._windower.window)
        self.window_changed.emit(self._windower.window)

    def _preset_chosen(self, index: int) -> None:
        if 0 <= index < len(self._presets):
            self.set_window(self._presets[index])

    def _window_drag_started(self) -> None:
        self._drag_start = self.window_level

    def _window_dragged(self, dx: float, dy: float) -> None:
        if self._drag_start is not None:
            self.set_window(
                dragged_window(self._drag_start, dx, dy, self._data_span, self._min_width)
            )

    # ---- overlay -----------------------------------------------------------------------------
    def set_overlay(
        self,
        labels_zyx: np.ndarray | None,
        colours: Mapping[int, Colour | str] | None = None,
        names: Mapping[int, str] | None = None,
    ) -> None:
        """Draw a label map (the volume's shape, labels 0-255) over all views; None removes it.

        ``colours``: label -> (r, g, b) or ``"#rrggbb"`` (a model card's label colours);
        ``names`` (optional): label -> name for the legend in the info panel.
        The array is kept, not copied: edit it in place and call :meth:`refresh_overlay`.
        """
        if labels_zyx is not None:
            if self._volume is None:
                raise ValueError("open a scan before adding a label overlay")
            check_labels(labels_zyx, self._volume.shape_zyx)
        lut = label_lut(colours or {})
        self._labels = labels_zyx
        self._rejected_zyx = None  # they were found on the map that was shown before
        for view in self._views.values():
            view.set_overlay_lut(lut)
            view.set_overlay_style(self._style)
            view.set_rejected_voxels(None)
            view.set_labels(labels_zyx)
        self.panel.set_overlay_available(labels_zyx is not None)
        legend = (
            {}
            if labels_zyx is None
            else {
                label: (lut[label, :3], (names or {}).get(label, f"Label {label}"))
                for label in sorted(set(colours or {}) | set(names or {}))
            }
        )
        self.panel.show_legend(legend)

    def refresh_overlay(self) -> None:
        """Redraw the overlay after the label map was edited in place."""
        for view in self._views.values():
            view.refresh_overlay()

    def set_rejected_findings(self, findings: Iterable[Finding]) -> None:
        """Draw these findings' lesions grey with a dotted ring, not in their label's colour.

        Their voxels are looked up in the overlay's label map as it is now (the connected
        lesion at each finding's place), so call this after :meth:`set_overlay`.
        """
        voxels = None
        if self._labels is not None:
            voxels = lesion_voxels(self._labels, findings)
        self._rejected_zyx = voxels if voxels is not None and voxels.size else None
        for view in self._views.values():
            view.set_rejected_voxels(self._rejected_zyx)

    @property
    def rejected_voxels(self) -> np.ndarray | None:
        """(N, 3) voxels (z, y, x) drawn as rejected, None when there are none."""
        return self._rejected_zyx

    def set_rejected_visible(self, visible: bool) -> None:
        """Show rejected findings (grey, dotted) or leave them out of the overlay."""
        if bool(visible) != self._style.rejected_visible:
            self._set_style(replace(self._style, rejected_visible=bool(visible)))
            self.rejected_visibility_changed.emit(bool(visible))

    def set_overlay_opacity(self, opacity: float) -> None:
        """0 (invisible) to 1 (opaque)."""
        self._set_style(replace(self._style, opacity=float(np.clip(opacity, 0.0, 1.0))))

    def set_overlay_mode(self, mode: str | OverlayMode) -> None:
        """``"filled"`` or ``"outline"``."""
        self._set_style(replace(self._style, mode=OverlayMode(mode)))

    def set_overlay_visible(self, visible: bool) -> None:
        self._set_style(replace(self._style, visible=bool(visible)))

    def _set_style(self, style: OverlayStyle) -> None:
        self._style = style
        for view in self._views.values():
            view.set_overlay_style(style)
        self.panel.show_overlay_style(style)

    def highlight_label_region(self, region: object, jump: bool = False) -> None:
        """Outline the selected finding with a box in every view whose slice crosses it.

        ``region``: a Finding (or its ``bbox_index_xyz``), a tuple of slices, a mask of the
        volume's shape, or voxel indices (N, 3); None clears. ``jump`` centres the views on it.
        """
        if self._volume is None:
            return
        self._region = RegionBox.of(region, self._volume.shape_zyx)
        for view in self._views.values():
            view.set_region(self._region)
        if jump and self._region is not None:
            self.jump_to_voxel(self._region.centre_zyx)

    @property
    def highlighted_region(self) -> RegionBox | None:
        return self._region

    # ---- tools and layout --------------------------------------------------------------------
    def set_active_tool(self, tool: ViewTool | None) -> None:
        """Give the left button to ``tool`` in all views; None gives it back to the crosshair."""
        if self._tool is not None and self._tool is not tool:
            self._tool.deactivate()
        self._tool = tool
        for view in self._views.values():
            view.set_tool(tool)

    @property
    def active_tool(self) -> ViewTool | None:
        return self._tool

    def toggle_maximise(self, plane: Plane | None = None) -> None:
        """Show one view alone (the active one by default), or all four cells again."""
        if self._maximised is not None:
            self._restore_grid()
        else:
            self._maximise(self._active if plane is None else Plane(plane))

    def _maximise(self, plane: Plane) -> None:
        self._maximised = plane
        self._activate(plane)
        for other, view in self._views.items():
            view.setVisible(other is plane)
            view.set_maximised(other is plane)
        self._panel_cell.hide()
        self._grid.removeWidget(self._views[plane])
        self._grid.addWidget(self._views[plane], 0, 0, 2, 2)

    def _restore_grid(self) -> None:
        plane = self._maximised
        self._maximised = None
        if plane is not None:
            self._grid.removeWidget(self._views[plane])
            row, column = _CELLS[plane]
            self._grid.addWidget(self._views[plane], row, column)
        for view in self._views.values():
            view.set_maximised(False)
            view.show()
        self._panel_cell.show()

    def reset_views(self) -> None:
        """Fit every view's slice again (undo zoom and pan)."""
        for view in self._views.values():
            view.reset_view()

    def set_crosshair_visible(self, visible: bool) -> None:
        for view in self._views.values():
            view.crosshair.set_enabled(visible)
        self.panel.show_crosshair(visible)

    # ---- events ------------------------------------------------------------------------------
    def _activate(self, plane: Plane) -> None:
        self._active = plane
        for other, view in self._views.items():
            view.set_active(other is plane)
        self.setFocusProxy(self._views[plane])

    def _hovered(self, voxel: VoxelZYX | None) -> None:
        text = (
            ""
            if voxel is None or self._volume is None
            else voxel_readout(self._volume, voxel, self._is_ct)
        )
        self.panel.show_hover(text)
        self.hover_info_changed.emit(text)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        # In the workstation the window's actions take F, Ctrl+0 and C first; a viewer on its
        # own (or in a test) handles them here, with the same keys from the keymap.
        command = command_for_key(event) or command_for_key(event, KeyContext.WINDOW)
        text = event.text()
        if command == "view.maximise":
            self.toggle_maximise()
        elif command == "view.reset":
            self.reset_views()
        elif command == "view.crosshair":
            self.set_crosshair_visible(not self.panel.crosshair_box.isChecked())
        elif command == "viewer.preset" and text.isdigit() and int(text) <= len(self._presets):
            self.set_window(self._presets[int(text) - 1])
        else:
            super().keyPressEvent(event)


class InfoPanel(QFrame):
    """The fourth cell: series, window presets, overlay controls, cursor readout, view buttons."""

    preset_chosen = Signal(int)
    overlay_visible_toggled = Signal(bool)
    overlay_mode_chosen = Signal(str)
    overlay_opacity_changed = Signal(float)
    rejected_visible_toggled = Signal(bool)
    reset_clicked = Signal()
    maximise_clicked = Signal()
    crosshair_toggled = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("mprPanel")
        self._presets: tuple[WindowLevel, ...] = ()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 10, 12, 10)
        layout.setSpacing(4)

        self.series_label = self._label("panelSeries", layout)
        self.patient_label = self._label("panelValue", layout)
        self.geometry_label = self._label("panelValue", layout)

        self._heading("WINDOW", layout)
        self.window_box = QComboBox()
        self.window_box.setToolTip("Window presets (keys 1-9); right-drag in a view to adjust")
        self.window_box.activated.connect(self.preset_chosen)
        layout.addWidget(self.window_box)
        self.window_label = self._label("panelValue", layout)

        self._heading("OVERLAY", layout)
        row = QHBoxLayout()
        self.overlay_box = QCheckBox("Show labels")
        self.overlay_box.setChecked(True)
        self.overlay_box.toggled.connect(self.overlay_visible_toggled)
        self.mode_box = QComboBox()
        self.mode_box.addItem("Filled", OverlayMode.FILLED.value)
        self.mode_box.addItem("Outline", OverlayMode.OUTLINE.value)
        self.mode_box.activated.connect(
            lambda i: self.overlay_mode_chosen.emit(self.mode_box.itemData(i))
        )
        row.addWidget(self.overlay_box)
        row.addStretch(1)
        row.addWidget(self.mode_box)
        layout.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(QLabel("Opacity"))
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.valueChanged.connect(self._opacity_moved)
        self.opacity_label = QLabel()
        self.opacity_label.setMinimumWidth(40)
        self.opacity_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        row.addWidget(self.opacity_slider, 1)
        row.addWidget(self.opacity_label)
        layout.addLayout(row)
        self.rejected_box = QCheckBox("Show rejected findings (grey, dotted)")
        self.rejected_box.setToolTip(
            f"Draw findings you rejected in grey with a dotted outline, or hide them "
            f"({key_names('view.show_rejected')})"
        )
        self.rejected_box.setChecked(True)
        self.rejected_box.toggled.connect(self.rejected_visible_toggled)
        layout.addWidget(self.rejected_box)
        self.legend_label = self._label("panelValue", layout)
        self.legend_label.setTextFormat(Qt.TextFormat.RichText)

        self._heading("CURSOR", layout)
        self.cursor_label = self._label("panelReadout", layout)
        self._heading("UNDER THE POINTER", layout)
        self.hover_label = self._label("panelReadout", layout)

        layout.addStretch(1)
        row = QHBoxLayout()
        reset = QPushButton("Reset view")
        reset.setToolTip(f"Fit every view again ({key_names('view.reset')})")
        reset.clicked.connect(self.reset_clicked)
        maximise = QPushButton("Maximise")
        maximise.setToolTip(
            f"Show the active view alone; {key_names('view.maximise')} or double-click toggles"
        )
        maximise.clicked.connect(self.maximise_clicked)
        self.crosshair_box = QCheckBox("Crosshair")
        self.crosshair_box.setToolTip(f"Show the crosshair lines ({key_names('view.crosshair')})")
        self.crosshair_box.setChecked(True)
        self.crosshair_box.toggled.connect(self.crosshair_toggled)
        for button in (reset, maximise, self.crosshair_box):
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys stay with the views
            row.addWidget(button)
        row.addStretch(1)
        layout.addLayout(row)
        self.hint_label = self._label("panelHint", layout)
        self.hint_label.setText(_shortcuts_hint())
        for widget in (
            self.window_box,
            self.overlay_box,
            self.mode_box,
            self.opacity_slider,
            self.rejected_box,
        ):
            widget.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.show_overlay_style(OverlayStyle())
        self.clear()

    @staticmethod
    def _label(name: str, layout: QVBoxLayout) -> QLabel:
        label = QLabel()
        label.setObjectName(name)
        label.setWordWrap(True)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(label)
        return label

    @staticmethod
    def _heading(text: str, layout: QVBoxLayout) -> None:
        heading = QLabel(text)
        heading.setObjectName("panelHeading")
        layout.addWidget(heading)

    def clear(self) -> None:
        self._presets = ()
        self.series_label.setText("No scan")
        for label in (self.patient_label, self.geometry_label, self.window_label):
            label.clear()
        self.cursor_label.setText("—")
        self.hover_label.setText("—")
        self.window_box.clear()
        self.window_box.setEnabled(False)
        self.set_overlay_available(False)
        self.show_legend({})

    def show_volume(self, volume: Volume, presets: tuple[WindowLevel, ...]) -> None:
        meta = volume.metadata
        self.series_label.setText(meta.series_description or volume.source or "Scan")
        patient = [meta.patient_name.replace("^", ", ").strip(", "), meta.patient_id]
        patient += [dicom_date_text(meta.study_date or meta.series_date), meta.study_description]
        self.patient_label.setText("  ·  ".join(p for p in patient if p))
        self.patient_label.setVisible(any(patient))
        x, y, z = volume.size_xyz
        sx, sy, sz = volume.spacing_xyz_mm
        modality = volume.modality or "?"
        self.geometry_label.setText(
            f"{modality} · {x} × {y} × {z} voxels · {sx:.2f} × {sy:.2f} × {sz:.2f} mm"
        )
        self._presets = presets
        self.window_box.clear()
        for preset in presets:
            self.window_box.addItem(f"{preset.name}   ({preset.label()})")
        self.window_box.setEnabled(True)
        self.hover_label.setText("—")

    def show_window(self, window: WindowLevel) -> None:
        self.window_label.setText(f"Width {window.width:g}  ·  Level {window.level:g}")
        matches = [
            i
            for i, p in enumerate(self._presets)
            if (p.width, p.level) == (window.width, window.level)
        ]
        custom = len(self._presets)
        if matches:
            if self.window_box.count() > custom:
                self.window_box.removeItem(custom)
            self.window_box.setCurrentIndex(matches[0])
            return
        text = f"Custom   ({window.label()})"
        if self.window_box.count() > custom:
            self.window_box.setItemText(custom, text)
        else:
            self.window_box.addItem(text)
        self.window_box.setCurrentIndex(custom)

    def show_legend(self, legend: Mapping[int, tuple[np.ndarray, str]]) -> None:
        """One coloured square and name per label of the overlay."""
        rows = [
            f'<span style="color: rgb({r}, {g}, {b});">■</span>&nbsp;{html.escape(name)}'
            for (r, g, b), name in legend.values()
        ]
        self.legend_label.setText("&nbsp;&nbsp;&nbsp;".join(rows))
        self.legend_label.setVisible(bool(rows))

    def show_cursor(self, text: str) -> None:
        self.cursor_label.setText(text.replace("  ·  ", "\n"))

    def show_hover(self, text: str) -> None:
        self.hover_label.setText(text.replace("  ·  ", "\n") if text else "—")

    def set_overlay_available(self, available: bool) -> None:
        for widget in (self.overlay_box, self.mode_box, self.opacity_slider, self.rejected_box):
            widget.setEnabled(available)

    def show_overlay_style(self, style: OverlayStyle) -> None:
        widgets = (self.overlay_box, self.mode_box, self.opacity_slider, self.rejected_box)
        for widget in widgets:
            widget.blockSignals(True)
        self.rejected_box.setChecked(style.rejected_visible)
        self.overlay_box.setChecked(style.visible)
        self.mode_box.setCurrentIndex(self.mode_box.findData(style.mode.value))
        self.opacity_slider.setValue(round(style.opacity * 100))
        self.opacity_label.setText(f"{round(style.opacity * 100)} %")
        for widget in widgets:
            widget.blockSignals(False)

    def show_crosshair(self, visible: bool) -> None:
        self.crosshair_box.blockSignals(True)
        self.crosshair_box.setChecked(visible)
        self.crosshair_box.blockSignals(False)

    def _opacity_moved(self, value: int) -> None:
        self.opacity_label.setText(f"{value} %")
        self.overlay_opacity_changed.emit(value / 100)


def dicom_date_text(dicom_date: str) -> str:
    """``20240131`` as ``2024-01-31``; anything else as it is."""
    if len(dicom_date) == 8 and dicom_date.isdigit():
        return f"{dicom_date[:4]}-{dicom_date[4:6]}-{dicom_date[6:]}"
    return dicom_date
