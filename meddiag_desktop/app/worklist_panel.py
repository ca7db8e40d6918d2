"""The worklist: every case in the database, filtered by status and patient, opened by Enter.

Cases are read a page at a time (``db.worklist.list_cases``) and more are fetched as the table
scrolls, so a database of 100,000 cases opens as fast as one of ten. Sorting a partly fetched
list in the view would be wrong, so a header click asks the database for another order
(``WorklistOrder``, each one served by an index); Description is the one column that does not
sort.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from enum import IntEnum
from functools import partial

from PySide6.QtCore import QEvent, QModelIndex, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from meddiag_desktop.app.record_table_model import AnyIndex, RecordTableModel, TableColumn
from meddiag_desktop.db.engine import Database
from meddiag_desktop.db.errors import CaseDatabaseError
from meddiag_desktop.db.records import CaseStatus, CaseSummary, WorklistOrder, WorklistQuery
from meddiag_desktop.db.worklist import counts_by_status, list_cases

log = logging.getLogger(__name__)

PAGE_SIZE = 100
SEARCH_DELAY_MS = 250
EMPTY_TEXT = "No cases yet: open a folder or the demo case."
NO_MATCH_TEXT = "No cases match the filter."


class Column(IntEnum):
    PATIENT = 0
    PATIENT_ID = 1
    STUDY_DATE = 2
    MODALITY = 3
    DESCRIPTION = 4
    STATUS = 5
    FINDINGS = 6
    IMPORTED = 7


# Short headers (the list sits in a narrow pane beside the images); tooltips say the rest.
COLUMNS = ("Patient", "ID", "Study", "Mod.", "Description", "Status", "Find.", "Imported")
COLUMN_NAMES = (
    "Patient", "Patient ID", "Study date", "Modality", "Description", "Status",
    "Number of findings", "Imported",
)  # fmt: skip
# Column -> (ascending order, descending order) as the header's arrow shows them.
SORT_ORDERS: dict[Column, tuple[WorklistOrder, WorklistOrder]] = {
    Column.PATIENT: (WorklistOrder.PATIENT_NAME, WorklistOrder.PATIENT_NAME_DESC),
    Column.PATIENT_ID: (WorklistOrder.PATIENT_ID, WorklistOrder.PATIENT_ID_DESC),
    Column.STUDY_DATE: (WorklistOrder.OLDEST_STUDY, WorklistOrder.NEWEST_STUDY),
    Column.MODALITY: (WorklistOrder.MODALITY, WorklistOrder.MODALITY_DESC),
    Column.STATUS: (WorklistOrder.STATUS, WorklistOrder.STATUS_DESC),
    Column.FINDINGS: (WorklistOrder.FEWEST_FINDINGS, WorklistOrder.MOST_FINDINGS),
    Column.IMPORTED: (WorklistOrder.OLDEST_IMPORT, WorklistOrder.NEWEST_IMPORT),
}
SORTABLE = tuple(SORT_ORDERS)
# What the first click on a header gives: dates and counts newest/most first, text A to Z.
FIRST_CLICK_DESCENDING = (Column.STUDY_DATE, Column.FINDINGS, Column.IMPORTED)
SORT_TOOLTIPS = {
    Column.STATUS: "Click to sort by status: new, analysed, in review, signed, failed",
    Column.FINDINGS: "Click to sort by the number of findings",
}

# The columns a narrow list keeps, most needed first: who (name and ID, to tell two of the same
# name apart) and in what state, then when. What does not fit is hidden, not scrolled to.
SHOW_PRIORITY = (
    Column.PATIENT, Column.STATUS, Column.PATIENT_ID, Column.STUDY_DATE, Column.FINDINGS,
    Column.MODALITY, Column.DESCRIPTION, Column.IMPORTED,
)  # fmt: skip
# Columns that take the width left over (eliding their text), and the least they get.
ELASTIC_MIN_PX = {Column.PATIENT: 110, Column.DESCRIPTION: 120}

STATUS_TEXT = {
    CaseStatus.NEW: "New",
    CaseStatus.ANALYSED: "Analysed",
    CaseStatus.IN_REVIEW: "In review",
    CaseStatus.SIGNED: "Signed",
    CaseStatus.FAILED: "Failed",
}
STATUS_COLOURS = {
    CaseStatus.NEW: QColor("#8fb8e8"),
    CaseStatus.ANALYSED: QColor("#e3b341"),  # waiting for a reader
    CaseStatus.IN_REVIEW: QColor("#d8a657"),
    CaseStatus.SIGNED: QColor("#6cc283"),
    CaseStatus.FAILED: QColor("#ff6b6b"),
}


def patient_name_text(dicom_name: str) -> str:
    """'DOE^JANE^^^' as 'DOE JANE': the alphabetic group, components joined by spaces."""
    alphabetic = dicom_name.split("=", 1)[0]
    return " ".join(part.strip() for part in alphabetic.split("^") if part.strip())


def description_text(summary: CaseSummary) -> str:
    parts = [summary.study_description, summary.series_description]
    return " — ".join(p for p in parts if p)


def cell_text(summary: CaseSummary, column: Column) -> str:
    if column is Column.PATIENT:
        return patient_name_text(summary.patient_name) or "(no name)"
    if column is Column.PATIENT_ID:
        return summary.patient_id
    if column is Column.STUDY_DATE:
        return summary.study_date.isoformat() if summary.study_date else ""
    if column is Column.MODALITY:
        return summary.modality
    if column is Column.DESCRIPTION:
        return description_text(summary)
    if column is Column.STATUS:
        return STATUS_TEXT[summary.status]
    if column is Column.FINDINGS:
        return str(summary.finding_count) if summary.status is not CaseStatus.NEW else ""
    return summary.imported_at.astimezone().strftime("%Y-%m-%d %H:%M")  # local time


def _header_tip(column: Column) -> str:
    """How the column sorts, after its full name where the header shortens it."""
    name = "" if COLUMNS[column] == COLUMN_NAMES[column] else f"{COLUMN_NAMES[column]}. "
    if column in SORTABLE:
        return name + SORT_TOOLTIPS.get(column, "Click to sort by this column")
    return name + "This column does not sort"


def _status_colour(summary: CaseSummary) -> QColor:
    return STATUS_COLOURS[summary.status]


class WorklistModel(RecordTableModel[CaseSummary]):
    """Cases matching one query, fetched a page at a time as the view asks for more."""

    load_failed = Signal(str)

    def __init__(self, database: Database, parent: QObject | None = None) -> None:
        columns = [
            TableColumn[CaseSummary](
                header,
                partial(cell_text, column=column),
                header_tip=_header_tip(column),
                foreground=_status_colour if column is Column.STATUS else None,
            )
            for column, header in zip(Column, COLUMNS, strict=True)
        ]
        super().__init__(columns, key=lambda summary: summary.case_id, parent=parent)
        self._db = database
        self._query = WorklistQuery(page_size=PAGE_SIZE)
        self._total = 0
        self._next_page = 0

    @property
    def query(self) -> WorklistQuery:
        return self._query

    @property
    def total(self) -> int:
        """How many cases match the query (not only those fetched so far)."""
        return self._total

    def set_database(self, database: Database) -> None:
        """Read from another database from the next fetch on (call :meth:`reload` after)."""
        self._db = database

    def set_query(self, query: WorklistQuery) -> None:
        self._query = replace(query, page=0, page_size=PAGE_SIZE)
        self.reload()

    def reload(self) -> None:
        """Drop what was fetched and read the first page again."""
        self._total = 0
        self._next_page = 0
        self.set_records([])
        self._fetch_page()

    def summary_at(self, row: int) -> CaseSummary:
        return self.record_at(row)

    def canFetchMore(self, parent: AnyIndex = QModelIndex()) -> bool:  # noqa: B008 - Qt API
        return not parent.isValid() and self.rowCount() < self._total

    def fetchMore(self, parent: AnyIndex = QModelIndex()) -> None:  # noqa: B008 - Qt API
        if not parent.isValid():
            self._fetch_page()

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> object:
        if (
            role == Qt.ItemDataRole.InitialSortOrderRole
            and orientation == Qt.Orientation.Horizontal
        ):
            if section in FIRST_CLICK_DESCENDING:
                return Qt.SortOrder.DescendingOrder  # newest (most) first on the first click
            return Qt.SortOrder.AscendingOrder
        return super().headerData(section, orientation, role)

    def record_tooltip(self, record: CaseSummary) -> str:
        """Every column's value, so a list too narrow for some columns still tells them."""
        date = cell_text(record, Column.STUDY_DATE) or "no study date"
        findings = "" if record.status is CaseStatus.NEW else f", {record.finding_count} findings"
        return (
            f"{patient_name_text(record.patient_name)} ({record.patient_id})\n"
            f"{description_text(record)}\n{record.modality or '?'} study of {date}{findings}\n"
            f"Case {record.case_id}, {STATUS_TEXT[record.status].lower()}, imported "
            f"{cell_text(record, Column.IMPORTED)}"
        )

    def _fetch_page(self) -> None:
        query = replace(self._query, page=self._next_page)
        try:
            page = list_cases(self._db, query)
        except CaseDatabaseError as exc:
            self.load_failed.emit(f"The worklist cannot be read: {exc}")
            return
        known = {s.case_id for s in self.records}
        new = [s for s in page.items if s.case_id not in known]  # a case imported meanwhile
        self._total = page.total
        self._next_page += 1
        if not new:
            self._total = self.rowCount()  # nothing more to fetch, whatever the count said
            return
        self.append_records(new)


class WorklistPanel(QWidget):
    """Search box, status filter and the case table; asks the window to open a case."""

    case_open_requested = Signal(int)  # case id (double-click or Enter)
    load_failed = Signal(str)  # the database could not be read; the message says why

    def __init__(self, database: Database, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._db = database
        self._order = WorklistOrder.NEWEST_STUDY

        self.search_box = QLineEdit()
        self.search_box.setPlaceholderText("Search patient name or ID")
        self.search_box.setClearButtonEnabled(True)
        self.search_box.setToolTip(
            "The start of the patient's name (family name first, e.g. doe j) or of the ID"
        )
        self.status_filter = QComboBox()
        self.status_filter.setToolTip("Show cases with this status")
        self.status_filter.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.refresh_button = QPushButton("Refresh")
        # F5 is the window's Case → Refresh Worklist (the keymap): a second F5 here made the
        # key ambiguous, and Qt then fires neither
        self.refresh_button.setToolTip("Read the worklist again (F5)")

        self.model = WorklistModel(database, self)
        self.model.load_failed.connect(self.load_failed)
        self.table = QTableView()
        self.table.setObjectName("worklistTable")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(Column.DESCRIPTION, QHeaderView.ResizeMode.Stretch)
        header.setSectionsClickable(True)
        header.setSortIndicatorShown(True)
        header.setSortIndicator(Column.STUDY_DATE, Qt.SortOrder.DescendingOrder)
        header.sortIndicatorChanged.connect(self._sort_requested)
        self._fitting = False  # a fit hides columns, which can resize the viewport again
        self.table.viewport().installEventFilter(self)

        self.empty_label = QLabel(EMPTY_TEXT)
        self.empty_label.setObjectName("worklistEmpty")
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        _dim(self.empty_label, larger=True)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.table)
        self.stack.addWidget(self.empty_label)
        self.count_label = QLabel()
        self.count_label.setObjectName("worklistCount")
        # its text never widens the pane beside the images
        self.count_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        _dim(self.count_label)

        filters = QHBoxLayout()
        filters.addWidget(self.search_box, 1)
        filters.addWidget(self.status_filter)
        filters.addWidget(self.refresh_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(filters)
        layout.addWidget(self.stack, 1)
        layout.addWidget(self.count_label)

        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(self._apply_filters)
        self.search_box.textChanged.connect(self._search_timer.start)
        self.search_box.returnPressed.connect(self._apply_filters)
        self.status_filter.activated.connect(self._apply_filters)
        self.refresh_button.clicked.connect(self.refresh)
        self.table.activated.connect(self._activated)
        self.model.modelReset.connect(self._update_state)
        self.model.rowsInserted.connect(self._update_state)

        self._fill_status_filter()
        self._apply_filters()

    @property
    def order(self) -> WorklistOrder:
        return self._order

    @property
    def status(self) -> CaseStatus | None:
        """The status shown, or None for all."""
        value = self.status_filter.currentData()
        return CaseStatus(value) if value else None

    def set_database(self, database: Database) -> None:
        """Show another database's cases (after the settings changed)."""
        self._db = database
        self.model.set_database(database)
        self.refresh()

    def refresh(self) -> None:
        """Read counts and cases again, keeping the filters, order and selected case."""
        selected = self.selected_case_id()
        self._fill_status_filter()
        self._apply_filters()
        if selected is not None:
            self.select_case(selected)

    def set_status_filter(self, status: CaseStatus | None) -> None:
        index = self.status_filter.findData(status.value if status else "")
        self.status_filter.setCurrentIndex(max(index, 0))
        self._apply_filters()

    def selected_case_id(self) -> int | None:
        rows = self.table.selectionModel().selectedRows()
        return self.model.summary_at(rows[0].row()).case_id if rows else None

    def select_case(self, case_id: int) -> bool:
        row = self.model.row_of(case_id)
        if row >= 0:
            self.table.selectRow(row)
        return row >= 0

    def _fill_status_filter(self) -> None:
        try:
            counts = counts_by_status(self._db)
        except CaseDatabaseError as exc:
            self.load_failed.emit(f"The worklist cannot be read: {exc}")
            counts = {}
        current = self.status_filter.currentData() or ""
        self.status_filter.blockSignals(True)
        self.status_filter.clear()
        self.status_filter.addItem(f"All ({sum(counts.values())})", "")
        for status, text in STATUS_TEXT.items():
            self.status_filter.addItem(f"{text} ({counts.get(status, 0)})", status.value)
        self.status_filter.setCurrentIndex(max(self.status_filter.findData(current), 0))
        self.status_filter.blockSignals(False)

    def _apply_filters(self) -> None:
        self._search_timer.stop()
        status = self.status
        self.model.set_query(
            WorklistQuery(
                statuses=(status,) if status is not None else (),
                patient=self.search_box.text().strip(),
                order=self._order,
            )
        )

    def set_order(self, order: WorklistOrder) -> None:
        """Sort by ``order`` (as a header click would) and read the first page again."""
        self._order = order
        self._show_order()
        self._apply_filters()

    def _sort_requested(self, section: int, order: Qt.SortOrder) -> None:
        orders = SORT_ORDERS.get(Column(section)) if 0 <= section < len(Column) else None
        if orders is not None:
            self._order = orders[1] if order == Qt.SortOrder.DescendingOrder else orders[0]
        self._show_order()  # an unsortable column: the arrow goes back where the order is
        self._apply_filters()

    def _show_order(self) -> None:
        """Put the header's arrow where the database's order is."""
        for column, (ascending, descending) in SORT_ORDERS.items():
            if self._order in (ascending, descending):
                arrow = (
                    Qt.SortOrder.DescendingOrder
                    if self._order is descending
                    else Qt.SortOrder.AscendingOrder
                )
                header = self.table.horizontalHeader()
                header.blockSignals(True)
                header.setSortIndicator(column, arrow)
                header.blockSignals(False)
                return

    def _activated(self, index: QModelIndex) -> None:
        if index.isValid():
            self.case_open_requested.emit(self.model.summary_at(index.row()).case_id)

    def _update_state(self) -> None:
        filtered = bool(self.search_box.text().strip()) or self.status is not None
        empty = self.model.rowCount() == 0
        self.empty_label.setText(NO_MATCH_TEXT if filtered else EMPTY_TEXT)
        self.stack.setCurrentWidget(self.empty_label if empty else self.table)
        if not empty:
            self._fit_columns()
        self._show_count()

    def _show_count(self) -> None:
        total, shown = self.model.total, self.model.rowCount()
        noun = "case" if total == 1 else "cases"
        text = f"{total} {noun}" if shown >= total else f"Showing {shown} of {total} {noun}"
        hidden = self.hidden_columns()
        if hidden:
            text += f" · {len(hidden)} column{'s' if len(hidden) > 1 else ''} hidden"
        self.count_label.setText(text)
        self.count_label.setToolTip(
            f"Widen the list to see {', '.join(COLUMN_NAMES[c] for c in hidden)} (each row's "
            "tooltip shows them too)"
            if hidden
            else ""
        )

    def hidden_columns(self) -> list[Column]:
        """The columns the list is too narrow for just now."""
        return [c for c in Column if self.table.isColumnHidden(c)]

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        resized = watched is self.table.viewport() and event.type() == QEvent.Type.Resize
        if resized and self.model.rowCount():
            self._fit_columns()
            self._show_count()
        return super().eventFilter(watched, event)

    def _fit_columns(self) -> None:
        """Show the columns that fit the list's width, most needed first, each as wide as its
        contents; Patient and Description share what is left and elide. The rest are hidden,
        not scrolled to sideways: in the pane beside the images a sideways scroll bar hides
        the status and dates of every case at once."""
        if self._fitting:
            return
        self._fitting = True
        try:
            self._fit_columns_to(self.table.viewport().width())
        finally:
            self._fitting = False

    def _fit_columns_to(self, available: int) -> None:
        table, header = self.table, self.table.horizontalHeader()
        for column in Column:  # Qt measures no hidden column: show all, then hide again
            table.setColumnHidden(column, False)
        wanted = {c: max(table.sizeHintForColumn(c), header.sectionSizeHint(c)) for c in Column}
        shown: list[Column] = []
        used = 0
        for column in SHOW_PRIORITY:
            need = ELASTIC_MIN_PX.get(column, wanted[column])
            if not shown or used + need <= available:
                shown.append(column)
                used += need
        for column in Column:
            table.setColumnHidden(column, column not in shown)
        fixed = sum(wanted[c] for c in shown if c not in ELASTIC_MIN_PX)
        for column in shown:
            if column not in ELASTIC_MIN_PX:
                table.setColumnWidth(column, wanted[column])
        rest = available - fixed
        if Column.DESCRIPTION in shown:  # Description stretches over what Patient leaves
            rest = max(ELASTIC_MIN_PX[Column.PATIENT], rest - ELASTIC_MIN_PX[Column.DESCRIPTION])
        table.setColumnWidth(Column.PATIENT, max(1, min(wanted[Column.PATIENT], rest)))


def _dim(label: QLabel, larger: bool = False) -> None:
    """Secondary text in the theme's placeholder colour (no style sheet needed)."""
    palette = label.palette()
    palette.setColor(
        QPalette.ColorRole.WindowText, palette.color(QPalette.ColorRole.PlaceholderText)
    )
    label.setPalette(palette)
    if larger:
        font = label.font()
        font.setPointSizeF(font.pointSizeF() * 1.2)
        label.setFont(font)
