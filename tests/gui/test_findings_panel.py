"""The findings panel shows a case's findings and asks for decisions; sign-off waits for all."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from meddiag_desktop.app.findings_panel import (
    CLINICAL_HINT,
    NO_CASE_TEXT,
    Column,
    FindingsPanel,
    sign_off_state,
)
from meddiag_desktop.app.review_controller import ReviewController
from meddiag_desktop.db.cases import get_case
from meddiag_desktop.db.engine import Database
from meddiag_desktop.db.records import ReviewStatus, StoredFinding
from meddiag_desktop.db.reviews import add_manual_finding
from meddiag_desktop.domain import FindingSource

from .case_data import analysed_case, finding, import_case, open_database

pytestmark = pytest.mark.gui


class Prompt:
    """Stands in for the reason dialog: answers what the test says, remembers it was asked."""

    def __init__(self, answer: str | None) -> None:
        self.answer = answer
        self.asked: list[int] = []

    def __call__(self, _parent: object, stored: StoredFinding) -> str | None:
        self.asked.append(stored.finding_pk)
        return self.answer


@pytest.fixture
def db(tmp_path: Path):
    database = open_database(tmp_path)
    yield database
    database.close()


def _panel(qtbot, prompt: Prompt) -> FindingsPanel:
    panel = FindingsPanel(reason_prompt=prompt)
    qtbot.addWidget(panel)
    panel.resize(460, 460)  # about its width beside the images
    with qtbot.waitActive(panel):  # shortcuts only reach the active window's focus widget
        panel.show()
        panel.activateWindow()
    return panel


def _cells(panel: FindingsPanel, column: Column) -> list[str]:
    return [panel.model.index(r, column).data() for r in range(panel.model.rowCount())]


def test_rows_buttons_and_requests(qtbot, db: Database, artifacts_dir: Path) -> None:
    case_id = analysed_case(db, 1, findings=3)
    add_manual_finding(db, case_id, finding(7, FindingSource.MANUAL))
    prompt = Prompt("vessel seen end-on")
    panel = _panel(qtbot, prompt)
    assert panel.sign_reason.text() == NO_CASE_TEXT and not panel.add_action.isEnabled()
    panel.set_case(get_case(db, case_id))

    assert _cells(panel, Column.NUMBER) == ["1", "2", "3", "M7"]
    assert _cells(panel, Column.AXES)[0] == "7.0 × 4.5"
    assert _cells(panel, Column.VOLUME)[1] == "0.50"
    assert _cells(panel, Column.MEAN)[0] == "-34"
    assert _cells(panel, Column.CONFIDENCE) == ["91%", "92%", "93%", "—"]
    assert _cells(panel, Column.REVIEW) == ["Pending", "Pending", "Pending", "Accepted"]
    swatch = panel.model.index(0, Column.LABEL).data(Qt.ItemDataRole.DecorationRole)
    assert swatch == QColor("#ff5050")
    assert panel.model.headerData(Column.MEAN, Qt.Orientation.Horizontal, 0) == "HU"
    assert "fake-model 1.0 on CPU" in panel.run_label.text()
    assert "3 findings, 1 manual" in panel.run_label.text()
    assert panel.clinical_hint.text() == CLINICAL_HINT

    # Nothing selected: only adding and (not yet) signing make sense.
    assert not panel.accept_action.isEnabled() and not panel.edit_action.isEnabled()
    assert panel.add_action.isEnabled() and not panel.sign_action.isEnabled()
    assert "3 AI findings are not reviewed yet (#1, #2, #3)" in panel.sign_reason.text()

    first, second = (panel.model.finding_at(r) for r in (0, 1))
    with qtbot.waitSignal(panel.finding_selected) as selected:
        qtbot.mouseClick(
            panel.table.viewport(),
            Qt.MouseButton.LeftButton,
            pos=panel.table.visualRect(panel.model.index(0, 2)).center(),
        )
    assert selected.args[0].finding_pk == first.finding_pk

    panel.table.setFocus()
    with qtbot.waitSignal(panel.accept_requested) as accepted:
        qtbot.keyClick(panel.table, Qt.Key.Key_A)  # the shortcut
    assert accepted.args == [first.finding_pk]
    with qtbot.waitSignal(panel.edit_requested) as edit:
        panel.edit_action.trigger()
    assert edit.args == [first.finding_pk]
    with qtbot.waitSignal(panel.add_manual_requested):
        panel.add_action.trigger()

    panel.select_finding(second.finding_pk)
    with qtbot.waitSignal(panel.reject_requested) as rejected:
        qtbot.keyClick(panel.table, Qt.Key.Key_R)
    assert rejected.args == [second.finding_pk, "vessel seen end-on"]
    assert prompt.asked == [second.finding_pk]

    prompt.answer = None  # the reader cancels the reason dialog: nothing is rejected
    with qtbot.assertNotEmitted(panel.reject_requested):
        panel.reject_action.trigger()
    qtbot.wait(20)  # let the layout settle before the picture
    panel.grab().save(str(artifacts_dir / "findings_panel.png"))


def test_review_round_trip_and_sign_off(qtbot, db: Database, artifacts_dir: Path) -> None:
    """Wired to a real ReviewController the way the window wires them."""
    case_id = analysed_case(db, 2, findings=3)
    panel = _panel(qtbot, Prompt(""))
    controller = ReviewController(db)
    controller.case_loaded.connect(panel.set_case)
    controller.case_changed.connect(panel.set_case)
    panel.accept_requested.connect(controller.accept)
    panel.reject_requested.connect(controller.reject)
    panel.sign_off_requested.connect(controller.sign_off)
    controller.load_case(case_id)

    pks = [panel.model.finding_at(r).finding_pk for r in range(3)]
    panel.select_finding(pks[0])
    selected: list[StoredFinding] = []
    panel.finding_selected.connect(selected.append)
    panel.accept_action.trigger()
    # Saved, shown, and the next pending finding is selected for the viewer.
    assert _cells(panel, Column.REVIEW) == ["Accepted", "Pending", "Pending"]
    assert panel.selected_finding().finding_pk == pks[1]
    assert [f.finding_pk for f in selected] == [pks[1]]
    assert not panel.sign_action.isEnabled()
    panel.reject_action.trigger()
    assert panel.selected_finding().finding_pk == pks[2]
    assert "1 AI finding is not reviewed yet (#3)" in panel.sign_reason.text()
    panel.accept_action.trigger()
    assert _cells(panel, Column.REVIEW) == ["Accepted", "Rejected", "Accepted"]
    assert panel.selected_finding().finding_pk == pks[2]  # nothing pending: stay
    assert not panel.accept_action.isEnabled() and panel.reject_action.isEnabled()
    assert panel.sign_action.isEnabled()
    assert panel.sign_reason.text().startswith("Every AI finding is reviewed")
    qtbot.wait(20)  # let the layout settle before the picture
    panel.grab().save(str(artifacts_dir / "findings_panel_reviewed.png"))

    panel.sign_button.click()
    assert get_case(db, case_id).signed_by == "reader"
    assert panel.sign_reason.text().startswith("Signed by reader on")
    for action in (
        panel.accept_action,
        panel.reject_action,
        panel.edit_action,
        panel.add_action,
        panel.sign_action,
    ):
        assert not action.isEnabled()
    assert get_case(db, case_id).reviews[1].decision is ReviewStatus.REJECTED
    qtbot.wait(20)  # let the layout settle before the picture
    panel.grab().save(str(artifacts_dir / "findings_panel_signed.png"))


def test_sign_off_state_explains_itself(db: Database) -> None:
    assert sign_off_state(None) == (False, NO_CASE_TEXT)
    new_case = get_case(db, import_case(db, 3))
    assert sign_off_state(new_case) == (False, "Run a model on this case before signing it off.")
    nothing_found = get_case(db, analysed_case(db, 4, findings=0))
    assert sign_off_state(nothing_found)[0]
