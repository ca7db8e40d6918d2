"""``meddiag import``, ``meddiag cases list|show`` and ``meddiag db info|backup|check``.

Only argument parsing and printing live here; the work is the repository API's. Heavy modules
(SQLAlchemy, the scan readers) are imported when a command runs, so ``meddiag --help`` and the
other commands do not pay for them.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from meddiag_desktop.db.records import (
    AuditChainReport,
    CaseDetail,
    CaseStatus,
    CheckReport,
    MaskProblem,
    MaskProblemKind,
    WorklistOrder,
)

if TYPE_CHECKING:
    from meddiag_desktop.db.engine import Database

DB_HELP = (
    "database: a file path or URL (sqlite:///PATH, postgresql+psycopg://USER@HOST/NAME); "
    "default $MEDDIAG_DB, else meddiag.sqlite3 in the user data folder"
)


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register ``import``, ``cases`` and ``db`` on the ``meddiag`` command's subparsers."""
    importing = subparsers.add_parser(
        "import", help="add every loadable series under a folder (or a file) as a case"
    )
    importing.add_argument("path", type=Path)
    _db_option(importing)
    importing.add_argument("--json", action="store_true", help="machine-readable output")
    importing.set_defaults(run=run_import)

    cases = subparsers.add_parser("cases", help="the worklist: list and show cases")
    case_commands = cases.add_subparsers(title="cases commands")
    listing = case_commands.add_parser("list", help="cases, newest study first")
    listing.add_argument(
        "--status",
        action="append",
        choices=[s.value for s in CaseStatus],
        help="only cases with this status (repeat for several)",
    )
    listing.add_argument("--patient", default="", help="patient name or ID starts with this")
    listing.add_argument("--modality", default="", help="CT, MR, ...")
    listing.add_argument("--text", default="", help="text anywhere in names and descriptions")
    listing.add_argument("--from", dest="date_from", type=_date, help="study date from YYYY-MM-DD")
    listing.add_argument("--to", dest="date_to", type=_date, help="study date up to YYYY-MM-DD")
    listing.add_argument(
        "--order",
        choices=[o.value for o in WorklistOrder],
        default=WorklistOrder.NEWEST_STUDY,
        help="sort by study date, import time, patient name or ID, status, modality or "
        "finding count (default: newest_study)",
    )
    listing.add_argument("--page", type=int, default=1, help="page number, from 1")
    listing.add_argument("--page-size", type=int, default=50)
    listing.add_argument("--json", action="store_true")
    _db_option(listing)
    listing.set_defaults(run=run_cases_list)
    show = case_commands.add_parser("show", help="one case with its runs, findings and reviews")
    show.add_argument("case_id", type=int, metavar="ID")
    show.add_argument("--json", action="store_true")
    _db_option(show)
    show.set_defaults(run=run_cases_show)

    database = subparsers.add_parser("db", help="the case database: info, backup, check")
    db_commands = database.add_subparsers(title="db commands")
    info = db_commands.add_parser("info", help="location, schema version, contents")
    info.add_argument("--json", action="store_true")
    _db_option(info)
    info.set_defaults(run=run_db_info)
    backup = db_commands.add_parser(
        "backup",
        help="copy the database and its masks, live",
        description="The copy is built in a hidden '.NAME.*.incomplete' folder beside NAME and "
        "renamed into place whole at the end: a backup that exists is complete.",
    )
    backup.add_argument("--to", type=Path, help="new folder for the copy (default: backups/)")
    _db_option(backup)
    backup.set_defaults(run=run_db_backup)
    check = db_commands.add_parser(
        "check",
        help="integrity check; missing, changed and orphan mask files (exit 1 if any)",
        description="What an interrupted save left (a mask file it never committed) is not "
        "damage: every open of the database removes it, and logs one line naming it.",
    )
    check.add_argument("--scans", action="store_true", help="also re-hash the imported series")
    check.add_argument(
        "--remove-orphans",
        action="store_true",
        help="delete orphan/temporary mask files older than 10 minutes",
    )
    check.add_argument("--json", action="store_true")
    _db_option(check)
    check.set_defaults(run=run_db_check)
    from meddiag_desktop.db import encryption_command

    encryption_command.add_parsers(db_commands, DB_HELP)


def _db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", metavar="URL", help=DB_HELP)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date like 2024-03-31") from None


def _open(args: argparse.Namespace) -> Database:
    """With login on, signed in as ``meddiag --user NAME`` (else it reads, and refuses writes)."""
    from meddiag_desktop.db.engine import DatabaseSettings
    from meddiag_desktop.db.login import open_signed_in

    return open_signed_in(DatabaseSettings(url=args.db), getattr(args, "user", None) or "")


def run_import(args: argparse.Namespace) -> int:
    from meddiag_desktop.db.errors import NotImportableError
    from meddiag_desktop.db.importing import import_path

    if not args.path.exists():  # before a new database is created for nothing
        raise NotImportableError(f"{args.path}: does not exist")
    with _open(args) as db:
        outcomes = import_path(db, args.path, progress=_progress_printer())
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "series": o.key,
                        "description": o.description,
                        "case_id": o.result.case_id if o.result else None,
                        "created": o.result.created if o.result else False,
                        "files_changed": o.result.files_changed if o.result else False,
                        "skipped": o.skipped_reason,
                    }
                    for o in outcomes
                ],
                indent=2,
            )
        )
        return 0
    for o in outcomes:
        name = o.description or o.key
        if o.result is None:
            print(f"skipped   {name}: {o.skipped_reason}")
        elif o.result.created:
            print(f"case {o.result.case_id:<5} new       {name}")
        else:
            state = "changed" if o.result.files_changed else "known"
            print(f"case {o.result.case_id:<5} {state:9} {name}")
    created = sum(1 for o in outcomes if o.result and o.result.created)
    known = sum(1 for o in outcomes if o.result and not o.result.created)
    skipped = sum(1 for o in outcomes if o.result is None)
    print(f"{created} new case(s), {known} already imported, {skipped} series skipped.")
    return 0


def run_cases_list(args: argparse.Namespace) -> int:
    from meddiag_desktop.db.json_form import page_json
    from meddiag_desktop.db.records import WorklistQuery
    from meddiag_desktop.db.worklist import list_cases

    if args.page < 1:
        raise ValueError("--page counts from 1")
    query = WorklistQuery(
        statuses=tuple(CaseStatus(s) for s in args.status or ()),
        patient=args.patient,
        study_date_from=args.date_from,
        study_date_to=args.date_to,
        modality=args.modality,
        text=args.text,
        order=WorklistOrder(args.order),
        page=args.page - 1,
        page_size=args.page_size,
    )
    with _open(args) as db:
        page = list_cases(db, query)
    if args.json:
        print(json.dumps(page_json(page), indent=2))
        return 0
    if not page.items:
        print("No cases." if page.total == 0 else f"No cases on page {args.page}.")
        return 0
    print(
        f"{'ID':>6}  {'status':9}  {'study date':10}  {'mod':4} {'find':>4}  {'patient':32} "
        "description"
    )
    for s in page.items:
        when = s.study_date.isoformat() if s.study_date else "-"
        patient = (
            f"{s.patient_name.replace('^', ' ')} ({s.patient_id})"
            if s.patient_id
            else (s.patient_name.replace("^", " ") or "-")
        )
        description = " / ".join(d for d in (s.study_description, s.series_description) if d)
        print(
            f"{s.case_id:>6}  {s.status.value:9}  {when:10}  {s.modality or '-':4} "
            f"{s.finding_count:>4}  {patient[:32]:32} {description}"
        )
    first = page.page * page.page_size + 1
    print(f"cases {first}-{first + len(page.items) - 1} of {page.total}")
    return 0


def run_cases_show(args: argparse.Namespace) -> int:
    from meddiag_desktop.db.cases import get_case
    from meddiag_desktop.db.json_form import detail_json

    with _open(args) as db:
        detail = get_case(db, args.case_id)
    if args.json:
        print(json.dumps(detail_json(detail), indent=2))
    else:
        _print_case(detail)
    return 0


def _print_case(detail: CaseDetail) -> None:
    s, series = detail.summary, detail.series
    print(f"case {s.case_id}: {s.status.value}")
    print(
        f"  patient  {s.patient_name.replace('^', ' ') or '-'}  ID {s.patient_id or '-'}"
        f"  born {s.patient_birth_date or '-'}  sex {s.patient_sex or '-'}"
    )
    print(f"  study    {s.study_date or '-'}  {s.study_description or '-'}")
    size = "x".join(str(v) for v in series.size_xyz)
    print(f"  series   {s.modality or '-'}  {s.series_description or '-'}  {size} voxels")
    print(f"  files    {series.location or '-'} ({len(series.files)} file(s))")
    if detail.signed_by:
        print(f"  signed   by {detail.signed_by} at {detail.signed_at:%Y-%m-%d %H:%M} UTC")
    reviews_by_finding: dict[int, list[str]] = {}
    for review in detail.reviews:
        line = f"{review.decision.value} by {review.reviewer}"
        if review.reason:
            line += f" ({review.reason})"
        reviews_by_finding.setdefault(review.finding_pk, []).append(line)
    for run in detail.runs:
        print(
            f"  run {run.run_id}: {run.model_name} {run.model_version} on "
            f"{run.provider or '-'}, {run.outcome.value}, {run.finished_at:%Y-%m-%d %H:%M} UTC"
            f", {len(run.findings)} finding(s)"
        )
        if run.error:
            print(f"    error: {run.error}")
        for stored in run.findings:
            _print_finding(stored, reviews_by_finding.get(stored.finding_pk, []))
    if detail.manual_findings:
        print("  manual findings:")
        for stored in detail.manual_findings:
            _print_finding(stored, reviews_by_finding.get(stored.finding_pk, []))
    if detail.reviewed_mask is not None:
        edit = detail.reviewed_mask
        base = f"run {edit.run_id}" if edit.run_id is not None else "an empty map"
        print(
            f"  edited mask {edit.reviewed_mask_id} by {edit.author} at "
            f"{edit.created_at:%Y-%m-%d %H:%M} UTC, on {base}"
        )
    if not detail.runs:
        print("  no model runs yet")


def _print_finding(stored, reviews: list[str]) -> None:
    f = stored.finding
    print(
        f"    [{stored.finding_pk}] #{f.finding_id} {f.label_name}: {f.volume_ml:.2f} mL, "
        f"{f.long_axis_mm:.1f} x {f.short_axis_mm:.1f} mm, p={f.max_probability:.2f}"
        f"  {stored.review_status.value}"
    )
    for line in reviews:
        print(f"        {line}")


def run_db_info(args: argparse.Namespace) -> int:
    from meddiag_desktop.db.info import database_info
    from meddiag_desktop.db.json_form import to_json

    with _open(args) as db:
        info = database_info(db)
    if args.json:
        print(json.dumps(to_json(info), indent=2))
        return 0
    current = info.schema_revision or "(empty)"
    state = "up to date" if info.schema_revision == info.head_revision else "NOT up to date"
    print(f"database   {info.url} ({info.backend.value} {info.server_version})")
    print(f"schema     {current} ({state}; this app: {info.head_revision})")
    if info.file_bytes is not None:
        print(f"size       {info.file_bytes / 1e6:.1f} MB")
    print(f"settings   journal {info.journal_mode}, synchronous {info.synchronous}")
    print(f"masks      {info.mask_count} in {info.masks_dir}")
    counts = ", ".join(f"{n} {s.value}" for s, n in info.cases_by_status.items() if n)
    print(f"cases      {sum(info.cases_by_status.values())} ({counts or 'none'})")
    print(f"audit log  {info.audit_event_count} event(s)")
    print(f"encryption {info.encryption}")
    print(f"disk       {info.disk_encryption}")
    return 0


def run_db_backup(args: argparse.Namespace) -> int:
    from meddiag_desktop.db.backup import backup_database

    with _open(args) as db:
        folder = backup_database(db, args.to)
    print(f"backed up to {folder}")
    return 0


def run_db_check(args: argparse.Namespace) -> int:
    from meddiag_desktop.db.integrity import check_database, remove_orphans
    from meddiag_desktop.db.json_form import to_json

    with _open(args) as db:
        report = check_database(db, scans=args.scans)
        removed = remove_orphans(db, report) if args.remove_orphans else ()
        if removed:
            report = check_database(db, scans=args.scans)
    if args.json:
        print(json.dumps({**to_json(report), "ok": report.ok, "removed": list(removed)}, indent=2))
        return 0 if report.ok else 1
    _print_check(report, removed)
    return 0 if report.ok else 1


def _print_check(report: CheckReport, removed: tuple[str, ...]) -> None:
    integrity = "ok" if report.integrity == ("ok",) else "; ".join(report.integrity[:5])
    print(f"integrity check   {integrity}")
    print(f"foreign keys      {'ok' if not report.foreign_key_problems else 'BROKEN'}")
    for line in report.foreign_key_problems[:20]:
        print(f"  {line}")
    print(f"masks checked     {report.masks_checked}")
    for kind in MaskProblemKind:
        found = report.problems(kind)
        if found:
            print(f"{kind.value:17} {len(found)}")
            for problem in found[:20]:
                where = _mask_owner(problem)
                print(f"  {problem.relative_path}{where}")
    for changed in report.series_problems:
        print(f"series files {changed.reason}: case {changed.case_id} ({changed.location})")
    if report.audit_chain is not None:
        print(f"audit chain       {_chain_line(report.audit_chain)}")
    if removed:
        print(f"removed {len(removed)} orphan/temporary mask file(s)")
    print("OK" if report.ok else "PROBLEMS FOUND")


def _chain_line(chain: AuditChainReport) -> str:
    from meddiag_desktop.db.audit_chain import describe_break

    if chain.first_break is None:
        return f"intact ({chain.events} events)"
    return f"BROKEN at {describe_break(chain.first_break)}"


def _mask_owner(problem: MaskProblem) -> str:
    """Whose file it is, for the check listing ("" for orphans, which nobody owns)."""
    if problem.reviewed_mask_id is not None:
        return f" (case {problem.case_id}, saved edit {problem.reviewed_mask_id})"
    return f" (case {problem.case_id}, run {problem.run_id})" if problem.run_id else ""


def _progress_printer():
    """Discovery/import progress on stderr when it is a terminal (one updating line)."""
    if not sys.stderr.isatty():
        return None

    def show(progress) -> None:
        line = f"\r{progress.fraction:4.0%} {progress.stage}: {progress.message}"
        print(f"{line[:100]:100}", end="", file=sys.stderr, flush=True)
        if progress.fraction >= 1.0 and progress.stage == "imported":
            print("\r" + " " * 100 + "\r", end="", file=sys.stderr, flush=True)

    return show
