"""The list of series found in a folder: what each is and, if it cannot be opened, why.

Rows that cannot be loaded stay in the list, greyed, with the reason in their own column: a
reader who expected a series should learn why it is not there rather than wonder.
"""

from __future__ import annotations

from PySide6.QtCore import (
    QAbstractTableModel,
    QEvent,
    QItemSelection,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView, QWidget

from meddiag_desktop.domain import SeriesInfo

COLUMNS = ("Description", "Modality", "Kind", "Size", "Spacing (mm)", "Files", "Loadable", "Notes")
_NOTES = len(COLUMNS) - 1
_MAX_COLUMN_WIDTH = 180
_UNLOADABLE_COLOUR = QColor("#7d8590")
_WARNING_COLOUR = QColor("#e3b341")
AnyIndex = QModelIndex | QPersistentModelIndex


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


def cell_text(series: SeriesInfo, column: int) -> str:
    """What a cell shows; plain function so tests and exports can use it."""
    values = (
        series.description or "(no description)",
        series.modality or "-",
        str(series.kind),
        _size_text(series),
        _spacing_text(series),
        str(series.file_count),
        "yes" if series.loadable else "no",
        _notes(series),
    )
    return values[column]


class SeriesTableModel(QAbstractTableModel):
    """Read-only table of :class:`SeriesInfo`, in the order discovery found them."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._series: list[SeriesInfo] = []

    def set_series(self, series: list[SeriesInfo]) -> None:
        self.beginResetModel()
        self._series = list(series)
        self.endResetModel()

    def series_at(self, row: int) -> SeriesInfo:
        return self._series[row]

    def row_of(self, key: str) -> int:
        return next((i for i, s in enumerate(self._series) if s.key == key), -1)

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008 - Qt API
        return 0 if parent.isValid() else len(self._series)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008 - Qt API
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> object:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        if self._series[index.row()].loadable:
            return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        return Qt.ItemFlag.ItemIsEnabled  # visible and explained, but not selectable

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid():
            return None
        series = self._series[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return cell_text(series, index.column())
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(series)
        if role == Qt.ItemDataRole.ForegroundRole:
            if not series.loadable:
                return QBrush(_UNLOADABLE_COLOUR)
            if series.warnings and index.column() == _NOTES:
                return QBrush(_WARNING_COLOUR)
        return None

    @staticmethod
    def _tooltip(series: SeriesInfo) -> str:
        lines = [series.description or series.key, f"{series.file_count} file(s), {series.kind}"]
        if series.reason:
            lines.append(f"Cannot be loaded: {series.reason}")
        lines.extend(f"Warning: {w}" for w in series.warnings)
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
