"""The read-only table-model base the worklist, series and findings tables stand on: cells from
column definitions, row hooks, look-up by key, paging in, and in-memory sorting by sort key."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from PySide6.QtCore import QPersistentModelIndex, Qt
from PySide6.QtGui import QColor
from PySide6.QtTest import QAbstractItemModelTester

from meddiag_desktop.app.record_table_model import RIGHT, RecordTableModel, TableColumn

pytestmark = pytest.mark.gui
GREY, RED = QColor("#7d8590"), QColor("#ff0000")


@dataclass(frozen=True)
class Lesion:
    pk: int
    name: str
    volume_ml: float
    ruled_out: bool = False


class LesionModel(RecordTableModel[Lesion]):
    def __init__(self) -> None:
        super().__init__(
            [
                TableColumn[Lesion]("Name", lambda r: r.name, header_tip="What it is"),
                TableColumn[Lesion](
                    "mL",
                    lambda r: f"{r.volume_ml:.1f}",
                    alignment=RIGHT,
                    foreground=lambda r: RED if r.volume_ml > 5 else None,
                    tooltip=lambda r: "large" if r.volume_ml > 5 else None,
                    sort_key=lambda r: r.volume_ml,
                ),
            ],
            key=lambda r: r.pk,
        )

    def record_tooltip(self, record: Lesion) -> str:
        return f"lesion {record.pk}"

    def record_foreground(self, record: Lesion) -> QColor | None:
        return GREY if record.ruled_out else None

    def record_selectable(self, record: Lesion) -> bool:
        return not record.ruled_out


def _model() -> LesionModel:
    model = LesionModel()
    QAbstractItemModelTester(model, QAbstractItemModelTester.FailureReportingMode.Fatal)
    model.set_records([Lesion(7, "a", 2.0), Lesion(8, "b", 12.5), Lesion(9, "c", 0.5, True)])
    return model


def test_cells_come_from_the_columns_and_the_row_hooks(qapp) -> None:
    model = _model()
    horizontal = Qt.Orientation.Horizontal
    assert (model.rowCount(), model.columnCount()) == (3, 2)
    assert model.headerData(1, horizontal, Qt.ItemDataRole.DisplayRole) == "mL"
    assert model.headerData(0, horizontal, Qt.ItemDataRole.ToolTipRole) == "What it is"
    assert model.index(1, 1).data() == "12.5"
    assert model.index(1, 1).data(Qt.ItemDataRole.TextAlignmentRole) == int(RIGHT)
    assert model.index(0, 0).data(Qt.ItemDataRole.TextAlignmentRole) is None
    # the column's colour and tooltip win; the row's apply where the column has none
    assert model.index(1, 1).data(Qt.ItemDataRole.ForegroundRole).color() == RED
    assert model.index(2, 0).data(Qt.ItemDataRole.ForegroundRole).color() == GREY
    assert model.index(0, 0).data(Qt.ItemDataRole.ForegroundRole) is None
    assert model.index(1, 1).data(Qt.ItemDataRole.ToolTipRole) == "large"
    assert model.index(1, 0).data(Qt.ItemDataRole.ToolTipRole) == "lesion 8"
    assert model.index(2, 0).data(Qt.ItemDataRole.UserRole) == 9
    assert not model.flags(model.index(2, 0)) & Qt.ItemFlag.ItemIsSelectable
    assert model.flags(model.index(0, 0)) & Qt.ItemFlag.ItemIsSelectable
    assert not model.flags(model.index(0, 0)) & Qt.ItemFlag.ItemIsEditable  # read-only


def test_rows_are_found_by_key_and_paged_in(qapp) -> None:
    model = _model()
    assert (model.row_of(8), model.row_of(99)) == (1, -1)
    inserted: list[tuple[int, int]] = []
    model.rowsInserted.connect(lambda _parent, first, last: inserted.append((first, last)))
    model.append_records([Lesion(10, "d", 1.0), Lesion(11, "e", 3.0)])
    model.append_records([])
    assert inserted == [(3, 4)] and model.record_at(4).pk == 11


def test_sorting_by_a_sort_key_keeps_selections_on_their_records(qapp) -> None:
    model = _model()
    held = QPersistentModelIndex(model.index(0, 1))  # the 2.0 mL lesion, as a selection holds it
    model.sort(1, Qt.SortOrder.DescendingOrder)
    assert [r.pk for r in model.records] == [8, 7, 9]
    assert held.row() == 1 and model.record_at(held.row()).pk == 7
    model.sort(0)  # no sort key: the order stays
    assert [r.pk for r in model.records] == [8, 7, 9]
