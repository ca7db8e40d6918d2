"""Every worklist order on SQLite and PostgreSQL: the right order with ties, stable paging, and
sort keys on ``cases`` that stay in step with the patient, status and findings."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import db_fakes
import pytest
from sqlalchemy import select, text

from meddiag_desktop.db.engine import Database
from meddiag_desktop.db.importing import import_series
from meddiag_desktop.db.migrate import alembic_config, schema_revision, upgrade
from meddiag_desktop.db.migrations import HEAD
from meddiag_desktop.db.records import (
    Backend,
    CaseStatus,
    CaseSummary,
    ReviewStatus,
    RunOutcome,
    UserRole,
    WorklistOrder,
    WorklistQuery,
)
from meddiag_desktop.db.reviews import add_manual_finding, review_finding, sign_case
from meddiag_desktop.db.runs import store_failed_run, store_inference
from meddiag_desktop.db.schema import STATUS_RANK, CaseRow
from meddiag_desktop.db.text_search import fold
from meddiag_desktop.db.users import ensure_user
from meddiag_desktop.db.worklist import list_cases

Key = Callable[[CaseSummary], Any]

# order -> (sort key, key descending, exact reverse of the forward order)
KEYED: dict[WorklistOrder, tuple[Key, bool, bool]] = {
    WorklistOrder.PATIENT_NAME: (lambda s: fold(s.patient_name), False, False),
    WorklistOrder.PATIENT_NAME_DESC: (lambda s: fold(s.patient_name), False, True),
    WorklistOrder.PATIENT_ID: (lambda s: fold(s.patient_id), False, False),
    WorklistOrder.PATIENT_ID_DESC: (lambda s: fold(s.patient_id), False, True),
    WorklistOrder.STATUS: (lambda s: STATUS_RANK[s.status], False, False),
    WorklistOrder.STATUS_DESC: (lambda s: STATUS_RANK[s.status], False, True),
    WorklistOrder.MODALITY: (lambda s: s.modality, False, False),
    WorklistOrder.MODALITY_DESC: (lambda s: s.modality, False, True),
    WorklistOrder.MOST_FINDINGS: (lambda s: s.finding_count, True, False),
    WorklistOrder.FEWEST_FINDINGS: (lambda s: s.finding_count, True, True),
}


def expected_ids(cases: list[CaseSummary], order: WorklistOrder) -> list[int]:
    """The documented rule in plain Python: key, then newest study (undated last), newest case;
    the second order of a pair is the first one reversed, ties included."""
    key, key_descending, backwards = KEYED[order]
    ordered = sorted(cases, key=lambda s: s.case_id, reverse=True)
    ordered.sort(key=lambda s: (s.study_date is None, -(s.study_date or date.min).toordinal()))
    ordered.sort(key=key, reverse=key_descending)  # stable: ties keep date, id order
    ids = [s.case_id for s in ordered]
    return ids[::-1] if backwards else ids


def analysed(db: Database, index: int, findings: int, **changes: str) -> int:
    case_id = import_series(db, db_fakes.series(index, **changes)).case_id
    volume = db_fakes.volume(index)
    store_inference(db, case_id, volume, db_fakes.result(volume, findings, seed=index))
    return case_id


def sample_worklist(db: Database) -> dict[str, int]:
    """Cases with ties in every key: one patient twice, names equal once folded, an undated
    study, an empty name, two modalities, every status, finding counts 0 to 3."""
    ensure_user(db, db.actor, UserRole.RADIOLOGIST)  # reviews and sign-off need one
    ids = {
        "new_a": import_series(db, db_fakes.series(1, patient_name="DOE^ANN")).case_id,
        "new_a_again": import_series(db, db_fakes.series(2, patient_name="DOE^ANN")).case_id,
        "new_a_folded": import_series(
            db, db_fakes.series(3, patient_name="doe^ann", patient_id="pid00001")
        ).case_id,
        "undated": import_series(db, db_fakes.series(4, study_date="", modality="MR")).case_id,
        "no_name": import_series(db, db_fakes.series(5, patient_name="", modality="MR")).case_id,
        "umlaut": import_series(db, db_fakes.series(6, patient_name="Ärger^Zoe")).case_id,
        "analysed": analysed(db, 7, 3),
        "analysed_same_date": analysed(db, 7 + 12 * 28, 3, modality="MR"),  # same study date
        "analysed_none": analysed(db, 8, 0),
    }
    in_review = analysed(db, 9, 2)
    first = _findings(db, in_review)[0]
    review_finding(db, first, ReviewStatus.ACCEPTED)
    ids["in_review"] = in_review
    signed = analysed(db, 10, 1)
    review_finding(db, _findings(db, signed)[0], ReviewStatus.ACCEPTED)
    sign_case(db, signed)
    ids["signed"] = signed
    failed = import_series(db, db_fakes.series(11)).case_id
    store_failed_run(db, failed, db_fakes.FakeCard(), RunOutcome.FAILED, "damaged model")
    ids["failed"] = failed
    return ids


def _findings(db: Database, case_id: int) -> list[int]:
    from meddiag_desktop.db.cases import get_case

    run = get_case(db, case_id).current_run
    assert run is not None
    return [f.finding_pk for f in run.findings]


def _all(db: Database, **query: Any) -> list[CaseSummary]:
    return list(list_cases(db, WorklistQuery(page_size=1000, **query)).items)


def _paged(db: Database, order: WorklistOrder, size: int, **query: Any) -> list[int]:
    ids: list[int] = []
    page = 0
    while True:
        found = list_cases(db, WorklistQuery(order=order, page=page, page_size=size, **query))
        ids += [s.case_id for s in found.items]
        if not found.has_next:
            return ids
        page += 1


@pytest.mark.parametrize("order", list(KEYED))
def test_each_order_sorts_with_ties_and_pages_stably(db: Database, order: WorklistOrder) -> None:
    sample_worklist(db)
    cases = _all(db)
    assert len(cases) == 12
    want = expected_ids(cases, order)
    assert [s.case_id for s in _all(db, order=order)] == want
    assert _paged(db, order, 5) == want  # pages neither repeat nor skip a case
    assert _paged(db, order, 1) == want


def test_orders_read_naturally(db: Database) -> None:
    ids = sample_worklist(db)
    names = [s.patient_name for s in _all(db, order=WorklistOrder.PATIENT_NAME)]
    # Empty first, case-insensitive (DOE and doe tie), family name first, umlaut after Z.
    assert names[0] == "" and names[-1] == "Ärger^Zoe"
    by_name = [s.case_id for s in _all(db, order=WorklistOrder.PATIENT_NAME)]
    # Equal folded names: newest study first, then the newest case.
    assert by_name.index(ids["new_a_folded"]) < by_name.index(ids["new_a_again"])
    assert by_name.index(ids["new_a_again"]) < by_name.index(ids["new_a"])
    statuses = [s.status for s in _all(db, order=WorklistOrder.STATUS)]
    assert statuses == sorted(statuses, key=STATUS_RANK.__getitem__)
    assert statuses[0] is CaseStatus.NEW and statuses[-1] is CaseStatus.FAILED
    counts = [s.finding_count for s in _all(db, order=WorklistOrder.MOST_FINDINGS)]
    assert counts == sorted(counts, reverse=True) and counts[0] == 3
    modalities = [s.modality for s in _all(db, order=WorklistOrder.MODALITY)]
    assert modalities == sorted(modalities)
    dated = _all(db, order=WorklistOrder.MODALITY)
    mr = [s.study_date for s in dated if s.modality == "MR"]
    assert mr[-1] is None  # undated last within a modality


@pytest.mark.parametrize("order", list(KEYED))
def test_orders_combine_with_the_status_filter(db: Database, order: WorklistOrder) -> None:
    sample_worklist(db)
    for statuses in (
        (CaseStatus.NEW,),
        (CaseStatus.ANALYSED,),
        (CaseStatus.NEW, CaseStatus.SIGNED),
    ):
        cases = _all(db, statuses=statuses)
        want = expected_ids(cases, order)
        assert [s.case_id for s in _all(db, statuses=statuses, order=order)] == want
        assert _paged(db, order, 2, statuses=statuses) == want


def test_status_order_of_one_status_is_the_study_order(db: Database) -> None:
    sample_worklist(db)
    new = (CaseStatus.NEW,)
    newest = [s.case_id for s in _all(db, statuses=new)]
    assert [s.case_id for s in _all(db, statuses=new, order=WorklistOrder.STATUS)] == newest
    reverse = [s.case_id for s in _all(db, statuses=new, order=WorklistOrder.STATUS_DESC)]
    assert reverse == newest[::-1]


def _sort_keys(db: Database) -> dict[int, tuple[str, str, int, int]]:
    with db.reading() as session:
        rows = session.execute(
            select(
                CaseRow.id,
                CaseRow.patient_name_key,
                CaseRow.patient_id_key,
                CaseRow.status_rank,
                CaseRow.finding_count,
            )
        ).all()
    return {row[0]: tuple(row[1:]) for row in rows}  # type: ignore[misc]


def _keys_from_summaries(db: Database) -> dict[int, tuple[str, str, int, int]]:
    return {
        s.case_id: (
            fold(s.patient_name),
            fold(s.patient_id),
            STATUS_RANK[s.status],
            s.finding_count,
        )
        for s in _all(db)
    }


def test_sort_keys_follow_status_and_findings(db: Database) -> None:
    ids = sample_worklist(db)
    assert _sort_keys(db) == _keys_from_summaries(db)
    case_id = ids["analysed"]
    add_manual_finding(db, case_id, db_fakes.finding(9))  # 3 + 1
    store_failed_run(db, case_id, db_fakes.FakeCard(), RunOutcome.CANCELLED, "stopped")
    assert _sort_keys(db)[case_id][3] == 4  # a failed run leaves the count
    volume = db_fakes.volume(7)
    store_inference(db, case_id, volume, db_fakes.result(volume, 1, seed=3))  # 1 + 1 manual
    review_finding(db, _findings(db, case_id)[0], ReviewStatus.REJECTED)
    keys = _sort_keys(db)
    assert keys[case_id][3] == 2 and keys[case_id][2] == STATUS_RANK[CaseStatus.IN_REVIEW]
    assert keys == _keys_from_summaries(db)


def _downgrade(db: Database, target: str) -> None:
    from alembic import command

    with db.engine.connect() as connection:
        raw = connection.connection.dbapi_connection
        assert raw is not None
        if db.backend is Backend.SQLITE:
            raw.execute("PRAGMA foreign_keys = OFF")  # batch mode recreates the table
        with connection.begin():
            command.downgrade(alembic_config(connection), target)
        if db.backend is Backend.SQLITE:
            raw.execute("PRAGMA foreign_keys = ON")


def test_migration_0004_fills_the_sort_keys_of_existing_cases(db: Database) -> None:
    sample_worklist(db)
    add_manual_finding(db, sample_worklist_case(db), db_fakes.finding(9))
    before = _sort_keys(db)
    _downgrade(db, "0003_reviewed_masks")
    with db.reading() as session:
        columns = session.execute(text("SELECT * FROM cases")).keys()
    assert "status_rank" not in columns
    upgrade(db)
    assert schema_revision(db) == HEAD
    assert _sort_keys(db) == before
    cases = _all(db)
    assert [s.case_id for s in _all(db, order=WorklistOrder.PATIENT_NAME)] == expected_ids(
        cases, WorklistOrder.PATIENT_NAME
    )


def sample_worklist_case(db: Database) -> int:
    """A case with a successful run (so manual findings add to the run's)."""
    return next(s.case_id for s in _all(db) if s.status is CaseStatus.ANALYSED)
