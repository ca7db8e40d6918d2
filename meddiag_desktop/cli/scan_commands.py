"""``meddiag scan`` and ``meddiag convert``: what a folder holds, and one series to NIfTI.

``convert`` also turns a DICOM SEG into its label map on the grid of the series it labels
(:mod:`meddiag_desktop.scans.seg_reading`).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from meddiag_desktop.cli.output import ProgressBar
from meddiag_desktop.domain import SeriesInfo
from meddiag_desktop.scans import (
    ScanError,
    choose_series,
    discover,
    load,
    write_label_map,
    write_volume,
)
from meddiag_desktop.scans.seg_reading import is_segmentation_file, read_seg


def add_parsers(commands: argparse._SubParsersAction) -> None:
    scan = commands.add_parser("scan", help="list the series in a folder or file")
    scan.add_argument("path", type=Path)
    scan.add_argument("--json", action="store_true", help="machine-readable output")
    scan.set_defaults(run=_scan)

    convert = commands.add_parser("convert", help="load one series and write it as NIfTI")
    convert.add_argument("path", type=Path)
    convert.add_argument("--series", help="series key or UID from 'meddiag scan'")
    convert.add_argument("--out", type=Path, required=True, help="output file (.nii.gz)")
    convert.add_argument(
        "--reference",
        type=Path,
        help="for a DICOM SEG: the folder holding the series it labels (default: its folder)",
    )
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
        "segmentation": _segmentation_summary(series),
    }


def _segmentation_summary(series: SeriesInfo) -> dict | None:
    """For a DICOM SEG: the series it labels, whether this scan found it, its segments."""
    reference = series.segmentation
    if reference is None:
        return None
    return {
        "referenced_series_uid": reference.referenced_series_uid,
        "reference_found": reference.reference_found,
        "reference_key": reference.reference_key,
        "segments": [{"number": n, "label": label} for n, label in reference.segment_labels],
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
    reference = series.segmentation
    if reference is not None:
        segments = ", ".join(f"{n} {label}" for n, label in reference.segment_labels)
        found = (
            f"found here as {reference.reference_key}"
            if reference.reference_found
            else "NOT found here"
        )
        print(f"  segments: {segments or '(none)'}")
        print(f"  labels series: {reference.referenced_series_uid or '(not named)'} ({found})")
    for warning in series.warnings:
        print(f"  warning: {warning}")


def _convert(args: argparse.Namespace) -> int:
    if not str(args.out).lower().endswith((".nii.gz", ".nii", ".mha", ".nrrd")):
        raise ScanError(args.out, "output must end in .nii.gz (or .nii, .mha, .nrrd)")
    if is_segmentation_file(args.path):
        return _convert_seg(args)
    if args.reference is not None:
        raise ScanError(args.path, "is not a DICOM SEG; --reference is only for one")
    series = choose_series(discover(args.path), args.series, args.path)
    volume = load(series)
    write_volume(volume, args.out)
    for warning in volume.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    size = "x".join(str(v) for v in volume.size_xyz)
    print(f"wrote {args.out} ({size} voxels, {series.description or series.key})")
    return 0


def _convert_seg(args: argparse.Namespace) -> int:
    """A DICOM SEG's label map (segment number = label value) on its series' grid."""
    seg = read_seg(args.path, args.reference)
    write_label_map(seg.scan, seg.labels.array_zyx, args.out)
    for warning in (*seg.warnings, *seg.scan.warnings):
        print(f"warning: {warning}", file=sys.stderr)
    size = "x".join(str(v) for v in seg.labels.size_xyz)
    segments = ", ".join(f"{n} {name}" for n, name in sorted(seg.label_names.items()))
    print(
        f"wrote {args.out} ({size} voxels, labels {segments or '(none)'}) on series "
        f"{seg.reference.key} ({seg.reference.description or 'no description'}), frames "
        f"placed by {seg.mapped_by}"
    )
    return 0
