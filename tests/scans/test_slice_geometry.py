"""Stack analysis and resampling on synthetic numbers, where the right answer is known exactly."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.dataset import Dataset

from meddiag_desktop.domain import Volume
from meddiag_desktop.scans import ScanError, discover, load
from meddiag_desktop.scans.multiframe import plan_frames
from meddiag_desktop.scans.slice_geometry import (
    analyse_stack,
    direction_from_orientation,
    outlying_slices,
    resample_to_regular_grid,
)

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def tilted_orientation(degrees: float, axis: str = "x") -> tuple[float, ...]:
    """ImageOrientationPatient of slices tilted about the patient x (gantry tilt) or y axis."""
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    if axis == "x":
        return (1.0, 0.0, 0.0, 0.0, c, -s)
    return (c, 0.0, -s, 0.0, 1.0, 0.0)


def test_regular_stack_is_sorted_and_measured() -> None:
    z = [7.5, 0.0, 2.5, 5.0, 10.0]
    geometry = analyse_stack([(-100.0, -80.0, v) for v in z], AXIAL)
    assert [z[i] for i in geometry.order] == sorted(z)
    assert geometry.spacing_mm == pytest.approx(2.5)
    assert geometry.regular
    assert not (geometry.uneven or geometry.tilted or geometry.duplicates)
    assert geometry.tilt_deg == pytest.approx(0.0, abs=1e-9)
    assert geometry.slice_count == 5
    assert geometry.describe_problems() == []


def test_stack_along_a_reversed_normal_is_sorted_by_distance_along_it() -> None:
    """Sagittal slices: the normal is -x or +x depending on the row/column cosines."""
    sagittal = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)  # normal = row x col = (-1, 0, 0)
    x = [10.0, 12.0, 14.0, 16.0]
    geometry = analyse_stack([(v, 0.0, 0.0) for v in x], sagittal)
    assert [x[i] for i in geometry.order] == [16.0, 14.0, 12.0, 10.0]
    assert geometry.regular
    assert geometry.spacing_mm == pytest.approx(2.0)


def test_uneven_gaps_are_reported_with_the_median_as_spacing() -> None:
    z = [0.0, 2.0, 4.0, 8.0, 10.0]  # one slice missing between 4 and 8
    geometry = analyse_stack([(0.0, 0.0, v) for v in z], AXIAL)
    assert geometry.uneven
    assert not geometry.tilted
    assert not geometry.regular
    assert geometry.spacing_mm == pytest.approx(2.0)
    assert geometry.slice_count == 6
    (note,) = geometry.describe_problems()
    assert "Uneven slice spacing" in note
    assert "2.00 to 4.00 mm" in note


@pytest.mark.parametrize("degrees", [-18.5, 12.0, 25.0])
def test_gantry_tilt_is_measured(degrees: float) -> None:
    """GE-style tilt: the slice plane is tilted, the table moves along z."""
    orientation = tilted_orientation(degrees)
    step = 5.0
    geometry = analyse_stack([(0.0, 0.0, k * step) for k in range(6)], orientation)
    assert geometry.tilted
    assert not geometry.uneven
    assert geometry.tilt_deg == pytest.approx(abs(degrees), abs=1e-6)
    assert geometry.spacing_mm == pytest.approx(step * np.cos(np.radians(degrees)))
    assert any("Gantry tilt" in note for note in geometry.describe_problems())


@pytest.mark.parametrize(
    "z",
    [
        [0.0, 1.0, 1.0, 2.0],  # exact duplicate
        [0.0, 1.0, 1.004, 2.0],  # within the position tolerance
    ],
)
def test_duplicate_positions_are_flagged(z: list[float]) -> None:
    geometry = analyse_stack([(0.0, 0.0, v) for v in z], AXIAL)
    assert geometry.duplicates
    assert not geometry.regular
    assert geometry.spacing_mm == 0.0
    assert geometry.slice_count == len(z)  # no division by the zero spacing


def test_single_slice() -> None:
    geometry = analyse_stack([(1.0, 2.0, 3.0)], AXIAL)
    assert geometry.order == (0,)
    assert not geometry.duplicates
    assert geometry.slice_count == 1


def test_rounding_noise_in_a_long_oblique_stack_is_not_a_tilt() -> None:
    """Positions stored to 0.01 mm on an oblique plane: noise of a few micrometres per slice
    that must not add up to a "gantry tilt" (and a needless resampling) over 300 slices."""
    orientation = tuple(round(v, 6) for v in tilted_orientation(20.0))
    normal = np.cross(orientation[:3], orientation[3:])
    start = np.array([-120.123, -100.456, 30.0])
    positions = [tuple(np.round(start + k * 1.0 * normal, 2)) for k in range(300)]
    geometry = analyse_stack(positions, orientation)
    assert not geometry.tilted
    assert not geometry.uneven
    assert geometry.regular
    # The mean gap, not a median of rounded gaps: the last slice lands where it is.
    assert geometry.spacing_mm == pytest.approx(1.0, abs=1e-4)


def test_small_real_drift_is_still_a_tilt() -> None:
    """0.02 mm sideways per slice is small per step but 0.18 mm over the stack."""
    positions = [(0.0, 0.02 * k, 2.0 * k) for k in range(10)]
    geometry = analyse_stack(positions, AXIAL)
    assert geometry.tilted


def test_direction_columns_are_row_column_and_normal() -> None:
    orientation = tilted_orientation(18.5)
    matrix = np.asarray(direction_from_orientation(orientation)).reshape(3, 3)
    np.testing.assert_allclose(matrix.T @ matrix, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(matrix[:, 0], orientation[:3])
    np.testing.assert_allclose(matrix[:, 1], orientation[3:])
    assert np.linalg.det(matrix) == pytest.approx(1.0)


def _point_stack(
    positions: list[tuple[float, float, float]],
    shape: tuple[int, int],
    bright: tuple[int, int, int],
) -> np.ndarray:
    stack = np.zeros((len(positions), *shape), dtype=np.float32)
    stack[bright] = 1000.0
    return stack


def _centroid_lps(volume: Volume) -> np.ndarray:
    """Intensity-weighted centre of the (non-negative) volume, in patient mm."""
    weights = np.clip(volume.array_zyx, 0, None).astype(float)
    zz, yy, xx = np.indices(weights.shape)
    total = weights.sum()
    index = (
        float((xx * weights).sum() / total),
        float((yy * weights).sum() / total),
        float((zz * weights).sum() / total),
    )
    return np.asarray(volume.index_to_lps(index))


@pytest.mark.parametrize(("degrees", "axis"), [(18.5, "x"), (-15.0, "x"), (22.0, "y")])
def test_resampled_tilted_stack_keeps_a_point_where_the_patient_is(
    degrees: float, axis: str
) -> None:
    orientation = tilted_orientation(degrees, axis)
    pixel_spacing = (0.8, 0.7)  # x (column step), y (row step): unequal to catch swaps
    step = 4.0
    positions = [(-20.0, -15.0, 10.0 + k * step) for k in range(12)]
    bright = (7, 19, 23)  # slice, row, column
    stack = _point_stack(positions, (48, 56), bright)
    geometry = analyse_stack(positions, orientation)
    assert geometry.tilted

    values, origin = resample_to_regular_grid(
        stack, positions, orientation, pixel_spacing, geometry.spacing_mm, 0.0
    )
    volume = Volume(
        array_zyx=values,
        spacing_xyz_mm=(*pixel_spacing, geometry.spacing_mm),
        origin_lps_mm=origin,
        direction_lps=direction_from_orientation(orientation),
    )
    k, row, column = bright
    row_cosine, column_cosine = np.asarray(orientation[:3]), np.asarray(orientation[3:])
    expected = (
        np.asarray(positions[k])
        + column * pixel_spacing[0] * row_cosine
        + row * pixel_spacing[1] * column_cosine
    )
    half_voxel = 0.5 * min(*pixel_spacing, geometry.spacing_mm)
    assert np.linalg.norm(_centroid_lps(volume) - expected) < half_voxel
    # The point is interpolated in-plane only (its slice lies on the grid): nothing is lost.
    assert values.sum() == pytest.approx(1000.0, rel=1e-4)


def test_resampled_uneven_stack_keeps_points_and_fills_the_gap() -> None:
    z = [0.0, 2.0, 4.0, 8.0, 10.0]
    positions = [(5.0, -3.0, v) for v in z]
    stack = np.stack([np.full((6, 6), v, dtype=np.float32) for v in z])
    geometry = analyse_stack(positions, AXIAL)
    values, origin = resample_to_regular_grid(
        stack, positions, AXIAL, (1.0, 1.0), geometry.spacing_mm, -1.0
    )
    assert origin == positions[0]
    assert values.shape == (6, 6, 6)
    # Each output slice k lies at z = 2k; the stored value is z, so linear interpolation
    # gives exactly 2k, including the missing slice at z = 6.
    np.testing.assert_allclose(values[:, 3, 3], [0.0, 2.0, 4.0, 6.0, 8.0, 10.0], atol=1e-5)


def test_near_duplicate_slices_are_refused_not_crashed(tmp_path, write_series) -> None:
    """Two slices 0.006 mm apart: analysed as duplicates (spacing 0), which once reached the
    resampler and died with OverflowError. Now discovery explains it."""
    write_series(tmp_path, [(0.0, 0.0, z) for z in (0.0, 0.006, 1.0, 2.0)])
    (series,) = discover(tmp_path)
    assert not series.loadable
    assert "same position" in series.reason
    with pytest.raises(ScanError, match="same position"):
        load(tmp_path)


def _item(**attributes) -> Dataset:
    item = Dataset()
    for name, value in attributes.items():
        setattr(item, name, value)
    return item


def test_near_duplicate_frames_of_a_multiframe_file_are_refused(tmp_path) -> None:
    """The multi-frame path had the same zero-spacing crash as slice stacks."""
    ds = Dataset()
    ds.NumberOfFrames = 3
    ds.SharedFunctionalGroupsSequence = [
        _item(
            PlaneOrientationSequence=[_item(ImageOrientationPatient=list(AXIAL))],
            PixelMeasuresSequence=[_item(PixelSpacing=[1.0, 1.0])],
        )
    ]
    ds.PerFrameFunctionalGroupsSequence = [
        _item(PlanePositionSequence=[_item(ImagePositionPatient=[0.0, 0.0, z])])
        for z in (0.0, 0.006, 1.0)
    ]
    with pytest.raises(ScanError, match="almost"):
        plan_frames(ds, tmp_path / "enhanced.dcm")


def tilted_uneven_stack(count: int = 40) -> np.ndarray:
    """A gantry-tilted stack (each slice 0.33 mm further along y per mm along z) whose gaps
    vary between 1 and 7 mm, as the GE tilt series in the shared data does."""
    gaps = np.random.default_rng(3).uniform(1.0, 7.0, count - 1)
    z = np.concatenate([[0.0], np.cumsum(gaps)])
    return np.column_stack([np.full(count, -120.0), -100.0 + 0.33 * z, z])


def test_genuine_tilt_and_uneven_gaps_have_no_outliers() -> None:
    assert outlying_slices(tilted_uneven_stack(), AXIAL) == {}


@pytest.mark.parametrize(
    ("index", "position"),
    [(17, (0.0, 0.0, 0.0)), (25, (-120.0, 40.0, 60.0)), (39, (-120.0, 60.0, 1e4))],
    ids=["origin", "sideways-in-range", "far-along"],
)
def test_one_wild_position_is_an_outlier(index: int, position: tuple[float, ...]) -> None:
    points = tilted_uneven_stack()
    points[index] = position
    found = outlying_slices(points, AXIAL)
    assert list(found) == [index]
    assert "position lies" in found[index]


def test_a_far_end_slice_on_the_line_is_an_outlier() -> None:
    points = tilted_uneven_stack()
    z = points[-2, 2] + 200.0
    points[-1] = (-120.0, -100.0 + 0.33 * z, z)
    found = outlying_slices(points, AXIAL)
    assert list(found) == [len(points) - 1]
    assert "beyond the next slice" in found[len(points) - 1]


def test_many_off_line_slices_are_the_geometry_not_outliers() -> None:
    """A series made of two stations side by side is resampled as it is (with its warnings),
    not cut down to one of them."""
    points = tilted_uneven_stack()
    points[::2, 0] += 50.0
    assert outlying_slices(points, AXIAL) == {}
