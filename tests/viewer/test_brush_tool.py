"""Dragging the brush in a view paints the label map under it: one drag, one undo step."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtWidgets import QApplication
from scipy import ndimage
from shared_fakes import MiniPlaneView, phantom_volume

from meddiag_desktop.viewer.brush_tool import MAX_RADIUS_MM, MIN_RADIUS_MM, BrushTool
from meddiag_desktop.viewer.mask_editor import MaskEditor
from meddiag_desktop.viewer.measure_tools import RoiShape, RoiTool, RulerTool
from meddiag_desktop.viewer.plane_geometry import Plane


@pytest.fixture(autouse=True)
def row_major(qapp):
    pg.setConfigOptions(imageAxisOrder="row-major")
    return qapp


def setup(qtbot, plane=Plane.AXIAL, slice_index=20, **kwargs):
    volume = phantom_volume()
    view = MiniPlaneView(volume, plane, slice_index)
    qtbot.addWidget(view.graphics)
    editor = MaskEditor(np.zeros(volume.shape_zyx, dtype=np.uint8), volume)
    return view, editor, BrushTool(editor, **kwargs)


def shown_labels(view: MiniPlaneView, editor: MaskEditor) -> np.ndarray:
    return view.mapping.extract(editor.labels_zyx, view.slice_index)


@pytest.mark.parametrize("plane", [Plane.AXIAL, Plane.CORONAL])
def test_a_click_paints_a_disc_of_the_brush_size_in_mm2(qtbot, plane) -> None:
    view, editor, brush = setup(qtbot, plane, radius_mm=6.0)
    brush.press(view, 25.0, 30.0)
    brush.release(view, 25.0, 30.0)
    shown = shown_labels(view, editor)
    area = shown.sum() * view.mapping.pixel_width_mm * view.mapping.pixel_height_mm
    assert area == pytest.approx(math.pi * 36, rel=0.08)
    assert view.voxel_at_mm(25.0, 30.0) is not None
    assert editor.labels_zyx[view.voxel_at_mm(25.0, 30.0)] == 1


def test_a_fast_drag_is_one_gapless_undo_step_with_signals(qtbot) -> None:
    view, editor, brush = setup(qtbot, radius_mm=1.5)
    edits: list[int] = []
    strokes: list[bool] = []
    brush.mask_edited.connect(lambda: edits.append(1))
    brush.stroke_finished.connect(strokes.append)
    brush.press(view, 5.0, 5.0)
    brush.drag(view, 45.0, 10.0)  # the mouse jumped 40 mm between two events
    brush.drag(view, 45.0, 45.0)
    brush.release(view, 10.0, 45.0)
    shown = shown_labels(view, editor)
    assert ndimage.label(shown)[1] == 1
    for x_mm, y_mm in [(25.0, 7.5), (45.0, 27.0), (27.0, 45.0)]:  # along each jump
        assert editor.labels_zyx[view.voxel_at_mm(x_mm, y_mm)] == 1
    assert len(edits) == 4 and strokes == [True]
    assert editor.undo() and not editor.labels_zyx.any()
    assert not editor.can_undo  # the whole drag was one step


def test_no_line_joins_two_slices(qtbot) -> None:
    view, editor, brush = setup(qtbot, radius_mm=1.0)
    brush.press(view, 5.0, 5.0)
    view.slice_index = 21  # scrolled with the wheel while painting
    brush.drag(view, 45.0, 45.0)
    brush.release(view, 45.0, 45.0)
    assert editor.labels_zyx.sum() < 20


def test_the_eraser_clears_and_a_tool_without_a_map_does_nothing(qtbot) -> None:
    view, editor, brush = setup(qtbot, radius_mm=8.0)
    brush.press(view, 25.0, 25.0)
    brush.release(view, 25.0, 25.0)
    painted = int(editor.labels_zyx.sum())
    eraser = BrushTool(editor, mode="erase", radius_mm=3.0)
    assert eraser.name == "eraser" and brush.name == "brush"
    eraser.press(view, 25.0, 25.0)
    eraser.release(view, 25.0, 25.0)
    assert 0 < editor.labels_zyx.sum() < painted
    assert editor.labels_zyx[view.voxel_at_mm(25.0, 25.0)] == 0
    idle = BrushTool(None)
    idle.press(view, 5.0, 5.0)
    idle.release(view, 5.0, 5.0)


def test_the_cursor_has_the_brush_size_in_mm(qtbot) -> None:
    view, _, brush = setup(qtbot, radius_mm=4.0)
    brush.hover(view, 10.0, 12.0)
    rect = brush.cursor_item.rect()
    assert (rect.center().x(), rect.center().y(), rect.width()) == pytest.approx((10, 12, 8))
    brush.set_radius_mm(2.5)
    assert brush.cursor_item.rect().width() == pytest.approx(5.0)
    assert brush.step_radius(1) == pytest.approx(2.5 * 1.25)
    brush.set_radius_mm(1e6)
    assert brush.radius_mm == MAX_RADIUS_MM
    brush.set_radius_mm(0)
    assert brush.radius_mm == MIN_RADIUS_MM
    assert brush.cursor_item.scene() is view.view_box.scene()
    brush.deactivate()
    assert brush.cursor_item.scene() is None


def test_deactivating_mid_drag_closes_the_stroke(qtbot) -> None:
    view, editor, brush = setup(qtbot)
    brush.press(view, 20.0, 20.0)
    brush.deactivate()
    assert not editor.in_stroke and editor.can_undo


def test_screenshot_of_ruler_roi_and_painted_region(qtbot, artifacts_dir: Path) -> None:
    """Look at test-artifacts/measure_tools.png: labels readable, sizes sensible."""
    view, editor, brush = setup(qtbot, radius_mm=3.0)
    view.image.setLevels((-160, 240))  # soft-tissue window
    overlay = pg.ImageItem()
    lut = np.array([[0, 0, 0, 0], [255, 64, 64, 150]] + [[0, 0, 0, 0]] * 254, dtype=np.uint8)
    overlay.setLookupTable(lut)
    overlay.setZValue(10)
    view.view_box.addItem(overlay)

    def refresh_overlay() -> None:  # what the viewer does on mask_edited
        overlay.setImage(shown_labels(view, editor), autoLevels=False, levels=(0, 255))

    refresh_overlay()
    overlay.setRect(0, 0, *view.mapping.size_mm)  # after an image: setRect scales by its size
    brush.mask_edited.connect(refresh_overlay)
    brush.press(view, 9.0, 20.0)
    for x_mm, y_mm in [(10.0, 24.0), (12.0, 27.0), (14.0, 29.0)]:
        brush.drag(view, x_mm, y_mm)
    brush.release(view, 15.0, 30.0)
    ruler = RulerTool()
    ruler.press(view, 19.4, 22.4)
    ruler.release(view, 38.6, 22.4)  # across the bright ellipsoid
    roi = RoiTool(RoiShape.ELLIPSE)
    roi.press(view, 12.0, 34.0)
    roi.release(view, 22.0, 44.0)
    box = RoiTool(RoiShape.RECTANGLE)
    box.press(view, 36.0, 38.0)
    box.release(view, 46.0, 46.0)
    brush.hover(view, 40.0, 14.0)

    view.graphics.resize(640, 640)
    view.graphics.show()
    qtbot.waitExposed(view.graphics)
    view.view_box.autoRange(padding=0)
    QApplication.processEvents()
    path = artifacts_dir / "measure_tools.png"
    assert view.graphics.grab().save(str(path))
    assert path.stat().st_size > 5_000
    assert ruler.rulers[0].text == "19.2 mm"
    assert roi.rois[0].stats is not None and roi.rois[0].stats.mean == pytest.approx(40.0)
    assert overlay.image is not None and overlay.image.any()
    # the label of the ROI at the right edge was moved inside the view to stay readable
    label = box.rois[0].label
    right_px = (
        view.view_box.mapViewToDevice(label.pos()).x() + label.textItem.boundingRect().width()
    )
    assert label.pos().x() < 36.0 and right_px <= view.view_box.width() + 1
