"""Write volumes and label maps to NIfTI (or MHA/NRRD) with their geometry.

Files are written under a temporary name in the target folder and renamed into place, so a
crash or a full disk never leaves a half-written file under the real name.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from meddiag_desktop.domain import Volume
from meddiag_desktop.scans.errors import ScanError
from meddiag_desktop.scans.file_formats import _suffix, image_from_volume

_WRITABLE = (".nii.gz", ".nii", ".mha", ".nrrd")


def write_volume(volume: Volume, path: Path | str) -> Path:
    """Write the volume's voxels and geometry; the format follows the file name."""
    return _write(image_from_volume(volume), Path(path))


def write_label_map(reference: Volume, labels_zyx: np.ndarray, path: Path | str) -> Path:
    """Write a label map on ``reference``'s grid (uint8, or uint16 for many labels)."""
    if labels_zyx.shape != reference.shape_zyx:
        raise ValueError(
            f"label map shape {labels_zyx.shape} differs from the volume's {reference.shape_zyx}"
        )
    dtype = np.uint8 if labels_zyx.max(initial=0) <= 255 else np.uint16
    return _write(image_from_volume(reference, labels_zyx.astype(dtype, copy=False)), Path(path))


def _write(image: sitk.Image, path: Path) -> Path:
    suffix = _suffix(path)
    if suffix not in _WRITABLE:
        raise ScanError(path, f"cannot be written: use one of {', '.join(_WRITABLE)}")
    if not path.parent.is_dir():
        raise ScanError(path, f"cannot be written: folder {path.parent} does not exist")
    # The temporary name keeps the full suffix (SimpleITK picks the format from it) and a stem
    # of its own, so no stray X.nii ever sits beside X.nii.gz (see PITFALLS.md).
    temporary = path.with_name(f".{uuid.uuid4().hex}.partial{suffix}")
    try:
        sitk.WriteImage(image, str(temporary), useCompression=suffix == ".nii.gz")
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except (RuntimeError, OSError) as exc:
        temporary.unlink(missing_ok=True)
        reason = getattr(exc, "strerror", None) or str(exc).strip().splitlines()[-1][:160]
        raise ScanError(path, f"could not be written ({reason})") from exc
    return path
