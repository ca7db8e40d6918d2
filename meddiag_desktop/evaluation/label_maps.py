"""Label maps and probability maps read from disk, and the check that two share one grid.

Arrays are indexed ``[z, y, x]``; spacing, origin and direction are SimpleITK's (x, y, z) values.
A 2-D image becomes one slice so every later step can treat it as 3-D.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from meddiag_desktop.evaluation.errors import EvaluationError
from meddiag_desktop.scans.errors import ScanError

GEOMETRY_TOLERANCE = 1e-3
LABEL_MAP_SUFFIXES = (".nii.gz", ".nii", ".mha", ".mhd", ".nrrd", ".nhdr")


@dataclass(frozen=True, eq=False)
class GridImage:
    """Pixels in ``[z, y, x]`` order with the geometry they came with."""

    path: Path
    array_zyx: np.ndarray
    spacing_xyz_mm: tuple[float, ...]
    origin_xyz_mm: tuple[float, ...]
    direction: tuple[float, ...]

    @property
    def spacing_zyx_mm(self) -> tuple[float, float, float]:
        x, y, z = (*self.spacing_xyz_mm, 1.0)[:3]
        return (z, y, x)


def is_label_map_file(path: Path) -> bool:
    """Whether the name ends in one of the formats evaluation reads (NIfTI, MHA/MHD, NRRD)."""
    return path.name.lower().endswith(LABEL_MAP_SUFFIXES)


def strip_suffix(name: str) -> str:
    """``case_01.nii.gz`` -> ``case_01``."""
    lowered = name.lower()
    for suffix in LABEL_MAP_SUFFIXES:
        if lowered.endswith(suffix):
            return name[: -len(suffix)]
    return name


def read_label_map(path: Path) -> GridImage:
    """A label map: non-negative whole numbers, 0 background; anything else is a clear error."""
    image = _read(path, "label map")
    array = image.array_zyx
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)) or not np.array_equal(array, np.round(array)):
            raise ScanError(path, "holds fractional values: expected a label map (whole numbers)")
        array = array.astype(np.int64)
    elif array.dtype.kind not in "iub":
        raise ScanError(path, f"has pixel type {array.dtype}: expected a label map")
    if array.size and array.min() < 0:
        raise ScanError(path, "holds negative values: expected a label map (0 = background)")
    return GridImage(path, array, image.spacing_xyz_mm, image.origin_xyz_mm, image.direction)


def read_probability_map(path: Path) -> GridImage:
    """One lesion probability per voxel, in [0, 1]."""
    image = _read(path, "probability map")
    array = image.array_zyx
    if array.dtype.kind not in "fiub":
        raise ScanError(path, f"has pixel type {array.dtype}: expected probabilities")
    if array.size and (not np.all(np.isfinite(array)) or array.min() < 0 or array.max() > 1):
        raise ScanError(path, "holds values outside 0..1: expected probabilities")
    return image


def check_same_grid(reference: GridImage, other: GridImage, role: str = "prediction") -> None:
    """Raise unless both have the same size, and spacing/origin/direction within 1e-3."""
    if reference.array_zyx.shape != other.array_zyx.shape:
        _mismatch(reference, other, role, ("size", _size(reference), _size(other)))
    for what in ("spacing_xyz_mm", "origin_xyz_mm", "direction"):
        mine, theirs = getattr(reference, what), getattr(other, what)
        if len(mine) != len(theirs) or not np.allclose(
            mine, theirs, rtol=0.0, atol=GEOMETRY_TOLERANCE
        ):
            _mismatch(reference, other, role, (what.split("_")[0], mine, theirs))


def _mismatch(reference: GridImage, other: GridImage, role: str, difference: tuple) -> None:
    what, mine, theirs = difference
    raise EvaluationError(
        f"{role} {other.path} and reference {reference.path} are not on the same grid: "
        f"{what} {_fmt(theirs)} vs {_fmt(mine)} (resample the {role} onto the reference)"
    )


def _size(image: GridImage) -> tuple[int, ...]:
    return tuple(reversed(image.array_zyx.shape))


def _fmt(values) -> str:
    return "(" + ", ".join(f"{v:.6g}" for v in values) + ")"


def _read(path: Path, what: str) -> GridImage:
    if not path.is_file():
        raise ScanError(path, f"{what} not found")
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise ScanError(path, f"cannot be read as a {what} (NIfTI, MHA or NRRD expected)") from exc
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise ScanError(
            path,
            f"has {image.GetNumberOfComponentsPerPixel()} values per voxel: "
            f"expected a single-channel {what}",
        )
    if image.GetDimension() not in (2, 3):
        raise ScanError(path, f"is {image.GetDimension()}-D: expected a 3-D {what}")
    array = sitk.GetArrayFromImage(image)
    if image.GetDimension() == 2:
        array = array[np.newaxis]
    return GridImage(
        path=path,
        array_zyx=array,
        spacing_xyz_mm=tuple(image.GetSpacing()),
        origin_xyz_mm=tuple(image.GetOrigin()),
        direction=tuple(image.GetDirection()),
    )
