"""Brush edits land where the view shows them, in millimetres, and undo restores exactly."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest
from scipy import ndimage

from meddiag_desktop.domain import Finding, FindingSource, Volume
from meddiag_desktop.inference.findings import extract_findings
from meddiag_desktop.viewer.mask_editor import MaskEditor, stamp_pixels
from meddiag_desktop.viewer.plane_geometry import Plane, PlaneMapping, plane_mappings

SPACING_XYZ = (0.6, 0.9, 2.5)
SHAPE_ZYX = (30, 48, 40)
NAMES = {1: "lesion", 2: "cyst"}
# identity, and one stored with y and z reversed (the views flip rows and slices)
DIRECTIONS = [
    (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0),
    (1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, -1.0),
]


def make_volume(direction=DIRECTIONS[0]) -> Volume:
    rng = np.random.default_rng(0)
    array = rng.integers(-100, 200, size=SHAPE_ZYX, dtype=np.int16)
    return Volume(
        array_zyx=array,
        spacing_xyz_mm=SPACING_XYZ,
        origin_lps_mm=(5.0, -7.0, 12.0),
        direction_lps=direction,
    )


def editor_for(volume: Volume, **kwargs) -> MaskEditor:
    return MaskEditor(np.zeros(volume.shape_zyx, dtype=np.uint8), volume, **kwargs)


def painted_plane(editor: MaskEditor, mapping: PlaneMapping, slice_index: int) -> np.ndarray:
    return mapping.extract(editor.labels_zyx, slice_index)


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("plane", [Plane.AXIAL, Plane.CORONAL, Plane.SAGITTAL])
def test_a_disc_has_its_area_in_mm2_on_anisotropic_pixels(direction, plane: Plane) -> None:
    volume = make_volume(direction)
    editor = editor_for(volume)
    mapping = plane_mappings(volume)[plane]
    radius = 9.0
    centre = ((mapping.rows - 1) / 2, (mapping.columns - 1) / 2)
    slice_index = mapping.slice_count // 2
    changed = editor.paint(mapping, slice_index, centre, radius, 1)

    shown = painted_plane(editor, mapping, slice_index)
    pixel_area = mapping.pixel_width_mm * mapping.pixel_height_mm
    assert changed == int(shown.sum()) == int(editor.labels_zyx.sum())
    assert shown.sum() * pixel_area == pytest.approx(np.pi * radius**2, rel=0.05)
    # round in millimetres: as wide as it is tall on screen
    rows, columns = np.nonzero(shown)
    height_mm = (rows.max() - rows.min() + 1) * mapping.pixel_height_mm
    width_mm = (columns.max() - columns.min() + 1) * mapping.pixel_width_mm
    assert height_mm == pytest.approx(2 * radius, abs=mapping.pixel_height_mm)
    assert width_mm == pytest.approx(2 * radius, abs=mapping.pixel_width_mm)
    # all of it on the slice the view shows, centred where the brush was
    assert editor.labels_zyx.sum() == shown.sum()
    assert np.mean(rows) == pytest.approx(centre[0], abs=0.5)
    assert np.mean(columns) == pytest.approx(centre[1], abs=0.5)


def test_a_brush_smaller_than_a_pixel_paints_the_pixel_under_it() -> None:
    volume = make_volume()
    editor = editor_for(volume)
    mapping = plane_mappings(volume)[Plane.CORONAL]
    assert editor.paint(mapping, 3, (4.2, 7.9), 0.01, 1) == 1
    assert painted_plane(editor, mapping, 3)[4, 8] == 1


def test_a_fast_drag_leaves_no_gaps() -> None:
    volume = make_volume()
    editor = editor_for(volume)
    mapping = plane_mappings(volume)[Plane.AXIAL]
    editor.begin_stroke()
    editor.paint(mapping, 10, (5.0, 3.0), 1.0, 1)
    editor.paint(mapping, 10, (40.0, 35.0), 1.0, 1, previous_rc=(5.0, 3.0))  # one big jump
    editor.end_stroke()
    shown = painted_plane(editor, mapping, 10)
    _, pieces = ndimage.label(shown)
    assert pieces == 1
    assert shown[5, 3] and shown[40, 35] and shown[22, 19]


def test_stamp_pixels_are_clipped_to_the_slice() -> None:
    mapping = plane_mappings(make_volume())[Plane.AXIAL]
    rows, columns = stamp_pixels(mapping, (0.0, 0.0), 5.0)
    assert rows.min() == 0 and columns.min() == 0
    assert stamp_pixels(mapping, (-100.0, -100.0), 2.0)[0].size == 0


def test_one_drag_is_one_undo_step_and_undo_redo_restore_exactly() -> None:
    volume = make_volume(DIRECTIONS[1])
    editor = editor_for(volume)
    mapping = plane_mappings(volume)[Plane.SAGITTAL]
    editor.paint(mapping, 4, (10.0, 10.0), 3.0, 2)  # an earlier, separate step
    before = editor.labels_zyx.copy()

    editor.begin_stroke()
    path = [(10.0, 5.0), (12.0, 12.0), (14.0, 20.0), (10.0, 30.0)]
    editor.paint(mapping, 4, path[0], 2.5, 1)
    for previous, here in itertools.pairwise(path):
        editor.paint(mapping, 4, here, 2.5, 1, previous_rc=previous)
    assert not editor.can_undo  # not while the stroke is open
    assert editor.end_stroke()
    after = editor.labels_zyx.copy()
    assert (after != before).any()
    assert (after[before == 2] != 2).any()  # painting over another label replaces it

    assert editor.undo()
    np.testing.assert_array_equal(editor.labels_zyx, before)
    assert editor.can_redo
    assert editor.redo()
    np.testing.assert_array_equal(editor.labels_zyx, after)
    assert editor.undo() and editor.undo()
    assert not editor.labels_zyx.any()
    assert not editor.can_undo and not editor.undo()


def test_undo_keeps_only_changed_voxels() -> None:
    volume = make_volume()
    editor = editor_for(volume)
    mapping = plane_mappings(volume)[Plane.AXIAL]
    changed = editor.paint(mapping, 7, (20.0, 20.0), 6.0, 1)
    assert editor.paint(mapping, 7, (20.0, 20.0), 6.0, 1) == 0  # nothing new: no undo step
    assert editor.undo_bytes == changed * 10  # index (8) + old value + new value
    assert editor.undo_bytes < volume.array_zyx.size


def test_the_oldest_steps_go_beyond_the_limit_and_dirty_stays_honest() -> None:
    volume = make_volume()
    editor = editor_for(volume, max_undo_steps=3)
    mapping = plane_mappings(volume)[Plane.AXIAL]
    assert not editor.is_dirty
    for column in (5.0, 15.0, 25.0, 35.0):
        editor.paint(mapping, 2, (20.0, column), 2.0, 1)
    while editor.undo():
        pass
    assert painted_plane(editor, mapping, 2)[20, 5] == 1  # the first step can no longer go
    assert painted_plane(editor, mapping, 2)[20, 15] == 0
    assert editor.is_dirty  # the map still differs from the saved one


def test_dirty_flag_and_revision() -> None:
    volume = make_volume()
    editor = editor_for(volume)
    mapping = plane_mappings(volume)[Plane.AXIAL]
    editor.paint(mapping, 2, (20.0, 20.0), 2.0, 1)
    editor.mark_saved()
    assert not editor.is_dirty
    revision = editor.revision
    editor.paint(mapping, 2, (30.0, 20.0), 2.0, 1)
    assert editor.is_dirty and editor.changed_since(revision)
    editor.undo()
    assert not editor.is_dirty  # back to what was saved
    assert editor.changed_since(revision)  # but the overlay did change twice
    editor.redo()
    assert editor.is_dirty


def test_erase_clears_one_label_or_all() -> None:
    volume = make_volume()
    editor = editor_for(volume)
    mapping = plane_mappings(volume)[Plane.AXIAL]
    editor.paint(mapping, 5, (20.0, 14.0), 4.0, 1)
    editor.paint(mapping, 5, (20.0, 24.0), 4.0, 2)
    ones, twos = (editor.labels_zyx == 1).sum(), (editor.labels_zyx == 2).sum()
    assert editor.erase(mapping, 5, (20.0, 19.0), 30.0, label=2) == twos
    assert (editor.labels_zyx == 1).sum() == ones
    editor.paint(mapping, 5, (20.0, 24.0), 4.0, 2)
    assert editor.erase(mapping, 5, (20.0, 19.0), 30.0) == ones + twos
    assert not editor.labels_zyx.any()
    editor.undo()
    assert (editor.labels_zyx == 1).sum() == ones and (editor.labels_zyx == 2).sum() == twos


def test_the_label_map_is_edited_in_place_and_must_allow_it() -> None:
    volume = make_volume()
    labels = np.zeros(volume.shape_zyx, dtype=np.uint8)
    editor = MaskEditor(labels, volume)
    editor.paint(plane_mappings(volume)[Plane.AXIAL], 0, (3.0, 3.0), 2.0, 1)
    assert labels.any()
    with pytest.raises(ValueError):
        MaskEditor(labels.astype(np.int16), volume)
    with pytest.raises(ValueError):
        MaskEditor(np.zeros(SHAPE_ZYX[::-1], dtype=np.uint8).T, volume)  # not C-contiguous


# ---- findings -----------------------------------------------------------------------------
def ai_case(direction=DIRECTIONS[0]) -> tuple[Volume, np.ndarray, np.ndarray, list[Finding]]:
    """A volume with two lesions found by the same code the AI pipeline uses."""
    volume = make_volume(direction)
    z, y, x = np.mgrid[: SHAPE_ZYX[0], : SHAPE_ZYX[1], : SHAPE_ZYX[2]]
    lesion = ((z - 12) * 2.5) ** 2 + ((y - 20) * 0.9) ** 2 + ((x - 14) * 0.6) ** 2 < 7.0**2
    other = ((z - 20) * 2.5) ** 2 + ((y - 36) * 0.9) ** 2 + ((x - 30) * 0.6) ** 2 < 4.0**2
    labels = np.zeros(SHAPE_ZYX, dtype=np.uint8)
    labels[lesion | other] = 1
    probability = np.where(labels > 0, 0.9, 0.05).astype(np.float32)
    cleaned, findings = extract_findings(volume, labels, probability, NAMES, min_volume_mm3=0.0)
    return volume, np.ascontiguousarray(cleaned), probability, findings


def same_measurements(a: Finding, b: Finding) -> None:
    for field in ("volume_ml", "long_axis_mm", "short_axis_mm", "mean_intensity", "max_intensity"):
        assert getattr(a, field) == pytest.approx(getattr(b, field)), field
    assert a.voxel_count == b.voxel_count
    assert a.bbox_index_xyz == b.bbox_index_xyz
    np.testing.assert_allclose(a.centroid_index_xyz, b.centroid_index_xyz)
    np.testing.assert_allclose(a.centroid_lps_mm, b.centroid_lps_mm)


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_an_edited_finding_is_measured_again_like_the_ai_measures(direction) -> None:
    volume, labels, probability, findings = ai_case(direction)
    large = findings[0]
    editor = MaskEditor(labels, volume)
    unchanged = editor.edited_finding(large)
    assert unchanged is not None
    same_measurements(unchanged, large)
    assert unchanged.mean_probability == large.mean_probability

    mapping = plane_mappings(volume)[Plane.AXIAL]
    slice_index, row, column = mapping.display_of((12, 20, 14))
    # grow it sideways (screen right) on its middle slice
    added = editor.paint(mapping, slice_index, (row, column + 12.0), 6.0, 1)
    assert added > 0
    edited = editor.edited_finding(large, probability_zyx=probability)
    assert edited is not None
    voxel_ml = float(np.prod(SPACING_XYZ)) / 1000.0
    assert edited.voxel_count == large.voxel_count + added
    assert edited.volume_ml == pytest.approx(large.volume_ml + added * voxel_ml)
    assert edited.long_axis_mm > large.long_axis_mm
    assert (edited.finding_id, edited.label, edited.label_name, edited.source) == (
        large.finding_id,
        large.label,
        large.label_name,
        FindingSource.AI,
    )
    assert edited.mean_probability < large.mean_probability  # painted where the model said no

    # exactly what the AI pipeline would have measured on the edited map
    _, again = extract_findings(volume, editor.labels_zyx, probability, NAMES, min_volume_mm3=0.0)
    reference = next(f for f in again if f.voxel_count == edited.voxel_count)
    same_measurements(edited, reference)
    assert edited.mean_probability == pytest.approx(reference.mean_probability)

    kept = editor.edited_finding(large)  # no probability map: the model's numbers stay
    assert kept is not None and kept.max_probability == large.max_probability


def test_a_fully_erased_finding_is_gone() -> None:
    volume, labels, _, findings = ai_case()
    editor = MaskEditor(labels, volume)
    small = findings[1]
    mapping = plane_mappings(volume)[Plane.AXIAL]
    editor.begin_stroke()
    for slice_index in range(mapping.slice_count):
        editor.erase(mapping, slice_index, (36.0, 30.0), 15.0)
    editor.end_stroke()
    assert editor.edited_finding(small) is None
    assert editor.edited_finding(findings[0]) is not None


def test_a_painted_lesion_becomes_a_manual_finding() -> None:
    volume, labels, _, _ = ai_case()
    editor = MaskEditor(labels, volume)
    mapping = plane_mappings(volume)[Plane.CORONAL]
    editor.begin_stroke()
    for slice_index in (5, 6, 7):
        editor.paint(mapping, slice_index, (4.0, 30.0), 4.0, 2)
    editor.end_stroke()
    seed = editor.last_painted_voxel
    assert seed is not None and editor.labels_zyx[seed] == 2

    manual = editor.finding_for(seed, label_names=NAMES, finding_id=7)
    assert manual is not None
    assert manual.source is FindingSource.MANUAL
    assert (manual.finding_id, manual.label, manual.label_name) == (7, 2, "cyst")
    assert manual.mean_probability == 0.0 and manual.max_probability == 0.0
    assert manual.voxel_count == int((editor.labels_zyx == 2).sum())
    probability = np.zeros(SHAPE_ZYX, dtype=np.float32)
    _, again = extract_findings(volume, editor.labels_zyx, probability, NAMES, min_volume_mm3=0.0)
    reference = next(f for f in again if f.label == 2)
    same_measurements(manual, replace(reference, source=FindingSource.MANUAL))
    assert editor.finding_for((0, 0, 0)) is None  # nothing labelled there


def test_a_lesion_bigger_than_the_first_search_box_is_found_whole() -> None:
    volume = make_volume()
    labels = np.zeros(SHAPE_ZYX, dtype=np.uint8)
    labels[2:28, 24, 1:39] = 1  # a sheet spanning most of the volume
    labels[27, 24:47, 38] = 1  # and a hook around a corner
    editor = MaskEditor(labels, volume)
    mask, box = editor.component_at((15, 24, 20))
    assert mask.sum() == labels.sum()
    assert box == (slice(2, 28), slice(24, 47), slice(1, 39))
