"""The follow-up window: prior and current side by side, linked, with the lesion table.

Each study is shown in its own geometry in an axial :class:`PlaneView` (the MPR's view class).
Navigation is linked through the stored registration: moving the current's cursor (scroll,
click) moves the prior's to ``transform.to_prior`` of the same point, and back through
``to_current``; zoom and window/level follow. A checkerboard toggle shows the prior, resampled
onto the current grid, in alternate squares of the current view, to judge the registration by
eye. Below: one row per lesion track, the reader's corrections (link, unlink, mark new or
gone), the RECIST response with its rule, and a plot of the selected lesion's volume.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from meddiag_desktop.app.follow_up_controller import ComparisonView
from meddiag_desktop.db.comparison_records import MatchOverride, OverrideAction, TrackStatus
from meddiag_desktop.db.priors import PriorCase
from meddiag_desktop.display.window_level import (
    SliceWindower,
    WindowLevel,
    dragged_window,
    presets_for,
    value_range,
)
from meddiag_desktop.domain import Volume
from meddiag_desktop.followup.comparison import ComparisonOutcome
from meddiag_desktop.followup.tracks import LesionTrack
from meddiag_desktop.viewer.crosshair import line_planes
from meddiag_desktop.viewer.plane_geometry import (
    Plane,
    PlaneMapping,
    VoxelZYX,
    nearest_voxel,
    plane_mappings,
)
from meddiag_desktop.viewer.plane_view import PlaneView

CHECKER_PX = 24  # the side of one checkerboard square, in current-grid pixels
COLUMNS = (
    "Track",
    "Status",
    "Vol. prior (ml)",
    "Vol. now (ml)",
    "Long prior (mm)",
    "Long now (mm)",
    "Δ vol. (%)",
    "Doubling (d)",
    "Target",
)


def prior_text(prior: PriorCase) -> str:
    """'2026-03-01 · CT · Chest follow-up (90 days before)' for the list of priors."""
    summary = prior.summary
    day = summary.study_date.isoformat() if summary.study_date else "no date"
    description = summary.study_description or summary.series_description or "no description"
    before = f" ({prior.days_before} days before)" if prior.days_before is not None else ""
    return f"{day} · {summary.modality} · {description}{before} · case {prior.case_id}"


class PriorDialog(QDialog):
    """Lists the earlier studies of the patient; the reader picks the one to compare with."""

    def __init__(self, priors: Sequence[PriorCase], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Compare with prior")
        self.priors = tuple(priors)
        self.list = QListWidget()
        for prior in self.priors:
            item = QListWidgetItem(prior_text(prior))
            item.setData(Qt.ItemDataRole.UserRole, prior.case_id)
            self.list.addItem(item)
        if self.priors:
            self.list.setCurrentRow(0)
        self.affine_box = QCheckBox("Affine registration after the rigid one")
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.list.itemDoubleClicked.connect(lambda _item: self.accept())
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Earlier studies of this patient (best candidates first):"))
        layout.addWidget(self.list)
        layout.addWidget(self.affine_box)
        layout.addWidget(buttons)

    def chosen_case_id(self) -> int | None:
        item = self.list.currentItem()
        return None if item is None else int(item.data(Qt.ItemDataRole.UserRole))


def _number(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _doubling(days: float | None) -> str:
    """A volume doubling time; a shrinking lesion has none (its negative value is not shown)."""
    return "–" if days is None or days <= 0 else f"{days:.0f}"


def checkerboard(current: np.ndarray, prior_on_current: np.ndarray) -> np.ndarray:
    """Alternate squares of the current scan and the prior resampled onto its grid."""
    _, rows, columns = current.shape
    squares = (
        np.arange(rows)[:, None] // CHECKER_PX + np.arange(columns)[None, :] // CHECKER_PX
    ) % 2
    return np.where(squares.astype(bool)[None, :, :], prior_on_current, current)


class _LinkedPlane:
    """One study's axial view with its own geometry and windower."""

    def __init__(self, title: str) -> None:
        self.view = PlaneView(Plane.AXIAL)
        self.title = QLabel(title)
        self.title.setObjectName("followUpTitle")
        self.volume: Volume | None = None
        self.mapping: PlaneMapping | None = None
        self.windower: SliceWindower | None = None
        self.lines: tuple[Plane, Plane] = (Plane.CORONAL, Plane.SAGITTAL)
        self.cursor: VoxelZYX = (0, 0, 0)

    def show(self, volume: Volume, window: WindowLevel) -> None:
        mappings = plane_mappings(volume)
        self.volume = volume
        self.mapping = mappings[Plane.AXIAL]
        self.windower = SliceWindower(volume.array_zyx.dtype, window)
        self.lines = line_planes(self.mapping, mappings)
        self.view.set_volume(volume, self.mapping, self.windower, self.lines)

    def swap_volume(self, volume: Volume) -> None:
        """The same grid with other voxels (the checkerboard), keeping cursor and zoom."""
        assert self.mapping is not None and self.windower is not None
        box = self.view.view_box
        shown = box.viewRange()
        self.volume = volume
        self.view.set_volume(volume, self.mapping, self.windower, self.lines)
        self.view.set_cursor(self.cursor)
        box.setRange(xRange=shown[0], yRange=shown[1], padding=0)

    def set_cursor(self, voxel: VoxelZYX) -> None:
        assert self.volume is not None
        shape = self.volume.shape_zyx
        clamped = tuple(int(np.clip(v, 0, n - 1)) for v, n in zip(voxel, shape, strict=True))
        self.cursor = (clamped[0], clamped[1], clamped[2])
        self.view.set_cursor(self.cursor)

    def lps(self) -> tuple[float, float, float]:
        assert self.volume is not None
        z, y, x = self.cursor
        point = self.volume.index_to_lps((x, y, z))
        return float(point[0]), float(point[1]), float(point[2])


class FollowUpWindow(QWidget):
    """Prior | current, linked; the lesion table, corrections, response and a volume plot."""

    override_requested = Signal(int, object)  # comparison id, MatchOverride
    targets_requested = Signal(int, object)  # comparison id, tuple of prior finding ids

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.setWindowTitle("Follow-up")
        self.setObjectName("followUpWindow")
        self._shown: ComparisonView | None = None
        self._linking = False
        self._drag_start: WindowLevel | None = None
        self._span = 1.0
        self.prior = _LinkedPlane("Prior")
        self.current = _LinkedPlane("Current")
        self._build()

    # ---- building ----------------------------------------------------------------------------
    def _build(self) -> None:
        self.metric_label = QLabel()
        self.metric_label.setObjectName("registrationQuality")
        self.checker_box = QCheckBox("Checkerboard (prior registered onto current)")
        self.checker_box.toggled.connect(self._checker_toggled)
        top = QHBoxLayout()
        top.addWidget(self.metric_label, 1)
        top.addWidget(self.checker_box)

        views = QSplitter(Qt.Orientation.Horizontal)
        for side in (self.prior, self.current):
            cell = QWidget()
            cell_layout = QVBoxLayout(cell)
            cell_layout.setContentsMargins(0, 0, 0, 0)
            cell_layout.addWidget(side.title)
            cell_layout.addWidget(side.view, 1)
            views.addWidget(cell)
            side.view.window_drag_started.connect(self._window_drag_started)
            side.view.window_dragged.connect(self._window_dragged)
        self.current.view.cursor_requested.connect(self.move_current)
        self.prior.view.cursor_requested.connect(self.move_prior)
        self.current.view.view_box.sigRangeChanged.connect(
            lambda *_: self._follow_zoom(self.current, self.prior)
        )
        self.prior.view.view_box.sigRangeChanged.connect(
            lambda *_: self._follow_zoom(self.prior, self.current)
        )

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.link_button = QPushButton("Link")
        self.link_button.setToolTip("Select a gone and a new lesion: they are one lesion")
        self.unlink_button = QPushButton("Unlink")
        self.new_button = QPushButton("Mark new")
        self.gone_button = QPushButton("Mark gone")
        self.target_button = QPushButton("Target on/off")
        self.target_button.setToolTip(
            "Make the selected lesion a RECIST target, or not (up to 5, 2 per organ); "
            "the proposal is the largest lesions"
        )
        self.target_button.clicked.connect(self.toggle_selected_target)
        self.link_button.clicked.connect(self.link_selected)
        self.unlink_button.clicked.connect(self.unlink_selected)
        self.new_button.clicked.connect(self.mark_selected_new)
        self.gone_button.clicked.connect(self.mark_selected_gone)
        buttons = QHBoxLayout()
        for button in (
            self.link_button, self.unlink_button, self.new_button, self.gone_button,
            self.target_button,
        ):
            buttons.addWidget(button)
        buttons.addStretch(1)
        self.response_label = QLabel()
        self.response_label.setObjectName("recistResponse")
        self.rule_label = QLabel()
        self.rule_label.setWordWrap(True)
        self.plot = pg.PlotWidget()
        self.plot.setLabel("left", "Volume", units="ml")
        self.plot.setLabel("bottom", "Days from prior")
        self.plot.setMinimumWidth(240)
        self.plot.setMaximumWidth(340)

        table_side = QWidget()
        table_layout = QVBoxLayout(table_side)
        table_layout.setContentsMargins(0, 0, 0, 0)
        table_layout.addWidget(self.table, 1)
        table_layout.addLayout(buttons)
        table_layout.addWidget(self.response_label)
        table_layout.addWidget(self.rule_label)
        bottom = QSplitter(Qt.Orientation.Horizontal)
        bottom.addWidget(table_side)
        bottom.addWidget(self.plot)
        bottom.setStretchFactor(0, 3)
        bottom.setStretchFactor(1, 1)

        vertical = QSplitter(Qt.Orientation.Vertical)
        vertical.addWidget(views)
        vertical.addWidget(bottom)
        vertical.setStretchFactor(0, 3)
        vertical.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(vertical, 1)
        self._update_buttons()

    # ---- what the window shows ---------------------------------------------------------------
    @property
    def outcome(self) -> ComparisonOutcome | None:
        return None if self._shown is None else self._shown.outcome

    def show_comparison(self, shown: ComparisonView) -> None:
        self._shown = shown
        outcome = shown.outcome
        window = presets_for(shown.current)[0]
        low, high = value_range(shown.current)
        self._span = max(high - low, 1e-6)
        self.checker_box.blockSignals(True)
        self.checker_box.setChecked(False)
        self.checker_box.blockSignals(False)
        self.prior.title.setText(
            f"Prior · {_day(outcome.prior_date)} · case {outcome.prior_case_id}"
        )
        self.current.title.setText(
            f"Current · {_day(outcome.current_date)} · case {outcome.case_id}"
        )
        self.prior.show(shown.prior, window)
        self.current.show(shown.current, window)
        z, y, x = shown.current.shape_zyx
        self.current.cursor = (-1, -1, -1)
        self.move_current((z // 2, y // 2, x // 2))
        self.show_outcome(outcome)

    def show_outcome(self, outcome: ComparisonOutcome) -> None:
        """The table, the response and the quality line (also after a correction)."""
        if self._shown is not None and outcome is not self._shown.outcome:
            self._shown = replace(self._shown, outcome=outcome)
        registration = outcome.registration
        quality = registration.quality
        metric = registration.metric
        parts = [
            f"Registration: {outcome.transform.kind.value}",
            f"metric {metric:.4f}" if metric is not None else "metric –",
            f"rotation {outcome.transform.rotation_deg():.1f}°",
            f"{registration.seconds:.1f} s",
        ]
        if quality.get("ncc_before") is not None and quality.get("ncc_after") is not None:
            parts.append(f"NCC {quality['ncc_before']:.3f} → {quality['ncc_after']:.3f}")
        self.metric_label.setText(" · ".join(parts))
        recist = outcome.recist
        change = recist.change_pct
        change_text = "" if change is None else f" ({change:+.1f} %)"
        self.response_label.setText(
            f"RECIST 1.1: <b>{recist.response.value}</b> — sum of diameters "
            f"{recist.sum_prior_mm:.1f} → {recist.sum_current_mm:.1f} mm{change_text}"
        )
        self.rule_label.setText(recist.rule)
        self.table.setRowCount(len(outcome.tracks))
        for row, track in enumerate(outcome.tracks):
            numbers = track.numbers
            cells = (
                track.track_id,
                track.status.value,
                _number(numbers.volume_ml[0], 3),
                _number(numbers.volume_ml[1], 3),
                _number(numbers.long_axis_mm[0], 1),
                _number(numbers.long_axis_mm[1], 1),
                _number(numbers.volume_change_pct, 1),
                _doubling(numbers.doubling_time_days),
                "✓" if track.target else "",
            )
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if column >= 2:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                self.table.setItem(row, column, item)
        self.table.resizeColumnsToContents()
        if outcome.tracks:
            self.table.selectRow(0)
        self._selection_changed()

    def statuses(self) -> dict[str, str]:
        """Track id -> status, as the table shows them."""
        shown: dict[str, str] = {}
        for row in range(self.table.rowCount()):
            track, status = self.table.item(row, 0), self.table.item(row, 1)
            if track is not None and status is not None:
                shown[track.text()] = status.text()
        return shown

    def shown_image(self) -> np.ndarray | None:
        """The grey image the current view paints (for tests)."""
        image = self.current.view.image_item.image
        return None if image is None else np.array(image)

    # ---- linked navigation -------------------------------------------------------------------
    def move_current(self, voxel: VoxelZYX) -> None:
        """The current's cursor to ``voxel``; the prior's to the same anatomy."""
        if self._shown is None or self._linking:
            return
        self._linking = True
        try:
            self.current.set_cursor(voxel)
            point = self._shown.outcome.transform.to_prior(self.current.lps())
            self.prior.set_cursor(nearest_voxel(self._shown.prior, _triple(point)))
        finally:
            self._linking = False

    def move_prior(self, voxel: VoxelZYX) -> None:
        """The prior's cursor to ``voxel``; the current's to the same anatomy."""
        if self._shown is None or self._linking:
            return
        self._linking = True
        try:
            self.prior.set_cursor(voxel)
            point = self._shown.outcome.transform.to_current(self.prior.lps())
            self.current.set_cursor(nearest_voxel(self._shown.current, _triple(point)))
        finally:
            self._linking = False

    def prior_voxel_for(self, voxel: VoxelZYX) -> VoxelZYX:
        """The prior voxel the transform gives for a current voxel."""
        assert self._shown is not None
        z, y, x = voxel
        point = self._shown.current.index_to_lps((x, y, z))
        return nearest_voxel(
            self._shown.prior, _triple(self._shown.outcome.transform.to_prior(point))
        )

    def _follow_zoom(self, source: _LinkedPlane, target: _LinkedPlane) -> None:
        """The other view shows the same width in mm, about its own centre."""
        if self._linking or target.mapping is None or source.mapping is None:
            return
        self._linking = True
        try:
            (x0, x1), (y0, y1) = source.view.view_box.viewRange()
            (u0, u1), (v0, v1) = target.view.view_box.viewRange()
            cu, cv = (u0 + u1) / 2, (v0 + v1) / 2
            w, h = (x1 - x0) / 2, (y1 - y0) / 2
            target.view.view_box.setRange(
                xRange=(cu - w, cu + w), yRange=(cv - h, cv + h), padding=0
            )
        finally:
            self._linking = False

    def _window_drag_started(self) -> None:
        windower = self.current.windower
        self._drag_start = None if windower is None else windower.window

    def _window_dragged(self, dx: float, dy: float) -> None:
        if self._drag_start is not None:
            self.set_window(dragged_window(self._drag_start, dx, dy, self._span))

    def set_window(self, window: WindowLevel) -> None:
        """Both views with the same window/level."""
        for side in (self.prior, self.current):
            if side.windower is not None:
                side.windower.set_window(window)
                side.view.refresh_image()

    def _checker_toggled(self, on: bool) -> None:
        shown = self._shown
        if shown is None:
            return
        if on:
            mixed = checkerboard(shown.current.array_zyx, shown.prior_on_current)
            self.current.swap_volume(replace(shown.current, array_zyx=mixed))
        else:
            self.current.swap_volume(shown.current)

    # ---- corrections -------------------------------------------------------------------------
    def selected_tracks(self) -> list[LesionTrack]:
        outcome = self.outcome
        if outcome is None:
            return []
        rows = sorted({index.row() for index in self.table.selectionModel().selectedRows()})
        return [outcome.tracks[row] for row in rows if row < len(outcome.tracks)]

    def _request(self, override: MatchOverride) -> None:
        outcome = self.outcome
        if outcome is not None and outcome.comparison_id is not None:
            self.override_requested.emit(outcome.comparison_id, override)

    def link_selected(self) -> None:
        tracks = self.selected_tracks()
        gone = [t for t in tracks if t.status is TrackStatus.GONE]
        new = [t for t in tracks if t.status is TrackStatus.NEW]
        if len(tracks) == 2 and len(gone) == 1 and len(new) == 1:
            self._request(
                MatchOverride(
                    OverrideAction.LINK, gone[0].prior_finding_pk, new[0].current_finding_pk
                )
            )

    def unlink_selected(self) -> None:
        tracks = self.selected_tracks()
        if len(tracks) == 1 and tracks[0].status is TrackStatus.MATCHED:
            track = tracks[0]
            self._request(
                MatchOverride(
                    OverrideAction.UNLINK, track.prior_finding_pk, track.current_finding_pk
                )
            )

    def mark_selected_new(self) -> None:
        tracks = self.selected_tracks()
        if len(tracks) == 1 and tracks[0].current_finding_pk is not None:
            self._request(
                MatchOverride(OverrideAction.MARK_NEW, None, tracks[0].current_finding_pk)
            )

    def mark_selected_gone(self) -> None:
        tracks = self.selected_tracks()
        if len(tracks) == 1 and tracks[0].prior_finding_pk is not None:
            self._request(MatchOverride(OverrideAction.MARK_GONE, tracks[0].prior_finding_pk, None))

    def toggle_selected_target(self) -> None:
        """The selected lesion in or out of the RECIST targets (targets are prior lesions)."""
        outcome = self.outcome
        tracks = self.selected_tracks()
        if outcome is None or outcome.comparison_id is None or len(tracks) != 1:
            return
        chosen = tracks[0].prior_finding_pk
        if chosen is None:
            return
        targets = {t.prior_finding_pk for t in outcome.tracks if t.target}
        targets.discard(None)
        targets ^= {chosen}
        self.targets_requested.emit(outcome.comparison_id, tuple(sorted(targets)))

    def set_busy(self, busy: bool) -> None:
        self._busy = busy
        self._update_buttons()

    def _update_buttons(self) -> None:
        tracks = self.selected_tracks()
        busy = getattr(self, "_busy", False)
        statuses = [t.status for t in tracks]
        stored = self.outcome is not None and self.outcome.comparison_id is not None
        ok = stored and not busy
        self.link_button.setEnabled(
            ok and sorted(statuses) == sorted([TrackStatus.GONE, TrackStatus.NEW])
        )
        single = len(tracks) == 1
        self.unlink_button.setEnabled(ok and single and statuses == [TrackStatus.MATCHED])
        self.new_button.setEnabled(ok and single and tracks[0].current_finding_pk is not None)
        self.gone_button.setEnabled(ok and single and tracks[0].prior_finding_pk is not None)
        self.target_button.setEnabled(ok and single and tracks[0].prior_finding_pk is not None)

    def _selection_changed(self) -> None:
        self._update_buttons()
        self.plot.clear()
        tracks = self.selected_tracks()
        outcome = self.outcome
        if outcome is None or len(tracks) != 1:
            return
        track = tracks[0]
        days = outcome.days_between or 0
        points = [
            (x, v)
            for x, v in zip((0.0, float(days)), track.numbers.volume_ml, strict=True)
            if v is not None
        ]
        if points:
            xs, ys = zip(*points, strict=True)
            self.plot.plot(list(xs), list(ys), pen=pg.mkPen("#ffb000", width=2), symbol="o")
            self.plot.setYRange(0.0, 1.15 * max(ys), padding=0)
            self.plot.setXRange(-5.0, max(float(days), 1.0) + 5.0, padding=0)
        self.plot.setTitle(f"{track.track_id} ({track.status.value})")
        # jump both views to the lesion
        finding = track.current or track.prior
        if finding is not None and self._shown is not None:
            centre = getattr(finding.finding, "centroid_lps_mm", None)
            if centre is not None:
                if track.current is not None:
                    self.move_current(nearest_voxel(self._shown.current, _triple(centre)))
                else:
                    self.move_prior(nearest_voxel(self._shown.prior, _triple(centre)))


def _day(day: object) -> str:
    return "no date" if day is None else str(day)


def _triple(point: Sequence[float]) -> tuple[float, float, float]:
    return float(point[0]), float(point[1]), float(point[2])
