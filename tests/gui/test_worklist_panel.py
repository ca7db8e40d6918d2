"""The worklist shows the database's cases, filters by status and patient, pages, opens cases."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt

from meddiag_desktop.app.worklist_panel import (
    EMPTY_TEXT,
    NO_MATCH_TEXT,
    PAGE_SIZE,
    Column,
    WorklistPanel,
    patient_name_text,
)
from meddiag_desktop.db.engine import Database
from meddiag_desktop.db.records import CaseStatus, ReviewStatus, RunOutcome, WorklistOrder
from meddiag_desktop.db.reviews import review_finding, sign_case
from meddiag_desktop.db.runs import store_failed_run

from .case_data import FakeCard, analysed_case, import_case, open_database

pytestmark = pytest.mark.gui
TOOLTIP = Qt.ItemDataRole.ToolTipRole


@pytest.fixture
def db(tmp_path: Path):
    database = open_database(tmp_path)
    yield database
    database.close()


def _panel(qtbot, db: Database) -> WorklistPanel:
    panel = WorklistPanel(db)
    qtbot.addWidget(panel)
    panel.resize(980, 360)
    with qtbot.waitExposed(panel):
        panel.show()
    return panel


def _one_case_per_status(db: Database) -> dict[CaseStatus, int]:
    cases = {CaseStatus.NEW: import_case(db, 1), CaseStatus.ANALYSED: analysed_case(db, 2)}
    in_review = analysed_case(db, 3, findings=2)
    review_finding(db, _first_finding(db, in_review), ReviewStatus.ACCEPTED)
    cases[CaseStatus.IN_REVIEW] = in_review
    signed = analysed_case(db, 4, findings=0)
    sign_case(db, signed)
    cases[CaseStatus.SIGNED] = signed
    failed = import_case(db, 5, patient_name="ROE^RICHARD", patient_id="X-77")
    store_failed_run(db, failed, FakeCard(), RunOutcome.FAILED, "the model file is damaged")
    cases[CaseStatus.FAILED] = failed
    return cases


def _first_finding(db: Database, case_id: int) -> int:
    from meddiag_desktop.db.cases import get_case

    run = get_case(db, case_id).current_run
    assert run is not None
    return run.findings[0].finding_pk


def _column(panel: WorklistPanel, column: Column) -> list[str]:
    model = panel.model
    return [model.index(row, column).data() for row in range(model.rowCount())]


def test_empty_database_says_what_to_do(qtbot, db: Database, artifacts_dir: Path) -> None:
    panel = _panel(qtbot, db)
    assert panel.stack.currentWidget() is panel.empty_label
    assert panel.empty_label.text() == EMPTY_TEXT
    assert panel.status_filter.itemText(0) == "All (0)"
    panel.grab().save(str(artifacts_dir / "worklist_panel_empty.png"))


def test_cases_filters_and_search(qtbot, db: Database, artifacts_dir: Path) -> None:
    cases = _one_case_per_status(db)
    panel = _panel(qtbot, db)
    assert panel.stack.currentWidget() is panel.table
    assert panel.model.rowCount() == 5
    patients = _column(panel, Column.PATIENT)
    assert "DOE JANE001" in patients and "ROE RICHARD" in patients
    by_status = dict(
        zip(_column(panel, Column.STATUS), _column(panel, Column.PATIENT_ID), strict=True)
    )
    assert by_status == {
        "New": "PID00001",
        "Analysed": "PID00002",
        "In review": "PID00003",
        "Signed": "PID00004",
        "Failed": "X-77",
    }
    assert _column(panel, Column.STUDY_DATE)[0] == "2024-06-06"  # newest study first
    assert _column(panel, Column.DESCRIPTION)[0] == "CT CHEST — AXIAL 5"
    assert panel.count_label.text() == "5 cases"
    texts = [panel.status_filter.itemText(i) for i in range(panel.status_filter.count())]
    assert texts == [
        "All (5)",
        "New (1)",
        "Analysed (1)",
        "In review (1)",
        "Signed (1)",
        "Failed (1)",
    ]
    panel.grab().save(str(artifacts_dir / "worklist_panel.png"))

    panel.set_status_filter(CaseStatus.IN_REVIEW)
    assert _column(panel, Column.PATIENT_ID) == ["PID00003"]
    panel.set_status_filter(None)

    qtbot.keyClicks(panel.search_box, "doe jane00")  # debounced: nothing happens at once
    assert panel.model.rowCount() == 5
    qtbot.waitUntil(lambda: panel.model.rowCount() == 4, timeout=2000)
    panel.search_box.setText("x-7")
    qtbot.keyClick(panel.search_box, Qt.Key.Key_Return)  # Enter searches without waiting
    assert _column(panel, Column.PATIENT_ID) == ["X-77"]
    panel.search_box.setText("nobody")
    qtbot.keyClick(panel.search_box, Qt.Key.Key_Return)
    assert panel.stack.currentWidget() is panel.empty_label
    assert panel.empty_label.text() == NO_MATCH_TEXT
    panel.search_box.clear()
    qtbot.keyClick(panel.search_box, Qt.Key.Key_Return)
    assert panel.model.rowCount() == 5

    # Enter or a double-click on a row asks for that case.
    panel.select_case(cases[CaseStatus.SIGNED])
    panel.table.setFocus()
    with qtbot.waitSignal(panel.case_open_requested) as opened:
        qtbot.keyClick(panel.table, Qt.Key.Key_Return)
    assert opened.args == [cases[CaseStatus.SIGNED]]


def test_sorting_maps_to_the_database_order(qtbot, db: Database) -> None:
    for index in (3, 1, 2):
        import_case(db, index)
    panel = _panel(qtbot, db)
    header = panel.table.horizontalHeader()
    assert _column(panel, Column.PATIENT_ID) == ["PID00003", "PID00002", "PID00001"]

    header.sectionClicked.emit(Column.STUDY_DATE)  # what a click does, without mouse geometry
    header.setSortIndicator(Column.STUDY_DATE, Qt.SortOrder.AscendingOrder)
    assert panel.order is WorklistOrder.OLDEST_STUDY
    assert _column(panel, Column.PATIENT_ID) == ["PID00001", "PID00002", "PID00003"]

    header.setSortIndicator(Column.IMPORTED, Qt.SortOrder.DescendingOrder)
    assert panel.order is WorklistOrder.NEWEST_IMPORT
    assert header.sortIndicatorOrder() == Qt.SortOrder.DescendingOrder
    assert _column(panel, Column.PATIENT_ID) == ["PID00002", "PID00001", "PID00003"]

    header.setSortIndicator(Column.IMPORTED, Qt.SortOrder.AscendingOrder)
    assert panel.order is WorklistOrder.OLDEST_IMPORT
    assert _column(panel, Column.PATIENT_ID) == ["PID00003", "PID00001", "PID00002"]

    header.setSortIndicator(Column.DESCRIPTION, Qt.SortOrder.AscendingOrder)  # not sortable
    assert panel.order is WorklistOrder.OLDEST_IMPORT
    assert header.sortIndicatorSection() == Column.IMPORTED
    tip = panel.model.headerData(Column.DESCRIPTION, Qt.Orientation.Horizontal, TOOLTIP)
    assert tip == "This column does not sort"


def _click_header(qtbot, panel: WorklistPanel, column: Column) -> None:
    """A real mouse click on the header section, so Qt picks the arrow's direction."""
    header = panel.table.horizontalHeader()
    x = header.sectionViewportPosition(column) + header.sectionSize(column) // 2
    qtbot.mouseClick(
        header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, header.height() // 2)
    )


def _case_ids(panel: WorklistPanel) -> list[int]:
    return [panel.model.summary_at(row).case_id for row in range(panel.model.rowCount())]


def test_every_column_but_description_sorts_both_ways(qtbot, db: Database) -> None:
    cases = _one_case_per_status(db)  # findings: analysed 3, in review 2, the others none
    new, analysed, in_review, signed, failed = (cases[s] for s in CaseStatus)
    panel = _panel(qtbot, db)
    header = panel.table.horizontalHeader()

    def arrow() -> tuple[int, Qt.SortOrder]:
        return header.sortIndicatorSection(), header.sortIndicatorOrder()

    _click_header(qtbot, panel, Column.PATIENT)  # text columns start A to Z
    assert panel.order is WorklistOrder.PATIENT_NAME
    assert arrow() == (Column.PATIENT, Qt.SortOrder.AscendingOrder)
    names = ["DOE JANE001", "DOE JANE002", "DOE JANE003", "DOE JANE004", "ROE RICHARD"]
    assert _column(panel, Column.PATIENT) == names
    _click_header(qtbot, panel, Column.PATIENT)
    assert panel.order is WorklistOrder.PATIENT_NAME_DESC
    assert arrow() == (Column.PATIENT, Qt.SortOrder.DescendingOrder)
    assert _column(panel, Column.PATIENT) == names[::-1]

    _click_header(qtbot, panel, Column.PATIENT_ID)
    assert panel.order is WorklistOrder.PATIENT_ID
    assert _column(panel, Column.PATIENT_ID) == [
        "PID00001", "PID00002", "PID00003", "PID00004", "X-77",
    ]  # fmt: skip

    _click_header(qtbot, panel, Column.STATUS)  # the workflow's order, failed last
    assert panel.order is WorklistOrder.STATUS
    assert arrow() == (Column.STATUS, Qt.SortOrder.AscendingOrder)
    assert _case_ids(panel) == [new, analysed, in_review, signed, failed]
    _click_header(qtbot, panel, Column.STATUS)
    assert panel.order is WorklistOrder.STATUS_DESC
    assert _case_ids(panel) == [failed, signed, in_review, analysed, new]

    _click_header(qtbot, panel, Column.FINDINGS)  # counts start with the most
    assert panel.order is WorklistOrder.MOST_FINDINGS
    assert arrow() == (Column.FINDINGS, Qt.SortOrder.DescendingOrder)
    # Equal counts: newest study first (case 5 has the newest study).
    assert _case_ids(panel) == [analysed, in_review, failed, signed, new]
    _click_header(qtbot, panel, Column.FINDINGS)
    assert panel.order is WorklistOrder.FEWEST_FINDINGS
    assert _case_ids(panel) == [new, signed, failed, in_review, analysed]

    _click_header(qtbot, panel, Column.MODALITY)  # all CT: newest study first
    assert panel.order is WorklistOrder.MODALITY
    assert _case_ids(panel) == [failed, signed, in_review, analysed, new]

    _click_header(qtbot, panel, Column.DESCRIPTION)  # does not sort: order and arrow stay
    assert panel.order is WorklistOrder.MODALITY
    assert arrow() == (Column.MODALITY, Qt.SortOrder.AscendingOrder)

    # The order holds while filtering and refreshing.
    panel.set_order(WorklistOrder.PATIENT_NAME_DESC)
    assert arrow() == (Column.PATIENT, Qt.SortOrder.DescendingOrder)
    panel.set_status_filter(CaseStatus.FAILED)
    assert _column(panel, Column.PATIENT) == ["ROE RICHARD"]
    panel.set_status_filter(None)
    panel.refresh()
    assert _column(panel, Column.PATIENT) == names[::-1]


def test_big_worklists_are_fetched_a_page_at_a_time(qtbot, db: Database) -> None:
    total = PAGE_SIZE + 30
    for index in range(total):
        import_case(db, 100 + index)
    panel = _panel(qtbot, db)
    assert panel.model.rowCount() == PAGE_SIZE
    assert panel.count_label.text() == f"Showing {PAGE_SIZE} of {total} cases"
    panel.table.scrollToBottom()  # the view asks for more as it reaches the end
    qtbot.waitUntil(lambda: panel.model.rowCount() == total, timeout=2000)
    assert panel.count_label.text() == f"{total} cases"
    assert len(set(_column(panel, Column.PATIENT_ID))) == total

    import_case(db, 5000)
    panel.refresh()
    assert panel.model.total == total + 1


def test_patient_names_read_naturally() -> None:
    assert patient_name_text("DOE^JANE^^^") == "DOE JANE"
    assert patient_name_text("YAMADA^TARO=山田^太郎") == "YAMADA TARO"
    assert patient_name_text("") == ""
