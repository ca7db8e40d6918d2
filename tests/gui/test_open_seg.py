"""Opening a DICOM SEG that another tool wrote: the workstation loads the series it labels,
opens that series' case, stores the SEG's labels as a new mask version named after the SEG,
and shows them as the overlay."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from meddiag_desktop.app.main_window import MainWindow
from meddiag_desktop.db.audit import case_history
from meddiag_desktop.db.cases import get_case
from meddiag_desktop.db.records import AuditAction
from meddiag_desktop.db.reviewed_masks import list_reviewed_masks, load_reviewed_mask

TIMEOUT_MS = 30_000
CT_UID = "1.2.392.200103.20080913.113635.1.2009.6.22.21.43.10.23430.1"


@pytest.fixture
def dcmqi_study(sample_data: Path, tmp_path: Path) -> tuple[Path, np.ndarray]:
    """A folder with dcmqi's liver SEG beside the CT it labels (links to the samples), and
    dcmqi's own label map of the SEG."""
    refs = sample_data / "dicom" / "ct_3slice_with_seg_refs"
    ct = sample_data / "dicom" / "ct_3slice_with_seg"
    nrrd = next(
        (f / "liver_seg.nrrd" for f in (refs, ct) if (f / "liver_seg.nrrd").is_file()), None
    )
    if not (refs / "liver.dcm").is_file() or nrrd is None:
        pytest.skip("dcmqi's liver SEG sample (ct_3slice_with_seg[_refs]) is not there")
    study = tmp_path / "study"
    study.mkdir()
    for file in [refs / "liver.dcm", *sorted(ct.glob("*.dcm"))]:
        (study / file.name).symlink_to(file)
    expected = sitk.GetArrayFromImage(sitk.ReadImage(str(nrrd))).astype(np.uint8)
    return study, expected


def _wait_for_overlay(qtbot, window: MainWindow) -> np.ndarray:
    qtbot.waitUntil(lambda: window.viewer.overlay_labels is not None, timeout=TIMEOUT_MS)
    qtbot.waitUntil(window.message_bar.isVisible, timeout=TIMEOUT_MS)
    labels = window.viewer.overlay_labels
    assert labels is not None
    return labels


def test_opening_a_seg_file_shows_it_over_its_series(
    qtbot, main_window: MainWindow, dcmqi_study, artifacts_dir: Path
) -> None:
    study, expected = dcmqi_study
    main_window.open_path(study / "liver.dcm")
    labels = _wait_for_overlay(qtbot, main_window)
    np.testing.assert_array_equal(labels, expected)
    volume, case = main_window.volume, main_window.case
    assert volume is not None and volume.metadata.series_uid == CT_UID
    assert case is not None and case.series.metadata.series_uid == CT_UID
    notice = main_window.message_bar.text()
    assert "from DICOM SEG liver.dcm (Liver Segmentation, QIICR)" in notice
    assert "1 Liver" in notice
    # Stored as the case's mask version, its source named in the audit trail.
    db = main_window.database
    (version,) = list_reviewed_masks(db, case.case_id)
    np.testing.assert_array_equal(
        load_reviewed_mask(db, version.reviewed_mask_id).array_zyx, expected
    )
    assert get_case(db, case.case_id).current_reviewed_mask == version
    (saved,) = [
        e for e in case_history(db, case.case_id) if e.action is AuditAction.MASK_EDIT_SAVED
    ]
    assert saved.details["source"] == "from DICOM SEG liver.dcm (Liver Segmentation, QIICR)"
    z, y, x = (round(float(c.mean())) for c in np.nonzero(expected))
    main_window.viewer.jump_to_voxel((z, y, x))  # through the liver
    qtbot.wait(200)
    main_window.grab().save(str(artifacts_dir / "open_seg_overlay.png"))


def test_choosing_the_seg_in_the_series_list_and_reopening(
    qtbot, main_window: MainWindow, dcmqi_study
) -> None:
    study, expected = dcmqi_study
    main_window.open_path(study)
    qtbot.waitUntil(lambda: main_window.case is not None, timeout=TIMEOUT_MS)
    assert main_window.viewer.overlay_labels is None  # the CT alone: no mask yet
    model = main_window.series_table.series_model
    keys = [model.series_at(r).key for r in range(model.rowCount())]
    seg_key = next(k for k in keys if k != CT_UID)
    main_window.series_table.select_series(seg_key)
    labels = _wait_for_overlay(qtbot, main_window)
    np.testing.assert_array_equal(labels, expected)
    case = main_window.case
    assert case is not None
    # Opening the same SEG again stores nothing new: it already is the case's mask.
    main_window.series_table.select_series(CT_UID)
    qtbot.waitUntil(lambda: main_window.viewer.overlay_labels is not None, timeout=TIMEOUT_MS)
    main_window.message_bar.dismiss()
    main_window.series_table.select_series(seg_key)
    qtbot.waitUntil(lambda: "already" in main_window.message_bar.text(), timeout=TIMEOUT_MS)
    assert len(list_reviewed_masks(main_window.database, case.case_id)) == 1


def test_a_seg_without_its_series_names_the_missing_uid(
    qtbot, main_window: MainWindow, sample_data: Path
) -> None:
    seg = sample_data / "dicom" / "ct_3slice_with_seg_refs" / "liver.dcm"
    if not seg.is_file():
        pytest.skip("dcmqi's liver SEG sample is not there")
    main_window.open_path(seg)
    qtbot.waitUntil(lambda: CT_UID in main_window.message_bar.text(), timeout=TIMEOUT_MS)
    assert "not in" in main_window.message_bar.text()
    assert main_window.viewer.overlay_labels is None
