"""Label overlay pieces without a window: colour table, outline, the selected finding's box."""

from __future__ import annotations

import numpy as np
import pytest

from meddiag_desktop.domain import Volume
from meddiag_desktop.viewer.overlay import (
    RegionBox,
    check_labels,
    label_lut,
    outline,
    parse_colour,
)
from meddiag_desktop.viewer.plane_geometry import Plane, plane_mappings


def test_colours_from_cards_tuples_and_fallbacks() -> None:
    assert parse_colour("#ff5050") == (255, 80, 80)
    assert parse_colour((0, 128, 255)) == (0, 128, 255)
    with pytest.raises(ValueError):
        parse_colour("not a colour")
    with pytest.raises(ValueError):
        parse_colour((300, 0, 0))
    lut = label_lut({1: "#ff5050", 3: (1, 2, 3)})
    assert lut.shape == (256, 4) and lut.dtype == np.uint8
    assert tuple(lut[0]) == (0, 0, 0, 0)  # background transparent
    assert tuple(lut[1]) == (255, 80, 80, 255) and tuple(lut[3]) == (1, 2, 3, 255)
    assert lut[2, 3] == 255 and lut[2, :3].any()  # no colour given: still visible
    with pytest.raises(ValueError, match="label"):
        label_lut({0: "#ffffff"})


def test_outline_is_the_ring_just_outside_each_region() -> None:
    labels = np.zeros((9, 9), dtype=np.uint8)
    labels[2:5, 2:5] = 1
    labels[7:, 7:] = 2  # touches the image border
    ring = outline(labels)
    expected = np.zeros_like(labels)
    expected[1:6, 1:6] = 1
    expected[2:5, 2:5] = 0
    expected[6:, 6:] = 2
    expected[7:, 7:] = 0
    assert np.array_equal(ring, expected)
    assert not np.shares_memory(ring, labels)


def test_label_maps_are_checked() -> None:
    check_labels(np.zeros((2, 3, 4), np.uint8), (2, 3, 4))
    check_labels(np.ones((2, 3, 4), bool), (2, 3, 4))
    with pytest.raises(ValueError, match="shape"):
        check_labels(np.zeros((2, 3, 5), np.uint8), (2, 3, 4))
    with pytest.raises(ValueError, match=r"0\.\.255"):
        check_labels(np.full((2, 3, 4), 300, np.int32), (2, 3, 4))
    with pytest.raises(ValueError, match="integers"):
        check_labels(np.zeros((2, 3, 4), np.float32), (2, 3, 4))


class FindingLike:
    bbox_index_xyz = (3, 4, 5, 6, 7, 8)  # min x, y, z then max x, y, z (inclusive)


def test_region_box_from_every_form_a_caller_has() -> None:
    shape = (10, 12, 14)
    box = RegionBox((5, 4, 3), (9, 8, 7))
    assert RegionBox.of(FindingLike(), shape) == box
    assert RegionBox.of(FindingLike.bbox_index_xyz, shape) == box
    assert RegionBox.of((slice(5, 9), slice(4, 8), slice(3, 7)), shape) == box
    mask = np.zeros(shape, bool)
    mask[5, 4, 3] = mask[8, 7, 6] = True
    assert RegionBox.of(mask, shape) == box
    assert RegionBox.of(np.argwhere(mask), shape) == box
    assert RegionBox.of((5, 4, 3), shape) == RegionBox((5, 4, 3), (6, 5, 4))
    assert RegionBox.of(None, shape) is None
    assert RegionBox.of(np.zeros(shape, bool), shape) is None
    assert box.centre_zyx == (6, 5, 4)


def test_region_box_on_screen_follows_the_plane_mapping() -> None:
    volume = Volume(np.zeros((10, 12, 14), np.int16), (0.5, 0.8, 2.0), (0.0, 0.0, 0.0))
    mappings = plane_mappings(volume)
    box = RegionBox((5, 4, 3), (9, 8, 7))
    axial = box.displayed(mappings[Plane.AXIAL], 6)
    assert axial is not None
    assert (axial.x(), axial.width()) == pytest.approx((1 * 0.5, 8 * 0.5))  # x 3..6 +- 2
    assert (axial.y(), axial.height()) == pytest.approx((2 * 0.8, 8 * 0.8))
    assert box.displayed(mappings[Plane.AXIAL], 4) is None
    assert box.displayed(mappings[Plane.AXIAL], 9) is None
    coronal = mappings[Plane.CORONAL]  # superior at the top: rows count down from the last z
    rect = box.displayed(coronal, 5)
    assert rect is not None
    assert rect.y() == pytest.approx((10 - 1 - 8 - 2) * 2.0)
