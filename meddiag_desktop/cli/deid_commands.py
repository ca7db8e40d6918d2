"""``meddiag deid lookup PSEUDONYM``: who the patient of a de-identified export is.

De-identified exports (``meddiag export --deidentify``) name a patient by a pseudonym; the way
back to the patient is kept only in the local database (:mod:`meddiag_desktop.db.pseudonyms`).
Every lookup, found or not, is an audit event with the pseudonym asked for (never the name).
"""

from __future__ import annotations

import argparse
import json

from meddiag_desktop.db.command import DB_HELP


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register ``deid`` (and ``deid lookup``) on the ``meddiag`` command's subparsers."""
    deid = subparsers.add_parser(
        "deid", help="de-identified exports: look up who a pseudonym is (audited)"
    )
    commands = deid.add_subparsers(title="deid commands")
    lookup = commands.add_parser(
        "lookup",
        help="the patient behind a pseudonym of a de-identified export, and their cases here",
        description="Prints the patient's name, ID and birth date; the lookup is recorded in "
        "the audit log.",
    )
    lookup.add_argument("pseudonym", metavar="PSEUDONYM", help="e.g. ANON-7K3Q9XW2HD")
    lookup.add_argument("--json", action="store_true", help="machine-readable output")
    lookup.add_argument("--db", metavar="URL", help=DB_HELP)
    lookup.set_defaults(run=run_lookup)


def run_lookup(args: argparse.Namespace) -> int:
    from meddiag_desktop.cli.sign_in import open_as_user
    from meddiag_desktop.db.pseudonyms import lookup_pseudonym

    # Acting as the signed-in user, so the audit event names who asked.
    db = open_as_user(args, args.db)
    try:
        found = lookup_pseudonym(db, args.pseudonym)
    finally:
        db.close()
    record = found.pseudonym
    if args.json:
        print(json.dumps({
            "pseudonym": record.pseudonym,
            "patient_name": record.patient_name,
            "patient_id": record.dicom_patient_id,
            "birth_date": record.birth_date,
            "case_ids": list(found.case_ids),
            "created_at": record.created_at.isoformat(),
            "created_by": record.created_by,
        }, indent=2, ensure_ascii=False))
        return 0
    cases = ", ".join(str(c) for c in found.case_ids) or "none held here now"
    print(f"pseudonym:   {record.pseudonym}")
    print(f"patient:     {record.patient_name or '(no name)'}")
    print(f"patient ID:  {record.dicom_patient_id or '(none)'}")
    print(f"birth date:  {record.birth_date or '(none)'}")
    print(f"cases:       {cases}")
    print(f"first used:  {record.created_at:%Y-%m-%d %H:%M} UTC by {record.created_by}")
    return 0
