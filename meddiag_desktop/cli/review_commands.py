"""``meddiag review`` and ``meddiag sign``: the review from the command line, for scripts and tests.

The same repository calls the app's review makes
(:func:`~meddiag_desktop.db.reviews.review_finding`, :func:`~meddiag_desktop.db.reviews.sign_case`),
so the rules (only a radiologist signs, a signed case is final, every AI finding decided before
sign-off) and the audit events are the app's.
As in the app on a personal workstation, the operating-system user acts, registered as a
radiologist the first time; with login on, the user signed in (``meddiag --user NAME``), whose
role must allow it (:mod:`meddiag_desktop.cli.sign_in`).

Findings are named by the numbers ``meddiag cases show`` prints (``#N``, 1-based): the current
run's findings. An unknown number is refused before anything is stored.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from typing import TYPE_CHECKING

from meddiag_desktop.db.command import DB_HELP

if TYPE_CHECKING:
    from meddiag_desktop.db.engine import Database
    from meddiag_desktop.db.records import ReviewStatus, StoredFinding
    from meddiag_desktop.db.roles import Permission

EXIT_USER_ERROR = 2


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register ``review`` and ``sign`` on the ``meddiag`` command's subparsers."""
    review = subparsers.add_parser(
        "review",
        help="accept, reject or edit a case's findings (numbers as `meddiag cases show` prints)",
    )
    review.add_argument("case_id", type=int, metavar="CASE_ID")
    review.add_argument(
        "--accept", action="append", default=[], metavar="N[,N...]",
        help="accept these findings, e.g. --accept 1,3",
    )
    review.add_argument(
        "--reject", action="append", default=[], metavar="N[:REASON]",
        help="reject a finding, with an optional reason, e.g. --reject 2:vessel (repeatable)",
    )
    review.add_argument(
        "--edit", action="append", default=[], metavar="N:label=NAME",
        help="accept a finding under another label name, e.g. --edit 4:label=mass (repeatable); "
        "masks are edited in the app",
    )
    review.add_argument("--db", metavar="URL", help=DB_HELP)
    review.set_defaults(run=run_review)

    sign = subparsers.add_parser("sign", help="sign a reviewed case off (then it is final)")
    sign.add_argument("case_id", type=int, metavar="CASE_ID")
    sign.add_argument("--db", metavar="URL", help=DB_HELP)
    sign.set_defaults(run=run_sign)


def run_review(args: argparse.Namespace) -> int:
    from meddiag_desktop.db.errors import CaseDatabaseError
    from meddiag_desktop.db.records import ReviewStatus
    from meddiag_desktop.db.reviews import review_finding
    from meddiag_desktop.db.roles import Permission

    decisions = _decisions(args)
    if not decisions:
        print("meddiag: error: nothing to do: give --accept, --reject or --edit", file=sys.stderr)
        return EXIT_USER_ERROR
    db = _open_as_radiologist(args, Permission.REVIEW)
    try:
        by_number = _current_findings(db, args.case_id)
        for number, _decision, _detail in decisions:
            if number not in by_number:
                known = ", ".join(str(n) for n in sorted(by_number)) or "none"
                raise CaseDatabaseError(
                    f"case {args.case_id} has no finding #{number} (its findings: {known})"
                )
        for number, decision, detail in decisions:
            stored = by_number[number]
            if decision is ReviewStatus.EDITED:
                edited = replace(stored.finding, label_name=detail)
                review_finding(db, stored.finding_pk, decision, edited=edited)
                print(f"finding #{number}: edited (label {detail})")
            else:
                review_finding(db, stored.finding_pk, decision, reason=detail)
                reason = f" ({detail})" if detail else ""
                print(f"finding #{number}: {decision.value}{reason}")
    except CaseDatabaseError as exc:
        print(f"meddiag: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    finally:
        db.close()
    return 0


def run_sign(args: argparse.Namespace) -> int:
    from meddiag_desktop.db.errors import CaseDatabaseError
    from meddiag_desktop.db.reviews import sign_case
    from meddiag_desktop.db.roles import Permission

    db = _open_as_radiologist(args, Permission.SIGN)
    try:
        summary = sign_case(db, args.case_id)
    except CaseDatabaseError as exc:
        print(f"meddiag: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    finally:
        db.close()
    print(f"case {summary.case_id}: signed by {db.actor}")
    return 0


def _decisions(args: argparse.Namespace) -> list[tuple[int, ReviewStatus, str]]:
    """(finding number, decision, reason or new label) in the order given on the line."""
    from meddiag_desktop.db.records import ReviewStatus

    decisions: list[tuple[int, ReviewStatus, str]] = []
    for group in args.accept:
        for part in group.split(","):
            decisions.append((_number(part, "--accept"), ReviewStatus.ACCEPTED, ""))
    for item in args.reject:
        number, _, reason = item.partition(":")
        decisions.append((_number(number, "--reject"), ReviewStatus.REJECTED, reason.strip()))
    for item in args.edit:
        number, _, change = item.partition(":")
        key, _, value = change.partition("=")
        if key.strip() != "label" or not value.strip():
            raise ValueError(f"--edit {item!r}: write it as N:label=NAME, e.g. 4:label=mass")
        decisions.append((_number(number, "--edit"), ReviewStatus.EDITED, value.strip()))
    numbers = [number for number, _, _ in decisions]
    twice = sorted({n for n in numbers if numbers.count(n) > 1})
    if twice:
        raise ValueError(f"finding(s) {', '.join(map(str, twice))} given more than one decision")
    return decisions


def _number(text: str, flag: str) -> int:
    try:
        number = int(text.strip())
    except ValueError:
        raise ValueError(f"{flag}: {text.strip()!r} is not a finding number") from None
    if number < 1:
        raise ValueError(f"{flag}: finding numbers start at 1, not {number}")
    return number


def _open_as_radiologist(args: argparse.Namespace, permission: Permission) -> Database:
    from meddiag_desktop.cli.sign_in import open_as_user
    from meddiag_desktop.db.login import login_required
    from meddiag_desktop.db.records import UserRole
    from meddiag_desktop.db.roles import require
    from meddiag_desktop.db.users import ensure_user

    db = open_as_user(args, args.db)
    try:
        if not login_required(db):
            ensure_user(db, db.actor, UserRole.RADIOLOGIST)  # as the app does on a workstation
        require(db, permission)
    except BaseException:
        db.close()
        raise
    return db


def _current_findings(db: Database, case_id: int) -> dict[int, StoredFinding]:
    """The current (newest successful) run's findings by the number ``cases show`` prints."""
    from meddiag_desktop.db.cases import get_case
    from meddiag_desktop.db.errors import CaseStateError
    from meddiag_desktop.db.records import RunOutcome

    detail = get_case(db, case_id)
    runs = [run for run in detail.runs if run.outcome is RunOutcome.SUCCEEDED]
    if not runs:
        raise CaseStateError(f"case {case_id} has no successful model run: nothing to review")
    return {stored.finding.finding_id: stored for stored in runs[-1].findings}
