"""Where the phantom patient lies in the scanner at a later visit: a small rigid move.

A follow-up scan of the same synthetic patient has the body shifted on the table and turned a
few degrees, as real patients are. The anatomy is drawn in its own frame (anatomy millimetres,
as everywhere in :mod:`meddiag_desktop.demo`) and resampled into the scanner's grid, so the
ground truth of the move is exact: ``p_scanner = R p_anatomy + t``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

# Drawn beyond what the moved scanner box needs, so interpolation never reads past an edge.
_EXTRA_MARGIN_MM = 6.0


@dataclass(frozen=True)
class PatientPose:
    """A rigid move about the anatomy origin (the middle of the lungs).

    ``rotation_deg_xyz`` are the angles of ITK's ``Euler3DTransform`` (about x, then y, then z,
    composed as ``Rz Rx Ry``), ``translation_mm`` the shift, both in anatomy (LPS) axes.
    """

    rotation_deg_xyz: tuple[float, float, float]
    translation_mm: tuple[float, float, float]

    def matrix(self) -> np.ndarray:
        """The 3x3 rotation R."""
        euler = sitk.Euler3DTransform()
        euler.SetRotation(*(float(np.radians(a)) for a in self.rotation_deg_xyz))
        return np.asarray(euler.GetMatrix(), dtype=float).reshape(3, 3)

    @property
    def rotation_deg(self) -> float:
        """The angle of the whole rotation (about its own axis), in degrees."""
        cosine = (np.trace(self.matrix()) - 1.0) / 2.0
        return float(np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0))))

    def scanner_point(self, point: np.ndarray) -> np.ndarray:
        """Where the anatomy point ``point`` (x, y, z mm) lies in the scanner."""
        return self.matrix() @ np.asarray(point, dtype=float) + np.asarray(self.translation_mm)

    def anatomy_point(self, point: np.ndarray) -> np.ndarray:
        """The anatomy point that lies at scanner position ``point``."""
        offset = np.asarray(point, dtype=float) - np.asarray(self.translation_mm)
        return self.matrix().T @ offset

    def reach_mm(self, field_of_view: tuple[np.ndarray, np.ndarray]) -> float:
        """How far beyond the scanner's field of view (lo, hi corners) the anatomy it shows
        reaches, in mm: how much more to draw before resampling."""
        lo, hi = (np.asarray(c, dtype=float) for c in field_of_view)
        corners = np.array(
            [[(lo, hi)[(k >> axis) & 1][axis] for axis in range(3)] for k in range(8)]
        )
        drawn = np.array([self.anatomy_point(c) for c in corners])
        beyond = np.maximum(lo - drawn, drawn - hi).max()
        return float(max(beyond, 0.0) + _EXTRA_MARGIN_MM)

    def resample(
        self,
        hu_zyx: np.ndarray,
        mask_zyx: np.ndarray,
        drawn_axes: tuple[np.ndarray, np.ndarray, np.ndarray],
        scanner_axes: tuple[np.ndarray, np.ndarray, np.ndarray],
    ) -> tuple[np.ndarray, np.ndarray]:
        """HU (float32, linear) and mask (its interpolated cover >= 0.5) drawn on the anatomy
        grid ``drawn_axes`` (x, y, z voxel centres), as the scanner grid ``scanner_axes``
        sees them."""
        rotation = self.matrix()
        move = sitk.AffineTransform(3)  # scanner point -> anatomy point
        move.SetMatrix(tuple(rotation.T.ravel()))
        move.SetTranslation(tuple(-(rotation.T @ np.asarray(self.translation_mm))))
        reference = _grid_image(scanner_axes)

        def moved(array: np.ndarray, outside: float) -> np.ndarray:
            image = sitk.GetImageFromArray(array, isVector=False)
            _place(image, drawn_axes)
            out = sitk.Resample(image, reference, move, sitk.sitkLinear, outside, sitk.sitkFloat32)
            return sitk.GetArrayFromImage(out)

        hu = moved(hu_zyx, -1000.0)
        cover = moved(mask_zyx.astype(np.float32), 0.0)
        return np.ascontiguousarray(hu, dtype=np.float32), (cover >= 0.5).astype(np.uint8)


def _place(image: sitk.Image, axes: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    image.SetOrigin(tuple(float(a[0]) for a in axes))
    image.SetSpacing(tuple(float(a[1] - a[0]) if a.size > 1 else 1.0 for a in axes))


def _grid_image(axes: tuple[np.ndarray, np.ndarray, np.ndarray]) -> sitk.Image:
    image = sitk.Image([int(a.size) for a in axes], sitk.sitkUInt8)
    _place(image, axes)
    return image
