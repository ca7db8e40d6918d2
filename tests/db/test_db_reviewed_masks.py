"""Saved edits of a case's label map: versioned mask files written with the review decision."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import db_fakes
import numpy as np
import pytest
from sqlalchemy import func, select

from meddiag_desktop.db import errors, reviewed_masks
from meddiag_desktop.db.audit import case_history
from meddiag_desktop.db.backup import backup_database
from meddiag_desktop.db.cases import delete_case, get_case
from meddiag_desktop.db.engine import Database
from meddiag_desktop.db.importing import import_series
from meddiag_desktop.db.integrity import check_database
from meddiag_desktop.db.masks import file_sha256, files_in
from meddiag_desktop.db.records import (
    AuditAction,
    Backend,
    MaskEdit,
    MaskProblemKind,
    ReviewStatus,
    UserRole,
)
from meddiag_desktop.db.reviewed_masks import list_reviewed_masks, load_reviewed_mask
from meddiag_desktop.db.reviews import add_manual_finding, review_finding, sign_case
from meddiag_desktop.db.runs import load_mask, store_inference
from meddiag_desktop.db.schema import ReviewedMaskRow
from meddiag_desktop.db.users import ensure_user
from meddiag_desktop.domain import FindingSource


@pytest.fixture
def doctor(db: Database) -> Database:
    ensure_user(db, "dr_a", UserRole.RADIOLOGIST)
    return db.acting_as("dr_a")


def analysed_case(db: Database, index: int = 1, findings: int = 2) -> tuple[int, int]:
    case_id = import_series(db, db_fakes.series(index)).case_id
    volume = db_fakes.volume(index)
    run_id = store_inference(db, case_id, volume, db_fakes.result(volume, findings, seed=index))
    return case_id, run_id


def edited_labels(db: Database, run_id: int, box: tuple[slice, ...]) -> np.ndarray:
    """The run's mask with a block painted over and a corner erased, as the brush would."""
    labels = np.ascontiguousarray(load_mask(db, run_id).array_zyx, dtype=np.uint8)
    labels[box] = 1
    labels[0, 0:3, 0:3] = 0
    return labels


def mask_edit(labels: np.ndarray, run_id: int | None, index: int = 1) -> MaskEdit:
    return MaskEdit(db_fakes.volume(index), labels, {1: "nodule"}, run_id)


def reviewed_rows(db: Database) -> int:
    with db.reading() as session:
        return int(session.scalar(select(func.count()).select_from(ReviewedMaskRow)) or 0)


def edit_first_finding(doctor: Database, case_id: int, run_id: int) -> np.ndarray:
    stored = get_case(doctor, case_id).runs[0].findings[0]
    labels = edited_labels(doctor, run_id, (slice(2, 4), slice(5, 9), slice(4, 8)))
    edited = replace(stored.finding, volume_ml=0.5)
    review_finding(
        doctor, stored.finding_pk, ReviewStatus.EDITED, "grown", edited, mask_edit(labels, run_id)
    )
    return labels


def test_a_saved_edit_reloads_voxel_for_voxel(db: Database, doctor: Database) -> None:
    case_id, run_id = analysed_case(db)
    labels = edit_first_finding(doctor, case_id, run_id)
    assert not np.array_equal(labels, load_mask(db, run_id).array_zyx)

    detail = get_case(db, case_id)
    edit = detail.reviewed_mask
    assert edit is not None and detail.current_reviewed_mask == edit
    assert (edit.run_id, edit.author, edit.case_id) == (run_id, "dr_a", case_id)
    assert edit.mask.label_names == {1: "nodule"}
    assert file_sha256(db.masks_dir / edit.mask.relative_path) == edit.mask.sha256
    reloaded = load_reviewed_mask(db, edit.reviewed_mask_id)
    assert np.array_equal(reloaded.array_zyx, labels)
    assert np.allclose(reloaded.origin_lps_mm, db_fakes.volume(1).origin_lps_mm)
    [event] = [e for e in case_history(db, case_id) if e.action is AuditAction.MASK_EDIT_SAVED]
    assert event.actor == "dr_a" and event.details["mask_sha256"] == edit.mask.sha256
    assert event.details["review_id"] == detail.reviews[-1].review_id
    assert event.details["labelled_voxels"] == int(np.count_nonzero(labels))


def test_every_save_is_a_new_version(db: Database, doctor: Database) -> None:
    case_id, run_id = analysed_case(db)
    first = edit_first_finding(doctor, case_id, run_id)
    second = first.copy()
    second[4:6, 1:3, 7:9] = 2  # a manual lesion painted after the edit
    manual = db_fakes.finding(1, FindingSource.MANUAL)
    add_manual_finding(doctor, case_id, manual, mask_edit(second, run_id))
    versions = list_reviewed_masks(db, case_id)
    assert len(versions) == 2 and get_case(db, case_id).reviewed_mask == versions[-1]
    assert np.array_equal(load_reviewed_mask(db, versions[0].reviewed_mask_id).array_zyx, first)
    assert np.array_equal(load_reviewed_mask(db, versions[1].reviewed_mask_id).array_zyx, second)
    assert check_database(db).ok and check_database(db).masks_checked == 3


def test_the_edit_is_shown_until_a_newer_run(db: Database, doctor: Database) -> None:
    case_id = import_series(db, db_fakes.series(1)).case_id
    painted = np.zeros(db_fakes.SHAPE_ZYX, dtype=np.uint8)
    painted[1:3, 4:6, 4:6] = 1
    manual = db_fakes.finding(1, FindingSource.MANUAL)
    add_manual_finding(doctor, case_id, manual, mask_edit(painted, None))
    detail = get_case(db, case_id)
    assert detail.current_run is None and detail.current_reviewed_mask == detail.reviewed_mask
    volume = db_fakes.volume(1)
    store_inference(db, case_id, volume, db_fakes.result(volume, 1, seed=1))
    detail = get_case(db, case_id)  # the new run's findings are reviewed on its own mask
    assert detail.reviewed_mask is not None and detail.current_reviewed_mask is None


def test_a_signed_case_refuses_an_edit_and_keeps_no_file(db: Database, doctor: Database) -> None:
    case_id, run_id = analysed_case(db, findings=0)
    sign_case(doctor, case_id)
    labels = edited_labels(db, run_id, (slice(0, 2), slice(0, 2), slice(0, 2)))
    manual = db_fakes.finding(1, FindingSource.MANUAL)
    with pytest.raises(errors.CaseStateError, match="signed"):
        add_manual_finding(doctor, case_id, manual, mask_edit(labels, run_id))
    assert reviewed_rows(db) == 0 and len(files_in(db.masks_dir)[0]) == 1
    assert get_case(db, case_id).manual_findings == ()


def test_a_failed_transaction_leaves_no_file_and_no_row(
    db: Database, doctor: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    case_id, run_id = analysed_case(db)
    stored = get_case(db, case_id).runs[0].findings[0]
    labels = edited_labels(db, run_id, (slice(2, 4), slice(5, 9), slice(4, 8)))

    def fail(*_args, **_kwargs) -> None:
        raise errors.StorageFullError("the disk is full")

    monkeypatch.setattr(reviewed_masks, "add_event", fail)  # after the row was flushed
    with pytest.raises(errors.StorageFullError):
        review_finding(
            doctor,
            stored.finding_pk,
            ReviewStatus.EDITED,
            "",
            stored.finding,
            mask_edit(labels, run_id),
        )
    monkeypatch.undo()
    _, other_run = analysed_case(db, index=2)
    with pytest.raises(errors.CaseStateError, match="not a run of case"):
        review_finding(
            doctor,
            stored.finding_pk,
            ReviewStatus.EDITED,
            "",
            stored.finding,
            mask_edit(labels, other_run),
        )
    assert reviewed_rows(db) == 0 and len(files_in(db.masks_dir)[0]) == 2  # the runs' masks
    detail = get_case(db, case_id)
    assert detail.reviews == () and detail.runs[0].findings[0] == stored
    assert check_database(db).ok


def test_delete_case_removes_the_edit_files(db: Database, doctor: Database) -> None:
    case_id, run_id = analysed_case(db)
    edit_first_finding(doctor, case_id, run_id)
    edit = get_case(db, case_id).reviewed_mask
    assert edit is not None and (db.masks_dir / edit.mask.relative_path).exists()
    deleted = delete_case(db, case_id, reason="wrong patient")
    assert deleted.mask_files_removed == 2 and deleted.mask_files_left == ()
    assert not (db.masks_dir / edit.mask.relative_path).exists()
    assert reviewed_rows(db) == 0 and check_database(db).ok


def test_check_reports_a_missing_or_altered_edit(db: Database, doctor: Database) -> None:
    case_id, run_id = analysed_case(db)
    edit_first_finding(doctor, case_id, run_id)
    edit = get_case(db, case_id).reviewed_mask
    assert edit is not None
    report = check_database(db)
    assert report.ok and report.masks_checked == 2  # the edit's file is no orphan
    path = db.masks_dir / edit.mask.relative_path
    path.write_bytes(path.read_bytes() + b"\0")
    [problem] = check_database(db).mask_problems
    assert problem.kind is MaskProblemKind.SHA256_MISMATCH
    assert (problem.case_id, problem.reviewed_mask_id) == (case_id, edit.reviewed_mask_id)
    with pytest.raises(errors.MaskIntegrityError, match="changed"):
        load_reviewed_mask(db, edit.reviewed_mask_id)
    path.unlink()
    assert [p.kind for p in check_database(db).mask_problems] == [MaskProblemKind.MISSING]
    with pytest.raises(errors.MaskIntegrityError, match="missing"):
        load_reviewed_mask(db, edit.reviewed_mask_id)


def test_backup_copies_the_edit_files(db: Database, doctor: Database, tmp_path: Path) -> None:
    if db.backend is Backend.POSTGRESQL:
        pytest.skip("PostgreSQL databases are backed up with pg_dump")
    case_id, run_id = analysed_case(db)
    edit_first_finding(doctor, case_id, run_id)
    edit = get_case(db, case_id).reviewed_mask
    assert edit is not None
    folder = backup_database(db, tmp_path / "copy")
    copied = folder / "masks" / edit.mask.relative_path
    assert copied.is_file() and file_sha256(copied) == edit.mask.sha256
    assert len(list((folder / "masks").iterdir())) == 2


def test_manual_lesions_of_an_earlier_edit_are_drawn_onto_a_newer_map() -> None:
    from types import SimpleNamespace

    newer = np.zeros((6, 8, 8), dtype=np.uint8)
    newer[2:4, 2:4, 3:5] = 2  # the new run's own lesion (another label) inside the manual box
    earlier = np.zeros_like(newer)
    earlier[2:5, 2:6, 3:7] = 1  # the manual lesion (x 3-6, y 2-5, z 2-4)
    earlier[0, 7, 7] = 1  # something else of the earlier map, outside every manual box
    manual = SimpleNamespace(finding=SimpleNamespace(label=1, bbox_index_xyz=(3, 2, 2, 6, 5, 4)))
    expected = newer.copy()
    expected[2:5, 2:6, 3:7] = 1
    expected[2:4, 2:4, 3:5] = 2  # the new run's voxels stay as they are
    shown = reviewed_masks.with_manual_lesions(newer, earlier, [manual])  # type: ignore[list-item]
    assert shown is newer and np.array_equal(shown, expected)
    assert shown[0, 7, 7] == 0  # only the manual lesions come over
    other_grid = np.zeros((6, 8, 9), dtype=np.uint8)
    assert reviewed_masks.with_manual_lesions(other_grid, earlier, [manual]).sum() == 0  # type: ignore[list-item]
