"""Earlier studies of a case's patient: what a follow-up comparison is made against.

The patient is the case's patient row (PatientID, name and birth date together: the database's
patient key). A prior is a case of that patient from another, earlier study (by study date;
cases without a date come last). Cases of the same modality and body part (DICOM
BodyPartExamined) are listed first, then the same modality, then the rest, each group newest
first, so the first prior is the one a reader would usually pick.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select

from meddiag_desktop.db import errors, records_from_rows
from meddiag_desktop.db.engine import Database
from meddiag_desktop.db.records import CaseSummary
from meddiag_desktop.db.schema import CaseRow, PatientRow, SeriesRow, StudyRow


@dataclass(frozen=True)
class PriorCase:
    summary: CaseSummary
    body_part: str  # the prior series' BodyPartExamined ("" when it said none)
    same_modality: bool
    same_body_part: bool  # both name the same body part
    days_before: int | None  # from the prior's study date to the case's; None without dates

    @property
    def case_id(self) -> int:
        return self.summary.case_id


def find_priors(db: Database, case_id: int) -> tuple[PriorCase, ...]:
    """The earlier cases of case ``case_id``'s patient, best candidates first (see above)."""
    with db.reading() as session:
        found = session.execute(
            select(CaseRow, StudyRow, SeriesRow)
            .join(SeriesRow, CaseRow.series_fk == SeriesRow.id)
            .join(StudyRow, SeriesRow.study_fk == StudyRow.id)
            .where(CaseRow.id == case_id)
        ).first()
        if found is None:
            raise errors.NotFoundError(f"there is no case {case_id}")
        case, study, series = found
        rows = session.execute(
            select(CaseRow, PatientRow, StudyRow, SeriesRow)
            .join(PatientRow, CaseRow.patient_fk == PatientRow.id)
            .join(SeriesRow, CaseRow.series_fk == SeriesRow.id)
            .join(StudyRow, SeriesRow.study_fk == StudyRow.id)
            .where(
                CaseRow.patient_fk == case.patient_fk,
                CaseRow.id != case_id,
                StudyRow.id != study.id,
            )
        ).all()
        modality, part = case.modality.upper(), series.body_part.strip().upper()
        priors = []
        for other, patient, other_study, other_series in rows:
            if not _earlier(other.study_date, case.study_date):
                continue
            other_part = other_series.body_part.strip().upper()
            days = (
                (case.study_date - other.study_date).days
                if case.study_date is not None and other.study_date is not None
                else None
            )
            priors.append(
                PriorCase(
                    summary=records_from_rows.case_summary(
                        other, patient, other_study, other_series
                    ),
                    body_part=other_series.body_part,
                    same_modality=other.modality.upper() == modality,
                    same_body_part=bool(part) and other_part == part,
                    days_before=days,
                )
            )
    priors.sort(key=_rank)
    return tuple(priors)


def _earlier(prior: date | None, current: date | None) -> bool:
    """A study of unknown date may be a prior; a known later (or same-day) one is not."""
    if prior is None or current is None:
        return True
    return prior < current


def _rank(prior: PriorCase) -> tuple[int, int, int, int]:
    group = 0 if prior.same_modality and prior.same_body_part else 1 if prior.same_modality else 2
    dated = prior.days_before is not None
    return (group, 0 if dated else 1, prior.days_before or 0, -prior.case_id)
