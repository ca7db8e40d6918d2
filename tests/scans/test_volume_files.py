"""Single-file volumes (NIfTI, MHA, and the formats we refuse) from ../shared/data/volumes.

Expected sizes and spacings come from the files' own headers parsed here with ``struct`` (not
through SimpleITK, which loads them) and from the data README.
"""

from __future__ import annotations

import gzip
import os
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from meddiag_desktop.domain import SeriesKind
from meddiag_desktop.scans import ScanError, discover, load

BRATS = "brats_tumour/brats2015TrainingData"
BRATS_CASES = {
    "test": ["brats_2013_pat0001_1", "brats_2013_pat0002_1"],
    "train": ["brats_2013_pat0005_1", "brats_2013_pat0006_1"],
    "validation": ["brats_2013_pat0003_1", "brats_2013_pat0004_1"],
}
BRATS_FILES = [
    "Flair_subtrMeanDivStd.nii.gz",
    "T1c_subtrMeanDivStd.nii.gz",
    "OTMultiClass.nii.gz",
    "brainmask.nii.gz",
]
LOADABLE = [
    *(
        f"{BRATS}/{split}/{case}/{name}"
        for split, cases in BRATS_CASES.items()
        for case in cases
        for name in BRATS_FILES
    ),
    "ct_abdomen_small/example_ct_sm.nii.gz",
    "ct_abdomen_small/example_seg.nii.gz",
    "mr_abdomen_small/example_mr_sm.nii.gz",
    "mr_abdomen_small/example_seg_mr.nii.gz",
    "mr_spine_t2/t2.nii.gz",
    "mr_spine_t2/t2_seg-manual.nii.gz",
    "formats/mha.mha",
    "formats/pcasl.nii.gz",
]
REFUSED = ["formats/ct_perfusion.nii.gz", "formats/norm.mgz"]
# From ../shared/data/README.md: (size x, y, z), (spacing x, y, z) in mm.
README = {
    "ct_abdomen_small/example_ct_sm.nii.gz": ((122, 101, 30), (3.0, 3.0, 3.0)),
    "mr_abdomen_small/example_mr_sm.nii.gz": ((117, 91, 20), (3.0, 3.0, 3.0)),
    "mr_spine_t2/t2.nii.gz": ((60, 55, 52), None),
    **{p: ((240, 240, 155), (1.0, 1.0, 1.0)) for p in LOADABLE if p.startswith(BRATS)},
}
# Label maps and the image whose grid they are on.
ON_GRID_OF = {
    "ct_abdomen_small/example_seg.nii.gz": "ct_abdomen_small/example_ct_sm.nii.gz",
    "mr_abdomen_small/example_seg_mr.nii.gz": "mr_abdomen_small/example_mr_sm.nii.gz",
    "mr_spine_t2/t2_seg-manual.nii.gz": "mr_spine_t2/t2.nii.gz",
    **{
        p: p.rsplit("/", 1)[0] + "/Flair_subtrMeanDivStd.nii.gz"
        for p in LOADABLE
        if p.startswith(BRATS) and not p.endswith("Flair_subtrMeanDivStd.nii.gz")
    },
}
NIFTI_FLOAT32 = 16


def nifti_header(path: Path) -> tuple[tuple[int, ...], tuple[float, ...], int]:
    """(dim[1..ndim], pixdim[1..ndim], datatype) of a NIfTI-1 file, read with struct."""
    with gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb") as handle:
        raw = handle.read(348)
    order = "<" if struct.unpack_from("<i", raw)[0] == 348 else ">"
    assert struct.unpack_from(order + "i", raw)[0] == 348, "not a NIfTI-1 header"
    dim = struct.unpack_from(order + "8h", raw, 40)
    (datatype,) = struct.unpack_from(order + "h", raw, 70)
    pixdim = struct.unpack_from(order + "8f", raw, 76)
    ndim = dim[0]
    return tuple(dim[1 : ndim + 1]), tuple(pixdim[1 : ndim + 1]), datatype


def metaimage_header(path: Path) -> tuple[tuple[int, ...], tuple[float, ...]]:
    fields: dict[str, str] = {}
    with open(path, "rb") as handle:
        for line in handle:
            key, _, value = line.decode("latin-1").partition("=")
            fields[key.strip()] = value.strip()
            if key.strip() == "ElementDataFile":
                break
    size = tuple(int(v) for v in fields["DimSize"].split())
    spacing = tuple(float(v) for v in fields["ElementSpacing"].split())
    return size, spacing


def expected_geometry(path: Path) -> tuple[tuple[int, ...], tuple[float, ...]]:
    if path.suffix == ".mha":
        size, spacing = metaimage_header(path)
    else:
        size, spacing, _datatype = nifti_header(path)
    return size[:3], spacing[:3]


def test_every_volume_file_is_covered(volumes_root: Path) -> None:
    found = sorted(
        str(p.relative_to(volumes_root))
        for p in volumes_root.rglob("*")
        if p.is_file() and p.name.endswith((".nii.gz", ".nii", ".mha", ".nrrd", ".mgz"))
    )
    assert found == sorted(LOADABLE + REFUSED)


@pytest.mark.slow
@pytest.mark.parametrize("relative", LOADABLE)
def test_volume_loads_with_its_size_and_spacing(volumes_root: Path, relative: str) -> None:
    path = volumes_root / relative
    size, spacing = expected_geometry(path)
    volume = load(path)
    assert volume.size_xyz == size
    assert volume.spacing_xyz_mm == pytest.approx(spacing, abs=1e-4)
    if relative in README:
        readme_size, readme_spacing = README[relative]
        assert volume.size_xyz == readme_size
        if readme_spacing is not None:
            assert volume.spacing_xyz_mm == pytest.approx(readme_spacing, abs=1e-4)
    matrix = volume.direction_matrix()
    np.testing.assert_allclose(matrix.T @ matrix, np.eye(3), atol=1e-5)
    if relative != "formats/pcasl.nii.gz":
        assert volume.warnings == ()
    if path.name.endswith(".nii.gz") and nifti_header(path)[2] == NIFTI_FLOAT32:
        assert volume.array_zyx.dtype == np.float32
    if relative in ON_GRID_OF:
        image = load(volumes_root / ON_GRID_OF[relative])
        assert volume.shape_zyx == image.shape_zyx
        np.testing.assert_allclose(volume.origin_lps_mm, image.origin_lps_mm, atol=1e-3)
        np.testing.assert_allclose(volume.direction_lps, image.direction_lps, atol=1e-5)


def test_brats_images_are_float32_z_scores(volumes_root: Path) -> None:
    case = volumes_root / BRATS / "train" / "brats_2013_pat0005_1"
    for name in ("Flair_subtrMeanDivStd.nii.gz", "T1c_subtrMeanDivStd.nii.gz"):
        volume = load(case / name)
        assert volume.array_zyx.dtype == np.float32, name
        brain = load(case / "brainmask.nii.gz").array_zyx > 0
        inside = volume.array_zyx[brain]
        assert abs(float(inside.mean())) < 0.5, name
        assert 0.5 < float(inside.std()) < 2.0, name
    labels = np.unique(load(case / "OTMultiClass.nii.gz").array_zyx)
    assert set(labels.tolist()) <= {0, 1, 2, 3, 4}


def test_4d_pcasl_gives_its_first_volume_with_a_warning(volumes_root: Path) -> None:
    path = volumes_root / "formats/pcasl.nii.gz"
    size, _spacing, _datatype = nifti_header(path)
    assert len(size) == 4
    volume = load(path)
    assert volume.size_xyz == size[:3]
    assert volume.warnings == (f"4-D image with {size[3]} volumes: the first is loaded.",)
    everything = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))  # (t, z, y, x)
    np.testing.assert_array_equal(volume.array_zyx, everything[0])
    assert not np.array_equal(volume.array_zyx, everything[1])


def test_rgb_nifti_is_refused_as_colour(volumes_root: Path) -> None:
    path = volumes_root / "formats/ct_perfusion.nii.gz"
    with pytest.raises(ScanError) as caught:
        load(path)
    assert caught.value.path == path
    assert "ct_perfusion.nii.gz" in str(caught.value)
    assert "colour" in str(caught.value)


def test_mgz_is_refused_with_a_conversion_hint(volumes_root: Path) -> None:
    path = volumes_root / "formats/norm.mgz"
    with pytest.raises(ScanError, match="MGZ") as caught:
        load(path)
    assert "norm.mgz" in str(caught.value)
    assert "NIfTI" in caught.value.reason


def test_formats_folder_lists_what_loads_and_why_the_rest_does_not(volumes_root: Path) -> None:
    found = {s.files[0].name: s for s in discover(volumes_root / "formats")}
    assert sorted(found) == ["ct_perfusion.nii.gz", "mha.mha", "norm.mgz", "pcasl.nii.gz"]
    assert all(s.kind is SeriesKind.FILE for s in found.values())
    assert found["mha.mha"].loadable
    assert found["pcasl.nii.gz"].loadable
    assert "4-D image" in found["pcasl.nii.gz"].warnings[0]
    assert not found["ct_perfusion.nii.gz"].loadable
    assert "colour" in found["ct_perfusion.nii.gz"].reason
    assert not found["norm.mgz"].loadable
    assert "MGZ" in found["norm.mgz"].reason


@pytest.mark.parametrize("kept", [0.5, 0.99, 0.9999])
def test_truncated_nifti_gz_names_the_file(volumes_root: Path, tmp_path: Path, kept: float) -> None:
    """SimpleITK reads a truncated .nii.gz without complaint, zeros where data is missing."""
    source = volumes_root / "ct_abdomen_small/example_ct_sm.nii.gz"
    damaged = tmp_path / "half_ct.nii.gz"
    data = source.read_bytes()
    damaged.write_bytes(data[: int(len(data) * kept)])
    with pytest.raises(ScanError) as caught:
        load(damaged)
    assert caught.value.path == damaged
    assert "half_ct.nii.gz" in str(caught.value)
    assert "truncated" in caught.value.reason


def test_truncated_plain_nifti_names_the_file(volumes_root: Path, tmp_path: Path) -> None:
    with gzip.open(volumes_root / "mr_spine_t2/t2.nii.gz", "rb") as source:
        data = source.read()
    damaged = tmp_path / "t2.nii"
    damaged.write_bytes(data[:-100])
    with pytest.raises(ScanError) as caught:
        load(damaged)
    assert caught.value.path == damaged
    assert "truncated" in caught.value.reason  # the reason, not the test's tmp_path name


def test_multi_member_gzip_nifti_loads(volumes_root: Path, tmp_path: Path) -> None:
    """bgzip-style files (several gzip members) have no whole-file size in their trailer."""
    source = volumes_root / "mr_spine_t2/t2.nii.gz"
    with gzip.open(source, "rb") as handle:
        data = handle.read()
    blocks = gzip.compress(data[:5000]) + gzip.compress(data[5000:]) + gzip.compress(b"")
    (tmp_path / "blocks.nii.gz").write_bytes(blocks)
    np.testing.assert_array_equal(
        load(tmp_path / "blocks.nii.gz").array_zyx, load(source).array_zyx
    )


def test_truncated_metaimage_says_truncated(volumes_root: Path, tmp_path: Path) -> None:
    """MetaImage reports a short file as "No such file or directory": say what it is."""
    data = (volumes_root / "formats/mha.mha").read_bytes()
    damaged = tmp_path / "short.mha"
    damaged.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ScanError) as caught:
        load(damaged)
    assert caught.value.path == damaged
    assert "truncated" in caught.value.reason


def test_random_bytes_named_nifti_names_the_file(tmp_path: Path) -> None:
    fake = tmp_path / "noise.nii.gz"
    fake.write_bytes(np.random.default_rng(7).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(ScanError) as caught:
        load(fake)
    assert "noise.nii.gz" in str(caught.value)
    (series,) = discover(tmp_path)
    assert not series.loadable
    assert series.reason


def test_nii_gz_beside_a_different_nii_loads_its_own_content(
    volumes_root: Path, tmp_path: Path
) -> None:
    """PITFALLS: SimpleITK has read X.nii when asked for X.nii.gz with both in one folder."""
    wanted = volumes_root / "ct_abdomen_small/example_ct_sm.nii.gz"
    other = volumes_root / "mr_spine_t2/t2.nii.gz"
    shutil.copyfile(wanted, tmp_path / "X.nii.gz")
    with gzip.open(other, "rb") as source, open(tmp_path / "X.nii", "wb") as target:
        shutil.copyfileobj(source, target)

    volume = load(tmp_path / "X.nii.gz")
    expected = load(wanted)
    np.testing.assert_array_equal(volume.array_zyx, expected.array_zyx)
    assert volume.spacing_xyz_mm == expected.spacing_xyz_mm
    assert load(tmp_path / "X.nii").size_xyz == (60, 55, 52)

    listed = {s.files[0].name: s for s in discover(tmp_path)}
    assert listed["X.nii.gz"].size_xyz == (122, 101, 30)
    assert listed["X.nii"].size_xyz == (60, 55, 52)
    assert sorted(os.listdir(tmp_path)) == ["X.nii", "X.nii.gz"]  # no stray temporary files
