"""``meddiag demo make``: the synthetic chest CT phantom used by the demo and the demo model."""

from __future__ import annotations

import argparse
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
    make.set_defaults(run=_make)


def _make(args: argparse.Namespace) -> int:
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
