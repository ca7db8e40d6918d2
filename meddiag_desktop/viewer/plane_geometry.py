"""Where each voxel of a volume appears in the axial, coronal and sagittal views, without Qt.

Radiological convention: the patient's right on the screen's left; axial slices have anterior at
the top, coronal and sagittal slices superior at the top, sagittal slices anterior on the left.
Scanners store the array axes in any order and sign, so each view picks the array axis nearest
to its through-plane patient axis and the flips that put the others on screen the right way.
Oblique stacks are shown by their nearest patient axes (the edge labels are then approximate).

Display coordinates are millimetres: displayed pixel ``(row, column)`` covers
``[column * width_mm, (column + 1) * width_mm) x [row * height_mm, (row + 1) * height_mm)``,
so anisotropic voxels keep their physical aspect when the image is placed with that rectangle.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from meddiag_desktop.domain import Volume


class Plane(StrEnum):
    AXIAL = "axial"
    CORONAL = "coronal"
    SAGITTAL = "sagittal"


# LPS axis -> (letter at the positive end, letter at the negative end)
_LETTERS = {0: ("L", "R"), 1: ("P", "A"), 2: ("S", "I")}
# plane -> (through-plane LPS axis, (screen-right LPS axis, sign), (screen-down LPS axis, sign))
_PLANE_AXES = {
    Plane.AXIAL: (2, (0, 1), (1, 1)),  # right = L, down = P
    Plane.CORONAL: (1, (0, 1), (2, -1)),  # right = L, down = I
    Plane.SAGITTAL: (0, (1, 1), (2, -1)),  # right = P, down = I
}

VoxelZYX = tuple[int, int, int]


@dataclass(frozen=True)
class PlaneMapping:
    """How one view shows a volume: which array axes go where on screen, and flipped or not.

    Axes are numpy axes of ``array_zyx`` (0 = z, 1 = y, 2 = x).
    """

    plane: Plane
    through_axis: int
    row_axis: int
    column_axis: int
    flip_through: bool  # slice indices grow toward L, P or S: index 0 may be the last slice
    flip_rows: bool
    flip_columns: bool
    shape_zyx: tuple[int, int, int]
    pixel_width_mm: float
    pixel_height_mm: float
    slice_spacing_mm: float
    left: str
    right: str
    top: str
    bottom: str

    @property
    def slice_count(self) -> int:
        return self.shape_zyx[self.through_axis]

    @property
    def rows(self) -> int:
        return self.shape_zyx[self.row_axis]

    @property
    def columns(self) -> int:
        return self.shape_zyx[self.column_axis]

    @property
    def size_mm(self) -> tuple[float, float]:
        """(width, height) of the displayed slice in millimetres."""
        return self.columns * self.pixel_width_mm, self.rows * self.pixel_height_mm

    def extract(self, array_zyx: np.ndarray, slice_index: int) -> np.ndarray:
        """The 2-D slice as it should appear (a view where possible, never a float copy)."""
        if array_zyx.shape[:3] != self.shape_zyx:
            raise ValueError(f"array shape {array_zyx.shape} is not {self.shape_zyx}")
        index = self._array_index(slice_index)
        selector: list[int | slice] = [slice(None)] * 3
        selector[self.through_axis] = index
        plane = array_zyx[tuple(selector)]
        remaining = [axis for axis in range(3) if axis != self.through_axis]
        if remaining.index(self.row_axis) != 0:
            plane = plane.T
        return plane[:: -1 if self.flip_rows else 1, :: -1 if self.flip_columns else 1]

    def voxel_at(self, slice_index: int, row: int, column: int) -> VoxelZYX:
        """The array index shown at displayed ``(row, column)`` of slice ``slice_index``."""
        voxel = [0, 0, 0]
        voxel[self.through_axis] = self._array_index(slice_index)
        voxel[self.row_axis] = self.rows - 1 - row if self.flip_rows else row
        voxel[self.column_axis] = self.columns - 1 - column if self.flip_columns else column
        return voxel[0], voxel[1], voxel[2]

    def display_of(self, voxel_zyx: VoxelZYX) -> tuple[int, int, int]:
        """(slice index, row, column) where the array index ``voxel_zyx`` is shown."""
        through = voxel_zyx[self.through_axis]
        row = voxel_zyx[self.row_axis]
        column = voxel_zyx[self.column_axis]
        return (
            self._array_index(through),  # the flip is its own inverse
            self.rows - 1 - row if self.flip_rows else row,
            self.columns - 1 - column if self.flip_columns else column,
        )

    def pixel_at_mm(self, x_mm: float, y_mm: float) -> tuple[int, int] | None:
        """Displayed (row, column) under display position ``(x_mm, y_mm)``; None outside."""
        column = int(np.floor(x_mm / self.pixel_width_mm))
        row = int(np.floor(y_mm / self.pixel_height_mm))
        if 0 <= row < self.rows and 0 <= column < self.columns:
            return row, column
        return None

    def centre_mm(self, row: int, column: int) -> tuple[float, float]:
        """Display position (x, y) in millimetres of the centre of displayed pixel (row, column)."""
        return (column + 0.5) * self.pixel_width_mm, (row + 0.5) * self.pixel_height_mm

    def _array_index(self, slice_index: int) -> int:
        if not 0 <= slice_index < self.slice_count:
            raise IndexError(f"slice {slice_index} outside 0..{self.slice_count - 1}")
        return self.slice_count - 1 - slice_index if self.flip_through else slice_index


def plane_mappings(volume: Volume) -> dict[Plane, PlaneMapping]:
    """The axial, coronal and sagittal mappings of ``volume``."""
    return {plane: plane_mapping(volume, plane) for plane in Plane}


def plane_mapping(volume: Volume, plane: Plane) -> PlaneMapping:
    """The mapping of one view; degenerate directions fall back to the array's own axes."""
    lps_of_array_axis = _nearest_lps_axes(volume)  # array axis -> (LPS axis, sign)
    through_lps, (right_lps, right_sign), (down_lps, down_sign) = _PLANE_AXES[plane]
    array_axis_of = {lps: axis for axis, (lps, _) in lps_of_array_axis.items()}
    through_axis = array_axis_of[through_lps]
    column_axis = array_axis_of[right_lps]
    row_axis = array_axis_of[down_lps]
    spacing_zyx = volume.spacing_xyz_mm[::-1]
    right_pos, right_neg = _LETTERS[right_lps]
    down_pos, down_neg = _LETTERS[down_lps]
    right, left = (right_pos, right_neg) if right_sign > 0 else (right_neg, right_pos)
    bottom, top = (down_pos, down_neg) if down_sign > 0 else (down_neg, down_pos)
    return PlaneMapping(
        plane=plane,
        through_axis=through_axis,
        row_axis=row_axis,
        column_axis=column_axis,
        flip_through=lps_of_array_axis[through_axis][1] < 0,
        flip_rows=lps_of_array_axis[row_axis][1] != down_sign,
        flip_columns=lps_of_array_axis[column_axis][1] != right_sign,
        shape_zyx=volume.shape_zyx,
        pixel_width_mm=float(spacing_zyx[column_axis]),
        pixel_height_mm=float(spacing_zyx[row_axis]),
        slice_spacing_mm=float(spacing_zyx[through_axis]),
        left=left,
        right=right,
        top=top,
        bottom=bottom,
    )


def nearest_voxel(volume: Volume, lps_mm: tuple[float, float, float]) -> VoxelZYX:
    """The voxel (z, y, x) whose centre is nearest ``lps_mm``, clamped into the volume."""
    index_xyz = np.rint(volume.lps_to_index(lps_mm))
    clamped = np.clip(index_xyz, 0, np.asarray(volume.size_xyz) - 1).astype(int)
    return int(clamped[2]), int(clamped[1]), int(clamped[0])


def _nearest_lps_axes(volume: Volume) -> dict[int, tuple[int, int]]:
    """For each numpy axis (0 = z, 1 = y, 2 = x): the nearest LPS axis and its sign."""
    matrix = volume.direction_matrix()  # columns: LPS directions of the x, y, z index axes
    chosen: dict[int, tuple[int, int]] = {}
    for numpy_axis, column in ((2, 0), (1, 1), (0, 2)):
        vector = matrix[:, column]
        lps = int(np.argmax(np.abs(vector)))
        chosen[numpy_axis] = (lps, 1 if vector[lps] >= 0 else -1)
    if len({lps for lps, _ in chosen.values()}) < 3:  # degenerate: treat x, y, z as L, P, S
        return {2: (0, 1), 1: (1, 1), 0: (2, 1)}
    return chosen
