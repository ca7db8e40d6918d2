"""How an axial slice of a volume is put on a page the way radiologists read it, free of Qt.

Radiological convention: the patient's right on the image's left, anterior at the top. Scanners
store rows, columns and slices in any order and sign (a NIfTI from another tool is often stored
right-to-left, a sagittal MR has its slices along x), so which array axis is "axial" and which
flips are needed are read from the volume's direction matrix, never assumed.

The viewer's ``viewer.plane_geometry`` makes the same choice for its three planes; this module
holds the axial one below the Qt layers so reports can use it (a test checks the two agree).
Oblique stacks are placed by their nearest patient axes; the edge letters are then approximate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from meddiag_desktop.domain import Volume

# LPS axis -> (letter at the positive end, letter at the negative end)
_LETTERS = {0: ("L", "R"), 1: ("P", "A"), 2: ("S", "I")}
_SCREEN_RIGHT_LPS = 0  # patient's left (L) on the image's right
_SCREEN_DOWN_LPS = 1  # posterior (P) at the image's bottom


@dataclass(frozen=True)
class AxialView:
    """Which numpy axes of ``array_zyx`` become the axial slice's rows and columns, and flips.

    Axes are numpy axes (0 = z, 1 = y, 2 = x). ``through_axis`` is the one nearest the patient's
    head-foot axis; a slice is chosen by its index along that array axis.
    """

    through_axis: int
    row_axis: int
    column_axis: int
    flip_rows: bool
    flip_columns: bool
    pixel_width_mm: float
    pixel_height_mm: float
    left: str = "R"
    right: str = "L"
    top: str = "A"
    bottom: str = "P"

    def extract(self, array_zyx: np.ndarray, index: int) -> np.ndarray:
        """The 2-D slice at array index ``index`` along the through axis, as it is shown."""
        selector: list[int | slice] = [slice(None)] * 3
        selector[self.through_axis] = index
        return self.orient(array_zyx[tuple(selector)])

    def orient(self, plane: np.ndarray) -> np.ndarray:
        """A slice in array axis order (the two axes other than ``through_axis``), as shown."""
        remaining = [axis for axis in range(3) if axis != self.through_axis]
        if remaining.index(self.row_axis) != 0:
            plane = plane.T
        return plane[:: -1 if self.flip_rows else 1, :: -1 if self.flip_columns else 1]

    def shown_position(
        self, index_zyx: tuple[float, float, float], shape_zyx: tuple[int, int, int]
    ) -> tuple[float, float]:
        """(column, row) where a continuous voxel index (z, y, x) appears in the shown slice."""
        row = index_zyx[self.row_axis]
        column = index_zyx[self.column_axis]
        if self.flip_rows:
            row = shape_zyx[self.row_axis] - 1 - row
        if self.flip_columns:
            column = shape_zyx[self.column_axis] - 1 - column
        return column, row


def axial_view(volume: Volume) -> AxialView:
    """The axial view of ``volume``; a degenerate direction falls back to the array's axes."""
    lps_of = _nearest_lps_axes(volume)  # numpy axis -> (LPS axis, sign)
    axis_of = {lps: axis for axis, (lps, _) in lps_of.items()}
    row_axis = axis_of[_SCREEN_DOWN_LPS]
    column_axis = axis_of[_SCREEN_RIGHT_LPS]
    spacing_zyx = volume.spacing_xyz_mm[::-1]
    return AxialView(
        through_axis=axis_of[2],
        row_axis=row_axis,
        column_axis=column_axis,
        flip_rows=lps_of[row_axis][1] < 0,
        flip_columns=lps_of[column_axis][1] < 0,
        pixel_width_mm=float(spacing_zyx[column_axis]),
        pixel_height_mm=float(spacing_zyx[row_axis]),
        left=_LETTERS[_SCREEN_RIGHT_LPS][1],
        right=_LETTERS[_SCREEN_RIGHT_LPS][0],
        top=_LETTERS[_SCREEN_DOWN_LPS][1],
        bottom=_LETTERS[_SCREEN_DOWN_LPS][0],
    )


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
