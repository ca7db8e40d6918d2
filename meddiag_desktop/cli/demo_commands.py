"""``meddiag demo make``: the synthetic chest CT phantom used by the demo and the demo model."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from meddiag_desktop.demo.case import DemoCaseError, write_demo_case
from meddiag_desktop.demo.phantom import DEFAULT_SHAPE_ZYX, DEFAULT_SPACING_XYZ_MM

USER_ERRORS = (DemoCaseError,)


def add_parsers(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser("demo", help="synthetic demo data (not a patient)")
    demo_commands = demo.add_subparsers(title="demo commands")
    make = demo_commands.add_parser(
        "make", help="write a synthetic chest CT phantom (DICOM) and its ground-truth mask"
    )
    make.add_argument("folder", type=Path, help="empty folder (or a previous demo case)")
    make.add_argument("--seed", type=int, default=7, help="which phantom (default 7)")
    make.add_argument(
        "--shape",
        type=int,
        nargs=3,
        metavar=("Z", "Y", "X"),
        default=DEFAULT_SHAPE_ZYX,
        help="voxels (default %(default)s)",
    )
    make.add_argument(
        "--spacing",
        type=float,
        nargs=3,
        metavar=("X", "Y", "Z"),
        default=DEFAULT_SPACING_XYZ_MM,
        help="mm (default %(default)s)",
    )
    make.add_argument(
        "--follow-up",
        action="store_true",
        help="write a baseline and a follow-up scan of one patient (FOLDER/baseline, "
        "FOLDER/follow-up) with known changes, and FOLDER/follow_up_truth.json",
    )
    make.set_defaults(run=_make)


def _make(args: argparse.Namespace) -> int:
    if args.follow_up:
        return _make_follow_up(args)
    case = write_demo_case(
        args.folder, seed=args.seed, shape_zyx=tuple(args.shape), spacing_xyz_mm=tuple(args.spacing)
    )
    print(
        f"wrote a synthetic phantom (seed {args.seed}, {len(case.dicom_files)} slices) to "
        f"{case.dicom_folder}, ground truth {case.ground_truth.name}, "
        f"{len(case.nodules)} nodule(s) in {case.nodules_json.name}"
    )
    for nodule in case.nodules:
        centre = ", ".join(f"{v:.0f}" for v in nodule.centre_lps_mm)
        print(f"  {nodule.kind} nodule, {nodule.diameter_mm:.1f} mm at LPS ({centre}) mm")
    return 0


def _make_follow_up(args: argparse.Namespace) -> int:
    from meddiag_desktop.demo.follow_up_case import write_follow_up_case

    pair = write_follow_up_case(
        args.folder, seed=args.seed, shape_zyx=tuple(args.shape), spacing_xyz_mm=tuple(args.spacing)
    )
    truth = json.loads(pair.truth_json.read_text(encoding="utf-8"))
    print(
        f"wrote a synthetic follow-up pair (seed {args.seed}): {pair.baseline.dicom_folder} "
        f"({truth['baseline']['study_date']}) and {pair.follow_up.dicom_folder} "
        f"({truth['follow_up']['study_date']}, {truth['days_between']} days later, moved "
        f"{truth['transform']['shift_mm']:.1f} mm and {truth['transform']['rotation_deg']:.1f} "
        f"deg), ground truth {pair.truth_json.name}"
    )
    for lesion in truth["lesions"]:
        before, after = (f"{v:.2f} mL" if v is not None else "-" for v in lesion["volume_ml"])
        print(f"  {lesion['track_id']}: {lesion['change']:<9} {before} -> {after}")
    print(f"  expected response: {truth['rule']}")
    return 0
