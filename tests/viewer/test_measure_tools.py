"""Rulers measure millimetres and ROIs report the scan's values under them, like numpy does."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
import pytest
from shared_fakes import MiniPlaneView

from meddiag_desktop.domain import ScanMetadata, Volume
from meddiag_desktop.viewer.measure_tools import (
    RoiShape,
    RoiTool,
    RulerTool,
    roi_statistics,
    shape_mask,
)
from meddiag_desktop.viewer.plane_geometry import Plane, plane_mappings

SPACING_XYZ = (0.6, 0.9, 2.5)


@pytest.fixture(autouse=True)
def row_major(qapp):
    pg.setConfigOptions(imageAxisOrder="row-major")
    return qapp


def ct_volume() -> Volume:
    rng = np.random.default_rng(1)
    array = rng.normal(40.0, 12.0, size=(20, 48, 40)).astype(np.int16)
    return Volume(
        array_zyx=array,
        spacing_xyz_mm=SPACING_XYZ,
        origin_lps_mm=(0.0, 0.0, 0.0),
        metadata=ScanMetadata(modality="CT"),
    )


def drag(tool, view, start, end, steps=4) -> None:
    tool.press(view, *start)
    for t in np.linspace(0, 1, steps)[1:]:
        tool.drag(view, start[0] + t * (end[0] - start[0]), start[1] + t * (end[1] - start[1]))
    tool.release(view, *end)


# ---- Qt-free statistics -----------------------------------------------------------------------
def test_roi_statistics_match_numpy() -> None:
    values = np.arange(48, dtype=np.int16).reshape(6, 8) * 3 - 20
    mask = np.zeros((6, 8), dtype=bool)
    mask[1:4, 2:7] = True
    stats = roi_statistics(values, mask, pixel_area_mm2=0.54)
    inside = values[mask].astype(float)
    assert stats.mean == pytest.approx(inside.mean())
    assert stats.sd == pytest.approx(inside.std(ddof=1))
    assert (stats.minimum, stats.maximum) == (inside.min(), inside.max())
    assert stats.pixel_count == 15
    assert stats.area_mm2 == pytest.approx(15 * 0.54)
    empty = roi_statistics(values, np.zeros_like(mask), pixel_area_mm2=1.0)
    assert empty.pixel_count == 0 and math.isnan(empty.mean)


def test_shape_masks_take_pixel_centres_in_millimetres() -> None:
    mapping = plane_mappings(ct_volume())[Plane.AXIAL]  # pixels 0.6 wide, 0.9 high
    rect = shape_mask(mapping, RoiShape.RECTANGLE, (1.0, 1.0, 3.0, 2.0))
    # centres 0.3 + 0.6c in [1, 4] -> c = 2..6; 0.45 + 0.9r in [1, 3] -> r = 1..2
    expected = np.zeros_like(rect)
    expected[1:3, 2:7] = True
    np.testing.assert_array_equal(rect, expected)

    ellipse = shape_mask(mapping, RoiShape.ELLIPSE, (3.0, 6.0, 18.0, 24.0))
    rows, columns = np.mgrid[: mapping.rows, : mapping.columns]
    u = ((columns + 0.5) * 0.6 - 12.0) / 9.0
    v = ((rows + 0.5) * 0.9 - 18.0) / 12.0
    np.testing.assert_array_equal(ellipse, u**2 + v**2 <= 1)
    assert ellipse.sum() * 0.54 == pytest.approx(math.pi * 9 * 12, rel=0.03)


# ---- the tools in a view ----------------------------------------------------------------------
@pytest.mark.parametrize("plane", [Plane.AXIAL, Plane.CORONAL])
def test_a_ruler_measures_millimetres_on_anisotropic_pixels(qtbot, plane: Plane) -> None:
    volume = ct_volume()
    view = MiniPlaneView(volume, plane, 5)
    qtbot.addWidget(view.graphics)
    tool = RulerTool()
    drag(tool, view, (2.0, 3.0), (14.0, 12.0))
    (ruler,) = tool.rulers
    assert ruler.length_mm == pytest.approx(15.0)  # a 9-12-15 triangle in millimetres
    assert ruler.text == "15.0 mm"
    # 20 columns of 0.6 mm and 5 rows of the plane's pixel height
    start = view.mapping.centre_mm(2, 3)
    end = view.mapping.centre_mm(7, 23)
    drag(tool, view, start, end)
    expected = math.hypot(20 * 0.6, 5 * view.mapping.pixel_height_mm)
    assert tool.rulers[-1].length_mm == pytest.approx(expected)
    assert len(tool.rulers) == 2  # both stay


def test_moving_a_ruler_end_updates_its_label(qtbot) -> None:
    view = MiniPlaneView(ct_volume(), Plane.AXIAL, 5)
    qtbot.addWidget(view.graphics)
    tool = RulerTool()
    drag(tool, view, (2.0, 2.0), (12.0, 2.0))
    ruler = tool.rulers[0]
    ruler.roi.movePoint(ruler.roi.endpoints[1], (2.0, 22.0))
    assert ruler.text == "20.0 mm"


def test_a_click_is_no_measurement_and_measurements_can_be_deleted(qtbot) -> None:
    view = MiniPlaneView(ct_volume(), Plane.AXIAL, 5)
    qtbot.addWidget(view.graphics)
    tool = RulerTool()
    drag(tool, view, (5.0, 5.0), (5.1, 5.0))
    assert not tool.rulers
    drag(tool, view, (5.0, 5.0), (15.0, 5.0))
    drag(tool, view, (5.0, 9.0), (15.0, 9.0))
    last = tool.rulers[-1]
    assert last.roi.scene() is view.view_box.scene()
    assert tool.delete_last()
    assert len(tool.rulers) == 1
    assert last.roi.scene() is None and last.label.scene() is None
    tool.rulers[0].roi.sigRemoveRequested.emit(tool.rulers[0].roi)  # right-click > Remove ROI
    assert tool.rulers == () and not tool.delete_last()


def test_measurements_belong_to_their_slice(qtbot) -> None:
    view = MiniPlaneView(ct_volume(), Plane.AXIAL, 5)
    qtbot.addWidget(view.graphics)
    tool = RulerTool()
    drag(tool, view, (5.0, 5.0), (15.0, 5.0))
    view.slice_index = 6
    tool.sync(view)
    assert not tool.rulers[0].roi.isVisible() and not tool.rulers[0].label.isVisible()
    view.slice_index = 5
    tool.sync(view)
    assert tool.rulers[0].roi.isVisible()
    tool.clear()
    assert tool.measurements == ()


@pytest.mark.parametrize("shape", [RoiShape.RECTANGLE, RoiShape.ELLIPSE])
@pytest.mark.parametrize("plane", [Plane.AXIAL, Plane.CORONAL])
def test_roi_statistics_are_those_of_the_slice_under_it(qtbot, shape, plane) -> None:
    volume = ct_volume()
    view = MiniPlaneView(volume, plane, 4)
    qtbot.addWidget(view.graphics)
    tool = RoiTool(shape)
    drag(tool, view, (18.0, 20.0), (3.0, 4.0))  # dragged up-left: the same box
    (roi,) = tool.rois
    assert roi.rect_mm == pytest.approx((3.0, 4.0, 15.0, 16.0))
    values = view.mapping.extract(volume.array_zyx, 4).astype(float)
    mask = shape_mask(view.mapping, shape, (3.0, 4.0, 15.0, 16.0))
    pixel_area = view.mapping.pixel_width_mm * view.mapping.pixel_height_mm
    assert roi.stats is not None
    assert roi.stats.mean == pytest.approx(values[mask].mean())
    assert roi.stats.sd == pytest.approx(values[mask].std(ddof=1))
    assert roi.stats.pixel_count == mask.sum()
    assert roi.stats.area_mm2 == pytest.approx(mask.sum() * pixel_area)
    shape_area = 15 * 16 if shape is RoiShape.RECTANGLE else math.pi * 7.5 * 8
    assert roi.stats.area_mm2 == pytest.approx(shape_area, rel=0.15)
    assert "HU" in roi.text and f"({mask.sum()} px)" in roi.text

    roi.roi.setPos((10.0, 10.0))  # moved with the mouse: numbers follow
    moved = shape_mask(view.mapping, shape, (10.0, 10.0, 15.0, 16.0))
    assert roi.stats.mean == pytest.approx(values[moved].mean())
    assert tool.name == f"{shape.value} roi"
