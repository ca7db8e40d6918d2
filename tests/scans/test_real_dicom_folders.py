"""Discovery and loading of real scanners' DICOM folders (../shared/data/dicom).

Each folder tests something a reading workstation gets wrong easily: mixed series in one folder,
gantry tilt with uneven gaps, JPEG 2000, implicit VR MR, tiny multi-series studies, and a CT with
a segmentation made on its grid.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from meddiag_desktop.domain import SeriesInfo, SeriesKind, Volume
from meddiag_desktop.scans import discover, load


def only_loadable(found: list[SeriesInfo]) -> SeriesInfo:
    loadable = [s for s in found if s.loadable]
    assert len(loadable) == 1, [(s.key, s.kind, s.reason) for s in found]
    return loadable[0]


def assert_orthonormal(volume: Volume) -> None:
    matrix = volume.direction_matrix()
    np.testing.assert_allclose(matrix.T @ matrix, np.eye(3), atol=1e-6)
    assert np.linalg.det(matrix) == pytest.approx(1.0, abs=1e-6)


def test_philips_mixed_folder(dicom_root: Path) -> None:
    found = discover(dicom_root / "ct_philips_mixed_folder")
    volume_series = only_loadable(found)
    assert volume_series.kind is SeriesKind.VOLUME
    assert volume_series.modality == "CT"
    assert volume_series.size_xyz == (512, 512, 28)
    assert volume_series.spacing_xyz_mm == pytest.approx((0.451, 0.451, 5.0), abs=5e-4)
    assert {f.name.split("_")[0] for f in volume_series.files} == {"S2010"}
    assert volume_series.warnings == ()

    by_kind = {s.kind: s for s in found if not s.loadable}
    scout = by_kind[SeriesKind.LOCALIZER]
    assert [f.name for f in scout.files] == ["S1000_I10"]
    assert "localizer" in scout.reason
    grey_capture = by_kind[SeriesKind.SECONDARY_CAPTURE]
    assert "secondary capture" in grey_capture.reason
    colour_capture = by_kind[SeriesKind.COLOUR]
    assert "colour" in colour_capture.reason
    for capture in (grey_capture, colour_capture):
        assert {f.name.split("_")[0] for f in capture.files} == {"S4010"}
    assert grey_capture.size_xyz[:2] != colour_capture.size_xyz[:2]
    # The Philips DIRFILEs are DICOM without pixels: listed, with the reason, never loaded.
    dirfiles = by_kind[SeriesKind.NON_IMAGE]
    assert all(f.name.endswith("DIRFILE") for f in dirfiles.files)
    assert "no pixel data" in dirfiles.reason
    assert all(s.reason for s in found if not s.loadable)

    volume = load(volume_series)
    assert volume.shape_zyx == (28, 512, 512)
    assert volume.spacing_xyz_mm == pytest.approx((0.451, 0.451, 5.0), abs=5e-4)
    assert volume.warnings == ()
    assert_orthonormal(volume)
    assert -1100 <= volume.array_zyx.min() < -900  # HU: air outside the head phantom


def _phase_shift(moved: np.ndarray, fixed: np.ndarray) -> tuple[float, float]:
    """(dy, dx) with moved[r + dy, c + dx] ~ fixed[r, c], to a fraction of a pixel."""
    spectrum = np.fft.fft2(moved) * np.conj(np.fft.fft2(fixed))
    spectrum /= np.abs(spectrum) + 1e-9
    surface = np.fft.ifft2(spectrum).real
    iy, ix = np.unravel_index(int(np.argmax(surface)), surface.shape)
    rows, cols = surface.shape

    def refine(before: float, peak: float, after: float) -> float:
        curvature = before - 2 * peak + after
        return 0.0 if curvature == 0 else 0.5 * (before - after) / curvature

    dy = iy + refine(surface[iy - 1, ix], surface[iy, ix], surface[(iy + 1) % rows, ix])
    dx = ix + refine(surface[iy, ix - 1], surface[iy, ix], surface[iy, (ix + 1) % cols])
    return (dy - rows if dy > rows / 2 else dy, dx - cols if dx > cols / 2 else dx)


@pytest.mark.slow
def test_ge_gantry_tilt_is_resampled_to_where_the_patient_is(dicom_root: Path) -> None:
    folder = dicom_root / "ct_ge_gantry_tilt"
    series = only_loadable(discover(folder))
    assert series.file_count == 28
    assert any("Gantry tilt of 18.5°" in w for w in series.warnings), series.warnings
    assert any("Uneven slice spacing" in w for w in series.warnings), series.warnings

    volume = load(series)
    assert volume.warnings == series.warnings
    assert_orthonormal(volume)
    spacing_x, spacing_y, spacing_z = volume.spacing_xyz_mm
    assert (spacing_x, spacing_y) == pytest.approx((0.48828, 0.48828), abs=1e-5)

    # Where each original slice really is, from its own header (IPP/IOP), in stacking order.
    datasets = [pydicom.dcmread(p) for p in sorted(folder.glob("*.dcm"))]
    cosines = np.asarray(datasets[0].ImageOrientationPatient, dtype=float)
    row_cosine, column_cosine = cosines[:3], cosines[3:]
    normal = np.cross(row_cosine, column_cosine)
    datasets.sort(key=lambda ds: float(np.dot(normal, ds.ImagePositionPatient)))
    distances = np.array([np.dot(normal, ds.ImagePositionPatient) for ds in datasets])
    # The grid is regular, perpendicular to the slices, and covers the whole stack.
    np.testing.assert_allclose(volume.direction_matrix()[:, 2], normal, atol=1e-6)
    assert volume.shape_zyx[0] == round((distances[-1] - distances[0]) / spacing_z) + 1
    assert (volume.shape_zyx[0] - 1) * spacing_z == pytest.approx(
        distances[-1] - distances[0], abs=spacing_z / 2
    )

    grid_index = (distances - distances[0]) / spacing_z
    on_grid = [k for k in range(len(datasets)) if abs(grid_index[k] - round(grid_index[k])) < 0.02]
    assert len(on_grid) >= 10
    half_voxel = spacing_x / 2
    for k in on_grid:
        ds = datasets[k]
        original = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        z = round(grid_index[k])
        resampled = volume.array_zyx[z].astype(np.float64)
        # Find where slice k's content landed in the resampled slice (brain/bone window).
        dy, dx = _phase_shift(np.clip(resampled, -200, 300), np.clip(original, -200, 300))
        row, column = 256, 256  # a voxel near the middle of the original slice
        pixel_y, pixel_x = (float(v) for v in ds.PixelSpacing)
        said_by_dicom = (
            np.asarray(ds.ImagePositionPatient, dtype=float)
            + column * pixel_x * row_cosine
            + row * pixel_y * column_cosine
        )
        where_loaded = np.asarray(volume.index_to_lps((column + dx, row + dy, z)))
        error = np.linalg.norm(where_loaded - said_by_dicom)
        assert error < half_voxel, f"slice {k}: {error:.3f} mm off (shift {dy:.2f}, {dx:.2f})"


def test_siemens_jpeg2000_ct_in_hounsfield_units(dicom_root: Path) -> None:
    series = only_loadable(discover(dicom_root / "ct_siemens_j2k"))
    assert series.file_count == 20
    assert series.pixel_format is not None
    assert series.pixel_format.transfer_syntax == "1.2.840.10008.1.2.4.90"  # J2K lossless
    volume = load(series)
    assert volume.shape_zyx == (20, 512, 512)
    assert volume.spacing_xyz_mm == pytest.approx((0.977, 0.977, 2.0), abs=5e-4)
    assert volume.array_zyx.dtype == np.int16
    assert volume.modality == "CT"
    assert_orthonormal(volume)
    values = volume.array_zyx
    inside_field_of_view = values[values > -1024]  # -1024 pads the corners
    counts, edges = np.histogram(inside_field_of_view, bins=np.arange(-1100, 1500, 10))
    air = edges[int(np.argmax(counts))]
    assert -1030 <= air <= -970, f"air at {air} HU"
    soft_tissue = np.mean((inside_field_of_view > -100) & (inside_field_of_view < 100))
    assert soft_tissue > 0.1


def test_siemens_mprage_implicit_vr(dicom_root: Path) -> None:
    series = only_loadable(discover(dicom_root / "mr_siemens_t1"))
    assert series.modality == "MR"
    assert series.file_count == 120
    volume = load(series)
    assert volume.shape_zyx == (120, 512, 512)
    assert volume.spacing_xyz_mm == pytest.approx((0.41, 0.41, 1.5), abs=5e-3)
    assert volume.warnings == ()
    assert_orthonormal(volume)
    assert volume.array_zyx.min() >= 0
    assert volume.array_zyx.max() > 100


def test_several_tiny_series(dicom_root: Path) -> None:
    found = discover(dicom_root / "several_series_tiny")
    ct = only_loadable(found)
    assert ct.modality == "CT"
    assert ct.kind is SeriesKind.VOLUME
    localizers = [s for s in found if s.kind is SeriesKind.LOCALIZER]
    assert len(localizers) >= 5
    assert {s.modality for s in localizers} == {"CT", "MR"}
    assert all(not s.loadable and "localizer" in s.reason for s in localizers)
    volume = load(ct)
    assert volume.shape_zyx == (ct.size_xyz[2], 16, 16)
    assert volume.spacing_xyz_mm == pytest.approx(ct.spacing_xyz_mm)


def test_ct_with_segmentation_on_its_grid(dicom_root: Path) -> None:
    ct = load(only_loadable(discover(dicom_root / "ct_3slice_with_seg")))
    assert ct.shape_zyx == (3, 512, 512)
    refs = dicom_root / "ct_3slice_with_seg_refs"
    for name in ("liver_seg.nrrd", "spine_seg.nrrd"):
        mask = load(refs / name)
        assert mask.shape_zyx == ct.shape_zyx, name
        np.testing.assert_allclose(mask.spacing_xyz_mm, ct.spacing_xyz_mm, atol=1e-3)
        np.testing.assert_allclose(mask.origin_lps_mm, ct.origin_lps_mm, atol=1e-3)
        np.testing.assert_allclose(mask.direction_lps, ct.direction_lps, atol=1e-6)
        assert mask.array_zyx.max() >= 1

    found = discover(refs)
    seg = next(s for s in found if s.files[0].name == "liver.dcm")
    assert seg.kind is SeriesKind.SEGMENTATION  # listed as labels for a series, not a scan
    assert seg.modality == "SEG"
    assert not seg.loadable
    assert "segmentation" in seg.reason
    assert sorted(s.files[0].name for s in found if s.loadable) == [
        "liver_seg.nrrd",
        "spine_seg.nrrd",
    ]
