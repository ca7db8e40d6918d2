"""The report's axial layout and key-image window, checked against the viewer's own choices."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from meddiag_desktop.display.axial_view import axial_view
from meddiag_desktop.display.window_level import key_image_window, presets_for
from meddiag_desktop.domain import ScanMetadata, Volume
from meddiag_desktop.viewer.plane_geometry import Plane, plane_mapping


def _signed_permutations() -> list[tuple[float, ...]]:
    """All 48 axis-aligned directions (every order and sign of the three index axes)."""
    out = []
    for order in itertools.permutations(range(3)):
        for signs in itertools.product((1.0, -1.0), repeat=3):
            matrix = np.zeros((3, 3))
            for column, (row, sign) in enumerate(zip(order, signs, strict=True)):
                matrix[row, column] = sign
            out.append(tuple(matrix.reshape(-1)))
    return out


@pytest.mark.parametrize("direction", _signed_permutations())
def test_axial_view_matches_the_viewer(direction: tuple[float, ...]) -> None:
    volume = Volume(
        np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6),
        (0.7, 0.9, 2.5),
        (0.0, 0.0, 0.0),
        direction,  # type: ignore[arg-type]
    )
    ours = axial_view(volume)
    viewer = plane_mapping(volume, Plane.AXIAL)
    assert (ours.through_axis, ours.row_axis, ours.column_axis) == (
        viewer.through_axis,
        viewer.row_axis,
        viewer.column_axis,
    )
    assert (ours.flip_rows, ours.flip_columns) == (viewer.flip_rows, viewer.flip_columns)
    assert (ours.pixel_width_mm, ours.pixel_height_mm) == (
        viewer.pixel_width_mm,
        viewer.pixel_height_mm,
    )
    assert (ours.left, ours.right, ours.top, ours.bottom) == ("R", "L", "A", "P")
    for index in range(volume.shape_zyx[ours.through_axis]):
        viewer_slice = viewer.slice_count - 1 - index if viewer.flip_through else index
        np.testing.assert_array_equal(
            ours.extract(volume.array_zyx, index), viewer.extract(volume.array_zyx, viewer_slice)
        )


def test_patient_right_is_on_the_image_left_whatever_the_storage_order() -> None:
    """A bright block at the patient's right-anterior shows top-left, stored either way."""
    spacing = (1.0, 1.0, 1.0)
    for direction, origin in (
        ((1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0), (-30.0, -20.0, 0.0)),  # LPS: index 0 is right
        ((-1.0, 0, 0, 0, -1.0, 0, 0, 0, 1.0), (30.0, 20.0, 0.0)),  # RAS: index 0 is left
    ):
        volume = Volume(np.zeros((3, 40, 60), np.int16), spacing, origin, direction)  # type: ignore[arg-type]
        right_anterior = volume.lps_to_index((-25.0, -15.0, 1.0))
        x, y, z = (round(v) for v in right_anterior)
        volume.array_zyx[z, y - 3 : y + 3, x - 3 : x + 3] = 1000
        view = axial_view(volume)
        shown = view.extract(volume.array_zyx, z)
        rows, columns = np.nonzero(shown)
        assert rows.mean() < shown.shape[0] / 2 and columns.mean() < shown.shape[1] / 2


def _ct(descriptions: dict[str, str]) -> Volume:
    array = np.full((4, 8, 8), -1000, np.int16)
    return Volume(array, (1, 1, 1), (0, 0, 0), metadata=ScanMetadata(modality="CT", **descriptions))


def test_key_image_window_follows_modality_and_body_part() -> None:
    assert key_image_window(_ct({"study_description": "CT chest"})).name == "Lung"
    assert key_image_window(_ct({"body_part_examined": "CHEST"})).name == "Lung"
    assert key_image_window(_ct({"body_part_examined": "HEAD"})).name == "Brain"
    assert key_image_window(_ct({"series_description": "abdomen"})).name == "Soft tissue"
    # the viewer still opens on the descriptions alone (its behaviour is unchanged)
    assert presets_for(_ct({"body_part_examined": "CHEST"}))[0].name == "Soft tissue"
    values = np.random.default_rng(3).gamma(2.0, 150.0, (6, 20, 20)).astype(np.float32)
    mr = Volume(values, (1, 1, 1), (0, 0, 0), metadata=ScanMetadata(modality="MR"))
    window = key_image_window(mr)
    assert window.low == pytest.approx(np.percentile(values, 1), rel=1e-3)
    assert window.high == pytest.approx(np.percentile(values, 99), rel=1e-3)
