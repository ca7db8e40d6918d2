"""Case → Compare with prior in the window: the demo follow-up pair imported with its ground-truth
masks as runs, compared in the worker (Cancel first, which stores nothing), shown side by side
with linked scrolling, a checkerboard, the lesion table and the RECIST response."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QElapsedTimer, QTimer
from PySide6.QtWidgets import QPushButton
from shared_fakes import store_ground_truth

from meddiag_desktop.app.follow_up_view import FollowUpWindow
from meddiag_desktop.app.main_window import MainWindow
from meddiag_desktop.db.comparisons import comparisons_of_case
from meddiag_desktop.db.importing import import_path
from meddiag_desktop.demo.follow_up_case import FollowUpCase, write_follow_up_case
from meddiag_desktop.viewer.plane_geometry import nearest_voxel

pytestmark = pytest.mark.gui
WAIT_MS = 120_000


@pytest.fixture(scope="module")
def pair_on_disk(tmp_path_factory: pytest.TempPathFactory) -> FollowUpCase:
    return write_follow_up_case(tmp_path_factory.mktemp("follow_up") / "pair", seed=7)




def test_compare_with_prior_side_by_side(
    qtbot, main_window: MainWindow, pair_on_disk: FollowUpCase, artifacts_dir: Path
) -> None:
    window = main_window
    db = window.database
    cases = []
    for case in (pair_on_disk.baseline, pair_on_disk.follow_up):
        [imported] = import_path(db, case.dicom_folder)
        assert imported.result is not None
        store_ground_truth(db, imported.result.case_id, case.dicom_folder, case.ground_truth)
        cases.append(imported.result.case_id)
    baseline, follow_up = cases
    truth = json.loads(pair_on_disk.truth_json.read_text(encoding="utf-8"))

    window.open_case(follow_up)
    qtbot.waitUntil(
        lambda: window.case is not None and window.compare_action.isEnabled(), timeout=WAIT_MS
    )
    flow = window.follow_up

    # The list of priors: the baseline, with its date and modality.
    window.compare_action.trigger()
    dialog = flow.dialog
    assert dialog is not None and dialog.isVisible() and dialog.list.count() == 1
    assert dialog.chosen_case_id() == baseline
    item = dialog.list.item(0)
    assert item is not None and "CT" in item.text() and "90 days before" in item.text()
    dialog.reject()
    assert not flow.running

    # Cancel during registration: nothing stored, no window, the UI is free again.
    window.compare_with_prior(baseline)
    assert flow.running and not window.compare_action.isEnabled()
    progress = flow.progress
    assert progress is not None
    qtbot.waitUntil(lambda: progress.value() >= 6, timeout=WAIT_MS)  # registering
    [cancel_button] = progress.findChildren(QPushButton)
    cancel_button.click()  # the dialog's Cancel
    qtbot.waitUntil(lambda: not flow.running, timeout=WAIT_MS)
    assert flow.window is None
    assert comparisons_of_case(db, follow_up) == ()
    assert window.compare_action.isEnabled()

    # The comparison itself.
    clock, worst = QElapsedTimer(), [0]
    ticker = QTimer()
    ticker.setInterval(10)
    ticker.timeout.connect(lambda: worst.__setitem__(0, max(worst[0], clock.restart())))
    clock.start()
    ticker.start()
    window.compare_with_prior(baseline)
    qtbot.waitUntil(lambda: flow.window is not None and flow.window.isVisible(), timeout=WAIT_MS)
    ticker.stop()
    (artifacts_dir / "follow_up_gui_gap.txt").write_text(
        f"longest GUI gap while comparing: {worst[0]} ms\n"
    )
    assert worst[0] < 1000, f"the window froze for {worst[0]} ms while comparing"
    view = flow.window
    assert isinstance(view, FollowUpWindow)
    view.resize(1400, 900)
    outcome = view.outcome
    assert outcome is not None and outcome.comparison_id is not None
    assert len(comparisons_of_case(db, follow_up)) == 1

    shown = view.statuses()
    assert Counter(shown.values()) == Counter(lesion["status"] for lesion in truth["lesions"])
    assert shown == {t.track_id: t.status.value for t in outcome.tracks}
    assert outcome.recist.response.value == truth["response"]
    assert truth["response"] in view.response_label.text()
    assert view.rule_label.text() == outcome.recist.rule
    assert "metric" in view.metric_label.text()

    # Linked scrolling: the prior shows the slice the transform gives, both ways.
    for steps in (3, -7):
        view.current.view.step_slices(steps)
        expected = view.prior_voxel_for(view.current.cursor)
        assert view.prior.cursor == expected
        assert view.prior.mapping is not None
        assert view.prior.view.slice_index == view.prior.mapping.display_of(expected)[0]
    view.prior.view.step_slices(2)
    back = outcome.transform.to_current(view.prior.lps())
    assert view.current.view.volume is not None
    assert view.current.cursor == nearest_voxel(view.current.view.volume, tuple(back))

    # Zoom follows.
    view.current.view.view_box.scaleBy((0.5, 0.5))
    (x0, x1), _ = view.current.view.view_box.viewRange()
    (u0, u1), _ = view.prior.view.view_box.viewRange()
    assert (u1 - u0) == pytest.approx(x1 - x0, rel=0.05)
    view.current.view.reset_view()

    # The checkerboard changes the image the current view paints, and back.
    before = view.shown_image()
    view.checker_box.setChecked(True)
    checked = view.shown_image()
    assert before is not None and checked is not None and not np.array_equal(before, checked)
    qtbot.wait(50)
    view.grab().save(str(artifacts_dir / "follow_up_side_by_side.png"))
    view.checker_box.setChecked(False)
    restored = view.shown_image()
    assert restored is not None and np.array_equal(before, restored)

    # A correction: unlink a matched lesion; the table shows one more new and one more gone.
    matched_row = next(
        row for row, track in enumerate(outcome.tracks) if track.status.value == "matched"
    )
    view.table.selectRow(matched_row)
    assert view.unlink_button.isEnabled()
    view.unlink_button.click()
    qtbot.waitUntil(lambda: view.outcome is not outcome and not flow.running, timeout=WAIT_MS)
    after = Counter(view.statuses().values())
    before_counts = Counter(shown.values())
    assert after["matched"] == before_counts["matched"] - 1
    assert after["new"] == before_counts["new"] + 1
    assert after["gone"] == before_counts["gone"] + 1

    # The reader's own targets: a matched lesion that was not proposed becomes one.
    unlinked = view.outcome
    assert unlinked is not None
    row, track = next(
        (row, t) for row, t in enumerate(unlinked.tracks)
        if t.status.value == "matched" and not t.target
    )
    view.table.selectRow(row)
    assert view.target_button.isEnabled()
    view.target_button.click()
    qtbot.waitUntil(lambda: view.outcome is not unlinked and not flow.running, timeout=WAIT_MS)
    chosen = view.outcome
    assert chosen is not None
    retargeted = next(t for t in chosen.tracks if t.prior_finding_pk == track.prior_finding_pk)
    assert retargeted.target and retargeted.track_id in chosen.recist.targets
    assert not chosen.recist.proposed  # the reader's choice, not the proposal
