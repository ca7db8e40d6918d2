"""What the sign-off dialog lists and what the case history holds, built from the database
layer's records of a case with every kind of decision (no window, no model run)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from meddiag_desktop.app.case_history import CaseHistoryDialog, history_entries
from meddiag_desktop.app.sign_off_dialog import SignOffDialog, sign_off_summary
from meddiag_desktop.db.audit import case_history, log_event
from meddiag_desktop.db.cases import get_case
from meddiag_desktop.db.engine import Database
from meddiag_desktop.db.records import AuditAction, ReviewStatus
from meddiag_desktop.db.reviews import add_manual_finding, review_finding, sign_case
from meddiag_desktop.domain import FindingSource

from .case_data import ACTOR, analysed_case, finding, open_database

pytestmark = pytest.mark.gui


@pytest.fixture
def db(tmp_path: Path):
    database = open_database(tmp_path)
    yield database
    database.close()


def _reviewed_case(db: Database) -> int:
    """Three AI findings accepted, rejected with a reason and edited, plus a manual one."""
    case_id = analysed_case(db, 5, findings=3)
    first, second, third = get_case(db, case_id).current_run.findings
    review_finding(db, first.finding_pk, ReviewStatus.ACCEPTED)
    review_finding(db, second.finding_pk, ReviewStatus.REJECTED, reason="vessel seen end-on")
    grown = replace(third.finding, volume_ml=2.0, long_axis_mm=12.0)
    review_finding(db, third.finding_pk, ReviewStatus.EDITED, edited=grown)
    add_manual_finding(db, case_id, finding(7, FindingSource.MANUAL))
    return case_id


def test_the_confirmation_lists_patient_study_series_and_decisions(qtbot, db: Database) -> None:
    case = get_case(db, _reviewed_case(db))
    summary = sign_off_summary(case, ACTOR)
    assert "DOE, JANE005" in summary.patient and "PID00005" in summary.patient
    assert "CT CHEST" in summary.study and "AXIAL 5" in summary.series
    assert summary.model_run.startswith("fake-model 1.0")
    assert [(f.number, f.decision) for f in summary.findings] == [
        ("1", ReviewStatus.ACCEPTED),
        ("2", ReviewStatus.REJECTED),
        ("3", ReviewStatus.EDITED),
        ("M7", ReviewStatus.ACCEPTED),
    ]
    assert summary.findings[1].reason == "vessel seen end-on"
    assert summary.findings[1].reviewer == ACTOR
    assert summary.findings[2].size.startswith("2.00 mL, 12.0 ×")  # the edited measurements
    assert summary.counts == "4 findings: 2 accepted, 1 rejected, 1 edited"

    dialog = SignOffDialog(summary)
    qtbot.addWidget(dialog)
    assert dialog.table.rowCount() == 4
    assert dialog.table.item(1, 5).text() == "vessel seen end-on"
    assert dialog.cancel_button.isDefault() and not dialog.sign_button.isDefault()


def test_the_history_holds_every_decision_in_order(qtbot, db: Database) -> None:
    case_id = _reviewed_case(db)
    first = get_case(db, case_id).current_run.findings[0]
    review_finding(db, first.finding_pk, ReviewStatus.REJECTED, reason="changed my mind")
    sign_case(db, case_id)
    case = get_case(db, case_id)
    entries = history_entries(case, case_history(db, case_id))
    assert [(e.what, e.finding) for e in entries] == [
        ("Imported", ""),
        ("Model run succeeded", ""),
        ("Accepted (was Pending)", "#1"),
        ("Rejected (was Pending)", "#2"),
        ("Edited (was Pending)", "#3"),
        ("Added by hand", "M7"),
        ("Rejected (was Accepted)", "#1"),
        ("Signed off; case locked", ""),
    ]
    assert all(e.who == ACTOR for e in entries)
    assert [e.when for e in entries] == sorted(e.when for e in entries)
    assert entries[3].why == "vessel seen end-on" and entries[6].why == "changed my mind"
    assert entries[4].why.startswith("outline edited: 0.75 → 2.00 mL")

    dialog = CaseHistoryDialog()
    qtbot.addWidget(dialog)
    dialog.show_case(case, case_history(db, case_id))
    assert dialog.table.rowCount() == len(entries)
    assert dialog.cell(3, 4) == "vessel seen end-on" and dialog.cell(3, 1) == ACTOR


def test_the_history_shows_who_opened_and_exported(db: Database) -> None:
    case_id = _reviewed_case(db)
    log_event(db.acting_as("another"), AuditAction.CASE_VIEWED, case_id)
    export = {"folder": "/exports/case", "files": [{"name": "/exports/case/report.pdf"}]}
    log_event(db, AuditAction.REPORT_EXPORTED, case_id, {**export, "draft": True})
    entries = history_entries(get_case(db, case_id), case_history(db, case_id))
    opened, exported = entries[-2:]
    assert (opened.what, opened.who) == ("Opened", "another")
    assert (exported.what, exported.who) == ("Exported", ACTOR)
    assert exported.why == "report.pdf (DRAFT) to /exports/case"
