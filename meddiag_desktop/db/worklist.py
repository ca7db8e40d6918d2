"""The worklist: cases filtered, ordered and paged, as summaries.

Filters and ordering use columns of ``cases`` (status, study date, modality, search text, and
the sort keys copied there: folded patient name and ID, status rank, finding count) and the
folded patient name/ID, each backed by an index from migrations 0002 and 0004, so a page costs
a few milliseconds at 100,000 cases (``bench/db.py``). Text search (``contains``) scans the
search text column; it is the one filter that grows with the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import Row, Select, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from meddiag_desktop.db.engine import Database
from meddiag_desktop.db.records import (
    CaseStatus,
    CaseSummary,
    RunOutcome,
    WorklistOrder,
    WorklistPage,
    WorklistQuery,
)
from meddiag_desktop.db.schema import (
    CaseRow,
    FindingRow,
    ModelRunRow,
    PatientRow,
    SeriesRow,
    StudyRow,
)
from meddiag_desktop.db.text_search import fold, prefix_range


def list_cases(db: Database, query: WorklistQuery | None = None) -> WorklistPage:
    """One page of cases matching ``query`` and how many match in all.

    Two steps: the page's case ids first, from the ``cases`` indexes alone (filter, order,
    offset never touch another table), then the 50 summaries by primary key. Joining before
    paging would join every skipped or sorted row: 150 ms instead of 2 ms for a deep page.
    """
    query = query or WorklistQuery()
    with db.reading() as session:
        total = session.scalar(_filtered(select(func.count()).select_from(CaseRow), query)) or 0
        ids = session.scalars(
            _ordered(_filtered(select(CaseRow.id), query), query)
            .limit(query.page_size)
            .offset(query.page * query.page_size)
        ).all()
        rows = session.execute(
            select(*SUMMARY_COLUMNS)
            .join(PatientRow, CaseRow.patient_fk == PatientRow.id)
            .join(SeriesRow, CaseRow.series_fk == SeriesRow.id)
            .join(StudyRow, SeriesRow.study_fk == StudyRow.id)
            .where(CaseRow.id.in_(ids))
        ).all()
        counts = _finding_counts(session, ids)
    by_id = {row[0]: replace(summary_from_columns(row), finding_count=counts.get(row[0], 0))
             for row in rows}  # fmt: skip
    return WorklistPage(
        items=tuple(by_id[i] for i in ids if i in by_id),
        total=int(total),
        page=query.page,
        page_size=query.page_size,
    )


# Plain columns, not whole rows: a page of 50 summaries then costs about a millisecond.
SUMMARY_COLUMNS = (
    CaseRow.id,
    CaseRow.status,
    PatientRow.name,
    PatientRow.dicom_patient_id,
    PatientRow.birth_date,
    PatientRow.sex,
    CaseRow.study_date,
    CaseRow.modality,
    StudyRow.description,
    SeriesRow.description,
    SeriesRow.series_uid,
    CaseRow.created_at,
    CaseRow.updated_at,
)


def summary_from_columns(row: Row) -> CaseSummary:
    (case_id, status, name, patient_id, birth_date, sex, study_date, modality, study, series,
     uid, imported_at, updated_at) = row  # fmt: skip
    return CaseSummary(
        case_id=case_id,
        status=CaseStatus(status),
        patient_name=name,
        patient_id=patient_id,
        patient_birth_date=birth_date,
        patient_sex=sex,
        study_date=study_date,
        modality=modality,
        study_description=study,
        series_description=series,
        series_uid=uid,
        imported_at=imported_at,
        updated_at=updated_at,
    )


def _finding_counts(session: Session, case_ids: Sequence[int]) -> dict[int, int]:
    """Findings a reader sees per case: the latest successful run's plus manual ones."""
    if not case_ids:
        return {}
    latest_runs = session.scalars(
        select(func.max(ModelRunRow.id))
        .where(ModelRunRow.case_fk.in_(case_ids), ModelRunRow.outcome == RunOutcome.SUCCEEDED)
        .group_by(ModelRunRow.case_fk)
    ).all()
    rows = session.execute(
        select(FindingRow.case_fk, func.count())
        .where(
            FindingRow.case_fk.in_(case_ids),
            or_(FindingRow.run_fk.in_(latest_runs), FindingRow.run_fk.is_(None)),
        )
        .group_by(FindingRow.case_fk)
    )
    return {int(case_id): int(count) for case_id, count in rows}


def counts_by_status(db: Database) -> dict[CaseStatus, int]:
    with db.reading() as session:
        rows = session.execute(select(CaseRow.status, func.count()).group_by(CaseRow.status))
        counts = {status: 0 for status in CaseStatus}
        counts.update({CaseStatus(s): int(n) for s, n in rows})
        return counts


def _filtered(statement: Select, query: WorklistQuery) -> Select:
    if query.statuses:
        statement = statement.where(CaseRow.status.in_(query.statuses))
    if query.modality.strip():
        statement = statement.where(CaseRow.modality == query.modality.strip().upper())
    if query.study_date_from is not None:
        statement = statement.where(CaseRow.study_date >= query.study_date_from)
    if query.study_date_to is not None:
        statement = statement.where(CaseRow.study_date <= query.study_date_to)
    bounds = prefix_range(query.patient)
    if bounds is not None:
        low, high = bounds
        matching_patients = select(PatientRow.id).where(
            or_(
                (PatientRow.name_folded >= low) & (PatientRow.name_folded < high),
                (PatientRow.patient_id_folded >= low) & (PatientRow.patient_id_folded < high),
            )
        )
        statement = statement.where(CaseRow.patient_fk.in_(matching_patients))
    text = fold(query.text)
    if text:
        statement = statement.where(CaseRow.search_text.contains(text, autoescape=True))
    return statement


# The sortable columns: (key, key stored descending, read backwards). Each pair of orders
# reads one index of migration 0004 forwards and backwards: key, newest study, newest case.
_KEYED_ORDERS: dict[WorklistOrder, tuple[InstrumentedAttribute[Any], bool, bool]] = {
    WorklistOrder.PATIENT_NAME: (CaseRow.patient_name_key, False, False),
    WorklistOrder.PATIENT_NAME_DESC: (CaseRow.patient_name_key, False, True),
    WorklistOrder.PATIENT_ID: (CaseRow.patient_id_key, False, False),
    WorklistOrder.PATIENT_ID_DESC: (CaseRow.patient_id_key, False, True),
    WorklistOrder.STATUS: (CaseRow.status_rank, False, False),
    WorklistOrder.STATUS_DESC: (CaseRow.status_rank, False, True),
    WorklistOrder.MODALITY: (CaseRow.modality, False, False),
    WorklistOrder.MODALITY_DESC: (CaseRow.modality, False, True),
    WorklistOrder.MOST_FINDINGS: (CaseRow.finding_count, True, False),
    WorklistOrder.FEWEST_FINDINGS: (CaseRow.finding_count, True, True),
}


def _ordered(statement: Select, query: WorklistQuery) -> Select:
    """ORDER BY for ``query.order``, always ending in the case id so paging is stable."""
    order = query.order
    if order is WorklistOrder.OLDEST_STUDY:
        return statement.order_by(CaseRow.study_date.asc().nulls_last(), CaseRow.id.asc())
    if order is WorklistOrder.NEWEST_IMPORT:
        return statement.order_by(CaseRow.created_at.desc(), CaseRow.id.desc())
    if order is WorklistOrder.OLDEST_IMPORT:
        return statement.order_by(CaseRow.created_at.asc(), CaseRow.id.asc())
    keyed = _KEYED_ORDERS.get(order)
    if keyed is None:  # NEWEST_STUDY
        return statement.order_by(CaseRow.study_date.desc().nulls_last(), CaseRow.id.desc())
    key, key_descending, backwards = keyed
    terms = []
    # One status shown: the rank is the same for all, and the status index (status, study date,
    # id) gives the rest; the planner cannot know that the rank is constant there.
    if not (key is CaseRow.status_rank and len(set(query.statuses)) == 1):
        terms.append(key.desc() if key_descending != backwards else key.asc())
    if backwards:
        terms += [CaseRow.study_date.asc().nulls_first(), CaseRow.id.asc()]
    else:
        terms += [CaseRow.study_date.desc().nulls_last(), CaseRow.id.desc()]
    return statement.order_by(*terms)
