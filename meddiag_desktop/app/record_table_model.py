"""A read-only Qt table over a list of domain records, described by its columns.

The worklist, the series table and the findings table all show frozen records (``CaseSummary``,
``SeriesInfo``, ``StoredFinding``) a row each and never edit them. What differs is only what each
column shows; the Qt plumbing (row and column counts, roles, flags, resets, look-up by key) is
here once, so a new column is one :class:`TableColumn` and not another ``data()`` branch.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
)
from PySide6.QtGui import QBrush, QColor

R = TypeVar("R")
AnyIndex = QModelIndex | QPersistentModelIndex
RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter  # numbers line up


@dataclass(frozen=True)
class TableColumn(Generic[R]):
    """One column: its header and, from a record, what its cell shows.

    ``foreground`` wins over the model's row colour (a status column keeps its colour in a
    greyed row); ``tooltip`` over the model's row tooltip. ``sort_key`` lets :meth:`sort`
    order the rows in memory; columns without one do not sort.
    """

    header: str
    text: Callable[[R], str]
    header_tip: str | None = None
    alignment: Qt.AlignmentFlag | None = None
    tooltip: Callable[[R], str | None] | None = None
    foreground: Callable[[R], QColor | None] | None = None
    decoration: Callable[[R], object] | None = None
    sort_key: Callable[[R], Any] | None = None


class RecordTableModel(QAbstractTableModel, Generic[R]):
    """Rows of records of one type, shown through ``columns``; never editable.

    ``key`` names a record (a primary key, a series key) for :meth:`row_of` and is what the
    ``UserRole`` of every cell holds. Subclasses override the ``record_*`` hooks for what
    belongs to a whole row (its tooltip, its colour, whether it can be selected).
    """

    def __init__(
        self,
        columns: Sequence[TableColumn[R]],
        key: Callable[[R], Hashable],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._columns = tuple(columns)
        self._key = key
        self._records: list[R] = []

    @property
    def columns(self) -> tuple[TableColumn[R], ...]:
        return self._columns

    @property
    def records(self) -> tuple[R, ...]:
        return tuple(self._records)

    def set_records(self, records: Iterable[R]) -> None:
        """Show these records instead of the current ones (views drop their selection)."""
        self.beginResetModel()
        self._records = list(records)
        self.endResetModel()

    def append_records(self, records: Sequence[R]) -> None:
        """Add rows at the end (a fetched page) without resetting views."""
        if not records:
            return
        first = len(self._records)
        self.beginInsertRows(QModelIndex(), first, first + len(records) - 1)
        self._records.extend(records)
        self.endInsertRows()

    def record_at(self, row: int) -> R:
        return self._records[row]

    def row_of(self, key: Hashable) -> int:
        """The row of the record whose key is ``key``, or -1."""
        return next((i for i, r in enumerate(self._records) if self._key(r) == key), -1)

    def header_text(self, section: int) -> str:
        """The header a column shows; override where it depends on what is shown."""
        return self._columns[section].header

    def record_tooltip(self, record: R) -> str | None:
        return None

    def record_foreground(self, record: R) -> QColor | None:
        return None

    def record_selectable(self, record: R) -> bool:
        return True

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008 - Qt API
        return 0 if parent.isValid() else len(self._records)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008 - Qt API
        return 0 if parent.isValid() else len(self._columns)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> object:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(self._columns):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self.header_text(section)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._columns[section].header_tip
        return None

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        if self.record_selectable(self._records[index.row()]):
            return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        return Qt.ItemFlag.ItemIsEnabled  # visible and explained, but not selectable

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid():
            return None
        record = self._records[index.row()]
        column = self._columns[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return column.text(record)
        if role == Qt.ItemDataRole.ToolTipRole:
            tip = column.tooltip(record) if column.tooltip is not None else None
            return tip if tip is not None else self.record_tooltip(record)
        if role == Qt.ItemDataRole.ForegroundRole:
            colour = column.foreground(record) if column.foreground is not None else None
            colour = colour if colour is not None else self.record_foreground(record)
            return QBrush(colour) if colour is not None else None
        if role == Qt.ItemDataRole.DecorationRole and column.decoration is not None:
            return column.decoration(record)
        if role == Qt.ItemDataRole.TextAlignmentRole and column.alignment is not None:
            return int(column.alignment)
        if role == Qt.ItemDataRole.UserRole:
            return self._key(record)
        return None

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Order the rows by the column's ``sort_key``; a column without one leaves them."""
        if not 0 <= column < len(self._columns):
            return
        sort_key = self._columns[column].sort_key
        if sort_key is None:
            return
        self.layoutAboutToBeChanged.emit()
        persistent = self.persistentIndexList()
        held = [self._records[index.row()] for index in persistent]
        self._records.sort(key=sort_key, reverse=order == Qt.SortOrder.DescendingOrder)
        rows = {id(record): row for row, record in enumerate(self._records)}
        self.changePersistentIndexList(
            persistent,
            [self.index(rows[id(r)], i.column()) for r, i in zip(held, persistent, strict=True)],
        )
        self.layoutChanged.emit()
