"""The comparison from the case database and back: the demo pair with its ground-truth masks
as the runs, compared, stored, corrected by hand, shown by ``meddiag compare``, and continued
by the follow-up's exports (the tracking UIDs)."""

from __future__ import annotations

import json

import pytest
from conftest import PairInDatabase
from truth_pairing import pair_with_truth

from meddiag_desktop.cli import main
from meddiag_desktop.db.audit import case_history
from meddiag_desktop.db.comparison_records import MatchOverride, OverrideAction
from meddiag_desktop.db.comparisons import comparisons_of_case, latest_comparison
from meddiag_desktop.db.priors import find_priors
from meddiag_desktop.db.records import AuditAction, ReviewStatus, UserRole
from meddiag_desktop.db.reviews import review_finding
from meddiag_desktop.db.users import ensure_user
from meddiag_desktop.followup.comparison import add_override, compare_cases, revise_comparison
from meddiag_desktop.followup.errors import FollowUpError, RegistrationCancelled


def _check_against_truth(compared: dict, truth: dict) -> None:
    found, extra = pair_with_truth(compared, truth)
    assert extra == [], extra
    assert set(found) == {lesion["track_id"] for lesion in truth["lesions"]}
    for lesion in truth["lesions"]:
        measured = found[lesion["track_id"]]
        assert measured["status"] == lesion["status"], (lesion, measured)
        for true, got in zip(lesion["volume_ml"], measured["volume_ml"], strict=True):
            assert (true is None) == (got is None)
            if true is not None:
                assert got == pytest.approx(true, rel=0.10), lesion["track_id"]
        if lesion["volume_change_pct"] is not None:
            true_ratio = 1 + lesion["volume_change_pct"] / 100
            ratio = 1 + measured["volume_change_pct"] / 100
            assert ratio == pytest.approx(true_ratio, rel=0.10), lesion["track_id"]
    assert compared["response"] == truth["response"]


def test_compare_matches_the_ground_truth_and_is_stored(fresh_truth_db: PairInDatabase) -> None:
    pair = fresh_truth_db
    with pair.open() as db:
        outcome = compare_cases(db, pair.follow_up_case, pair.baseline_case)
        compared = outcome.to_json()
        _check_against_truth(compared, pair.truth)
        grown = next(x for x in pair.truth["lesions"] if x["change"] == "grown")
        found, _ = pair_with_truth(compared, pair.truth)
        assert found[grown["track_id"]]["doubling_time_days"] == pytest.approx(
            grown["doubling_time_days"], rel=0.15
        )
        assert compared["days_between"] == pair.truth["days_between"] == 90
        assert compared["registration"]["type"] == "rigid"
        assert compared["registration"]["seconds"] < 30.0
        assert (
            abs(compared["registration"]["rotation_deg"] - pair.truth["transform"]["rotation_deg"])
            < 1.0
        )
        stored = latest_comparison(db, pair.follow_up_case, pair.baseline_case)
        assert stored is not None and stored.comparison_id == outcome.comparison_id
        assert stored.response.value == compared["response"]
        assert stored.summary["lesions"] == compared["lesions"]
        assert len(stored.tracks) == len(compared["lesions"])
        assert {t.track_id for t in stored.tracks if t.target} == set(compared["targets"])
        events = [
            e
            for e in case_history(db, pair.follow_up_case)
            if e.action is AuditAction.COMPARISON_SAVED
        ]
        assert events and events[-1].details["prior_case_id"] == pair.baseline_case


def test_priors_lists_the_baseline_for_the_follow_up(truth_db: PairInDatabase) -> None:
    with truth_db.open() as db:
        [prior] = find_priors(db, truth_db.follow_up_case)
        assert prior.case_id == truth_db.baseline_case
        assert prior.same_modality and prior.same_body_part and prior.days_before == 90
        assert prior.body_part == "CHEST"
        assert find_priors(db, truth_db.baseline_case) == ()  # nothing before the baseline


def test_compare_refuses_what_cannot_be_compared(truth_db: PairInDatabase) -> None:
    with truth_db.open() as db, pytest.raises(FollowUpError, match="itself"):
        compare_cases(db, truth_db.follow_up_case, truth_db.follow_up_case)


def test_a_cancelled_comparison_stores_nothing(fresh_truth_db: PairInDatabase) -> None:
    pair = fresh_truth_db
    with pair.open() as db:
        with pytest.raises(RegistrationCancelled):
            compare_cases(db, pair.follow_up_case, pair.baseline_case, cancelled=lambda: True)
        assert comparisons_of_case(db, pair.follow_up_case) == ()


def test_compare_command_json_and_table(
    fresh_truth_db: PairInDatabase, capsys: pytest.CaptureFixture[str]
) -> None:
    pair = fresh_truth_db
    args = ["compare", str(pair.follow_up_case), str(pair.baseline_case), "--db", pair.url]
    assert main([*args, "--json"]) == 0
    compared = json.loads(capsys.readouterr().out)
    assert compared["response"] in {"CR", "PR", "SD", "PD"} and compared["rule"]
    assert {"metric", "seconds", "type"} <= set(compared["registration"])
    for lesion in compared["lesions"]:
        assert {
            "track_id",
            "status",
            "volume_ml",
            "long_axis_mm",
            "volume_change_pct",
            "doubling_time_days",
        } <= set(lesion)
        assert lesion["status"] in {"matched", "new", "gone"}
        assert len(lesion["volume_ml"]) == len(lesion["long_axis_mm"]) == 2
    _check_against_truth(compared, pair.truth)

    assert main(args) == 0
    table = capsys.readouterr().out
    assert "track" in table and "RECIST 1.1: PD" in table and "rule: PD" in table
    for lesion in compared["lesions"]:
        assert lesion["track_id"] in table

    assert main(["priors", str(pair.follow_up_case), "--db", pair.url, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["priors"]
    assert [p["case_id"] for p in listed] == [pair.baseline_case]

    assert main(["compare", "99", str(pair.baseline_case), "--db", pair.url]) == 2
    assert "99" in capsys.readouterr().err


def test_the_readers_corrections_are_stored_and_kept(
    fresh_truth_db: PairInDatabase, capsys: pytest.CaptureFixture[str]
) -> None:
    pair = fresh_truth_db
    args = ["compare", str(pair.follow_up_case), str(pair.baseline_case), "--db", pair.url]
    assert main([*args, "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    matched = next(x for x in first["lesions"] if x["status"] == "matched")
    p, c = matched["prior_finding"], matched["current_finding"]

    assert main([*args, "--json", "--unlink", f"{p}:{c}"]) == 0
    unlinked = json.loads(capsys.readouterr().out)
    assert not any(
        x["prior_finding"] == p and x["current_finding"] == c for x in unlinked["lesions"]
    )
    assert any(
        x["prior_finding"] == p and x["status"] == "gone" and x["basis"] == "manual"
        for x in unlinked["lesions"]
    )
    assert any(x["current_finding"] == c and x["status"] == "new" for x in unlinked["lesions"])
    assert unlinked["response"] == "PD" and len(unlinked["overrides"]) == 1

    # Comparing again (a new registration) keeps the reader's correction.
    assert main([*args, "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["overrides"] == unlinked["overrides"]
    assert any(x["current_finding"] == c and x["status"] == "new" for x in again["lesions"])

    # A link restores the pair; through the API, with no new registration.
    with pair.open() as db:
        record = latest_comparison(db, pair.follow_up_case, pair.baseline_case)
        assert record is not None
        outcome = add_override(
            db,
            record.comparison_id,
            MatchOverride(
                OverrideAction.LINK, matched["prior_finding_pk"], matched["current_finding_pk"]
            ),
        )
        relinked = outcome.to_json()
        track = next(x for x in relinked["lesions"] if x["prior_finding"] == p)
        assert track["current_finding"] == c and track["basis"] == "manual"
        assert outcome.registration.seconds == record.seconds  # not registered again
        # The reader's own targets: the smallest matched prior lesion alone.
        smallest = min(
            (x for x in relinked["lesions"] if x["status"] == "matched"),
            key=lambda x: x["long_axis_mm"][0],
        )
        chosen = revise_comparison(
            db, outcome.comparison_id, targets=(smallest["prior_finding_pk"],)
        )
        assert chosen.recist.targets == (smallest["track_id"],)
        assert not chosen.recist.proposed
        revisions = [
            e
            for e in case_history(db, pair.follow_up_case)
            if e.action is AuditAction.COMPARISON_REVISED
        ]
        assert len(revisions) == 2


def test_exports_of_the_follow_up_continue_the_priors_tracking_uids(
    fresh_truth_db: PairInDatabase, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from pypdf import PdfReader

    from meddiag_desktop.db.cases import get_case
    from meddiag_desktop.export.outcome_from_case import outcome_from_case
    from meddiag_desktop.reports.pdf_report import write_pdf_report

    pair = fresh_truth_db
    with pair.open() as db:
        ensure_user(db, db.actor, UserRole.RADIOLOGIST)
        for case_id in (pair.baseline_case, pair.follow_up_case):
            for stored in get_case(db, case_id).current_run.findings:  # type: ignore[union-attr]
                review_finding(db, stored.finding_pk, ReviewStatus.ACCEPTED)
        before = outcome_from_case(db, pair.follow_up_case)
        compared = compare_cases(db, pair.follow_up_case, pair.baseline_case).to_json()
        prior = {
            r.finding_pk: r.tracking_uid for r in outcome_from_case(db, pair.baseline_case).findings
        }
        outcome = outcome_from_case(db, pair.follow_up_case)
        after = {r.finding_pk: r.tracking_uid for r in outcome.findings}
        for lesion in compared["lesions"]:
            if lesion["status"] == "matched":
                assert lesion["tracking_uid"] == prior[lesion["prior_finding_pk"]]
                assert after[lesion["current_finding_pk"]] == prior[lesion["prior_finding_pk"]]
            elif lesion["status"] == "new":
                own = {r.finding_pk: r.tracking_uid for r in before.findings}
                assert after[lesion["current_finding_pk"]] == own[lesion["current_finding_pk"]]
                assert lesion["tracking_uid"] == own[lesion["current_finding_pk"]]
        assert outcome.follow_up is not None and outcome.follow_up.response == "PD"
        assert all(
            len(x.history) == (1 if x.status == "new" else 2) for x in outcome.follow_up.lesions
        )
        pdf = write_pdf_report(outcome, tmp_path / "report.pdf")
    text = " ".join(page.extract_text() for page in PdfReader(pdf).pages)
    assert "Follow-up" in text and "RECIST 1.1: PD" in text


def test_a_signed_case_gets_no_stored_comparison(fresh_truth_db: PairInDatabase) -> None:
    from meddiag_desktop.db.cases import get_case
    from meddiag_desktop.db.reviews import sign_case
    from meddiag_desktop.followup.comparison import CompareOptions

    pair = fresh_truth_db
    with pair.open() as db:
        ensure_user(db, db.actor, UserRole.RADIOLOGIST)
        for stored in get_case(db, pair.follow_up_case).current_run.findings:  # type: ignore[union-attr]
            review_finding(db, stored.finding_pk, ReviewStatus.ACCEPTED)
        sign_case(db, pair.follow_up_case)
        with pytest.raises(FollowUpError, match="signed"):
            compare_cases(db, pair.follow_up_case, pair.baseline_case)
        shown = compare_cases(
            db, pair.follow_up_case, pair.baseline_case, CompareOptions(store=False)
        )
        assert shown.comparison_id is None and shown.recist.response.value == "PD"
        assert comparisons_of_case(db, pair.follow_up_case) == ()
