"""The source series a DICOM SEG and SR refer to, read back from its files and matched to the scan.

The SEG has to sit on the source's exact grid and the SR has to name the images it measured, so
both are built from the series' own headers, not from the :class:`Volume` that was loaded from
them. This module reads those headers once, checks that they are the grid the findings' voxels
live on (same series, orientation, pixel spacing, one file per array slice) and puts them in the
array's slice order. Anything else (a NIfTI case, a series resampled at load because its slices
were uneven, a multi-frame file) is refused with a :class:`DicomOutputError` that says why: a SEG
"on roughly the same geometry" would open misplaced in another viewer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from meddiag_desktop.reports.errors import ReportError
from meddiag_desktop.reports.review_outcome import ReviewOutcome

# Positions are written as decimal strings of at most 16 characters: allow their rounding.
_POSITION_TOLERANCE_MM = 1e-3
_ORIENTATION_TOLERANCE = 1e-4


class DicomOutputError(ReportError):
    """The review cannot be written as a DICOM SEG or SR (no DICOM source, nothing kept...)."""


@dataclass(frozen=True)
class SourceSeries:
    """The source series' headers (no pixels), in the scan array's slice order."""

    datasets: tuple[Dataset, ...]  # datasets[k] is array slice k (array_zyx[k])

    @property
    def series_uid(self) -> str:
        return str(self.datasets[0].SeriesInstanceUID)

    @property
    def frame_of_reference_uid(self) -> str:
        return str(self.datasets[0].FrameOfReferenceUID)


def check_exportable(outcome: ReviewOutcome) -> None:
    """Refuse, before any file is read, a review that cannot become a SEG or SR."""
    if not outcome.is_dicom:
        where = outcome.scan.source or "a non-DICOM file"
        raise DicomOutputError(
            f"case {outcome.case_id}: the scan was not read from a DICOM series ({where}), so "
            "there is no series for a DICOM SEG or SR to reference"
        )
    if not outcome.findings:
        raise DicomOutputError(
            f"case {outcome.case_id} has no kept finding: a DICOM SEG needs at least one "
            "segment, so no SEG (and no SR referencing it) is written"
        )


def read_source_series(outcome: ReviewOutcome) -> SourceSeries:
    """The headers of ``outcome.source_files`` in array slice order, checked against the scan.

    Raises :class:`DicomOutputError` naming the file and the problem when the files are not the
    scan's grid.
    """
    check_exportable(outcome)
    datasets = [_read_header(path) for path in outcome.source_files]
    first = datasets[0]
    if len(datasets) == 1 and int(first.get("NumberOfFrames", 1) or 1) > 1:
        raise DicomOutputError(
            f"{outcome.source_files[0]}: a multi-frame source image is not supported for "
            "DICOM SEG/SR export yet"
        )
    _check_same_series(outcome, datasets)
    return SourceSeries(tuple(_in_slice_order(outcome, datasets)))


def _read_header(path: Path) -> Dataset:
    try:
        return pydicom.dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, OSError, ValueError) as exc:
        raise DicomOutputError(f"{path}: the source image cannot be read ({exc})") from exc


def _check_same_series(outcome: ReviewOutcome, datasets: list[Dataset]) -> None:
    expected = outcome.scan.metadata.series_uid or str(datasets[0].get("SeriesInstanceUID", ""))
    rows, columns = outcome.scan.shape_zyx[1:]
    direction = np.asarray(outcome.scan.direction_lps, dtype=float).reshape(3, 3)
    orientation = np.concatenate([direction[:, 0], direction[:, 1]])
    spacing = np.asarray(outcome.scan.spacing_xyz_mm[:2], dtype=float)
    for path, ds in zip(outcome.source_files, datasets, strict=True):
        missing = [
            key
            for key in ("SeriesInstanceUID", "FrameOfReferenceUID", "ImagePositionPatient")
            if key not in ds
        ]
        if missing:
            raise DicomOutputError(f"{path}: the source image has no {', '.join(missing)}")
        if str(ds.SeriesInstanceUID) != expected:
            raise DicomOutputError(
                f"{path}: belongs to series {ds.SeriesInstanceUID}, not the case's {expected}"
            )
        if (int(ds.Rows), int(ds.Columns)) != (rows, columns):
            raise DicomOutputError(
                f"{path}: {ds.Rows}x{ds.Columns} pixels, the scan has {rows}x{columns}"
            )
        if not np.allclose(
            np.asarray(ds.ImageOrientationPatient, dtype=float), orientation,
            atol=_ORIENTATION_TOLERANCE,
        ):
            raise DicomOutputError(f"{path}: its orientation differs from the scan's")
        # PixelSpacing is (row spacing, column spacing) = (y, x).
        if not np.allclose(
            np.asarray(ds.PixelSpacing, dtype=float)[::-1], spacing, atol=_POSITION_TOLERANCE_MM
        ):
            raise DicomOutputError(f"{path}: its pixel spacing differs from the scan's")


def _in_slice_order(outcome: ReviewOutcome, datasets: list[Dataset]) -> list[Dataset]:
    """Put each file at the array slice its position is on; every slice needs exactly one."""
    scan = outcome.scan
    direction = np.asarray(scan.direction_lps, dtype=float).reshape(3, 3)
    origin = np.asarray(scan.origin_lps_mm, dtype=float)
    spacing = np.asarray(scan.spacing_xyz_mm, dtype=float)
    slices = scan.shape_zyx[0]
    ordered: list[Dataset | None] = [None] * slices
    for path, ds in zip(outcome.source_files, datasets, strict=True):
        # Position in voxel units along the row, column and normal directions.
        index = direction.T @ (np.asarray(ds.ImagePositionPatient, dtype=float) - origin) / spacing
        k = round(float(index[2]))
        off_grid = np.abs(index - [0.0, 0.0, k]) * spacing > _POSITION_TOLERANCE_MM
        if off_grid.any() or not 0 <= k < slices or ordered[k] is not None:
            raise DicomOutputError(
                f"{path}: the slice does not lie on one slice of the scan's grid (the series "
                "was resampled when it was loaded, e.g. uneven slice spacing), so a SEG cannot "
                "be written on the source's exact geometry"
            )
        ordered[k] = ds
    if any(ds is None for ds in ordered):
        missing = ordered.index(None) + 1
        raise DicomOutputError(
            f"case {outcome.case_id}: no source file for slice {missing} of {slices}: the "
            "series' files are incomplete"
        )
    return [ds for ds in ordered if ds is not None]
