"""How to put a slice on screen the way radiologists read it, from the volume's direction matrix.

Radiological convention: the patient's right on the screen's left. Axial slices have anterior at
the top, coronal and sagittal slices have superior at the top, sagittal has anterior on the left.
Scanners store rows and columns in any order, so the displayed slice may need flips or a
transpose. Oblique stacks are placed by their nearest patient axis (the labels are approximate).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from meddiag_desktop.domain import Volume

# LPS axis index -> (letter at the positive end, letter at the negative end)
_LETTERS = {0: ("L", "R"), 1: ("P", "A"), 2: ("S", "I")}
# through-plane axis -> ((screen-right axis, sign), (screen-down axis, sign))
_SCREEN_AXES = {
    2: ((0, 1), (1, 1)),  # axial: right = L, down = P
    1: ((0, 1), (2, -1)),  # coronal: right = L, down = I
    0: ((1, 1), (2, -1)),  # sagittal: right = P, down = I
}


@dataclass(frozen=True)
class DisplayOrientation:
    """Transpose/flip of each ``[y, x]`` slice, and the patient side shown at each screen edge."""

    transpose: bool = False
    flip_rows: bool = False
    flip_columns: bool = False
    left: str = "R"
    right: str = "L"
    top: str = "A"
    bottom: str = "P"

    def apply(self, slice_yx: np.ndarray) -> np.ndarray:
        """The slice as it should appear: rows top to bottom, columns left to right."""
        shown = slice_yx.T if self.transpose else slice_yx
        return shown[:: -1 if self.flip_rows else 1, :: -1 if self.flip_columns else 1]

    def pixel_size_mm(self, volume: Volume) -> tuple[float, float]:
        """(width, height) of one displayed pixel in millimetres."""
        sx, sy, _ = volume.spacing_xyz_mm
        return (sy, sx) if self.transpose else (sx, sy)


def _dominant(vector: np.ndarray) -> tuple[int, int]:
    axis = int(np.argmax(np.abs(vector)))
    return axis, 1 if vector[axis] >= 0 else -1


def orientation_of(volume: Volume) -> DisplayOrientation:
    """The flips and labels that show ``volume``'s slices in radiological convention."""
    matrix = volume.direction_matrix()
    x_axis, x_sign = _dominant(matrix[:, 0])
    y_axis, y_sign = _dominant(matrix[:, 1])
    z_axis, _ = _dominant(matrix[:, 2])
    if len({x_axis, y_axis, z_axis}) < 3:  # degenerate direction: show as stored
        return DisplayOrientation()
    (right_axis, right_sign), (down_axis, down_sign) = _SCREEN_AXES[z_axis]
    transpose = x_axis != right_axis
    col_sign, row_sign = (y_sign, x_sign) if transpose else (x_sign, y_sign)
    right_pos, right_neg = _LETTERS[right_axis]
    down_pos, down_neg = _LETTERS[down_axis]
    right, left = (right_pos, right_neg) if right_sign > 0 else (right_neg, right_pos)
    bottom, top = (down_pos, down_neg) if down_sign > 0 else (down_neg, down_pos)
    return DisplayOrientation(
        transpose=transpose,
        flip_rows=row_sign != down_sign,
        flip_columns=col_sign != right_sign,
        left=left,
        right=right,
        top=top,
        bottom=bottom,
    )
