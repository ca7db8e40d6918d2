"""Issue 10's "done when", through the real window: open the demo case, run the demo model,
review (accept, edit with the brush, reject, add a manual lesion), sign off, take the export
offer, choose in the Export dialog, and find the six outputs holding the kept findings only,
the PDF showing their key images, and the export in the audit trail."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_raw
import pytest
from PIL import Image

from meddiag_desktop.app.export_dialog import OUTPUT_TEXT
from meddiag_desktop.app.main_window import MainWindow
from meddiag_desktop.db.audit import case_history
from meddiag_desktop.db.cases import get_case
from meddiag_desktop.db.records import AuditAction, ReviewStatus
from meddiag_desktop.demo.case import DemoCase, write_demo_case
from meddiag_desktop.export.write_outputs import OUTPUTS, ExportResult
from meddiag_desktop.inference.registry import ModelRegistry
from meddiag_desktop.reports.key_images import DEFAULT_CONTOUR_COLOUR
from meddiag_desktop.viewer.plane_geometry import Plane

pytestmark = pytest.mark.gui
OPEN_MS = 60_000
RUN_MS = 240_000
EXPORT_MS = 120_000
RENDER_SCALE = 2.0


@pytest.fixture(scope="module")
def demo_case(tmp_path_factory: pytest.TempPathFactory) -> DemoCase:
    """The workflow test's small phantom: 3 nodules for seed 7, a run of seconds on two cores."""
    folder = tmp_path_factory.mktemp("demo") / "case"
    return write_demo_case(folder, seed=7, shape_zyx=(56, 160, 160), spacing_xyz_mm=(1.6, 1.6, 2.5))


def _contour_pixels(pixels: np.ndarray, colour: str = DEFAULT_CONTOUR_COLOUR) -> int:
    rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(pixels[..., :3].astype(int) - rgb) <= 40).all(axis=-1).sum())


def test_review_sign_off_and_export_from_the_window(
    qtbot, main_window: MainWindow, demo_case: DemoCase, tmp_path: Path, artifacts_dir: Path
) -> None:
    window = main_window
    assert not window.export_action.isEnabled()  # nothing open, nothing to export
    window.open_path(demo_case.dicom_folder)
    qtbot.waitUntil(
        lambda: window.case is not None and window.run_action.isEnabled(), timeout=OPEN_MS
    )
    assert window.export_action.isEnabled()
    case_id = window.case.case_id
    card = ModelRegistry().find("demo-lung-nodules")
    assert window.run_model(card) is not None
    qtbot.waitUntil(
        lambda: (
            window.case is not None
            and window.case.current_run is not None
            and window.labels is not None
        ),
        timeout=RUN_MS,
    )
    run = window.case.current_run
    assert len(run.findings) >= 3, "the demo model finds the phantom's three nodules"
    accepted, edited, rejected, *others = run.findings

    # Accept the first (and any beyond the three), ...
    for stored in (accepted, *others):
        window.findings.select_finding(stored.finding_pk)
        window.findings.accept_action.trigger()
    # ... grow the second with the brush and save it re-measured, ...
    axial = window.viewer.plane_view(Plane.AXIAL)
    window.edit_finding(edited.finding_pk)
    assert not window.export_action.isEnabled()  # an unsaved edit would not be exported
    assert axial.mapping is not None and window.viewer.cursor_voxel is not None
    _slice, row, column = axial.mapping.display_of(window.viewer.cursor_voxel)
    x_mm, y_mm = axial.mapping.centre_mm(row, column)
    brush = window.tools.brush
    brush.set_radius_mm(4.0)
    brush.press(axial, x_mm, y_mm)
    brush.drag(axial, x_mm + 6.0, y_mm)
    brush.release(axial, x_mm + 6.0, y_mm)
    window.save_edit()
    # ... paint a lesion the model missed, ...
    window.add_manual_finding()
    far = axial.mapping.centre_mm(axial.mapping.rows // 2, axial.mapping.columns // 2)
    brush.press(axial, *far)
    brush.release(axial, *far)
    window.save_edit()
    # ... reject the third, and sign.
    window.findings.reason_prompt = lambda *_: "vessel, not a nodule"
    window.findings.select_finding(rejected.finding_pk)
    window.findings.reject_action.trigger()
    qtbot.waitUntil(lambda: window.findings.sign_action.isEnabled(), timeout=5_000)
    window.confirm_sign_off = lambda *_: True  # the confirmation itself: test_review_at_keyboard
    window.findings.sign_action.trigger()
    assert window.case is not None and window.case.signed_at is not None

    # The sign-off offers the export; taking it opens the Export dialog.
    offer = window.export_offer
    assert offer is not None and offer.isVisible()
    offered = offer.defaultButton()
    assert offered is not None and offered.text() == "Export…"
    offered.click()
    dialog = window.export_dialog
    assert dialog is not None
    qtbot.waitUntil(dialog.isVisible, timeout=5_000)
    assert not offer.isVisible()
    assert not dialog.draft_warning.isVisibleTo(dialog)  # signed: a final report
    assert all(box.isChecked() for box in dialog.output_boxes.values())
    out = tmp_path / "export"
    dialog.set_folder(out)
    dialog.grab().save(str(artifacts_dir / "export_dialog_signed.png"))
    opened: list[Path] = []
    window.exports.open_folder = opened.append  # the file manager itself stays shut in a test
    dialog.export_button.click()
    assert window.exports.running and not window.export_action.isEnabled()
    qtbot.waitUntil(lambda: not window.exports.running, timeout=EXPORT_MS)
    box = window.export_box
    assert box is not None, window.message_bar.text()  # else: why it failed
    box.grab().save(str(artifacts_dir / "export_finished.png"))
    result: ExportResult = box.export_result
    assert not box.open_button.isHidden()
    box.open_button.click()
    assert opened == [out]
    assert str(out) in window.message_bar.text()  # the folder stays named after the box

    # The six files, in the exporter's order, nothing skipped, not a draft.
    names = [OUTPUT_TEXT[name][1] for name in OUTPUTS]
    assert [p.name for p in result.files] == names and not result.skipped and not result.draft
    assert sorted(p.name for p in out.iterdir()) == sorted(names)

    # findings.json: the kept findings only; the rejected one is nowhere in it.
    saved = get_case(window.database, case_id)
    kept = [
        f
        for f in (*saved.current_run.findings, *saved.manual_findings)
        if f.review_status is not ReviewStatus.REJECTED
    ]
    text = (out / "findings.json").read_text()
    rows = json.loads(text)
    rows = rows["findings"] if isinstance(rows, dict) else rows
    assert len(rows) == len(kept) == len(run.findings)  # one rejected, one added by hand
    assert {row["decision"] for row in rows} == {"accepted", "edited", "manual"}
    x, y, z = (round(float(v), 2) for v in rejected.finding.centroid_lps_mm)
    volume = round(rejected.finding.volume_ml, 4)
    assert not any(
        (row["x_mm"], row["y_mm"], row["z_mm"]) == (x, y, z) or row["volume_ml"] == volume
        for row in rows
    ), "the rejected finding reached findings.json"

    # The audit trail holds the export: who, which files, their sha256.
    history = case_history(window.database, case_id)
    [event] = [e for e in history if e.action is AuditAction.REPORT_EXPORTED]
    assert event.actor == saved.signed_by
    details = json.dumps(event.details)
    assert all(name in details for name in names)

    # The PDF: a page with a key image per kept finding, contours drawn; rendered and kept.
    pdf = pdfium.PdfDocument(str(out / "report.pdf"))
    images, contour, text = 0, 0, ""
    for number in range(len(pdf)):
        page = pdf[number]
        text += page.get_textpage().get_text_range()
        images += len(list(page.get_objects(filter=[pdfium_raw.FPDF_PAGEOBJ_IMAGE])))
        pixels = np.asarray(page.render(scale=RENDER_SCALE).to_pil().convert("RGB"))
        contour += _contour_pixels(pixels)
        Image.fromarray(pixels).save(artifacts_dir / f"e2e_report_page{number + 1}.png")
    assert images >= len(kept), f"{images} images in the PDF for {len(kept)} kept findings"
    assert contour > 0, "no contour colour on any page of the report"
    flat = "".join(text.split())
    assert "".join(card.intended_use.split()) in flat, "the model's intended use is not printed"
    assert "no longer installed" not in flat  # the card is installed: it ran just now
