"""The transform a registration found, in a form that is stored, sent to a viewer and rebuilt.

Direction, as ITK's registration gives it: the transform maps a point of the *current* study
(the fixed image) to the point of the *prior* study (the moving image) that shows the same
anatomy, both in LPS millimetres. So :meth:`StoredTransform.to_prior` is what a linked viewer
calls when the reader scrolls the current study, and :meth:`StoredTransform.to_current` what it
calls for the prior; :meth:`StoredTransform.resample_to_current` puts a prior label map on the
current grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import SimpleITK as sitk

from meddiag_desktop.domain import Vector3, Volume, vector3


class TransformType(StrEnum):
    IDENTITY = "identity"  # nothing registered (the same frame of reference)
    RIGID = "rigid"  # ITK Euler3DTransform: 3 angles (rad), 3 translations (mm)
    AFFINE = "affine"  # ITK AffineTransform: 9 matrix values, 3 translations (mm)


@dataclass(frozen=True)
class StoredTransform:
    """Current-study LPS point -> prior-study LPS point (see the module docstring)."""

    kind: TransformType
    parameters: tuple[float, ...] = ()
    fixed_parameters: tuple[float, ...] = ()  # the centre of rotation (mm)

    @classmethod
    def identity(cls) -> StoredTransform:
        return cls(TransformType.IDENTITY)

    @classmethod
    def from_sitk(cls, transform: sitk.Transform) -> StoredTransform:
        name = transform.GetName()
        kinds = {"Euler3DTransform": TransformType.RIGID, "AffineTransform": TransformType.AFFINE}
        if name not in kinds:
            raise ValueError(f"a {name} cannot be stored as a follow-up transform")
        return cls(
            kinds[name],
            tuple(float(v) for v in transform.GetParameters()),
            tuple(float(v) for v in transform.GetFixedParameters()),
        )

    def to_sitk(self) -> sitk.Transform:
        """The SimpleITK transform (a new object each call)."""
        if self.kind is TransformType.IDENTITY:
            return sitk.Euler3DTransform()
        transform: sitk.Transform
        if self.kind is TransformType.RIGID:
            transform = sitk.Euler3DTransform()
        else:
            transform = sitk.AffineTransform(3)
        transform.SetFixedParameters(self.fixed_parameters)
        transform.SetParameters(self.parameters)
        return transform

    def matrix_and_translation(self) -> tuple[np.ndarray, np.ndarray]:
        """``(A, b)`` with ``to_prior(p) = A p + b``: what a viewer needs to link two views."""
        if self.kind is TransformType.IDENTITY:
            return np.eye(3), np.zeros(3)
        transform = self.to_sitk()
        origin = np.array(transform.TransformPoint((0.0, 0.0, 0.0)), dtype=float)
        columns = [
            np.array(transform.TransformPoint(tuple(float(v) for v in axis)), dtype=float) - origin
            for axis in np.eye(3)
        ]
        return np.stack(columns, axis=1), origin

    def to_prior(self, point_lps: Vector3) -> Vector3:
        """Where the anatomy at ``point_lps`` of the current study lies in the prior study."""
        return vector3(self.to_sitk().TransformPoint(tuple(float(v) for v in point_lps)))

    def to_current(self, point_lps: Vector3) -> Vector3:
        """Where the anatomy at ``point_lps`` of the prior study lies in the current study."""
        matrix, offset = self.matrix_and_translation()
        return vector3(np.linalg.solve(matrix, np.asarray(point_lps, dtype=float) - offset))

    def rotation_deg(self) -> float:
        """The angle of the rotation part (for an affine, of its nearest rotation), degrees."""
        matrix, _ = self.matrix_and_translation()
        u, _s, vt = np.linalg.svd(matrix)
        rotation = u @ vt
        cosine = (np.trace(rotation) - 1.0) / 2.0
        return float(np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0))))

    def resample_to_current(
        self, labels_zyx: np.ndarray, prior: Volume, current: Volume
    ) -> np.ndarray:
        """A prior label map (on ``prior``'s grid) on ``current``'s grid, nearest neighbour."""
        image = sitk.GetImageFromArray(np.ascontiguousarray(labels_zyx))
        place(image, prior)
        reference = sitk.Image([int(v) for v in current.size_xyz], sitk.sitkUInt8)
        place(reference, current)
        out = sitk.Resample(
            image, reference, self.to_sitk(), sitk.sitkNearestNeighbor, 0, image.GetPixelID()
        )
        return sitk.GetArrayFromImage(out)

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.kind.value,
            "parameters": list(self.parameters),
            "fixed_parameters": list(self.fixed_parameters),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StoredTransform:
        return cls(
            TransformType(data["type"]),
            tuple(float(v) for v in data.get("parameters", ())),
            tuple(float(v) for v in data.get("fixed_parameters", ())),
        )


def place(image: sitk.Image, volume: Volume) -> None:
    """Give ``image`` the geometry of ``volume`` (origin, spacing, direction in LPS)."""
    image.SetOrigin(tuple(float(v) for v in volume.origin_lps_mm))
    image.SetSpacing(tuple(float(v) for v in volume.spacing_xyz_mm))
    image.SetDirection(tuple(float(v) for v in volume.direction_lps))
