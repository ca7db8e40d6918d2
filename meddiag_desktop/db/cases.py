"""One case: load it whole (runs, findings, masks, reviews, edits), find it by series, delete it.

Deleting is only ever an explicit call with a reason: rows go in one transaction (runs,
findings, masks, reviewed masks and reviews cascade), the audit log keeps the story, and the
mask files (the runs' and the saved edits') are
removed after the commit (a crash in between leaves orphan files that ``db check`` reports,
never a row without its file).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session

from meddiag_desktop.db import errors, records_from_rows
from meddiag_desktop.db.audit import add_event
from meddiag_desktop.db.engine import Database
from meddiag_desktop.db.masks import remove_mask_file
from meddiag_desktop.db.records import (
    AuditAction,
    CaseDetail,
    CaseStatus,
    CaseSummary,
    ModelRun,
    Review,
    ReviewStatus,
    StoredFinding,
)
from meddiag_desktop.db.reviewed_masks import reviewed_masks_of
from meddiag_desktop.db.schema import (
    CaseRow,
    FindingRow,
    MaskRow,
    ModelRunRow,
    PatientRow,
    ReviewedMaskRow,
    ReviewRow,
    SeriesRow,
    StudyRow,
    UserRow,
)
from meddiag_desktop.domain import Finding, FindingSource


@dataclass(frozen=True)
class DeletedCase:
    case_id: int
    mask_files_removed: int
    mask_files_left: tuple[str, ...]  # could not be removed; db check reports them as orphans


def get_case(db: Database, case_id: int) -> CaseDetail:
    """The case with its series, every run (findings, mask), every review and its newest edit."""
    with db.reading() as session:
        return load_case(session, case_id)


def get_case_summary(db: Database, case_id: int) -> CaseSummary:
    with db.reading() as session:
        return summary(session, case_id)


def find_case_for_series(db: Database, series_uid: str) -> int | None:
    """The case of a DICOM series UID (its first part when discovery split it), if imported."""
    with db.reading() as session:
        return session.scalars(
            select(CaseRow.id)
            .join(SeriesRow, CaseRow.series_fk == SeriesRow.id)
            .where(SeriesRow.series_uid == series_uid)
            .order_by(CaseRow.id)
        ).first()


def summary(session: Session, case_id: int) -> CaseSummary:
    row = _case_rows(session, case_id)
    return records_from_rows.case_summary(*row[:4])


def _case_rows(session: Session, case_id: int) -> tuple[CaseRow, PatientRow, StudyRow, SeriesRow]:
    found = session.execute(
        select(CaseRow, PatientRow, StudyRow, SeriesRow)
        .join(PatientRow, CaseRow.patient_fk == PatientRow.id)
        .join(SeriesRow, CaseRow.series_fk == SeriesRow.id)
        .join(StudyRow, SeriesRow.study_fk == StudyRow.id)
        .where(CaseRow.id == case_id)
    ).first()
    if found is None:
        raise errors.NotFoundError(f"there is no case {case_id}")
    case, patient, study, series = found
    return case, patient, study, series


def load_case(session: Session, case_id: int) -> CaseDetail:
    case, patient, study, series = _case_rows(session, case_id)
    findings = session.scalars(
        select(FindingRow).where(FindingRow.case_fk == case_id).order_by(FindingRow.id)
    ).all()
    by_run: dict[int | None, list[StoredFinding]] = {}
    for row in findings:
        by_run.setdefault(row.run_fk, []).append(records_from_rows.stored_finding(row))
    masks = {
        m.run_fk: records_from_rows.mask_record(m)
        for m in session.scalars(
            select(MaskRow)
            .join(ModelRunRow, MaskRow.run_fk == ModelRunRow.id)
            .where(ModelRunRow.case_fk == case_id)
        ).all()
    }
    runs: list[ModelRun] = [
        records_from_rows.model_run(r, tuple(by_run.get(r.id, ())), masks.get(r.id))
        for r in session.scalars(
            select(ModelRunRow).where(ModelRunRow.case_fk == case_id).order_by(ModelRunRow.id)
        ).all()
    ]
    edits = reviewed_masks_of(session, case_id)
    signed_by = None
    if case.signed_by_fk is not None:
        signed_by = session.scalar(select(UserRow.username).where(UserRow.id == case.signed_by_fk))
    return CaseDetail(
        summary=records_from_rows.case_summary(case, patient, study, series),
        series=records_from_rows.series_record(series, study, patient),
        runs=tuple(runs),
        manual_findings=tuple(by_run.get(None, ())),
        reviews=load_reviews(session, case_id),
        signed_by=signed_by,
        signed_at=case.signed_at,
        reviewed_mask=edits[-1] if edits else None,
    )


def load_reviews(session: Session, case_id: int) -> tuple[Review, ...]:
    rows = session.execute(
        select(ReviewRow, UserRow.username)
        .join(UserRow, ReviewRow.reviewer_fk == UserRow.id)
        .where(ReviewRow.case_fk == case_id)
        .order_by(ReviewRow.id)
    ).all()
    return tuple(review_record(row, username) for row, username in rows)


def review_record(row: ReviewRow, reviewer: str) -> Review:
    def finding(values: dict | None) -> Finding | None:
        if not values:
            return None
        return records_from_rows.finding_from_values(values, FindingSource(values["source"]))

    return Review(
        review_id=row.id,
        finding_pk=row.finding_fk,
        case_id=row.case_fk,
        decision=ReviewStatus(row.decision),
        reviewer=reviewer,
        decided_at=row.decided_at,
        reason=row.reason,
        previous_status=ReviewStatus(row.previous_status),
        previous_finding=finding(row.previous_values),
        edited_finding=finding(row.new_values),
    )


def delete_case(
    db: Database, case_id: int, reason: str, *, include_signed: bool = False
) -> DeletedCase:
    """Delete a case, its runs, findings, reviews, edits and mask files; the audit log keeps
    it all.

    A signed case is a medical record: deleting one needs ``include_signed=True``.
    """
    if not reason.strip():
        raise errors.CaseStateError("say why the case is deleted (it goes in the audit log)")
    with db.writing() as session:
        case = session.get(CaseRow, case_id)
        if case is None:
            raise errors.NotFoundError(f"there is no case {case_id}")
        if case.status is CaseStatus.SIGNED and not include_signed:
            raise errors.CaseStateError(
                f"case {case_id} is signed; deleting a signed case must be asked for explicitly"
            )
        paths = [
            *session.scalars(
                select(MaskRow.relative_path)
                .join(ModelRunRow, MaskRow.run_fk == ModelRunRow.id)
                .where(ModelRunRow.case_fk == case_id)
            ).all(),
            *session.scalars(
                select(ReviewedMaskRow.relative_path).where(ReviewedMaskRow.case_fk == case_id)
            ).all(),
        ]
        series = session.get(SeriesRow, case.series_fk)
        assert series is not None
        study_id, patient_id = series.study_fk, case.patient_fk
        add_event(
            session,
            db.actor,
            AuditAction.CASE_DELETED,
            "case",
            case_id,
            case_id,
            {
                "reason": reason,
                "status": CaseStatus(case.status).value,
                "series_uid": series.series_uid,
                "mask_files": list(paths),
            },
        )
        # Children first where the foreign keys do not cascade; the rest cascades in the DB.
        session.execute(delete(CaseRow).where(CaseRow.id == case_id))
        session.execute(delete(SeriesRow).where(SeriesRow.id == series.id))
        if not session.scalar(select(exists().where(SeriesRow.study_fk == study_id))):
            session.execute(delete(StudyRow).where(StudyRow.id == study_id))
        if not session.scalar(
            select(exists().where(StudyRow.patient_fk == patient_id))
        ) and not session.scalar(select(exists().where(CaseRow.patient_fk == patient_id))):
            session.execute(delete(PatientRow).where(PatientRow.id == patient_id))
    left = [p for p in paths if not remove_mask_file(db.masks_dir, p)]
    return DeletedCase(case_id, len(paths) - len(left), tuple(left))
