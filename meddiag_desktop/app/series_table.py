"""The list of series found in a folder: what each is and, if it cannot be opened, why.

Rows that cannot be loaded stay in the list, greyed, with the reason in their own column: a
reader who expected a series should learn why it is not there rather than wonder.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QItemSelection, QModelIndex, QObject, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView, QWidget

from meddiag_desktop.app.record_table_model import RecordTableModel, TableColumn
from meddiag_desktop.domain import SeriesInfo

COLUMNS = ("Description", "Modality", "Kind", "Size", "Spacing (mm)", "Files", "Loadable", "Notes")
_NOTES = len(COLUMNS) - 1
_MAX_COLUMN_WIDTH = 180
_UNLOADABLE_COLOUR = QColor("#7d8590")
_WARNING_COLOUR = QColor("#e3b341")


def _size_text(series: SeriesInfo) -> str:
    x, y, z = series.size_xyz
    return f"{x}×{y}×{z}" if x else "-"


def _spacing_text(series: SeriesInfo) -> str:
    if not any(series.spacing_xyz_mm):
        return "-"
    return "×".join(f"{value:.2f}" for value in series.spacing_xyz_mm)


def _notes(series: SeriesInfo) -> str:
    parts = [series.reason] if series.reason else []
    return " ".join([*parts, *series.warnings])


def _notes_colour(series: SeriesInfo) -> QColor | None:
    if not series.loadable:
        return _UNLOADABLE_COLOUR
    return _WARNING_COLOUR if series.warnings else None


# Column -> what its cell shows, in COLUMNS' order.
_CELL_TEXT: tuple[Callable[[SeriesInfo], str], ...] = (
    lambda s: s.description or "(no description)",
    lambda s: s.modality or "-",
    lambda s: str(s.kind),
    _size_text,
    _spacing_text,
    lambda s: str(s.file_count),
    lambda s: "yes" if s.loadable else "no",
    _notes,
)


def cell_text(series: SeriesInfo, column: int) -> str:
    """What a cell shows; plain function so tests and exports can use it."""
    return _CELL_TEXT[column](series)


class SeriesTableModel(RecordTableModel[SeriesInfo]):
    """Read-only table of :class:`SeriesInfo`, in the order discovery found them."""

    def __init__(self, parent: QObject | None = None) -> None:
        columns = [
            TableColumn[SeriesInfo](
                header, text, foreground=_notes_colour if column == _NOTES else None
            )
            for column, (header, text) in enumerate(zip(COLUMNS, _CELL_TEXT, strict=True))
        ]
        super().__init__(columns, key=lambda series: series.key, parent=parent)

    def set_series(self, series: list[SeriesInfo]) -> None:
        self.set_records(series)

    def series_at(self, row: int) -> SeriesInfo:
        return self.record_at(row)

    def record_selectable(self, record: SeriesInfo) -> bool:
        # A DICOM SEG beside the series it labels opens as an overlay on that series.
        seg = record.segmentation
        return record.loadable or (seg is not None and seg.reference_found)

    def record_foreground(self, record: SeriesInfo) -> QColor | None:
        return None if self.record_selectable(record) else _UNLOADABLE_COLOUR

    def record_tooltip(self, record: SeriesInfo) -> str:
        lines = [record.description or record.key, f"{record.file_count} file(s), {record.kind}"]
        if record.reason:
            lines.append(f"Cannot be loaded: {record.reason}")
        lines.extend(f"Warning: {w}" for w in record.warnings)
        return "\n".join(lines)


class SeriesTable(QTableView):
    """Table view that reports the loadable series a user picks and the one under the mouse."""

    series_chosen = Signal(object)  # SeriesInfo
    series_hovered = Signal(object)  # SeriesInfo, or None when the mouse leaves

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.series_model = SeriesTableModel(self)
        self.setModel(self.series_model)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setAlternatingRowColors(True)
        self.setWordWrap(False)
        self.verticalHeader().hide()
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.selectionModel().selectionChanged.connect(self._selection_changed)
        self.setMouseTracking(True)
        self.entered.connect(self._entered)

    def set_series(self, series: list[SeriesInfo]) -> None:
        self.series_model.set_series(series)
        self.resizeColumnsToContents()
        for column in range(len(COLUMNS) - 1):
            self.setColumnWidth(column, min(self.columnWidth(column), _MAX_COLUMN_WIDTH))

    def select_series(self, key: str) -> None:
        """Select a row by series key (this also emits ``series_chosen``)."""
        row = self.series_model.row_of(key)
        if row >= 0:
            self.selectRow(row)

    def _entered(self, index: QModelIndex) -> None:
        self.series_hovered.emit(self.series_model.series_at(index.row()))

    def leaveEvent(self, event: QEvent) -> None:
        self.series_hovered.emit(None)
        super().leaveEvent(event)

    def _selection_changed(self, selected: QItemSelection, _deselected: QItemSelection) -> None:
        rows = {index.row() for index in selected.indexes()}
        if len(rows) == 1:
            self.series_chosen.emit(self.series_model.series_at(rows.pop()))
