"""``meddiag export``: a case's review as report.pdf, seg.dcm, sr.dcm, labels.nii.gz,
findings.csv and findings.json, through the one export the app's Case -> Export... uses
(:func:`meddiag_desktop.export.write_outputs.export_case`: atomic files, an audit event).

No output flag: all of them; an output this case cannot have (a SEG of a NIfTI scan) is then
skipped and said so. Named outputs are all made or none: a named one that cannot be made is an
error (exit 2), so a script never gets fewer files than it asked for with exit 0.

``--deidentify`` makes every output a DICOM PS3.15 de-identified one (the patient's pseudonym,
new UIDs, the options of ``--options``; ``--images`` adds de-identified copies of the source
images): :mod:`meddiag_desktop.export.deidentified`, docs/deidentification.md. Images whose
pixels may show the patient's name are refused (exit 2) unless ``--allow-burned-in``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from meddiag_desktop.db.command import DB_HELP

if TYPE_CHECKING:
    from meddiag_desktop.export.deidentified import DeidRequest

EXIT_USER_ERROR = 2
_FLAGS = {
    "pdf": "the PDF report (report.pdf)",
    "seg": "the DICOM Segmentation of the kept findings (seg.dcm)",
    "sr": "the DICOM SR measurement report, TID 1500 (sr.dcm)",
    "nifti": "the kept label map as NIfTI (labels.nii.gz)",
    "csv": "the kept findings as CSV (findings.csv)",
    "json": "the kept findings as JSON (findings.json)",
}


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register ``export`` on the ``meddiag`` command's subparsers."""
    export = subparsers.add_parser(
        "export",
        help="write a case's review: PDF report, DICOM SEG and SR, label map, CSV, JSON",
        description="Only the findings the radiologist kept (accepted, edited, manual) are "
        "written; an unsigned case's outputs are all marked DRAFT. No output flag: all.",
    )
    export.add_argument("case_id", type=int, metavar="CASE_ID")
    export.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    for name, text in _FLAGS.items():
        export.add_argument(f"--{name}", action="store_true", help=text)
    export.add_argument(
        "--page-size", choices=("A4", "Letter"), default="A4", help="PDF page size (default A4)"
    )
    export.add_argument("--db", metavar="URL", help=DB_HELP)
    _add_deidentify_arguments(export)
    export.set_defaults(run=run_export)


def _add_deidentify_arguments(export: argparse.ArgumentParser) -> None:
    group = export.add_argument_group(
        "de-identification (DICOM PS3.15 Annex E, Basic Application Level Confidentiality "
        "Profile)"
    )
    group.add_argument(
        "--deidentify", action="store_true",
        help="de-identify every output: the patient's pseudonym (the same in every export of "
        "the patient) instead of name, ID and birth date; new UIDs; no private attributes",
    )
    group.add_argument(
        "--options", default="", metavar="OPTION[,OPTION...]",
        help="with --deidentify: retain-dates (every date moved by the patient's one offset), "
        "retain-patient-characteristics (sex, age, size, weight...), clean-descriptors "
        "(descriptions kept, cleaned of identifying words)",
    )
    group.add_argument(
        "--images", action="store_true",
        help="with --deidentify: also write de-identified copies of the source images "
        "(images/), which the SEG and SR reference",
    )
    group.add_argument(
        "--allow-burned-in", action="store_true",
        help="with --deidentify: export even images whose pixels may show identifying text "
        "(Burned In Annotation YES, secondary captures); check them first",
    )


def _deidentify_request(args: argparse.Namespace) -> DeidRequest | None:
    """The de-identification asked for, or None; a de-identification flag without
    --deidentify is a :class:`~meddiag_desktop.deid.DeidError`."""
    from meddiag_desktop.deid import DeidError, parse_options

    if not args.deidentify:
        extra = [flag for flag, given in (
            ("--options", bool(args.options)), ("--images", args.images),
            ("--allow-burned-in", args.allow_burned_in),
        ) if given]
        if extra:
            raise DeidError(f"{', '.join(extra)} only go with --deidentify")
        return None
    from meddiag_desktop.export.deidentified import DeidRequest

    return DeidRequest(
        options=parse_options(args.options), images=args.images,
        allow_burned_in=args.allow_burned_in,
    )


def run_export(args: argparse.Namespace) -> int:
    from meddiag_desktop.cli.output import ProgressBar
    from meddiag_desktop.cli.sign_in import open_as_user
    from meddiag_desktop.db.errors import CaseDatabaseError
    from meddiag_desktop.db.roles import Permission
    from meddiag_desktop.export.write_outputs import OUTPUTS, ExportError, export_case

    chosen = [name for name in OUTPUTS if getattr(args, name)]
    request = _deidentify_request(args)
    db = open_as_user(args, args.db, Permission.EXPORT)
    bar = ProgressBar()
    try:
        result = export_case(
            db, args.case_id, args.out, outputs=chosen or None, progress=bar,
            page_size=args.page_size, deidentify=request,
        )
    except (ExportError, CaseDatabaseError) as exc:
        bar.close()
        print(f"meddiag: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    finally:
        db.close()
    bar.close()
    for path in result.files:
        print(path)
    if result.images is not None:
        print(result.images)
    if result.pseudonym is not None:
        print(f"de-identified: the patient is {result.pseudonym} in these files",
              file=sys.stderr)
    for name, reason in result.skipped.items():
        print(f"skipped {name}: {reason}", file=sys.stderr)
    if result.draft:
        print(f"case {result.case_id} is not signed: every output is marked DRAFT",
              file=sys.stderr)
    return 0
