"""The repository API on SQLite and PostgreSQL: import, runs, reviews, sign-off, worklist."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import db_fakes
import numpy as np
import pytest

from meddiag_desktop.db import errors
from meddiag_desktop.db.audit import case_history, log_event, recent_events
from meddiag_desktop.db.backup import backup_database
from meddiag_desktop.db.cases import delete_case, find_case_for_series, get_case
from meddiag_desktop.db.engine import Database
from meddiag_desktop.db.importing import import_series
from meddiag_desktop.db.info import database_info
from meddiag_desktop.db.integrity import check_database
from meddiag_desktop.db.migrations import HEAD
from meddiag_desktop.db.records import (
    AuditAction,
    Backend,
    CaseStatus,
    MaskProblemKind,
    ReviewStatus,
    RunOutcome,
    UserRole,
    WorklistOrder,
    WorklistQuery,
)
from meddiag_desktop.db.reviews import add_manual_finding, review_finding, sign_case
from meddiag_desktop.db.runs import get_run, load_mask, mask_path, store_failed_run, store_inference
from meddiag_desktop.db.users import add_user, ensure_user, set_password, verify_password
from meddiag_desktop.db.worklist import counts_by_status, list_cases
from meddiag_desktop.domain import FindingSource, SeriesKind


def analysed_case(db: Database, index: int = 1, findings: int = 3) -> tuple[int, int]:
    case_id = import_series(db, db_fakes.series(index)).case_id
    volume = db_fakes.volume(index)
    run_id = store_inference(db, case_id, volume, db_fakes.result(volume, findings, seed=index))
    return case_id, run_id


def test_import_is_idempotent_and_keeps_the_metadata(db: Database, tmp_path: Path) -> None:
    series = db_fakes.series_with_files(tmp_path / "s1", 1)
    first = import_series(db, series)
    again = import_series(db, series)
    assert first.created and not again.created and again.case_id == first.case_id
    assert not again.files_changed
    detail = get_case(db, first.case_id)
    assert detail.summary.status is CaseStatus.NEW
    assert detail.summary.patient_name == "DOE^PATIENT00001"
    assert detail.summary.study_date == date(2024, 2, 2)
    assert detail.series.metadata == series.metadata
    assert detail.series.files == ("IM0000.dcm", "IM0001.dcm", "IM0002.dcm")
    assert len(detail.series.fingerprint) == 64 and detail.series.files_bytes > 0
    assert find_case_for_series(db, series.uid) == first.case_id
    assert counts_by_status(db)[CaseStatus.NEW] == 1
    history = case_history(db, first.case_id)  # every import is on record, the second too
    assert [e.action for e in history] == [AuditAction.CASE_IMPORTED] * 2
    assert history[1].details["already_imported"]


def test_reimport_notices_changed_files(db: Database, tmp_path: Path) -> None:
    series = db_fakes.series_with_files(tmp_path / "s1", 1)
    case_id = import_series(db, series).case_id
    series.files[1].write_bytes(b"altered pixels")
    again = import_series(db, series)
    assert again.case_id == case_id and again.files_changed
    actions = [e.action for e in case_history(db, case_id)]
    assert actions == [AuditAction.CASE_IMPORTED, AuditAction.SERIES_FILES_CHANGED]


def test_same_patient_id_from_another_site_is_another_patient(db: Database) -> None:
    a = import_series(db, db_fakes.series(1, patient_id="123", patient_name="A^B")).case_id
    b = import_series(db, db_fakes.series(2, patient_id="123", patient_name="C^D")).case_id
    c = import_series(db, db_fakes.series(3, patient_id="123", patient_name="A^B")).case_id
    names = {s.case_id: s.patient_name for s in list_cases(db).items}
    assert names == {a: "A^B", b: "C^D", c: "A^B"}


def test_file_series_are_known_by_their_content(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "scan.nii.gz"
    path.write_bytes(b"not really nifti, but hashed all the same")
    series = replace(db_fakes.series(1, (path,)), key=str(path), kind=SeriesKind.FILE)
    assert import_series(db, series).case_id == import_series(db, series).case_id


def test_unloadable_series_is_refused(db: Database) -> None:
    series = replace(db_fakes.series(1), loadable=False, reason="a localizer")
    with pytest.raises(errors.NotImportableError, match="a localizer"):
        import_series(db, series)


def test_store_inference_saves_run_findings_and_verified_mask(db: Database) -> None:
    case_id, run_id = analysed_case(db, findings=3)
    detail = get_case(db, case_id)
    assert detail.summary.status is CaseStatus.ANALYSED
    run = detail.current_run
    assert run is not None and run.run_id == run_id
    assert (run.model_name, run.model_version, run.provider) == ("fake-model", "1.0", "cpu")
    assert run.provider_attempts == (("CUDAExecutionProvider", "no GPU"),)
    assert run.timings_s["total"] == 0.75 and run.outcome is RunOutcome.SUCCEEDED
    assert run.started_at <= run.finished_at
    assert [f.finding for f in run.findings] == [db_fakes.finding(n) for n in (1, 2, 3)]
    assert all(f.review_status is ReviewStatus.PENDING for f in run.findings)
    assert run.mask is not None and run.mask.label_names == {1: "nodule"}
    volume = db_fakes.volume(1)
    mask = load_mask(db, run_id)
    expected = db_fakes.result(volume, 3, seed=1).segmentation.labels_zyx
    assert np.array_equal(mask.array_zyx, expected)
    assert np.allclose(mask.origin_lps_mm, volume.origin_lps_mm)
    assert get_run(db, run_id) == run


def test_store_inference_imports_a_new_series(db: Database) -> None:
    volume = db_fakes.volume(4)
    run_id = store_inference(db, db_fakes.series(4), volume, db_fakes.result(volume))
    case_id = get_run(db, run_id).case_id
    assert get_case(db, case_id).summary.series_uid == "1.2.3.4.1"


def test_a_volume_of_another_series_is_refused(db: Database) -> None:
    case_id = import_series(db, db_fakes.series(1)).case_id
    other = db_fakes.volume(2)
    with pytest.raises(errors.CaseStateError, match="series"):
        store_inference(db, case_id, other, db_fakes.result(other))
    assert not list(db.masks_dir.glob("*")) if db.masks_dir.exists() else True


def test_changed_or_missing_mask_is_refused_and_reported(db: Database) -> None:
    _, run_id = analysed_case(db)
    path = mask_path(db, run_id)
    assert path is not None
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(errors.MaskIntegrityError, match="changed"):
        load_mask(db, run_id)
    report = check_database(db)
    assert [p.kind for p in report.mask_problems] == [MaskProblemKind.SHA256_MISMATCH]
    path.unlink()
    with pytest.raises(errors.MaskIntegrityError, match="missing"):
        load_mask(db, run_id)
    assert check_database(db).problems(MaskProblemKind.MISSING)


def test_failed_and_cancelled_runs_are_recorded(db: Database) -> None:
    case_id = import_series(db, db_fakes.series(1)).case_id
    store_failed_run(db, case_id, db_fakes.FakeCard(), RunOutcome.CANCELLED, "cancelled by user")
    assert get_case(db, case_id).summary.status is CaseStatus.NEW
    run_id = store_failed_run(
        db, case_id, db_fakes.FakeCard(), RunOutcome.FAILED, "out of memory", timings_s={"total": 3}
    )
    detail = get_case(db, case_id)
    assert detail.summary.status is CaseStatus.FAILED
    assert [r.outcome for r in detail.runs] == [RunOutcome.CANCELLED, RunOutcome.FAILED]
    assert detail.runs[-1].error == "out of memory" and detail.runs[-1].mask is None
    assert detail.current_run is None
    with pytest.raises(errors.NotFoundError):
        load_mask(db, run_id)
    volume = db_fakes.volume(1)
    store_inference(db, case_id, volume, db_fakes.result(volume))
    assert get_case(db, case_id).summary.status is CaseStatus.ANALYSED


def test_review_and_sign_off(db: Database) -> None:
    add_user(db, "dr_a", UserRole.RADIOLOGIST, "Dr A")
    add_user(db, "res_b", UserRole.RESIDENT)
    case_id, _ = analysed_case(db, findings=3)
    first, second, third = get_case(db, case_id).runs[0].findings
    doctor = db.acting_as("dr_a")
    review = review_finding(doctor, first.finding_pk, ReviewStatus.ACCEPTED)
    assert review.reviewer == "dr_a" and review.previous_status is ReviewStatus.PENDING
    assert get_case(db, case_id).summary.status is CaseStatus.IN_REVIEW
    review_finding(db.acting_as("res_b"), second.finding_pk, ReviewStatus.REJECTED, "vessel")
    with pytest.raises(errors.CaseStateError, match=r"1 AI finding\(s\) not reviewed yet \(#3\)"):
        sign_case(doctor, case_id)
    edited = replace(third.finding, long_axis_mm=12.5, short_axis_mm=7.0)
    review = review_finding(doctor, third.finding_pk, ReviewStatus.EDITED, "re-measured", edited)
    assert review.previous_finding == third.finding and review.edited_finding == edited
    with pytest.raises(errors.PermissionDeniedError, match="only a radiologist"):
        sign_case(db.acting_as("res_b"), case_id)
    signed = sign_case(doctor, case_id)
    assert signed.status is CaseStatus.SIGNED
    detail = get_case(db, case_id)
    assert detail.signed_by == "dr_a" and detail.signed_at is not None
    stored = {f.finding_pk: f for f in detail.runs[0].findings}
    assert stored[third.finding_pk].finding.long_axis_mm == 12.5
    assert stored[second.finding_pk].review_status is ReviewStatus.REJECTED
    assert [r.decision for r in detail.reviews] == [
        ReviewStatus.ACCEPTED,
        ReviewStatus.REJECTED,
        ReviewStatus.EDITED,
    ]
    assert detail.reviews[1].reason == "vessel" and detail.reviews[1].reviewer == "res_b"
    with pytest.raises(errors.CaseStateError, match="signed"):
        review_finding(doctor, first.finding_pk, ReviewStatus.REJECTED)
    volume = db_fakes.volume(1)
    with pytest.raises(errors.CaseStateError, match="signed"):
        store_inference(db, case_id, volume, db_fakes.result(volume))


def test_signing_rules(db: Database) -> None:
    ensure_user(db, "dr_a", UserRole.RADIOLOGIST)
    doctor = db.acting_as("dr_a")
    new_case = import_series(db, db_fakes.series(1)).case_id
    with pytest.raises(errors.CaseStateError, match="no successful model run"):
        sign_case(doctor, new_case)
    with pytest.raises(errors.PermissionDeniedError, match="not a registered user"):
        sign_case(db.acting_as("stranger"), new_case)
    empty_case, _ = analysed_case(db, index=2, findings=0)
    assert sign_case(doctor, empty_case).status is CaseStatus.SIGNED
    with pytest.raises(errors.CaseStateError):
        review_finding(doctor, 1, ReviewStatus.PENDING)


def test_manual_findings_need_no_review(db: Database) -> None:
    ensure_user(db, "dr_a", UserRole.RADIOLOGIST)
    doctor = db.acting_as("dr_a")
    case_id, _ = analysed_case(db, findings=0)
    manual = add_manual_finding(doctor, case_id, db_fakes.finding(7, FindingSource.MANUAL))
    assert manual.finding.source is FindingSource.MANUAL and manual.run_id is None
    assert get_case(db, case_id).manual_findings == (manual,)
    assert sign_case(doctor, case_id).status is CaseStatus.SIGNED


def test_worklist_filters_orders_and_pages(db: Database) -> None:
    for index in range(1, 13):
        modality = "MR" if index % 4 == 0 else "CT"
        import_series(db, db_fakes.series(index, modality=modality))
    import_series(db, db_fakes.series(99, patient_name="Müller^Jörg", study_date=""))
    analysed_case(db, index=20)
    everything = list_cases(db, WorklistQuery(page_size=5))
    assert everything.total == 14 and len(everything.items) == 5 and everything.has_next
    dates = [s.study_date for s in list_cases(db, WorklistQuery(page_size=100)).items]
    known = [d for d in dates if d is not None]
    assert known == sorted(known, reverse=True) and dates[-1] is None  # undated last
    oldest = list_cases(db, WorklistQuery(order=WorklistOrder.OLDEST_STUDY, page_size=100))
    assert [s.study_date for s in oldest.items][:-1] == sorted(known)
    last = list_cases(db, WorklistQuery(page_size=5, page=2))
    assert len(last.items) == 4 and not last.has_next
    pages = [list_cases(db, WorklistQuery(page_size=5, page=p)).items for p in range(3)]
    assert len({s.case_id for page in pages for s in page}) == 14
    analysed = list_cases(db, WorklistQuery(statuses=(CaseStatus.ANALYSED,)))
    assert [s.patient_id for s in analysed.items] == ["PID00020"]
    assert list_cases(db, WorklistQuery(modality="mr")).total == 3
    assert list_cases(db, WorklistQuery(patient="doe^patient0001")).total == 3  # 10, 11, 12
    assert list_cases(db, WorklistQuery(patient="pid00003")).total == 1
    assert [s.patient_name for s in list_cases(db, WorklistQuery(patient="MÜL")).items] == [
        "Müller^Jörg"
    ]
    assert list_cases(db, WorklistQuery(patient="jörg")).total == 0  # prefix of the surname
    assert list_cases(db, WorklistQuery(text="jörg")).total == 1  # anywhere
    assert list_cases(db, WorklistQuery(text="axial 1")).total == 4  # 1, 10, 11, 12
    assert list_cases(db, WorklistQuery(text="100%")).total == 0  # wildcards are literal
    in_march = WorklistQuery(study_date_from=date(2024, 3, 1), study_date_to=date(2024, 3, 31))
    assert {s.study_date for s in list_cases(db, in_march).items} == {date(2024, 3, 3)}
    with pytest.raises(ValueError):
        WorklistQuery(page_size=0)


def test_delete_case_only_explicitly_with_its_files(db: Database) -> None:
    case_id, run_id = analysed_case(db)
    other_id, _ = analysed_case(db, index=2)
    path = mask_path(db, run_id)
    assert path is not None and path.exists()
    with pytest.raises(errors.CaseStateError, match="why"):
        delete_case(db, case_id, reason=" ")
    deleted = delete_case(db, case_id, reason="duplicate import")
    assert deleted.mask_files_removed == 1 and not path.exists()
    with pytest.raises(errors.NotFoundError):
        get_case(db, case_id)
    assert [s.case_id for s in list_cases(db).items] == [other_id]
    history = case_history(db, case_id)
    assert history[-1].action is AuditAction.CASE_DELETED
    assert history[-1].details["reason"] == "duplicate import"
    assert check_database(db).ok
    # the same series can be imported again as a new case
    assert import_series(db, db_fakes.series(1)).created


def test_signed_case_is_deleted_only_when_asked(db: Database) -> None:
    ensure_user(db, "dr_a", UserRole.RADIOLOGIST)
    case_id, _ = analysed_case(db, findings=0)
    sign_case(db.acting_as("dr_a"), case_id)
    with pytest.raises(errors.CaseStateError, match="signed"):
        delete_case(db, case_id, reason="test")
    delete_case(db, case_id, reason="test", include_signed=True)


def test_every_write_is_audited(db: Database) -> None:
    ensure_user(db, "dr_a", UserRole.RADIOLOGIST)
    doctor = db.acting_as("dr_a")
    case_id, _ = analysed_case(db, findings=1)
    finding = get_case(db, case_id).runs[0].findings[0]
    review_finding(doctor, finding.finding_pk, ReviewStatus.ACCEPTED)
    log_event(doctor, AuditAction.CASE_VIEWED, case_id)
    log_event(doctor, AuditAction.REPORT_EXPORTED, case_id, {"format": "pdf"})
    sign_case(doctor, case_id)
    history = case_history(db, case_id)
    assert [e.action for e in history] == [
        AuditAction.CASE_IMPORTED,
        AuditAction.RUN_SAVED,
        AuditAction.FINDING_REVIEWED,
        AuditAction.CASE_VIEWED,
        AuditAction.REPORT_EXPORTED,
        AuditAction.CASE_SIGNED,
    ]
    assert [e.actor for e in history] == ["tester", "tester", "dr_a", "dr_a", "dr_a", "dr_a"]
    assert history[1].details["findings"] == 1 and len(history[1].details["mask_sha256"]) == 64
    assert recent_events(db, limit=1)[0].action is AuditAction.CASE_SIGNED


def test_audit_events_cannot_be_changed_or_deleted(db: Database) -> None:
    from sqlalchemy import text

    import_series(db, db_fakes.series(1))
    for statement in ("UPDATE audit_events SET actor = 'mallory'", "DELETE FROM audit_events"):
        with pytest.raises(errors.CaseDatabaseError, match="append-only"), db.writing() as s:
            s.execute(text(statement))
    assert {e.actor for e in recent_events(db)} == {"tester"}


def test_users_and_passwords(db: Database) -> None:
    user = add_user(db, "dr_a", UserRole.RADIOLOGIST, "Dr A", password="correct horse")
    assert user.has_password and user.role is UserRole.RADIOLOGIST
    with pytest.raises(errors.ConflictError):
        add_user(db, "dr_a", UserRole.RESIDENT)
    assert verify_password(db, "dr_a", "correct horse")
    assert not verify_password(db, "dr_a", "wrong horse")
    assert not verify_password(db, "nobody", "correct horse")
    with pytest.raises(errors.CaseDatabaseError, match="at least"):
        set_password(db, "dr_a", "short")
    set_password(db, "dr_a", None)
    assert not verify_password(db, "dr_a", "correct horse")
    assert ensure_user(db, "dr_a", UserRole.RESIDENT).role is UserRole.RADIOLOGIST


def test_database_info_and_backup(db: Database, tmp_path: Path) -> None:
    analysed_case(db)
    info = database_info(db)
    assert info.schema_revision == info.head_revision == HEAD
    assert info.cases_by_status[CaseStatus.ANALYSED] == 1 and info.mask_count == 1
    assert info.audit_event_count >= 2 and info.backend is db.backend
    if db.backend is Backend.POSTGRESQL:
        with pytest.raises(errors.BackupError, match="pg_dump"):
            backup_database(db, tmp_path / "copy")
        return
    assert info.journal_mode == "wal" and info.synchronous == "FULL"
    folder = backup_database(db, tmp_path / "copy")
    assert len(list((folder / "masks").iterdir())) == 1
    assert recent_events(db, limit=1)[0].action is AuditAction.DATABASE_BACKED_UP
    with pytest.raises(errors.BackupError, match="not empty"):
        backup_database(db, folder)
