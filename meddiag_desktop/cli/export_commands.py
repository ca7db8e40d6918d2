"""``meddiag export``: a case's review as report.pdf, seg.dcm, sr.dcm, labels.nii.gz,
findings.csv and findings.json, through the one export the app's Case -> Export... uses
(:func:`meddiag_desktop.export.write_outputs.export_case`: atomic files, an audit event).

No output flag: all of them; an output this case cannot have (a SEG of a NIfTI scan) is then
skipped and said so. Named outputs are all made or none: a named one that cannot be made is an
error (exit 2), so a script never gets fewer files than it asked for with exit 0.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from meddiag_desktop.db.command import DB_HELP

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
    export.set_defaults(run=run_export)


def run_export(args: argparse.Namespace) -> int:
    from meddiag_desktop.cli.output import ProgressBar
    from meddiag_desktop.db.engine import Database, DatabaseSettings
    from meddiag_desktop.db.errors import CaseDatabaseError
    from meddiag_desktop.export.write_outputs import OUTPUTS, ExportError, export_case

    chosen = [name for name in OUTPUTS if getattr(args, name)]
    db = Database.open(DatabaseSettings(url=args.db))
    bar = ProgressBar()
    try:
        result = export_case(
            db, args.case_id, args.out, outputs=chosen or None, progress=bar,
            page_size=args.page_size,
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
    for name, reason in result.skipped.items():
        print(f"skipped {name}: {reason}", file=sys.stderr)
    if result.draft:
        print(f"case {result.case_id} is not signed: every output is marked DRAFT",
              file=sys.stderr)
    return 0
