"""The review as a radiologist does it at the keyboard, through the window, on the demo case
with the demo model really run: the review keys wherever the focus is, the first finding shown
after a run, painting only while editing, rejected findings drawn apart, sign-off asked first,
the case history in the app and the GPU fallback in plain words."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QPushButton

from meddiag_desktop.app.case_history import CaseHistoryDialog
from meddiag_desktop.app.main_window import MainWindow
from meddiag_desktop.app.provider_details import ProviderDetailsBox
from meddiag_desktop.app.sign_off_dialog import SignOffDialog
from meddiag_desktop.db.cases import get_case
from meddiag_desktop.db.records import CaseStatus, ReviewStatus, StoredFinding
from meddiag_desktop.db.runs import load_mask
from meddiag_desktop.demo.case import DemoCase, write_demo_case
from meddiag_desktop.inference.card import ModelCard
from meddiag_desktop.inference.registry import ModelRegistry
from meddiag_desktop.viewer.plane_geometry import Plane
from meddiag_desktop.viewer.plane_view import PlaneView

pytestmark = pytest.mark.gui
OPEN_MS = 60_000
RUN_MS = 240_000


@pytest.fixture(scope="module")
def demo_case(tmp_path_factory: pytest.TempPathFactory) -> DemoCase:
    """A small demo phantom (3 nodules for seed 7) so a run takes seconds on two cores."""
    folder = tmp_path_factory.mktemp("demo") / "case"
    return write_demo_case(folder, seed=7, shape_zyx=(56, 160, 160), spacing_xyz_mm=(1.6, 1.6, 2.5))


@pytest.fixture(scope="module")
def card() -> ModelCard:
    return ModelRegistry().find("demo-lung-nodules")


@pytest.fixture
def analysed(qtbot, main_window: MainWindow, demo_case: DemoCase, card: ModelCard) -> MainWindow:
    """The window with the demo case open and the demo model's run stored and shown."""
    window = main_window
    window.open_path(demo_case.dicom_folder)
    qtbot.waitUntil(
        lambda: window.case is not None and window.run_action.isEnabled(), timeout=OPEN_MS
    )
    assert window.run_model(card) is not None
    qtbot.waitUntil(
        lambda: (
            window.case is not None
            and window.case.current_run is not None
            and window.labels is not None
            and window.findings.model.rowCount() > 0
        ),
        timeout=RUN_MS,
    )
    assert len(window.case.current_run.findings) >= 3
    window.findings.reason_prompt = lambda *_: "vessel, not a nodule"
    return window


def _axial(window: MainWindow) -> PlaneView:
    view = window.viewer.plane_view(Plane.AXIAL)
    assert view.mapping is not None
    return view


def _findings(window: MainWindow) -> list[StoredFinding]:
    assert window.case is not None and window.case.current_run is not None
    return list(window.case.current_run.findings)


def _status(window: MainWindow, finding_pk: int) -> ReviewStatus:
    case = get_case(window.database, window.case.case_id)
    return next(f.review_status for f in case.current_run.findings if f.finding_pk == finding_pk)


def _stored_mask(window: MainWindow) -> np.ndarray:
    return load_mask(window.database, window.case.current_run.run_id).array_zyx


def _press(qtbot, widget, key: Qt.Key, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    """A key press as the user makes it: to the focus widget of the active window."""
    qtbot.keyClick(widget, key, modifier)


def _focus_axial(qtbot, window: MainWindow) -> PlaneView:
    axial = _axial(window)
    window.activateWindow()
    axial.setFocus()
    qtbot.waitUntil(axial.hasFocus, timeout=2_000)
    return axial


def _drag(qtbot, view: PlaneView) -> None:
    """A left-button drag across the middle of the image, through Qt's event system."""
    viewport = view.graphics.viewport()
    centre = viewport.rect().center()
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, pos=centre)
    for step in range(1, 6):
        QTest.mouseMove(viewport, centre + type(centre)(4 * step, 2 * step))
    QTest.mouseRelease(
        viewport, Qt.MouseButton.LeftButton, pos=centre + type(centre)(20, 10), delay=10
    )


def test_after_a_run_the_first_finding_is_selected_and_shown(analysed: MainWindow) -> None:
    window = analysed
    first = _findings(window)[0]
    selected = window.findings.selected_finding()
    assert selected is not None and selected.finding_pk == first.finding_pk
    region = window.viewer.highlighted_region
    assert region is not None
    x, y, z = first.finding.centroid_index_xyz
    assert np.allclose(window.viewer.cursor_voxel, (z, y, x), atol=1.5)


def test_review_keys_work_wherever_the_focus_is(qtbot, analysed: MainWindow) -> None:
    window = analysed
    first, second, third, *_ = _findings(window)
    axial = _focus_axial(qtbot, window)

    _press(qtbot, axial, Qt.Key.Key_A)  # accept, with the focus in an image
    assert _status(window, first.finding_pk) is ReviewStatus.ACCEPTED
    assert window.findings.selected_finding().finding_pk == second.finding_pk  # moved on

    axial.view_box.scaleBy((0.5, 0.5))
    zoomed = axial.view_box.viewRange()
    _press(qtbot, axial, Qt.Key.Key_R)  # reject: asks the reason, does not reset the view
    assert _status(window, second.finding_pk) is ReviewStatus.REJECTED
    assert get_case(window.database, window.case.case_id).reviews[-1].reason == (
        "vessel, not a nodule"
    )
    assert np.allclose(axial.view_box.viewRange(), zoomed)  # R no longer resets the zoom
    _press(qtbot, axial, Qt.Key.Key_0, Qt.KeyboardModifier.ControlModifier)  # the reset now
    assert not np.allclose(axial.view_box.viewRange(), zoomed)

    assert window.findings.selected_finding().finding_pk == third.finding_pk
    _press(qtbot, axial, Qt.Key.Key_P)  # previous finding, and the view follows
    assert window.findings.selected_finding().finding_pk == second.finding_pk
    _press(qtbot, axial, Qt.Key.Key_N)  # next
    assert window.findings.selected_finding().finding_pk == third.finding_pk
    x, y, z = third.finding.centroid_index_xyz
    assert np.allclose(window.viewer.cursor_voxel, (z, y, x), atol=1.5)

    # From the worklist table too; typing in the search box is typing, not a review.
    window.left_tabs.setCurrentIndex(0)
    search = window.worklist.search_box
    search.setFocus()
    qtbot.waitUntil(search.hasFocus, timeout=2_000)
    qtbot.keyClicks(search, "a")
    assert search.text() == "a"
    assert _status(window, third.finding_pk) is ReviewStatus.PENDING
    search.clear()
    window.worklist.table.setFocus()
    _press(qtbot, window.worklist.table, Qt.Key.Key_E)  # edit: the brush gets the lesion
    assert window.save_edit_action.isEnabled()
    assert window.viewer.active_tool is window.tools.brush
    _press(qtbot, window.worklist.table, Qt.Key.Key_X)  # the eraser has its own key now
    assert window.viewer.active_tool is window.tools.eraser
    window.discard_edit()
    _press(qtbot, window.worklist.table, Qt.Key.Key_A)
    assert _status(window, third.finding_pk) is ReviewStatus.ACCEPTED


def test_painting_outside_edit_mode_changes_nothing(qtbot, analysed: MainWindow) -> None:
    window = analysed
    stored = _stored_mask(window)
    assert np.array_equal(window.labels, stored)
    axial = _focus_axial(qtbot, window)

    # Not in Edit mode: the tools are disabled, their keys do nothing, a drag paints nothing.
    for action in (window.tools.brush_action, window.tools.eraser_action):
        assert not action.isEnabled()
    _press(qtbot, axial, Qt.Key.Key_B)
    window.tools.brush_action.trigger()
    window.tools.activate(window.tools.eraser)
    assert window.viewer.active_tool is None
    _drag(qtbot, axial)
    first = _findings(window)[0]
    x_mm, y_mm = axial.mapping.centre_mm(*axial.mapping.display_of(window.viewer.cursor_voxel)[1:])
    for brush in (window.tools.brush, window.tools.eraser):  # even a stroke sent straight in
        brush.press(axial, x_mm, y_mm)
        brush.drag(axial, x_mm + 8.0, y_mm)
        brush.release(axial, x_mm + 8.0, y_mm)
    assert np.array_equal(window.viewer.overlay_labels, stored)
    assert np.array_equal(window.labels, stored)
    assert not window.save_edit_action.isEnabled() and not window.tools.undo_action.isEnabled()

    # In Edit mode the same drag paints, and Discard brings the stored map back.
    window.findings.select_finding(first.finding_pk)
    window.findings.edit_action.trigger()
    assert window.tools.brush_action.isEnabled()
    window.tools.brush.set_radius_mm(4.0)
    window.tools.brush.press(axial, x_mm, y_mm)
    window.tools.brush.release(axial, x_mm + 8.0, y_mm)
    assert not np.array_equal(window.labels, stored)
    assert window.save_edit_action.isEnabled() and window.discard_edit_action.isEnabled()
    window.discard_edit_action.trigger()
    assert np.array_equal(window.labels, stored)
    assert not window.tools.brush_action.isEnabled()


def test_rejected_findings_are_drawn_grey_and_dotted_or_hidden(
    qtbot, analysed: MainWindow, artifacts_dir: Path
) -> None:
    window = analysed
    first, second, *_ = _findings(window)
    window.findings.select_finding(first.finding_pk)
    window.findings.reject_action.trigger()
    assert window.viewer.rejected_voxels is not None
    x, y, z = (round(v) for v in first.finding.centroid_index_xyz)
    rejected = {tuple(v) for v in window.viewer.rejected_voxels}
    assert (z, y, x) in rejected
    sx, sy, sz = (round(v) for v in second.finding.centroid_index_xyz)
    assert (sz, sy, sx) not in rejected  # the pending one keeps its colour

    window.viewer.jump_to_voxel((z, y, x))
    window.viewer.highlight_label_region(None)
    axial = _axial(window)
    _, row, column = axial.mapping.display_of((z, y, x))
    assert window.labels[z, y, x] == 1  # still in the stored map: drawn differently, not lost
    assert axial.overlay.label_at(row, column) == 0  # not in the label's colour
    assert axial.overlay.rejected_at(row, column) == 1  # grey fill
    assert axial.overlay.rejected_item.isVisible()
    window.viewer.toggle_maximise(Plane.AXIAL)
    qtbot.wait(50)
    window.grab().save(str(artifacts_dir / "review_rejected_finding.png"))

    _press(qtbot, _focus_axial(qtbot, window), Qt.Key.Key_H)  # hide rejected findings
    assert not window.viewer.overlay_style.rejected_visible
    assert not axial.overlay.rejected_item.isVisible()
    assert axial.overlay.label_at(row, column) == 0  # hidden, not drawn in colour either
    assert not window.show_rejected_action.isChecked()
    assert not window.viewer.panel.rejected_box.isChecked()
    window.viewer.panel.rejected_box.click()  # and back, from the panel
    assert axial.overlay.rejected_item.isVisible() and window.show_rejected_action.isChecked()


def _review_all(window: MainWindow) -> None:
    findings = _findings(window)
    for index, stored in enumerate(findings):
        window.findings.select_finding(stored.finding_pk)
        action = window.findings.reject_action if index == 1 else window.findings.accept_action
        action.trigger()
    assert window.findings.sign_action.isEnabled()


def _answer_dialog(qtbot, answer: str, seen: list[SignOffDialog], picture: Path | None) -> None:
    """When the modal sign-off dialog is up: remember it, photograph it, press ``answer``."""

    def respond() -> None:
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, SignOffDialog):
            QTimer.singleShot(20, respond)
            return
        seen.append(dialog)
        if picture is not None:
            dialog.grab().save(str(picture))
        button = dialog.cancel_button if answer == "cancel" else dialog.sign_button
        assert isinstance(button, QPushButton)
        button.click()

    QTimer.singleShot(20, respond)


def test_sign_off_asks_first_and_cancel_signs_nothing(
    qtbot, analysed: MainWindow, artifacts_dir: Path
) -> None:
    window = analysed
    _review_all(window)
    case_id = window.case.case_id
    seen: list[SignOffDialog] = []

    _answer_dialog(qtbot, "cancel", seen, artifacts_dir / "review_sign_off_confirmation.png")
    window.findings.sign_action.trigger()  # the real dialog, answered by the timer above
    [asked] = seen
    summary = asked.summary
    meta = window.volume.metadata
    assert meta.patient_id in summary.patient
    assert window.case.summary.study_description in summary.study
    assert window.case.summary.series_description in summary.series
    assert "demo-lung-nodules" in summary.model_run
    shown = [
        [asked.table.item(r, c).text() for c in range(asked.table.columnCount())]
        for r in range(asked.table.rowCount())
    ]
    assert len(shown) == len(_findings(window))
    assert [row[3] for row in shown][:2] == ["Accepted", "Rejected"]
    assert shown[1][5] == "vessel, not a nodule" and shown[1][4] == window.review.actor
    assert asked.cancel_button.isDefault()  # a stray Enter signs nothing
    saved = get_case(window.database, case_id)
    assert saved.signed_at is None and saved.summary.status is not CaseStatus.SIGNED

    _answer_dialog(qtbot, "sign", seen, None)
    _press(qtbot, _focus_axial(qtbot, window), Qt.Key.Key_S, _CTRL_SHIFT)  # the key asks too
    assert len(seen) == 2
    saved = get_case(window.database, case_id)
    assert saved.signed_by == window.review.actor and saved.summary.status is CaseStatus.SIGNED


_CTRL_SHIFT = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier


def test_sign_off_with_findings_pending_says_why_without_asking(analysed: MainWindow) -> None:
    window = analysed
    asked: list[int] = []
    window.confirm_sign_off = lambda _parent, case, _signer: not asked.append(case.case_id)
    assert not window.sign_off()
    assert asked == [] and "not reviewed yet" in window.message_bar.text()
    assert get_case(window.database, window.case.case_id).signed_at is None


def test_history_shows_every_decision_with_who_when_and_why(
    qtbot, analysed: MainWindow, artifacts_dir: Path
) -> None:
    window = analysed
    first, second, *_ = _findings(window)
    window.findings.select_finding(first.finding_pk)
    window.findings.accept_action.trigger()
    window.findings.select_finding(second.finding_pk)
    window.findings.reject_action.trigger()
    window.findings.select_finding(first.finding_pk)
    window.findings.reject_action.trigger()  # a change of mind is history too

    _press(qtbot, _focus_axial(qtbot, window), Qt.Key.Key_H, Qt.KeyboardModifier.ControlModifier)
    dialog = window.history_dialog
    assert isinstance(dialog, CaseHistoryDialog) and dialog.isVisible()
    rows = [[dialog.cell(r, c) for c in range(5)] for r in range(dialog.table.rowCount())]
    actor = window.review.actor
    # The case's whole history: imported and opened come before the run, which is the actor's.
    steps = [row[2] for row in rows]
    assert steps[0] == "Imported" and "Opened" in steps, steps
    (run,) = [row for row in rows if row[2] == "Model run succeeded"]
    assert run[1] == actor and steps.index("Opened") < steps.index("Model run succeeded")
    decisions = [row for row in rows if row[3]]
    assert [(row[2], row[3]) for row in decisions] == [
        ("Accepted (was Pending)", f"#{first.finding.finding_id}"),
        ("Rejected (was Pending)", f"#{second.finding.finding_id}"),
        ("Rejected (was Accepted)", f"#{first.finding.finding_id}"),
    ]
    assert all(row[1] == actor and row[0][:4].isdigit() for row in decisions)
    assert decisions[1][4] == "vessel, not a nodule"

    window.findings.select_finding(second.finding_pk)
    window.findings.accept_action.trigger()  # the open history follows
    assert dialog.cell(dialog.table.rowCount() - 1, 2) == "Accepted (was Rejected)"
    qtbot.wait(20)
    dialog.grab().save(str(artifacts_dir / "review_case_history.png"))


def test_gpu_fallback_is_said_in_plain_words(
    qtbot, analysed: MainWindow, artifacts_dir: Path
) -> None:
    window = analysed
    tip = window.provider_label.toolTip()
    assert "Model ran on" in window.provider_label.text()
    if window.provider_label.text().endswith("CPU") and window.provider_button.isVisible():
        assert "the model ran on the CPU" in tip
        assert "ExecutionProvider" not in tip and "libonnxruntime" not in tip
        window.provider_button.click()
        box = window.provider_box
        assert isinstance(box, ProviderDetailsBox) and box.isVisible()
        assert box.text() == tip
        for provider, raw in box.report.attempts:  # onnxruntime's own text, on request only
            assert provider in box.detailedText() and raw in box.detailedText()
            assert raw not in tip
        details = next(b for b in box.buttons() if "Details" in b.text())
        details.click()
        qtbot.wait(50)
        box.grab().save(str(artifacts_dir / "review_gpu_fallback_details.png"))
        box.close()
    else:
        pytest.skip(f"no GPU fallback on this machine: {window.provider_label.text()} ({tip})")
