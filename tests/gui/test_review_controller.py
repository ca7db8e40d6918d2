"""Review decisions go through the database as the acting user and come back as the saved case."""

from __future__ import annotations

from pathlib import Path

import pytest

from meddiag_desktop.app.review_controller import NO_CASE, ReviewController, readable
from meddiag_desktop.db.cases import get_case
from meddiag_desktop.db.engine import Database
from meddiag_desktop.db.records import CaseDetail, CaseStatus, ReviewStatus
from meddiag_desktop.domain import FindingSource

from .case_data import ACTOR, analysed_case, finding, import_case, open_database

pytestmark = pytest.mark.gui


@pytest.fixture
def db(tmp_path: Path):
    database = open_database(tmp_path)
    yield database
    database.close()


def _statuses(db: Database, case_id: int) -> dict[int, ReviewStatus]:
    run = get_case(db, case_id).current_run
    assert run is not None
    return {f.finding.finding_id: f.review_status for f in run.findings}


def test_accept_reject_then_sign_off(qtbot, db: Database) -> None:
    case_id = analysed_case(db, 1, findings=2)
    controller = ReviewController(db)
    loaded: list[CaseDetail] = []
    changed: list[CaseDetail] = []
    failures: list[str] = []
    controller.case_loaded.connect(loaded.append)
    controller.case_changed.connect(changed.append)
    controller.review_failed.connect(failures.append)

    assert controller.load_case(case_id)
    [case] = loaded
    run = case.current_run
    assert run is not None
    first, second = (f.finding_pk for f in run.findings)

    assert controller.accept(first)
    assert changed[-1].summary.status is CaseStatus.IN_REVIEW
    assert _statuses(db, case_id) == {1: ReviewStatus.ACCEPTED, 2: ReviewStatus.PENDING}

    # Signing with a finding unreviewed is refused with the database's reason, nothing changes.
    assert not controller.sign_off()
    assert "not reviewed yet (#2)" in failures[-1]
    assert failures[-1][0].isupper() and failures[-1].endswith(".")
    assert get_case(db, case_id).summary.status is CaseStatus.IN_REVIEW

    assert controller.reject(second, "  vessel seen end-on ")
    stored = get_case(db, case_id)
    assert _statuses(db, case_id) == {1: ReviewStatus.ACCEPTED, 2: ReviewStatus.REJECTED}
    review = stored.reviews[-1]
    assert (review.finding_pk, review.decision, review.reason, review.reviewer) == (
        second,
        ReviewStatus.REJECTED,
        "vessel seen end-on",
        ACTOR,
    )

    assert controller.sign_off()
    signed = get_case(db, case_id)
    assert signed.summary.status is CaseStatus.SIGNED and signed.signed_by == ACTOR
    assert changed[-1].signed_at is not None

    # A signed case is locked: the refusal is readable and the panels get the signed case.
    failures.clear()
    assert not controller.accept(second)
    assert failures == [f"Case {case_id} is signed; its findings are final."]
    assert changed[-1].summary.status is CaseStatus.SIGNED


def test_edit_and_manual_finding(qtbot, db: Database) -> None:
    case_id = analysed_case(db, 2, findings=1)
    controller = ReviewController(db)
    controller.load_case(case_id)
    [stored] = controller.case.current_run.findings
    redrawn = finding(1)
    redrawn = type(redrawn)(**{**redrawn.__dict__, "volume_ml": 9.5, "long_axis_mm": 31.0})

    with qtbot.waitSignal(controller.case_changed) as changed:
        assert controller.edit(stored.finding_pk, redrawn, "outline included a vessel")
    [edited] = changed.args[0].current_run.findings
    assert edited.review_status is ReviewStatus.EDITED
    assert (edited.finding.volume_ml, edited.finding.long_axis_mm) == (9.5, 31.0)
    assert changed.args[0].reviews[-1].previous_finding.volume_ml == stored.finding.volume_ml

    assert controller.add_manual(finding(7))  # a lesion the model missed
    [manual] = get_case(db, case_id).manual_findings
    assert manual.finding.source is FindingSource.MANUAL
    assert manual.review_status is ReviewStatus.ACCEPTED
    assert controller.sign_off()  # manual findings need no review


def test_refusals_are_messages_not_exceptions(qtbot, tmp_path: Path) -> None:
    db = open_database(tmp_path, radiologist=False)  # a resident may review, not sign
    case_id = analysed_case(db, 3, findings=0)
    controller = ReviewController(db)
    failures: list[str] = []
    controller.review_failed.connect(failures.append)

    assert not controller.accept(1)
    assert failures == [NO_CASE]
    assert not controller.load_case(999)
    assert failures[-1] == "There is no case 999."
    assert controller.load_case(case_id)
    assert not controller.sign_off()
    assert "only a radiologist can sign" in failures[-1]

    new_case = import_case(db, 4)
    controller.set_actor("nobody")
    controller.load_case(new_case)
    assert not controller.add_manual(finding(1))
    assert "'nobody' is not a registered user" in failures[-1]
    db.close()


def test_readable_messages() -> None:
    assert readable(ValueError("case 3 is signed")) == "Case 3 is signed."
    assert readable(ValueError("Done?")) == "Done?"
    assert readable(ValueError("")) == "ValueError."
