"""The demo phantom: reproducible, CT-like, nodules where they should be, and a case on disk."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from meddiag_desktop.demo import (
    DemoCaseError,
    Phantom,
    ensure_demo_case,
    make_phantom,
    write_demo_case,
)
from meddiag_desktop.domain import SeriesKind
from meddiag_desktop.scans import discover, load

# The full field of view (about 345 x 345 x 300 mm) on a coarse grid keeps each phantom ~1 s.
SHAPE = (48, 112, 112)
SPACING = (3.1, 3.1, 6.25)


@pytest.fixture(scope="module")
def phantom() -> Phantom:
    return make_phantom(3, SHAPE, SPACING)


def test_the_same_seed_gives_the_same_phantom(phantom: Phantom) -> None:
    again = make_phantom(3, SHAPE, SPACING)
    assert np.array_equal(again.volume.array_zyx, phantom.volume.array_zyx)
    assert np.array_equal(again.mask_zyx, phantom.mask_zyx)
    assert again.nodules == phantom.nodules
    assert again.volume.origin_lps_mm == phantom.volume.origin_lps_mm
    assert again.volume.metadata == phantom.volume.metadata


def test_different_seeds_give_different_phantoms(phantom: Phantom) -> None:
    other = make_phantom(4, SHAPE, SPACING)
    assert not np.array_equal(other.volume.array_zyx, phantom.volume.array_zyx)
    assert other.nodules != phantom.nodules
    assert other.volume.metadata.series_uid != phantom.volume.metadata.series_uid


def test_volume_is_a_ct_in_hounsfield_units(phantom: Phantom) -> None:
    volume = phantom.volume
    assert volume.array_zyx.dtype == np.int16
    assert volume.shape_zyx == SHAPE
    assert volume.spacing_xyz_mm == SPACING
    assert volume.modality == "CT"
    assert volume.metadata.patient_name == "PHANTOM^DEMO"
    assert "synthetic phantom" in volume.metadata.study_description
    assert "synthetic phantom" in volume.metadata.series_description
    array = volume.array_zyx
    corner = array[:, :8, :8]  # outside the body
    assert -1010 < corner.mean() < -985
    assert 5 < corner.std() < 25  # scanner noise
    assert array.min() >= -1024
    middle = array[SHAPE[0] // 2 - 3 : SHAPE[0] // 2 + 3].astype(float)

    def share(low: float, high: float) -> float:
        return float(((middle >= low) & (middle <= high)).mean())

    assert share(-1024, -950) > 0.2  # air around the body
    assert share(-920, -790) > 0.08  # lungs
    assert share(-150, -50) > 0.02  # fat
    assert share(-20, 90) > 0.08  # muscle, heart, great vessels
    assert (middle > 500).sum() > 20  # ribs and spine


def test_nodules_lie_in_the_lungs_and_the_mask_matches_their_size(phantom: Phantom) -> None:
    volume, mask = phantom.volume, phantom.mask_zyx
    assert 2 <= len(phantom.nodules) <= 6
    labels, count = ndimage.label(mask)
    assert count <= len(phantom.nodules)  # on this coarse grid the smallest may fall between
    voxel_mm3 = float(np.prod(volume.spacing_xyz_mm))
    for nodule in phantom.nodules:
        assert nodule.kind in ("solid", "part-solid")
        assert 4.0 <= nodule.diameter_mm <= 30.0
        index = np.rint(volume.lps_to_index(nodule.centre_lps_mm)).astype(int)
        x, y, z = index
        if nodule.diameter_mm < 2 * max(volume.spacing_xyz_mm):
            continue
        assert mask[z, y, x] == 1
        component = labels == labels[z, y, x]
        sphere_mm3 = np.pi / 6.0 * nodule.diameter_mm**3
        if nodule.diameter_mm >= 3 * max(volume.spacing_xyz_mm):
            assert component.sum() * voxel_mm3 == pytest.approx(sphere_mm3, rel=0.3)
        # Surrounded by lung: the shell just outside the nodule is mostly air-filled tissue.
        radius_mm = nodule.diameter_mm / 2
        shell = _shell(volume.shape_zyx, index, volume.spacing_xyz_mm, radius_mm + 4, radius_mm + 9)
        assert np.median(volume.array_zyx[shell]) < -700


def test_mask_volume_matches_the_diameter_on_a_fine_grid() -> None:
    fine = make_phantom(8, (40, 400, 400), (0.86, 0.86, 2.0))
    voxel_mm3 = 0.86 * 0.86 * 2.0
    labels, _ = ndimage.label(fine.mask_zyx)
    assert fine.nodules, "the field of view holds some lung"
    for nodule in fine.nodules:
        x, y, z = np.rint(fine.volume.lps_to_index(nodule.centre_lps_mm)).astype(int)
        component = labels == labels[z, y, x]
        sphere_mm3 = np.pi / 6.0 * nodule.diameter_mm**3
        tolerance = 0.15 if nodule.diameter_mm >= 8 else 0.35
        assert component.sum() * voxel_mm3 == pytest.approx(sphere_mm3, rel=tolerance)


def test_the_nodule_count_can_be_chosen() -> None:
    assert len(make_phantom(3, SHAPE, SPACING, nodules=1).nodules) == 1


def _shell(shape, index, spacing, inner_mm: float, outer_mm: float) -> np.ndarray:
    zz, yy, xx = np.ogrid[: shape[0], : shape[1], : shape[2]]
    distance = np.sqrt(
        ((xx - index[0]) * spacing[0]) ** 2
        + ((yy - index[1]) * spacing[1]) ** 2
        + ((zz - index[2]) * spacing[2]) ** 2
    )
    return (distance >= inner_mm) & (distance <= outer_mm)


def test_demo_case_round_trip(tmp_path: Path) -> None:
    shape, spacing = (24, 80, 80), (4.3, 4.3, 12.0)
    case = write_demo_case(tmp_path / "case", seed=5, shape_zyx=shape, spacing_xyz_mm=spacing)
    phantom = make_phantom(5, shape, spacing)

    found = discover(case.folder)
    series = [s for s in found if s.kind is SeriesKind.VOLUME]
    assert len(series) == 1 and series[0].modality == "CT"
    assert len(case.dicom_files) == shape[0]

    ct = load(series[0])
    assert np.array_equal(ct.array_zyx, phantom.volume.array_zyx)
    assert np.allclose(ct.spacing_xyz_mm, spacing)
    assert np.allclose(ct.origin_lps_mm, phantom.volume.origin_lps_mm, atol=1e-3)
    assert np.allclose(ct.direction_lps, phantom.volume.direction_lps)
    assert ct.metadata.series_uid == phantom.volume.metadata.series_uid

    truth = load(case.ground_truth)
    assert truth.shape_zyx == ct.shape_zyx
    assert np.allclose(truth.spacing_xyz_mm, ct.spacing_xyz_mm, atol=1e-4)
    assert np.allclose(truth.origin_lps_mm, ct.origin_lps_mm, atol=1e-3)
    assert np.allclose(truth.direction_lps, ct.direction_lps)
    assert np.array_equal(truth.array_zyx, phantom.mask_zyx)

    listed = json.loads(case.nodules_json.read_text())
    assert [n["diameter_mm"] for n in listed["nodules"]] == [n.diameter_mm for n in phantom.nodules]


def test_demo_case_replaces_a_previous_case_but_not_other_files(tmp_path: Path) -> None:
    shape, spacing = (8, 48, 48), (7.2, 7.2, 37.5)
    first = write_demo_case(tmp_path / "case", seed=1, shape_zyx=shape, spacing_xyz_mm=spacing)
    second = write_demo_case(
        tmp_path / "case", seed=2, shape_zyx=(6, 48, 48), spacing_xyz_mm=(7.2, 7.2, 50.0)
    )
    assert sorted(p.name for p in second.dicom_folder.iterdir()) == [
        p.name for p in second.dicom_files
    ]
    assert json.loads(first.nodules_json.read_text())["seed"] == 2

    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(DemoCaseError, match="not empty"):
        write_demo_case(other, seed=1, shape_zyx=shape, spacing_xyz_mm=spacing)
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]

    (first.folder / "extra.txt").write_text("someone else's")
    with pytest.raises(DemoCaseError):
        write_demo_case(first.folder, seed=1, shape_zyx=shape, spacing_xyz_mm=spacing)
    assert (first.folder / "extra.txt").exists() and first.nodules_json.exists()


def test_ensure_demo_case_reuses_a_complete_case(tmp_path: Path) -> None:
    case = write_demo_case(
        tmp_path / "demo", seed=1, shape_zyx=(8, 48, 48), spacing_xyz_mm=(7.2, 7.2, 37.5)
    )
    stamp = case.nodules_json.stat().st_mtime_ns
    assert ensure_demo_case(case.folder) == case.dicom_folder
    assert case.nodules_json.stat().st_mtime_ns == stamp  # not written again
