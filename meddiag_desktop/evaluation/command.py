"""``meddiag evaluate``: compare predicted label maps with references and print the figures."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from meddiag_desktop.domain import Progress
from meddiag_desktop.evaluation.evaluate import evaluate_cases
from meddiag_desktop.evaluation.options import EvaluationOptions
from meddiag_desktop.evaluation.pairing import pair_cases
from meddiag_desktop.evaluation.plot import plot_froc
from meddiag_desktop.evaluation.table import format_report

DESCRIPTION = """\
Compare predicted label maps with reference (ground-truth) label maps: Dice, voxel sensitivity
and precision per label and for any lesion (all labels > 0 as one); lesion-wise detection; a FROC
curve when probability maps exist; run times from findings.json.

Which files are compared:
  A prediction case is a label-map file (NIfTI .nii.gz/.nii, MetaImage .mha/.mhd, NRRD
  .nrrd/.nhdr) or a folder holding mask.nii.gz (the output of 'meddiag infer --out DIR');
  probabilities.nii.gz (one lesion probability per voxel) and findings.json (with
  "timings_s": {stage: seconds, "total": ...}) beside mask.nii.gz are used when present.
  A reference case is a label-map file or a folder holding ground_truth.nii.gz (the demo case
  layout) or exactly one label map with 'label', 'mask', 'seg' or 'truth' in its name.
  Each path given to --pred or --ref is one case (a file or a case folder) or a folder of cases
  (its case subfolders and every label-map file directly in it).
  A case is named after its case folder, else after its file name without the extension.
  With one case on each side the two are compared whatever their names; otherwise cases are
  paired by name and a name without a partner is an error that lists it.
  Both label maps of a case must have the same size, and spacing, origin and direction within
  0.001.

Lesion-wise detection:
  Lesions are 26-connected components of all labels > 0. A reference lesion is detected (TP)
  when a predicted component overlaps it by at least one voxel, OR when a predicted component's
  centroid lies within max(5 mm, the reference lesion's equivalent radius) of its centroid
  (physical mm; 5 mm is --min-distance-mm; the equivalent radius is that of a sphere of the
  lesion's volume); otherwise it is missed (FN). A predicted component that detects no
  reference lesion is a false positive (FP); two components on one lesion are both true
  positives. Recall = TP / reference lesions, precision = true-positive components / predicted
  components. The size-restricted recall counts reference lesions with equivalent diameter
  >= 6 mm (--min-diameter-mm).

FROC (cases with probabilities.nii.gz):
  The probability map is thresholded at 0.05, 0.10, ..., 0.95 (probability >= threshold) and
  matched with the same criterion; sensitivity against mean false positives per case, summed
  over those cases. The sensitivity at 0.25, 0.5, 1, 2, 4 and 8 false positives per case is the
  best reached at or below that rate, interpolated linearly between thresholds.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``evaluate`` on the ``meddiag`` command's subparsers."""
    parser = subparsers.add_parser(
        "evaluate",
        help="compare predicted label maps with references (Dice, lesion detection, FROC)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--pred",
        type=Path,
        nargs="+",
        required=True,
        metavar="PATH",
        help="predicted label map(s), 'meddiag infer' output folder(s), or folder(s) of them",
    )
    parser.add_argument(
        "--ref",
        type=Path,
        nargs="+",
        required=True,
        metavar="PATH",
        help="reference label map(s), case folder(s), or folder(s) of cases",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "--plot",
        type=Path,
        metavar="OUT.png",
        help="write the FROC curve (or the single operating point without probability maps)",
    )
    parser.add_argument(
        "--min-distance-mm",
        type=float,
        default=EvaluationOptions.min_distance_mm,
        metavar="MM",
        help="centroid distance that counts as a detection, at least (default: %(default)g)",
    )
    parser.add_argument(
        "--min-diameter-mm",
        type=float,
        default=EvaluationOptions.min_diameter_mm,
        metavar="MM",
        help="lesion size for the size-restricted recall (default: %(default)g)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Pair, evaluate, print (table or JSON) and plot; user errors raise with one-line messages."""
    options = EvaluationOptions(
        min_distance_mm=args.min_distance_mm, min_diameter_mm=args.min_diameter_mm
    )
    pairs = pair_cases(args.pred, args.ref)
    interactive = sys.stderr.isatty() and not args.json
    report = evaluate_cases(pairs, options, progress=_show_progress if interactive else None)
    if interactive:
        print("\r" + " " * 60 + "\r", end="", file=sys.stderr)
    if args.json:
        print(report.to_json())
    else:
        print(format_report(report))
    if args.plot is not None:
        drawn = plot_froc(report, args.plot)
        print(f"wrote {args.plot}: {drawn}", file=sys.stderr if args.json else sys.stdout)
    return 0


def _show_progress(progress: Progress) -> None:
    print(
        f"\r{progress.stage}: {progress.fraction:4.0%} {progress.message[:40]:40}",
        end="",
        file=sys.stderr,
        flush=True,
    )
