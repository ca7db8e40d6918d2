"""Each view puts the patient's sides where radiologists expect them, for any stored axis order."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from meddiag_desktop.domain import Volume
from meddiag_desktop.viewer.plane_geometry import Plane, nearest_voxel, plane_mappings

# plane -> (through LPS axis, screen-right LPS axis and sign, screen-down LPS axis and sign)
EXPECTED = {
    Plane.AXIAL: (2, (0, 1), (1, 1)),
    Plane.CORONAL: (1, (0, 1), (2, -1)),
    Plane.SAGITTAL: (0, (1, 1), (2, -1)),
}
LABELS = {
    Plane.AXIAL: ("R", "L", "A", "P"),
    Plane.CORONAL: ("R", "L", "S", "I"),
    Plane.SAGITTAL: ("A", "P", "S", "I"),
}


def directions() -> list[tuple[float, ...]]:
    """All 48 axis-aligned directions (permutations and signs of the LPS axes)."""
    found = []
    for permutation in itertools.permutations(range(3)):
        for signs in itertools.product((1, -1), repeat=3):
            matrix = np.zeros((3, 3))
            for column, (axis, sign) in enumerate(zip(permutation, signs, strict=True)):
                matrix[axis, column] = sign
            found.append(tuple(matrix.reshape(-1)))
    return found


def volume_with(direction: tuple[float, ...]) -> Volume:
    array = np.arange(5 * 6 * 7, dtype=np.int16).reshape(5, 6, 7)
    return Volume(array_zyx=array, spacing_xyz_mm=(0.5, 0.8, 2.5),
                  origin_lps_mm=(10.0, -20.0, 30.0), direction_lps=direction)


@pytest.mark.parametrize("direction", directions())
def test_screen_right_and_down_follow_the_patient_axes(direction: tuple[float, ...]) -> None:
    volume = volume_with(direction)
    for plane, mapping in plane_mappings(volume).items():
        through, (right_axis, right_sign), (down_axis, down_sign) = EXPECTED[plane]
        assert (mapping.left, mapping.right, mapping.top, mapping.bottom) == LABELS[plane]
        middle = mapping.slice_count // 2
        shown = mapping.extract(volume.array_zyx, middle)
        assert shown.shape == (mapping.rows, mapping.columns)

        def lps(row: int, column: int, index: int = middle, m=mapping) -> np.ndarray:
            z, y, x = m.voxel_at(index, row, column)
            return np.asarray(volume.index_to_lps((x, y, z)))

        for row, column in [(0, 0), (mapping.rows - 1, mapping.columns - 1), (1, 2)]:
            voxel = mapping.voxel_at(middle, row, column)
            assert shown[row, column] == volume.array_zyx[voxel]
            assert mapping.display_of(voxel) == (middle, row, column)
        step_right = lps(0, 1) - lps(0, 0)
        step_down = lps(1, 0) - lps(0, 0)
        step_slice = lps(0, 0, middle + 1) - lps(0, 0)
        assert np.sign(step_right[right_axis]) == right_sign
        assert np.sign(step_down[down_axis]) == down_sign
        assert step_slice[through] > 0  # slice numbers grow toward L, P or S
        assert abs(step_right[right_axis]) == pytest.approx(mapping.pixel_width_mm)
        assert abs(step_down[down_axis]) == pytest.approx(mapping.pixel_height_mm)
        assert abs(step_slice[through]) == pytest.approx(mapping.slice_spacing_mm)


def test_identity_volume_axes_and_physical_size() -> None:
    volume = volume_with((1, 0, 0, 0, 1, 0, 0, 0, 1))
    axial, coronal, sagittal = (plane_mappings(volume)[p] for p in Plane)
    assert (axial.through_axis, axial.row_axis, axial.column_axis) == (0, 1, 2)
    assert not (axial.flip_rows or axial.flip_columns or axial.flip_through)
    assert coronal.size_mm == pytest.approx((7 * 0.5, 5 * 2.5))  # anisotropic: real aspect
    assert coronal.flip_rows and not coronal.flip_columns  # superior at the top
    assert sagittal.size_mm == pytest.approx((6 * 0.8, 5 * 2.5))
    assert axial.pixel_at_mm(0.74, 0.79) == (0, 1)
    assert axial.pixel_at_mm(-0.1, 0.0) is None
    assert axial.centre_mm(0, 1) == pytest.approx((0.75, 0.4))


def test_nearest_voxel_round_trip_and_clamp() -> None:
    volume = volume_with(directions()[13])
    for voxel in [(0, 0, 0), (4, 5, 6), (2, 3, 1)]:
        assert nearest_voxel(volume, volume.index_to_lps(voxel[::-1])) == voxel
    assert nearest_voxel(volume, (1e6, 1e6, 1e6)) in {
        (z, y, x) for z in (0, 4) for y in (0, 5) for x in (0, 6)}


def test_extract_rejects_a_wrong_array() -> None:
    mapping = plane_mappings(volume_with((1, 0, 0, 0, 1, 0, 0, 0, 1)))[Plane.AXIAL]
    with pytest.raises(ValueError, match="shape"):
        mapping.extract(np.zeros((2, 2, 2)), 0)
    with pytest.raises(IndexError):
        mapping.extract(np.zeros((5, 6, 7)), 5)
