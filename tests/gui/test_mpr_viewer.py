"""The MPR viewer: change the model or send real mouse/key events, then assert on the views."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QMouseEvent, QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication
from scipy import ndimage

from meddiag_desktop.display.window_level import WindowLevel, dragged_window, value_range
from meddiag_desktop.domain import ScanMetadata, Volume
from meddiag_desktop.viewer.mpr_viewer import MprViewer, voxel_readout
from meddiag_desktop.viewer.plane_geometry import Plane, plane_mappings
from meddiag_desktop.viewer.plane_view import PlaneView

pytestmark = pytest.mark.gui

BRIGHT_VOXEL = (20, 28, 36)  # inside the 300 HU sphere of the phantom fixture
MOVE_INTERVAL_MS = 12  # pyqtgraph's scene ignores mouse moves less than 10 ms apart


@pytest.fixture
def viewer(qtbot, phantom: Volume) -> Iterator[MprViewer]:
    widget = MprViewer()
    qtbot.addWidget(widget)
    widget.resize(1000, 760)
    widget.show()
    qtbot.waitExposed(widget)
    widget.set_volume(phantom)
    QApplication.processEvents()
    yield widget


# ---- helpers ---------------------------------------------------------------------------------
def viewport_point(view: PlaneView, x_mm: float, y_mm: float) -> QPoint:
    """Where display position (x_mm, y_mm) is on the view's viewport, in widget pixels."""
    scene = view.view_box.mapViewToScene(QPointF(x_mm, y_mm))
    return view.graphics.mapFromScene(scene)


def voxel_point(view: PlaneView, voxel: tuple[int, int, int]) -> QPoint:
    mapping = view.mapping
    assert mapping is not None
    _, row, column = mapping.display_of(voxel)
    return viewport_point(view, *mapping.centre_mm(row, column))


def drag(view: PlaneView, button: Qt.MouseButton, start: QPoint, end: QPoint, steps: int = 6):
    """Press, move in ``steps`` and release; pyqtgraph drops moves closer than 10 ms apart."""
    viewport = view.graphics.viewport()
    QTest.mousePress(viewport, button, Qt.KeyboardModifier.NoModifier, start)
    for i in range(1, steps + 1):
        QTest.qWait(MOVE_INTERVAL_MS)
        pos = QPointF(start + (end - start) * (i / steps))
        event = QMouseEvent(
            QMouseEvent.Type.MouseMove,
            pos,
            QPointF(viewport.mapToGlobal(pos.toPoint())),
            Qt.MouseButton.NoButton,
            button,
            Qt.KeyboardModifier.NoModifier,
        )
        QApplication.sendEvent(viewport, event)
    QTest.mouseRelease(viewport, button, Qt.KeyboardModifier.NoModifier, end)


def wheel(view: PlaneView, notches: int, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    viewport = view.graphics.viewport()
    pos = QPointF(viewport.rect().center())
    event = QWheelEvent(
        pos,
        QPointF(viewport.mapToGlobal(pos.toPoint())),
        QPoint(0, 0),
        QPoint(0, 120 * notches),
        Qt.MouseButton.NoButton,
        modifiers,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(viewport, event)


def expected_display(viewer: MprViewer, plane: Plane, voxel) -> tuple[int, float, float]:
    mapping = viewer.plane_view(plane).mapping
    assert mapping is not None
    index, row, column = mapping.display_of(voxel)
    return (index, *mapping.centre_mm(row, column))


def assert_views_at(viewer: MprViewer, voxel) -> None:
    for plane in Plane:
        view = viewer.plane_view(plane)
        index, x_mm, y_mm = expected_display(viewer, plane, voxel)
        assert view.slice_index == index, plane
        assert view.crosshair_position_mm == pytest.approx((x_mm, y_mm)), plane


# ---- geometry and navigation -----------------------------------------------------------------
def test_opens_at_the_centre_in_physical_aspect(viewer: MprViewer, phantom: Volume) -> None:
    assert viewer.cursor_voxel == (20, 32, 32)
    assert_views_at(viewer, (20, 32, 32))
    sizes = {}
    for plane in Plane:
        item = viewer.plane_view(plane).image_item
        rect = item.mapRectToParent(item.boundingRect())
        sizes[plane] = (round(rect.width(), 6), round(rect.height(), 6))
        assert (rect.x(), rect.y()) == (0, 0)
    # 64 x 64 x 40 voxels of 0.8 x 0.8 x 2.5 mm: coronal and sagittal are 51.2 mm x 100 mm
    assert sizes == {
        Plane.AXIAL: (51.2, 51.2),
        Plane.CORONAL: (51.2, 100.0),
        Plane.SAGITTAL: (51.2, 100.0),
    }
    texts = viewer.plane_view(Plane.AXIAL).annotations()
    assert texts["slice"] == "Slice 21 / 40"
    assert texts["window"] == "W 400  L 40"
    assert texts["position"] == "S 50.0 mm"


def test_wheel_and_keys_page_through_slices_and_clamp(qtbot, viewer: MprViewer) -> None:
    axial = viewer.plane_view(Plane.AXIAL)
    coronal = viewer.plane_view(Plane.CORONAL)
    moved: list[tuple[int, int, int]] = []
    viewer.cursor_moved.connect(moved.append)
    start = axial.slice_index
    wheel(axial, 1)  # away from the reader: previous slice
    assert axial.slice_index == start - 1
    wheel(axial, -3)
    assert axial.slice_index == start + 2
    qtbot.mouseClick(axial.graphics.viewport(), Qt.MouseButton.LeftButton)  # focus
    qtbot.keyClick(axial, Qt.Key.Key_Down)
    assert axial.slice_index == start + 3
    qtbot.keyClick(axial, Qt.Key.Key_PageUp)
    assert axial.slice_index == start - 7
    qtbot.keyClick(axial, Qt.Key.Key_End)
    assert axial.slice_index == axial.slice_count - 1
    qtbot.keyClick(axial, Qt.Key.Key_PageDown)
    assert axial.slice_index == axial.slice_count - 1  # clamped
    qtbot.keyClick(axial, Qt.Key.Key_Home)
    qtbot.keyClick(axial, Qt.Key.Key_Up)
    assert axial.slice_index == 0
    # the other views stay on their slices; their crosshair follows the axial slice
    assert coronal.slice_index == expected_display(viewer, Plane.CORONAL, moved[-1])[0]
    assert_views_at(viewer, viewer.cursor_voxel)
    assert moved[-1] == viewer.cursor_voxel and moved[-1][0] == 0


def test_zoom_pan_and_reset(viewer: MprViewer) -> None:
    axial = viewer.plane_view(Plane.AXIAL)
    before = axial.view_box.viewRange()
    wheel(axial, 2, Qt.KeyboardModifier.ControlModifier)
    zoomed = axial.view_box.viewRange()
    assert zoomed[0][1] - zoomed[0][0] < before[0][1] - before[0][0]
    assert axial.slice_index == 20  # Ctrl+wheel zooms, it does not page
    centre = axial.graphics.viewport().rect().center()
    drag(axial, Qt.MouseButton.MiddleButton, centre, centre + QPoint(60, 0))
    panned = axial.view_box.viewRange()
    assert panned[0][0] < zoomed[0][0]  # the image moved right: the view looks further left
    assert viewer.cursor_voxel == (20, 32, 32)  # middle-drag never moves the crosshair
    viewer.reset_views()
    assert np.allclose(axial.view_box.viewRange(), before)


def test_click_in_axial_moves_the_other_views(qtbot, viewer: MprViewer) -> None:
    axial = viewer.plane_view(Plane.AXIAL)
    target = (20, 10, 50)  # axial slice stays 20; coronal and sagittal move
    qtbot.mouseClick(
        axial.graphics.viewport(), Qt.MouseButton.LeftButton, pos=voxel_point(axial, target)
    )
    assert viewer.cursor_voxel == target
    assert_views_at(viewer, target)
    # identity direction: coronal slice = y, sagittal slice = x
    assert viewer.plane_view(Plane.CORONAL).slice_index == 10
    assert viewer.plane_view(Plane.SAGITTAL).slice_index == 50
    assert axial.crosshair_position_mm == pytest.approx((50.5 * 0.8, 10.5 * 0.8))
    # dragging moves the cursor along, held inside the image
    drag(axial, Qt.MouseButton.LeftButton, voxel_point(axial, target), QPoint(-50, -50))
    assert viewer.cursor_voxel == (20, 0, 0)


def test_right_drag_changes_window_and_level(viewer: MprViewer) -> None:
    axial = viewer.plane_view(Plane.AXIAL)
    changes: list[WindowLevel] = []
    viewer.window_changed.connect(changes.append)
    start = viewer.window_level
    assert start == WindowLevel(400, 40, "Soft tissue")
    centre = axial.graphics.viewport().rect().center()
    drag(axial, Qt.MouseButton.RightButton, centre, centre + QPoint(64, 0))
    wider = viewer.window_level
    assert wider.width > start.width and wider.level == start.level and wider.name == "Custom"
    span = float(np.subtract(*value_range(viewer.volume)[::-1]))
    assert wider == dragged_window(start, 64, 0, span)
    drag(axial, Qt.MouseButton.RightButton, centre, centre + QPoint(0, 40))
    lower_image = viewer.window_level
    assert lower_image.level > wider.level and lower_image.width == wider.width
    drag(axial, Qt.MouseButton.RightButton, centre, centre + QPoint(-600, 0))
    assert viewer.window_level.width == 1  # never narrower than one unit
    assert changes[-1] == viewer.window_level
    assert viewer.cursor_voxel == (20, 32, 32)  # right-drag never moves the crosshair
    assert viewer.panel.window_box.currentText().startswith("Custom")


def test_presets_set_exact_windows(qtbot, viewer: MprViewer) -> None:
    names = {p.name: (p.width, p.level) for p in viewer.presets}
    assert names == {
        "Soft tissue": (400, 40),
        "Brain": (80, 40),
        "Subdural": (200, 75),
        "Stroke": (40, 40),
        "Lung": (1500, -600),
        "Mediastinum": (350, 50),
        "Abdomen": (400, 50),
        "Liver": (150, 30),
        "Bone": (1800, 400),
        "Auto (1-99 %)": names["Auto (1-99 %)"],
    }
    axial = viewer.plane_view(Plane.AXIAL)
    qtbot.mouseClick(axial.graphics.viewport(), Qt.MouseButton.LeftButton)
    qtbot.keyClick(axial, Qt.Key.Key_2)  # second preset
    assert viewer.window_level == WindowLevel(80, 40, "Brain")
    assert axial.annotations()["window"] == "W 80  L 40"
    # soft tissue at 40 HU is mid-grey in a W 80 L 40 window; air black, bone white
    shown = axial.image_item.image
    raw = axial.mapping.extract(viewer.volume.array_zyx, axial.slice_index)
    assert set(np.unique(shown[raw == 40])) == {128}
    assert set(np.unique(shown[raw == -1000])) == {0}
    assert set(np.unique(shown[raw == 300])) == {255}
    viewer.panel.window_box.activated.emit(4)  # chosen in the info panel
    assert viewer.window_level == WindowLevel(1500, -600, "Lung")
    assert viewer.panel.window_box.currentIndex() == 4


def test_mr_gets_percentile_windows(qtbot, phantom: Volume) -> None:
    array = np.arange(40 * 64 * 64, dtype=np.uint16).reshape(40, 64, 64)
    mr = replace(phantom, array_zyx=array, metadata=ScanMetadata(modality="MR"))
    viewer = MprViewer()
    qtbot.addWidget(viewer)
    viewer.set_volume(mr)
    assert [p.name for p in viewer.presets] == [
        "Auto (1-99 %)",
        "Auto (0.5-99.5 %)",
        "Auto (5-95 %)",
    ]
    assert viewer.window_level.low == pytest.approx(np.percentile(array, 1), rel=1e-3)
    assert viewer.presets[2].width < viewer.presets[0].width < viewer.presets[1].width
    assert voxel_readout(mr, (1, 2, 3), ct=False).startswith(f"Value {64 * 64 + 2 * 64 + 3}")


# ---- readout, orientation, jumps -------------------------------------------------------------
def test_readout_shows_hu_voxel_and_lps(qtbot, viewer: MprViewer, phantom: Volume) -> None:
    expected = "300 HU  ·  voxel (z 20, y 28, x 36)  ·  LPS (28.8, 22.4, 50.0) mm"
    assert voxel_readout(phantom, BRIGHT_VOXEL, ct=True) == expected
    texts: list[str] = []
    viewer.hover_info_changed.connect(texts.append)
    axial = viewer.plane_view(Plane.AXIAL)
    qtbot.mouseMove(axial.graphics.viewport(), voxel_point(axial, BRIGHT_VOXEL))
    qtbot.waitUntil(lambda: bool(texts))
    assert texts[-1] == expected
    assert "300 HU" in viewer.panel.hover_label.text()
    viewer.jump_to_voxel((5, 32, 32))  # scrolling under a still pointer reads the new voxel
    assert texts[-1].startswith("40 HU  ·  voxel (z 5, y 28, x 36)")
    moved = replace(phantom, origin_lps_mm=(-10.0, 5.0, -200.0))
    assert voxel_readout(moved, (0, 0, 0), ct=True).endswith("LPS (-10.0, 5.0, -200.0) mm")


def test_orientation_letters_follow_a_flipped_permuted_volume(qtbot, phantom: Volume) -> None:
    # stored as coronal slices: array axes x -> L, y -> S... but with x running to the right
    direction = (-1.0, 0, 0, 0, 0, -1.0, 0, 1.0, 0)  # x: R, y: I, z: P
    odd = replace(phantom, direction_lps=direction)
    viewer = MprViewer()
    qtbot.addWidget(viewer)
    viewer.resize(800, 600)
    viewer.show()
    viewer.set_volume(odd)
    letters = {
        plane: tuple(
            viewer.plane_view(plane).annotations()[s] for s in ("left", "right", "top", "bottom")
        )
        for plane in Plane
    }
    assert letters == {
        Plane.AXIAL: ("R", "L", "A", "P"),
        Plane.CORONAL: ("R", "L", "S", "I"),
        Plane.SAGITTAL: ("A", "P", "S", "I"),
    }
    mappings = plane_mappings(odd)
    assert mappings[Plane.AXIAL].through_axis == 1  # the array's y axis runs head-foot
    axial = viewer.plane_view(Plane.AXIAL)
    raw = mappings[Plane.AXIAL].extract(odd.array_zyx, axial.slice_index)
    windowed = np.clip(np.rint((raw.astype(float) + 160) * 255 / 400), 0, 255)
    assert np.array_equal(axial.image_item.image, windowed.astype(np.uint8))
    # the axial slice number moves the cursor along the array's y axis
    z, y, x = viewer.cursor_voxel
    axial.step_slices(1)
    assert viewer.cursor_voxel[0] == z and viewer.cursor_voxel[2] == x
    assert viewer.cursor_voxel[1] != y


def test_jump_to_lps_and_voxel_move_all_views(viewer: MprViewer, phantom: Volume) -> None:
    viewer.jump_to_lps((28.8, 22.4, 50.0))
    assert viewer.cursor_voxel == BRIGHT_VOXEL
    assert_views_at(viewer, BRIGHT_VOXEL)
    viewer.jump_to_lps((1e4, -1e4, 0.0))  # outside: clamped to the nearest voxel
    assert viewer.cursor_voxel == (0, 0, 63)
    viewer.jump_to_voxel((99, -5, 10))
    assert viewer.cursor_voxel == (39, 0, 10)
    assert "HU" in viewer.panel.cursor_label.text()


# ---- overlay ---------------------------------------------------------------------------------
def rendered_colour(viewer: MprViewer, plane: Plane, voxel) -> QColor:
    view = viewer.plane_view(plane)
    image = view.graphics.viewport().grab().toImage()
    return image.pixelColor(voxel_point(view, voxel))


def test_overlay_colours_opacity_outline_and_visibility(viewer: MprViewer, phantom: Volume) -> None:
    labels = np.zeros(phantom.shape_zyx, dtype=np.uint8)
    labels[15:26, 20:41, 20:41] = 1
    labels[15:26, 45:55, 45:55] = 2
    viewer.set_overlay(labels, {1: "#ff5050", 2: (0, 255, 0)}, {1: "nodule"})
    assert "nodule" in viewer.panel.legend_label.text()
    assert "Label 2" in viewer.panel.legend_label.text()
    viewer.set_overlay_opacity(1.0)
    viewer.jump_to_voxel((20, 30, 30))
    axial = viewer.plane_view(Plane.AXIAL)
    overlay = axial.overlay.image_item
    assert overlay.opacity() == 1.0 and overlay.isVisible()
    assert tuple(overlay.lut[1]) == (255, 80, 80, 255) and tuple(overlay.lut[2]) == (0, 255, 0, 255)
    assert tuple(overlay.lut[0])[3] == 0
    inside = (20, 30, 30)
    assert rendered_colour(viewer, Plane.AXIAL, inside).getRgb()[:3] == (255, 80, 80)
    assert rendered_colour(viewer, Plane.CORONAL, (17, 30, 25)).getRgb()[:3] == (255, 80, 80)
    viewer.jump_to_voxel((20, 50, 50))
    assert rendered_colour(viewer, Plane.SAGITTAL, (20, 50, 50)).getRgb()[:3] == (0, 255, 0)
    viewer.jump_to_voxel(inside)

    viewer.set_overlay_opacity(0.25)
    assert overlay.opacity() == 0.25
    blended = rendered_colour(viewer, Plane.AXIAL, inside)
    assert 0 < blended.red() - blended.green() < 255 - 80  # a tint, not the full colour
    assert viewer.panel.opacity_slider.value() == 25

    viewer.set_overlay_mode("outline")
    shown = axial.overlay.label_at  # the ring just outside the region: the lesion stays visible
    assert shown(30, 30) == 0 and shown(20, 30) == 0 and shown(19, 30) == 1
    assert shown(19, 19) == 1 and shown(41, 41) == 1 and shown(42, 30) == 0
    viewer.set_overlay_mode("filled")
    assert axial.overlay.label_at(30, 30) == 1

    labels[20, 30, 30] = 0  # an edit in place (the eraser) shows after refresh_overlay
    viewer.refresh_overlay()
    assert axial.overlay.label_at(30, 30) == 0

    viewer.set_overlay_visible(False)
    assert not overlay.isVisible() and not viewer.panel.overlay_box.isChecked()
    viewer.panel.overlay_box.setChecked(True)  # the reader ticks it again
    assert viewer.overlay_style.visible and overlay.isVisible()

    viewer.set_overlay(None)
    assert overlay.image is None
    with pytest.raises(ValueError, match="shape"):
        viewer.set_overlay(np.zeros((2, 2, 2), np.uint8), {})


def test_selected_finding_is_boxed_on_the_slices_it_crosses(viewer: MprViewer) -> None:
    bbox_index_xyz = (30, 25, 18, 33, 27, 22)  # a Finding's box: min x, y, z, max x, y, z
    viewer.highlight_label_region(bbox_index_xyz, jump=True)
    assert viewer.cursor_voxel == (20, 26, 31)
    axial = viewer.plane_view(Plane.AXIAL)
    box = axial.overlay.highlight_item
    assert box.isVisible()
    margin = 2 * 0.8
    assert box.rect().x() == pytest.approx(30 * 0.8 - margin)
    assert box.rect().width() == pytest.approx(4 * 0.8 + 2 * margin)
    viewer.jump_to_voxel((30, 26, 31))  # off the finding's slices
    assert not box.isVisible()
    assert viewer.plane_view(Plane.CORONAL).overlay.highlight_item.isVisible()
    viewer.highlight_label_region(None)
    assert not viewer.plane_view(Plane.CORONAL).overlay.highlight_item.isVisible()


# ---- layout and tools ------------------------------------------------------------------------
def test_maximise_by_double_click_key_and_button(qtbot, viewer: MprViewer) -> None:
    coronal = viewer.plane_view(Plane.CORONAL)
    qtbot.mouseDClick(coronal.graphics.viewport(), Qt.MouseButton.LeftButton)
    assert viewer.maximised_plane is Plane.CORONAL
    assert coronal.isVisible() and not viewer.plane_view(Plane.AXIAL).isVisible()
    assert not viewer.panel.isVisible()  # the info panel gives its cell up too
    QApplication.processEvents()
    assert coronal.width() > 0.9 * viewer.width()
    qtbot.keyClick(coronal, Qt.Key.Key_F)
    assert viewer.maximised_plane is None
    assert all(viewer.plane_view(p).isVisible() for p in Plane) and viewer.panel.isVisible()
    viewer.plane_view(Plane.SAGITTAL).maximise_button.click()
    assert viewer.maximised_plane is Plane.SAGITTAL
    viewer.toggle_maximise()
    assert viewer.maximised_plane is None


class RecordingTool:
    name = "recorder"

    def __init__(self) -> None:
        self.calls: list[tuple[str, float, float]] = []
        self.deactivated = 0

    def press(self, view, x_mm, y_mm):
        self.calls.append(("press", x_mm, y_mm))

    def drag(self, view, x_mm, y_mm):
        self.calls.append(("drag", x_mm, y_mm))

    def release(self, view, x_mm, y_mm):
        self.calls.append(("release", x_mm, y_mm))
        assert view.voxel_at_mm(x_mm, y_mm) is not None and view.slice_index == 20

    def deactivate(self):
        self.deactivated += 1


def test_left_button_goes_to_the_active_tool(qtbot, viewer: MprViewer) -> None:
    tool = RecordingTool()
    viewer.set_active_tool(tool)
    axial = viewer.plane_view(Plane.AXIAL)
    start, end = voxel_point(axial, (20, 20, 20)), voxel_point(axial, (20, 40, 40))
    drag(axial, Qt.MouseButton.LeftButton, start, end)
    kinds = [c[0] for c in tool.calls]
    assert kinds[0] == "press" and kinds[-1] == "release" and "drag" in kinds
    assert tool.calls[0][1:] == pytest.approx((20.5 * 0.8, 20.5 * 0.8), abs=0.8)
    assert tool.calls[-1][1:] == pytest.approx((40.5 * 0.8, 40.5 * 0.8), abs=0.8)
    assert viewer.cursor_voxel == (20, 32, 32)  # the crosshair stayed
    qtbot.mouseClick(axial.graphics.viewport(), Qt.MouseButton.LeftButton, pos=start)
    assert [c[0] for c in tool.calls[-2:]] == ["press", "release"]
    viewer.set_active_tool(None)
    assert tool.deactivated == 1
    qtbot.mouseClick(axial.graphics.viewport(), Qt.MouseButton.LeftButton, pos=start)
    assert viewer.cursor_voxel == (20, 20, 20)


def test_clear_goes_back_to_the_placeholder(viewer: MprViewer) -> None:
    viewer.clear()
    assert viewer.volume is None and viewer.cursor_voxel is None and viewer.window_level is None
    assert viewer.plane_view(Plane.AXIAL).image_item.image is None
    viewer.jump_to_voxel((1, 2, 3))  # harmless without a volume
    assert viewer.cursor_voxel is None


# ---- screenshots -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_phantom():
    from meddiag_desktop.demo.phantom import make_phantom

    return make_phantom(seed=4242, shape_zyx=(80, 224, 224), spacing_xyz_mm=(1.6, 1.6, 4.0))


def test_screenshots_of_the_demo_phantom(qtbot, demo_phantom, artifacts_dir: Path) -> None:
    viewer = MprViewer()
    qtbot.addWidget(viewer)
    viewer.resize(1400, 900)
    viewer.show()
    qtbot.waitExposed(viewer)
    viewer.set_volume(demo_phantom.volume)
    viewer.set_overlay(demo_phantom.mask_zyx, {1: "#ff5050"})
    nodule = max(demo_phantom.nodules, key=lambda n: n.diameter_mm)
    viewer.jump_to_lps(nodule.centre_lps_mm)
    components, _ = ndimage.label(demo_phantom.mask_zyx)
    viewer.highlight_label_region(components == components[viewer.cursor_voxel])
    viewer.set_window(next(p for p in viewer.presets if p.name == "Lung"))
    QApplication.processEvents()
    path = artifacts_dir / "mpr_viewer_demo.png"
    assert viewer.grab().save(str(path))

    viewer.set_overlay_mode("outline")
    viewer.set_overlay_opacity(1.0)
    axial = viewer.plane_view(Plane.AXIAL)
    viewer.toggle_maximise(Plane.AXIAL)
    QApplication.processEvents()
    axial.view_box.scaleBy((0.35, 0.35), center=QPointF(*axial.crosshair_position_mm))
    QApplication.processEvents()
    assert viewer.grab().save(str(artifacts_dir / "mpr_viewer_axial_zoomed_outline.png"))
    assert path.stat().st_size > 10_000
