"""Our DICOM loading against dicom2nifti's reference conversions (../shared/data/dicom/dicom2nifti).

Every series folder with a ``<name>_ground_truth.nii.gz`` beside it must load voxel-identical to
it once both are reoriented to LPS; ``failing/`` holds series dicom2nifti refuses, for which we
check the warnings and errors a user needs instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from meddiag_desktop.domain import SeriesKind, Volume
from meddiag_desktop.scans import ScanError, discover, load
from meddiag_desktop.scans.file_formats import image_from_volume

SUFFIX = "_ground_truth.nii.gz"
PHILIPS_DTI_REASON = (
    "dicom2nifti's first volume of this Philips enhanced DTI holds the last frame at each "
    "position (b=1300, third direction) although its .bval lists b=0 first; we load the b=0 "
    "frames, checked by test_philips_dti_loads_the_b0_frames"
)
CASES = [
    "anatomical/001",
    "anatomical/001_implicit",
    "ge/anatomical/001",
    "ge/anatomical/001_implicit",
    "ge/anatomical/001_single_slice",
    "ge/dti/001",
    "ge/dti/001_implicit",
    "ge/dti/002",
    "ge/fmri/001",
    "ge/fmri/001_implicit",
    "hitachi/anatomical/001",
    "hitachi/anatomical/001_implicit",
    "hyperfine/anatomical/001",
    "philips_enhanced/anatomical/001",
    "philips_enhanced/anatomical/001_implicit",
    "philips_enhanced/dti/001",
    "philips_enhanced/dti/001_implicit",
    "philips_enhanced/fmri/001",
    "philips_enhanced/fmri/001_implicit",
    "siemens_multiframe/anatomical/001",
]
KNOWN_DIFFERENT = {"philips_enhanced/dti/001", "philips_enhanced/dti/001_implicit"}


@pytest.fixture(scope="module")
def reference_root(dicom_root: Path) -> Path:
    return dicom_root / "dicom2nifti"


def test_every_reference_is_covered(reference_root: Path) -> None:
    """The case list above is every series folder with a reference, outside failing/."""
    found = sorted(
        str(p.relative_to(reference_root))[: -len(SUFFIX)]
        for p in reference_root.rglob("*" + SUFFIX)
        if "failing" not in p.relative_to(reference_root).parts
        and p.with_name(p.name[: -len(SUFFIX)]).is_dir()
    )
    assert found == sorted(CASES)


def first_volume(image: sitk.Image) -> sitk.Image:
    if image.GetDimension() == 4:
        size = list(image.GetSize())
        size[3] = 0
        return sitk.Extract(image, size, [0, 0, 0, 0])
    return image


def assert_matches_reference(volume: Volume, reference_path: Path) -> None:
    ours = sitk.DICOMOrient(image_from_volume(volume), "LPS")
    reference = sitk.DICOMOrient(first_volume(sitk.ReadImage(str(reference_path))), "LPS")
    assert ours.GetSize() == reference.GetSize()
    np.testing.assert_allclose(ours.GetOrigin(), reference.GetOrigin(), atol=1e-3)
    np.testing.assert_allclose(ours.GetSpacing(), reference.GetSpacing(), atol=1e-3)
    np.testing.assert_allclose(ours.GetDirection(), reference.GetDirection(), atol=1e-4)
    ours_zyx = sitk.GetArrayFromImage(ours).astype(np.float64)
    reference_zyx = sitk.GetArrayFromImage(reference).astype(np.float64)
    different = int(np.count_nonzero(ours_zyx != reference_zyx))
    assert different == 0, f"{different} of {ours_zyx.size} voxels differ"


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=PHILIPS_DTI_REASON))
        if c in KNOWN_DIFFERENT
        else c
        for c in CASES
    ],
)
def test_loads_like_dicom2nifti(reference_root: Path, case: str) -> None:
    folder = reference_root / case
    volume = load(folder)
    assert_matches_reference(volume, folder.with_name(folder.name + SUFFIX))


@pytest.mark.parametrize("case", sorted(KNOWN_DIFFERENT))
def test_philips_dti_loads_the_b0_frames(reference_root: Path, case: str) -> None:
    """Read the b=0 frames straight from the enhanced file: what we load must equal them."""
    folder = reference_root / case
    (path,) = folder.iterdir()
    ds = pydicom.dcmread(path)
    frames = ds.PerFrameFunctionalGroupsSequence
    orientation = np.asarray(
        ds.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0].ImageOrientationPatient
        if "PlaneOrientationSequence" in ds.SharedFunctionalGroupsSequence[0]
        else frames[0].PlaneOrientationSequence[0].ImageOrientationPatient,
        dtype=float,
    )
    normal = np.cross(orientation[:3], orientation[3:])

    def distance(index: int) -> float:
        position = frames[index].PlanePositionSequence[0].ImagePositionPatient
        return float(np.dot(normal, np.asarray(position, dtype=float)))

    b_values = [float(f.MRDiffusionSequence[0].DiffusionBValue) for f in frames]
    b0 = [i for i, b in enumerate(b_values) if b == 0]
    b0.sort(key=distance)
    pixels = ds.pixel_array
    expected = np.stack(
        [
            pixels[i] * float(frames[i].PixelValueTransformationSequence[0].RescaleSlope)
            + float(frames[i].PixelValueTransformationSequence[0].RescaleIntercept)
            for i in b0
        ]
    )

    volume = load(folder)
    assert volume.shape_zyx == expected.shape
    np.testing.assert_allclose(volume.array_zyx, expected, rtol=1e-6)
    assert volume.origin_lps_mm == pytest.approx(
        tuple(float(v) for v in frames[b0[0]].PlanePositionSequence[0].ImagePositionPatient),
        abs=1e-3,
    )
    assert any("4 time points" in w for w in volume.warnings)

    # And the documented reason for the xfail above: the reference's first volume is the last
    # frame at each position, a b=1300 frame.
    reference_path = folder.with_name(folder.name + SUFFIX)
    reference = sitk.GetArrayFromImage(sitk.ReadImage(str(reference_path)))[0]
    per_position = len(frames) // len(b0)
    last = sorted(range(per_position - 1, len(frames), per_position), key=distance)
    slope = float(frames[0].PixelValueTransformationSequence[0].RescaleSlope)
    np.testing.assert_allclose(
        np.sort(reference.ravel()), np.sort((pixels[last] * slope).ravel()), rtol=1e-5
    )


# ---- failing/: series dicom2nifti refuses; a user needs to know what is wrong with them ----


def test_gantry_tilt_is_resampled_with_a_warning(reference_root: Path) -> None:
    (series,) = discover(reference_root / "failing/gantrytilting/001")
    assert series.loadable
    assert any("Gantry tilt of 14.0°" in w for w in series.warnings), series.warnings
    volume = load(series)
    assert any("Gantry tilt" in w for w in volume.warnings)
    matrix = volume.direction_matrix()
    np.testing.assert_allclose(matrix.T @ matrix, np.eye(3), atol=1e-6)
    # Resampled: the stack of 4 tilted slices is now a regular grid perpendicular to them.
    assert volume.spacing_xyz_mm[2] == pytest.approx(series.spacing_xyz_mm[2])
    assert volume.shape_zyx == (series.size_xyz[2], 512, 512)


def test_uneven_slice_increment_is_resampled_with_a_warning(reference_root: Path) -> None:
    (series,) = discover(reference_root / "failing/sliceincrement/001")
    assert series.loadable
    (warning,) = series.warnings
    assert "Uneven slice spacing (5.00 to 10.00 mm" in warning
    volume = load(series)
    assert volume.warnings == series.warnings
    # Four slices at 0, 5, 10 and 20 mm become five on a 5 mm grid (one interpolated).
    assert series.file_count == 4
    assert volume.shape_zyx == (5, 512, 512)
    assert volume.spacing_xyz_mm[2] == pytest.approx(5.0, abs=0.01)


def test_uneven_and_tilted_increment_says_both(reference_root: Path) -> None:
    (series,) = discover(reference_root / "failing/sliceincrement/002")
    assert series.loadable
    assert any("Gantry tilt" in w for w in series.warnings)
    assert any("Uneven slice spacing" in w for w in series.warnings)
    assert load(series).warnings == series.warnings


def test_two_slices_load_as_two_slices(reference_root: Path) -> None:
    folder = reference_root / "failing/slicecount/001"
    volume = load(folder)
    assert volume.shape_zyx[0] == 2
    assert volume.warnings == ()
    assert_matches_reference(volume, folder.with_name(folder.name + SUFFIX))


def test_mixed_orientations_are_split_into_parts(reference_root: Path) -> None:
    folder = reference_root / "failing/sliceorientation/001"
    found = discover(folder)
    assert len(found) == 2
    assert all(s.loadable for s in found)
    uid = found[0].uid
    assert sorted(s.key for s in found) == [f"{uid}#1", f"{uid}#2"]
    assert all(any("several orientations" in w for w in s.warnings) for s in found)
    assert found[0].orientation != found[1].orientation
    assert sum(s.file_count for s in found) == 4
    for series in found:
        volume = load(series)
        assert volume.shape_zyx[0] == 2
        np.testing.assert_allclose(volume.direction_matrix()[:, 0], series.orientation[:3])
    with pytest.raises(ScanError, match="2 loadable series; pick one"):
        load(folder)


def test_not_a_volume_is_one_slice_repeated(reference_root: Path) -> None:
    """Four CT images at one table position (a bolus-tracking/dynamic monitor): no 3-D volume
    to build. We show the first acquisition as a one-slice volume and say so."""
    folder = reference_root / "failing/notavolume/001"
    datasets = {p: pydicom.dcmread(p) for p in sorted(folder.iterdir())}
    assert len({tuple(ds.ImagePositionPatient) for ds in datasets.values()}) == 1

    (series,) = discover(folder)
    assert series.kind is SeriesKind.SINGLE_IMAGE
    assert series.time_points == 4
    assert series.loadable
    assert any("4 time points" in w for w in series.warnings)
    assert any("single slice" in w for w in series.warnings)

    volume = load(series)
    assert volume.shape_zyx == (1, 512, 512)
    first = min(datasets.values(), key=lambda ds: int(ds.AcquisitionNumber))
    expected = first.pixel_array * float(first.RescaleSlope) + float(first.RescaleIntercept)
    np.testing.assert_array_equal(volume.array_zyx[0], expected)
