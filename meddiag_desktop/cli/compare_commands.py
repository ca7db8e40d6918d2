"""``meddiag compare`` and ``meddiag priors``: a case against an earlier study of its patient.

``meddiag compare CASE_ID PRIOR_CASE_ID`` registers the prior case's scan to the case's, matches
their lesions, works out growth and the RECIST 1.1 response and stores the comparison (the app's
follow-up view runs the same :func:`~meddiag_desktop.followup.comparison.compare_cases`). The
reader's corrections are options: ``--link P:C`` and ``--unlink P:C`` (finding numbers as
``meddiag cases show`` prints them, prior first), ``--new C``, ``--gone P``, and ``--targets
P,P,...``; they are stored with the comparison and applied again by the next ``compare`` of the
pair. ``--json`` prints what the comparison stored: ``response``, ``rule``, ``registration``
{``metric``, ``seconds``, ``type``...} and ``lesions``, one per track (``track_id``, ``status``,
``volume_ml`` and ``long_axis_mm`` as [prior, current], ``volume_change_pct``,
``doubling_time_days``...).

``meddiag priors CASE_ID`` lists the earlier cases of the patient, best candidates first.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from meddiag_desktop.db.command import DB_HELP

if TYPE_CHECKING:
    from meddiag_desktop.db.comparison_records import MatchOverride
    from meddiag_desktop.db.engine import Database
    from meddiag_desktop.followup.comparison import ComparisonOutcome

EXIT_USER_ERROR = 2


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register ``compare`` and ``priors`` on the ``meddiag`` command's subparsers."""
    compare = subparsers.add_parser(
        "compare",
        help="compare a case with an earlier case of its patient: registration, lesion "
        "matching, growth, RECIST 1.1 response (stored)",
    )
    compare.add_argument("case_id", type=int, metavar="CASE_ID", help="the current study")
    compare.add_argument("prior_case_id", type=int, metavar="PRIOR_CASE_ID")
    compare.add_argument("--json", action="store_true", help="print the comparison as JSON")
    compare.add_argument("--db", metavar="URL", help=DB_HELP)
    compare.add_argument(
        "--affine", action="store_true", help="an affine registration after the rigid one"
    )
    compare.add_argument(
        "--link",
        action="append",
        default=[],
        metavar="P:C",
        help="prior finding #P and current finding #C are one lesion (repeatable)",
    )
    compare.add_argument(
        "--unlink",
        action="append",
        default=[],
        metavar="P:C",
        help="prior #P and current #C are not the same lesion (repeatable)",
    )
    compare.add_argument(
        "--new", action="append", default=[], metavar="C", help="current #C is a new lesion"
    )
    compare.add_argument(
        "--gone", action="append", default=[], metavar="P", help="prior #P has disappeared"
    )
    compare.add_argument(
        "--targets",
        metavar="P[,P...]",
        help="the RECIST target lesions (prior finding numbers; 'auto': the proposal)",
    )
    compare.set_defaults(run=run_compare)

    priors = subparsers.add_parser("priors", help="earlier cases of a case's patient")
    priors.add_argument("case_id", type=int, metavar="CASE_ID")
    priors.add_argument("--json", action="store_true")
    priors.add_argument("--db", metavar="URL", help=DB_HELP)
    priors.set_defaults(run=run_priors)


def run_compare(args: argparse.Namespace) -> int:
    from meddiag_desktop.cli.output import ProgressBar
    from meddiag_desktop.cli.sign_in import open_as_user
    from meddiag_desktop.db.errors import CaseDatabaseError
    from meddiag_desktop.db.roles import Permission
    from meddiag_desktop.followup.comparison import CompareOptions, compare_cases
    from meddiag_desktop.followup.errors import FollowUpError
    from meddiag_desktop.followup.registration import RegistrationOptions

    db = open_as_user(args, args.db, Permission.REVIEW)
    bar = ProgressBar()
    try:
        targets = _targets(db, args)
        options = CompareOptions(
            registration=RegistrationOptions(affine=args.affine),
            overrides=_overrides(db, args),
            targets=targets if isinstance(targets, tuple) else None,
            propose_targets=targets == "auto",
        )
        outcome = compare_cases(db, args.case_id, args.prior_case_id, options, progress=bar)
    except (CaseDatabaseError, FollowUpError) as exc:
        bar.close()
        print(f"meddiag: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    finally:
        db.close()
    bar.close()
    if args.json:
        print(json.dumps(outcome.to_json(), indent=2))
    else:
        print(format_comparison(outcome))
    return 0


def run_priors(args: argparse.Namespace) -> int:
    from meddiag_desktop.cli.sign_in import open_as_user
    from meddiag_desktop.db.priors import find_priors

    db = open_as_user(args, args.db)
    try:
        priors = find_priors(db, args.case_id)
    finally:
        db.close()
    rows = [
        {
            "case_id": p.case_id,
            "study_date": p.summary.study_date.isoformat() if p.summary.study_date else None,
            "days_before": p.days_before,
            "modality": p.summary.modality,
            "body_part": p.body_part,
            "same_modality": p.same_modality,
            "same_body_part": p.same_body_part,
            "study_description": p.summary.study_description,
            "status": p.summary.status.value,
        }
        for p in priors
    ]
    if args.json:
        print(json.dumps({"case_id": args.case_id, "priors": rows}, indent=2))
        return 0
    if not rows:
        print(f"case {args.case_id}: no earlier case of this patient")
        return 0
    print(f"{'case':>6}  {'study date':<10}  {'days':>5}  {'mod':<4} {'body part':<10} study")
    for row in rows:
        days = "" if row["days_before"] is None else str(row["days_before"])
        print(
            f"{row['case_id']:>6}  {row['study_date'] or '':<10}  {days:>5}  "
            f"{row['modality']:<4} {row['body_part']:<10} {row['study_description']}"
        )
    return 0


def format_comparison(outcome: ComparisonOutcome) -> str:
    """The comparison as a readable table (what ``meddiag compare`` prints)."""
    data = outcome.to_json()
    reg = data["registration"]
    days = data["days_between"]
    lines = [
        f"case {data['case_id']} ({data['current_study_date'] or 'no date'}) against prior case "
        f"{data['prior_case_id']} ({data['prior_study_date'] or 'no date'})"
        + (f", {days} days apart" if days is not None else ""),
        f"registration: {reg['type']}, metric {reg['metric']}, NCC {reg.get('ncc_before')} -> "
        f"{reg.get('ncc_after')}, rotation {reg['rotation_deg']:.2f} deg, "
        f"{reg['seconds']:.1f} s",
        "",
        f"{'track':<6}{'status':<9}{'prior':>7}{'current':>9}{'volume mL':>19}"
        f"{'change':>10}{'long axis mm':>16}{'VDT days':>10}  target",
    ]
    for lesion in data["lesions"]:
        volume = _pair(lesion["volume_ml"], "{:.3f}")
        axis = _pair(lesion["long_axis_mm"], "{:.1f}")
        change = _number(lesion["volume_change_pct"], "{:+.0f}%")
        vdt = _number(lesion["doubling_time_days"], "{:.0f}")
        lines.append(
            f"{lesion['track_id']:<6}{lesion['status']:<9}"
            f"{lesion['prior_finding'] or '-':>7}{lesion['current_finding'] or '-':>9}"
            f"{volume:>19}{change:>10}{axis:>16}{vdt:>10}  {'yes' if lesion['target'] else ''}"
        )
    before, after = data["sum_of_diameters_mm"]
    lines += [
        "",
        f"RECIST 1.1: {data['response']}  (targets {', '.join(data['targets']) or 'none'}"
        f"{' proposed' if data['targets_proposed'] else ', chosen'}; sum {before:.1f} -> "
        f"{after:.1f} mm)",
        f"rule: {data['rule']}",
        f"stored as comparison {data['comparison_id']}",
    ]
    return "\n".join(lines)


def _pair(values: list[Any], form: str) -> str:
    return " -> ".join("-" if v is None else form.format(v) for v in values)


def _number(value: Any, form: str) -> str:
    return "-" if value is None else form.format(value)


def _overrides(db: Database, args: argparse.Namespace) -> tuple[MatchOverride, ...] | None:
    """The corrections on the command line as overrides (None: none given, keep the stored)."""
    from meddiag_desktop.db.comparison_records import MatchOverride, OverrideAction
    from meddiag_desktop.db.comparisons import latest_comparison

    given = [
        *((OverrideAction.LINK, v) for v in args.link),
        *((OverrideAction.UNLINK, v) for v in args.unlink),
        *((OverrideAction.MARK_NEW, v) for v in args.new),
        *((OverrideAction.MARK_GONE, v) for v in args.gone),
    ]
    if not given:
        return None
    prior_pk, current_pk = _numbering(db, args.prior_case_id), _numbering(db, args.case_id)
    made: list[MatchOverride] = []
    for action, text in given:
        if action in (OverrideAction.LINK, OverrideAction.UNLINK):
            p, _, c = text.partition(":")
            made.append(
                MatchOverride(
                    action,
                    _pk(prior_pk, p, args.prior_case_id),
                    _pk(current_pk, c, args.case_id),
                )
            )
        elif action is OverrideAction.MARK_NEW:
            made.append(MatchOverride(action, None, _pk(current_pk, text, args.case_id)))
        else:
            made.append(MatchOverride(action, _pk(prior_pk, text, args.prior_case_id), None))
    before = latest_comparison(db, args.case_id, args.prior_case_id)
    return (*(before.overrides if before is not None else ()), *made)


def _targets(db: Database, args: argparse.Namespace) -> tuple[int, ...] | str | None:
    if args.targets is None:
        return None
    if args.targets.strip().lower() == "auto":
        return "auto"
    numbering = _numbering(db, args.prior_case_id)
    parts = [p for p in args.targets.split(",") if p.strip()]
    return tuple(_pk(numbering, p, args.prior_case_id) for p in parts)


def _numbering(db: Database, case_id: int) -> dict[str, int]:
    """'#N' / 'N' (AI findings of the current run) and 'MN' (manual) -> finding id."""
    from meddiag_desktop.db.cases import get_case

    detail = get_case(db, case_id)
    run = detail.current_run
    names: dict[str, int] = {}
    for stored in run.findings if run is not None else ():
        names[str(stored.finding.finding_id)] = stored.finding_pk
        names[f"#{stored.finding.finding_id}"] = stored.finding_pk
    for stored in detail.manual_findings:
        names[f"M{stored.finding.finding_id}"] = stored.finding_pk
    return names


def _pk(numbering: dict[str, int], text: str, case_id: int) -> int:
    key = text.strip().upper()
    if key not in numbering:
        known = ", ".join(sorted(numbering, key=lambda k: (k.startswith("M"), k))) or "none"
        raise ValueError(f"case {case_id} has no finding {text.strip()!r} (its findings: {known})")
    return numbering[key]
