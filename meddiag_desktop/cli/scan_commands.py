"""``meddiag scan`` and ``meddiag convert``: what a folder holds, and one series to NIfTI."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from meddiag_desktop.cli.output import ProgressBar
from meddiag_desktop.domain import SeriesInfo
from meddiag_desktop.scans import ScanError, choose_series, discover, load, write_volume


def add_parsers(commands: argparse._SubParsersAction) -> None:
    scan = commands.add_parser("scan", help="list the series in a folder or file")
    scan.add_argument("path", type=Path)
    scan.add_argument("--json", action="store_true", help="machine-readable output")
    scan.set_defaults(run=_scan)

    convert = commands.add_parser("convert", help="load one series and write it as NIfTI")
    convert.add_argument("path", type=Path)
    convert.add_argument("--series", help="series key or UID from 'meddiag scan'")
    convert.add_argument("--out", type=Path, required=True, help="output file (.nii.gz)")
    convert.set_defaults(run=_convert)


def _scan(args: argparse.Namespace) -> int:
    bar = ProgressBar()
    found = discover(args.path, progress=bar)
    bar.close()
    if args.json:
        print(json.dumps([series_summary(s) for s in found], indent=2))
        return 0
    for series in found:
        _print_series(series)
    loadable = sum(s.loadable for s in found)
    print(f"{len(found)} series, {loadable} loadable as a 3-D volume.")
    return 0


def series_summary(series: SeriesInfo) -> dict:
    """The JSON shape of one series in ``meddiag scan --json``."""
    return {
        "key": series.key,
        "uid": series.uid,
        "kind": series.kind.value,
        "modality": series.modality,
        "description": series.description,
        "patient": {"name": series.metadata.patient_name, "id": series.metadata.patient_id},
        "study_date": series.metadata.study_date,
        "size": list(series.size_xyz),
        "spacing_mm": [round(v, 4) for v in series.spacing_xyz_mm],
        "file_count": series.file_count,
        "time_points": series.time_points,
        "loadable": series.loadable,
        "reason": series.reason,
        "warnings": list(series.warnings),
        "metadata": asdict(series.metadata),
    }


def _print_series(series: SeriesInfo) -> None:
    size = "x".join(str(v) for v in series.size_xyz)
    spacing = "x".join(f"{v:.3g}" for v in series.spacing_xyz_mm)
    state = "loadable" if series.loadable else "NOT loadable"
    title = series.description or "(no description)"
    print(f"{series.key}")
    print(
        f"  {series.modality or '--':3} {title} | {series.kind.value} | {size} voxels"
        f" | {spacing} mm | {series.file_count} file(s) | {state}"
    )
    if series.reason:
        print(f"  why: {series.reason}")
    for warning in series.warnings:
        print(f"  warning: {warning}")


def _convert(args: argparse.Namespace) -> int:
    if not str(args.out).lower().endswith((".nii.gz", ".nii", ".mha", ".nrrd")):
        raise ScanError(args.out, "output must end in .nii.gz (or .nii, .mha, .nrrd)")
    series = choose_series(discover(args.path), args.series, args.path)
    volume = load(series)
    write_volume(volume, args.out)
    for warning in volume.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    size = "x".join(str(v) for v in volume.size_xyz)
    print(f"wrote {args.out} ({size} voxels, {series.description or series.key})")
    return 0
