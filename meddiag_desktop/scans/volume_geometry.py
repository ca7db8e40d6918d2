"""The last check before any loader hands out a Volume: can every voxel be placed in the patient?

Inference, measurements, the database and every exported file assume a finite, positive voxel
spacing, a finite origin and an orthonormal direction matrix. A NaN there gave a NIfTI written
with NaN geometry, a ``TypeError`` deep in preprocessing, and a database constraint failure; a
skewed matrix gives lengths and volumes in the wrong units. Whatever a reader let through is
refused here with a message naming the file, before anything downstream sees it.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from meddiag_desktop.domain import Volume
from meddiag_desktop.scans.errors import ScanError

# Directions are stored as float32 in NIfTI (quaternions) and rounded text in DICOM/MHA.
ORTHONORMAL_TOLERANCE = 1e-3


def geometry_problem(
    spacing: tuple[float, ...], origin: tuple[float, ...], direction: tuple[float, ...]
) -> str:
    """Why this spacing (mm), origin (LPS mm) and 3x3 direction are unusable; empty if sound."""
    if not all(math.isfinite(v) and v > 0 for v in spacing):
        return f"has an invalid voxel spacing {_text(spacing)} mm (must be positive and finite)"
    if not all(math.isfinite(v) for v in origin):
        return f"has an invalid origin {_text(origin)} mm (must be finite)"
    matrix = np.asarray(direction, dtype=float).reshape(3, 3)
    if not np.all(np.isfinite(matrix)):
        return f"has an invalid direction matrix {_text(direction)} (not finite)"
    if not np.allclose(matrix.T @ matrix, np.eye(3), atol=ORTHONORMAL_TOLERANCE):
        return (
            f"has a direction matrix that is not orthonormal {_text(direction)}: "
            "its axes are skewed or scaled, so distances and volumes would be wrong"
        )
    return ""


def checked(volume: Volume, path: Path | str) -> Volume:
    """``volume`` itself when its geometry is sound; :class:`ScanError` naming ``path`` if not."""
    problem = geometry_problem(volume.spacing_xyz_mm, volume.origin_lps_mm, volume.direction_lps)
    if problem:
        raise ScanError(path, problem)
    return volume


def _text(values: tuple[float, ...]) -> str:
    return "(" + ", ".join(f"{v:.6g}" for v in values) + ")"
