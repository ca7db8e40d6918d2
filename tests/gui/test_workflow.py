"""What a radiologist does all day, end to end through the window: open the demo case, run the
demo model, review its findings, sign off; cancel a run; move on to another case mid-run."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QElapsedTimer, QTimer

from meddiag_desktop.app.main_window import MainWindow
from meddiag_desktop.db.cases import get_case
from meddiag_desktop.db.records import CaseStatus, ReviewStatus, RunOutcome
from meddiag_desktop.db.reviewed_masks import list_reviewed_masks, load_reviewed_mask
from meddiag_desktop.db.runs import load_mask
from meddiag_desktop.demo.case import DemoCase, write_demo_case
from meddiag_desktop.domain import FindingSource
from meddiag_desktop.inference.card import ModelCard
from meddiag_desktop.inference.registry import ModelRegistry
from meddiag_desktop.viewer.plane_geometry import Plane

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


def open_case(qtbot, window: MainWindow, folder: Path) -> None:
    window.open_path(folder)
    qtbot.waitUntil(
        lambda: window.case is not None and window.run_action.isEnabled(), timeout=OPEN_MS
    )


class GapMeter:
    """The longest time the GUI event loop went without running a 10 ms timer."""

    def __init__(self) -> None:
        self.clock = QElapsedTimer()
        self.worst_ms = 0
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)

    def start(self) -> None:
        self.clock.start()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def _tick(self) -> None:
        self.worst_ms = max(self.worst_ms, self.clock.restart())


def test_open_run_review_and_sign_off(
    qtbot, main_window: MainWindow, demo_case: DemoCase, card: ModelCard, artifacts_dir: Path
) -> None:
    window = main_window
    open_case(qtbot, window, demo_case.dicom_folder)
    assert window.case is not None and window.case.summary.status is CaseStatus.NEW
    case_id = window.case.case_id
    assert window.worklist.selected_case_id() == case_id

    gaps = GapMeter()
    gaps.start()
    assert window.run_model(card) is not None
    assert window.cancel_action.isEnabled() and not window.run_action.isEnabled()
    qtbot.waitUntil(
        lambda: (
            window.case is not None
            and window.case.current_run is not None
            and window.labels is not None
        ),
        timeout=RUN_MS,
    )
    gaps.stop()
    (artifacts_dir / "workflow_gui_gap.txt").write_text(
        f"longest GUI event-loop gap while the demo model ran: {gaps.worst_ms} ms\n"
    )
    assert gaps.worst_ms < 1000, "the window froze while the model ran"

    run = window.case.current_run
    assert run.outcome is RunOutcome.SUCCEEDED and len(run.findings) >= 2
    assert window.labels.shape == window.volume.shape_zyx and window.labels.max() == 1
    assert "Model ran on CPU" in window.provider_label.text()
    assert window.provider_label.toolTip()  # why CUDA/TensorRT were not used
    # bfloat16 where the CPU runs it natively (the demo card lists it), else float32.
    assert window.runtime_label.text() in (
        "OpenVINO, bfloat16", "OpenVINO, float32", "onnxruntime, float32"
    )
    window.grab().save(str(artifacts_dir / "workflow_findings.png"))

    # Clicking a finding moves every view to it.
    first, second, *rest = run.findings
    window.findings.select_finding(first.finding_pk)
    window.findings.finding_selected.emit(first)
    centroid = first.finding.centroid_index_xyz
    cursor = window.viewer.cursor_voxel
    assert cursor is not None
    assert np.allclose(cursor, np.rint(centroid[::-1]), atol=1)
    axial = window.viewer.plane_view(Plane.AXIAL)
    assert axial.mapping is not None
    assert axial.slice_index == axial.mapping.display_of(cursor)[0]

    window.findings.accept_action.trigger()

    # Edit the second finding with the brush: it grows and is stored re-measured.
    window.edit_finding(second.finding_pk)
    assert window.viewer.active_tool is window.tools.brush
    assert window.save_edit_action.isEnabled()
    _slice, row, column = axial.mapping.display_of(window.viewer.cursor_voxel)
    x_mm, y_mm = axial.mapping.centre_mm(row, column)
    brush = window.tools.brush
    brush.set_radius_mm(4.0)
    brush.press(axial, x_mm, y_mm)
    brush.drag(axial, x_mm + 6.0, y_mm)
    brush.release(axial, x_mm + 6.0, y_mm)
    assert window.tools.undo_action.isEnabled()
    window.save_edit()
    assert window.viewer.active_tool is None and not window.save_edit_action.isEnabled()

    # Paint a lesion the model missed, far from the others, as a manual finding.
    window.add_manual_finding()
    far = axial.mapping.centre_mm(axial.mapping.rows // 2, axial.mapping.columns // 2)
    brush.press(axial, *far)
    brush.release(axial, *far)
    window.save_edit()
    edited = window.labels.copy()  # the model's mask, grown at #2, plus the manual lesion
    original = load_mask(window.database, run.run_id).array_zyx
    assert not np.array_equal(edited, original)

    window.findings.reason_prompt = lambda *_: "vessel, not a nodule"
    for stored in rest:
        window.findings.select_finding(stored.finding_pk)
        window.findings.reject_action.trigger()
    qtbot.waitUntil(lambda: window.findings.sign_action.isEnabled(), timeout=5_000)
    signed_what: list[int] = []  # the confirmation dialog itself: test_review_at_keyboard.py
    window.confirm_sign_off = lambda _parent, case, _signer: not signed_what.append(case.case_id)
    window.findings.sign_action.trigger()
    assert signed_what == [case_id]
    qtbot.waitUntil(
        lambda: window.case is not None and window.case.signed_at is not None, timeout=5_000
    )
    window.grab().save(str(artifacts_dir / "workflow_signed.png"))

    saved = get_case(window.database, case_id)
    assert saved.summary.status is CaseStatus.SIGNED and saved.signed_by
    decisions = {r.finding_pk: r for r in saved.reviews}
    assert decisions[first.finding_pk].decision is ReviewStatus.ACCEPTED
    edit = decisions[second.finding_pk]
    assert edit.decision is ReviewStatus.EDITED and edit.edited_finding is not None
    assert edit.edited_finding.volume_ml > second.finding.volume_ml
    for stored in rest:
        assert decisions[stored.finding_pk].decision is ReviewStatus.REJECTED
        assert decisions[stored.finding_pk].reason == "vessel, not a nodule"
    [manual] = saved.manual_findings
    assert manual.finding.source is FindingSource.MANUAL and manual.finding.volume_ml > 0
    assert all(r.reviewer == saved.signed_by for r in saved.reviews)
    assert not window.run_action.isEnabled()  # a signed case takes no new runs

    # Each save stored the whole edited map as a new version, verified when read back.
    versions = list_reviewed_masks(window.database, case_id)
    assert len(versions) == 2 and saved.current_reviewed_mask == versions[-1]
    assert versions[-1].run_id == run.run_id and versions[-1].author == saved.signed_by
    stored_map = load_reviewed_mask(window.database, versions[-1].reviewed_mask_id).array_zyx
    assert np.array_equal(stored_map, edited)

    # Reopen the case from the worklist: the overlay shows the edit, not the model's mask.
    shown_before = window.labels
    window.open_case(case_id)
    qtbot.waitUntil(
        lambda: (
            window.case is not None
            and window.labels is not None
            and window.labels is not shown_before
        ),
        timeout=OPEN_MS,
    )
    assert window.viewer.overlay_labels is window.labels
    assert np.array_equal(window.labels, edited)
    x0, y0, z0, x1, y1, z1 = manual.finding.bbox_index_xyz
    lesion = (slice(z0, z1 + 1), slice(y0, y1 + 1), slice(x0, x1 + 1))
    assert window.labels[lesion].any() and not original[lesion].any()  # the manual voxels


def test_cancel_keeps_nothing_from_the_run(
    qtbot, main_window: MainWindow, demo_case: DemoCase, card: ModelCard
) -> None:
    window = main_window
    open_case(qtbot, window, demo_case.dicom_folder)
    case_id = window.case.case_id
    window.inference.progress_changed.connect(lambda *_: window.cancel_action.trigger())
    started = time.monotonic()
    window.run_model(card)
    qtbot.waitUntil(lambda: not window.inference.running, timeout=RUN_MS)
    assert time.monotonic() - started < 60
    assert "cancelled" in window.statusBar().currentMessage()
    saved = get_case(window.database, case_id)
    assert [r.outcome for r in saved.runs] == [RunOutcome.CANCELLED]
    assert saved.runs[0].findings == () and saved.runs[0].mask is None
    assert saved.summary.status is CaseStatus.NEW
    assert window.labels is None and window.findings.model.rowCount() == 0


def test_a_slow_result_for_case_a_never_paints_over_case_b(
    qtbot, main_window: MainWindow, demo_case: DemoCase, card: ModelCard, phantom_path: Path
) -> None:
    window = main_window
    open_case(qtbot, window, demo_case.dicom_folder)
    case_a = window.case.case_id
    tag = window.run_model(card)
    assert tag is not None
    window.open_path(phantom_path)  # the reader moves on while A's model still runs
    qtbot.waitUntil(
        lambda: window.case is not None and window.case.case_id != case_a, timeout=OPEN_MS
    )
    qtbot.waitUntil(lambda: not window.inference.running, timeout=RUN_MS)
    qtbot.wait(200)
    assert window.case.case_id != case_a
    assert window.labels is None and window.findings.model.rowCount() == 0
    runs_a = get_case(window.database, case_a).runs
    assert [r.outcome for r in runs_a] in ([RunOutcome.CANCELLED], [RunOutcome.SUCCEEDED])


def test_a_manual_lesion_stays_drawn_after_a_newer_model_run(
    qtbot, main_window: MainWindow, demo_case: DemoCase, card: ModelCard
) -> None:
    window = main_window
    open_case(qtbot, window, demo_case.dicom_folder)
    assert window.labels is None  # no run yet: the manual lesion is painted on an empty map
    window.add_manual_finding()
    axial = window.viewer.plane_view(Plane.AXIAL)
    assert axial.mapping is not None
    far = axial.mapping.centre_mm(axial.mapping.rows // 2, axial.mapping.columns // 2)
    window.tools.brush.set_radius_mm(4.0)
    window.tools.brush.press(axial, *far)
    window.tools.brush.release(axial, *far)
    window.save_edit()
    painted = window.labels.copy()
    assert painted.any()

    before = window.labels
    assert window.run_model(card) is not None
    qtbot.waitUntil(
        lambda: (
            window.case is not None
            and window.case.current_run is not None
            and window.labels is not None
            and window.labels is not before
        ),
        timeout=RUN_MS,
    )
    run_mask = load_mask(window.database, window.case.current_run.run_id).array_zyx
    manual_only = (painted > 0) & (run_mask == 0)
    assert manual_only.any(), "the model found the painted lesion itself: nothing to check"
    assert (window.labels[manual_only] == 1).all()  # the manual lesion is still drawn
    assert np.array_equal(window.labels[run_mask > 0], run_mask[run_mask > 0])
    assert len(window.case.manual_findings) == 1
    assert window.findings.model.rowCount() == len(window.case.current_run.findings) + 1
