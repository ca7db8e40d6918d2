"""Damaged or inconsistent slices of a real DICOM series (issue 16): each gives a named error
or a warning that names the file and says what was done, never a plausible wrong volume.

The damaged inputs are copies of the Philips head CT in the shared data (28 slices of 512x512,
5 mm apart), altered byte by byte as a damaged copy or a fuzzer would alter them.
"""

from __future__ import annotations

import shutil
import struct
from dataclasses import replace
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from meddiag_desktop.cli import main
from meddiag_desktop.domain import SeriesInfo, SeriesKind, Volume
from meddiag_desktop.scans import ScanError, discover, load
from meddiag_desktop.scans.dicom_header import HeaderReader, read_header

HEAD_CT_SLICES = 28


@pytest.fixture(scope="session")
def head_ct(dicom_root: Path) -> SeriesInfo:
    """The head CT of the Philips folder, as discovery lists it undamaged."""
    found = [s for s in discover(dicom_root / "ct_philips_mixed_folder") if s.loadable]
    (series,) = found
    assert len(series.slices) == HEAD_CT_SLICES
    return series


@pytest.fixture(scope="session")
def head_ct_volume(head_ct: SeriesInfo) -> Volume:
    return load(head_ct)


def copy_head_ct(head_ct: SeriesInfo, folder: Path) -> list[Path]:
    """The head CT's files copied into ``folder``, in slice order (feet to head)."""
    folder.mkdir(parents=True)
    copies = []
    for ref in head_ct.slices:
        copies.append(folder / ref.path.name)
        shutil.copyfile(ref.path, copies[-1])
    return copies


def set_element(path: Path, tag: int, value: bytes) -> None:
    """Replace the value of a top-level explicit-VR element with 16-bit length in place, as a
    damaged copy would hold it (pydicom would refuse to write most of these values)."""
    item = pydicom.dcmread(path, stop_before_pixels=True).get_item(tag)
    assert item is not None and not isinstance(item, pydicom.DataElement), hex(tag)
    if len(value) % 2:
        value += b" "
    data = bytearray(path.read_bytes())
    data[item.value_tell - 2 : item.value_tell + item.length] = (
        struct.pack("<H", len(value)) + value
    )
    path.write_bytes(bytes(data))


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def only_loadable(folder: Path) -> SeriesInfo:
    (series,) = [s for s in discover(folder) if s.loadable]
    return series


def assert_geometry_finite(volume: Volume) -> None:
    for values in (volume.spacing_xyz_mm, volume.origin_lps_mm, volume.direction_lps):
        assert np.all(np.isfinite(values)), values
    assert all(v > 0 for v in volume.spacing_xyz_mm)


# --- 1. zero-length slices ---------------------------------------------------------------------


@pytest.mark.parametrize("which", [0, -1, 13], ids=["first", "last", "middle"])
def test_zero_length_slice_is_named_on_the_series(
    head_ct: SeriesInfo, tmp_path: Path, capsys: pytest.CaptureFixture[str], which: int
) -> None:
    """The emptied file used to vanish: the end slices without any word (the volume simply had
    27 slices), a middle one only as 'uneven spacing'."""
    victim = copy_head_ct(head_ct, tmp_path / "ct")[which]
    victim.write_bytes(b"")
    series = only_loadable(tmp_path / "ct")
    assert len(series.slices) == HEAD_CT_SLICES - 1
    (note,) = [w for w in series.warnings if victim.name in w]
    assert "is empty (0 bytes)" in note and "may be missing slices" in note
    unreadable = next(s for s in discover(tmp_path / "ct") if s.kind is SeriesKind.UNREADABLE)
    assert unreadable.files == (victim,)
    code, out, _err = run_cli(capsys, "scan", str(tmp_path / "ct"))
    assert code == 0
    assert f"warning: 1 damaged or unreadable file(s) beside this series ({victim.name}" in out
    assert any(victim.name in w for w in load(series).warnings)


def test_empty_file_with_a_dicom_name_is_reported_alone(tmp_path: Path) -> None:
    (tmp_path / "IM0001.dcm").write_bytes(b"")
    (series,) = discover(tmp_path)
    assert series.kind is SeriesKind.UNREADABLE
    assert "IM0001.dcm: is empty (0 bytes)" in series.reason
    with pytest.raises(ScanError, match=r"IM0001\.dcm: is empty"):
        load(tmp_path)


@pytest.mark.parametrize("keep", [60, 131], ids=["inside-preamble", "before-DICM"])
def test_slice_cut_inside_its_preamble_is_named(
    head_ct: SeriesInfo, tmp_path: Path, keep: int
) -> None:
    """Cut before the 'DICM' marker a file is not recognisable as DICOM: a DICOM file name (or
    a preamble of zeros) still says it was one."""
    victim = copy_head_ct(head_ct, tmp_path / "ct")[-1]
    with open(victim, "r+b") as handle:
        handle.truncate(keep)
    series = only_loadable(tmp_path / "ct")
    (note,) = [w for w in series.warnings if victim.name in w]
    assert "truncated" in note


# --- 2. non-finite geometry --------------------------------------------------------------------

POSITION, ORIENTATION, PIXEL_SPACING = 0x00200032, 0x00200037, 0x00280030


@pytest.mark.parametrize(
    ("tag", "value", "field"),
    [
        (POSITION, b"-115.0\\nan\\40.0", "ImagePositionPatient"),
        (POSITION, b"-115.0\\-130.0\\inf", "ImagePositionPatient"),
        (POSITION, b"1e308\\1e308\\1e308", "ImagePositionPatient"),
        (ORIENTATION, b"nan\\0\\0\\0\\1\\0", "ImageOrientationPatient"),
        (ORIENTATION, b"0\\0\\0\\0\\1\\0", "ImageOrientationPatient"),
        (PIXEL_SPACING, b"nan\\0.451", "PixelSpacing"),
        (PIXEL_SPACING, b"0\\0", "PixelSpacing"),
        (PIXEL_SPACING, b"-0.451\\0.451", "PixelSpacing"),
    ],
    ids=["pos-nan", "pos-inf", "pos-1e308", "ori-nan", "ori-zero", "px-nan", "px-zero", "px-neg"],
)
def test_slice_with_unusable_geometry_is_left_out_and_named(
    head_ct: SeriesInfo,
    head_ct_volume: Volume,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    tag: int,
    value: bytes,
    field: str,
) -> None:
    """A NaN position used to make 'nan mm' spacing, a NaN NIfTI from convert with exit 0, a
    TypeError in infer and a NOT NULL failure in import."""
    files = copy_head_ct(head_ct, tmp_path / "ct")
    victim = files[10]
    set_element(victim, tag, value)
    code, out, _err = run_cli(capsys, "scan", str(tmp_path / "ct"))
    assert code == 0
    summary = next(line for line in out.splitlines() if "STD BRAIN" in line)
    assert "nan" not in summary and "inf" not in summary, summary
    warning = next(line for line in out.splitlines() if victim.name in line)
    assert "left out" in warning and field in warning, out
    out_file = tmp_path / "ct.nii.gz"
    code, out, err = run_cli(capsys, "convert", str(tmp_path / "ct"), "--out", str(out_file))
    assert code == 0, err
    assert victim.name in err and "left out" in err
    written = sitk.ReadImage(str(out_file))
    assert np.all(np.isfinite(written.GetSpacing())) and np.all(np.isfinite(written.GetOrigin()))
    assert np.all(np.isfinite(written.GetDirection()))
    volume = load(tmp_path / "ct")
    assert_geometry_finite(volume)
    # the gap the slice left is interpolated, every other slice is the undamaged one
    assert volume.shape_zyx == head_ct_volume.shape_zyx
    assert volume.spacing_xyz_mm == pytest.approx(head_ct_volume.spacing_xyz_mm)
    kept = [k for k in range(HEAD_CT_SLICES) if k != 10]
    np.testing.assert_allclose(volume.array_zyx[kept], head_ct_volume.array_zyx[kept])


def test_slice_with_nan_position_imports_and_infers_with_the_warning(
    head_ct: SeriesInfo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same damage used to end `import` with a NOT NULL failure and `infer` with a
    TypeError traceback: both now finish, on finite geometry, and say which slice was left out."""
    files = copy_head_ct(head_ct, tmp_path / "ct")
    victim = files[10]
    set_element(victim, 0x00200032, b"-115.5\\nan\\721.21")
    db = f"sqlite:///{tmp_path / 'cases.sqlite3'}"
    code, out, err = run_cli(capsys, "import", str(tmp_path / "ct"), "--db", db, "--json")
    assert code == 0, err
    assert "STD BRAIN" in out
    code, out, err = run_cli(
        capsys, "infer", str(tmp_path / "ct"), "--model", "demo-lung-nodules",
        "--out", str(tmp_path / "pred"), "--db", db, "--force-anatomy",
    )
    assert code == 0, err
    findings = (tmp_path / "pred" / "findings.json").read_text()
    assert victim.name in findings and "left out" in findings
    mask = sitk.ReadImage(str(tmp_path / "pred" / "mask.nii.gz"))
    assert np.all(np.isfinite(mask.GetSpacing())) and np.all(np.isfinite(mask.GetOrigin()))


def test_series_whose_every_slice_has_nan_spacing_is_refused(
    head_ct: SeriesInfo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = copy_head_ct(head_ct, tmp_path / "ct")
    for path in files:
        set_element(path, PIXEL_SPACING, b"nan\\nan")
    (series,) = discover(tmp_path / "ct")
    assert not series.loadable
    assert "PixelSpacing" in series.reason and files[0].name in series.reason
    code, _out, err = run_cli(capsys, "convert", str(tmp_path / "ct"), "--out", "x.nii.gz")
    assert code == 2
    assert "PixelSpacing" in err and any(path.name in err for path in files)


def test_single_slice_with_nan_thickness_gets_a_finite_spacing(
    head_ct: SeriesInfo, tmp_path: Path
) -> None:
    """A single slice takes its thickness from SliceThickness: a NaN there is not a size."""
    (only,) = copy_head_ct(head_ct, tmp_path / "all")[5:6]
    (tmp_path / "one").mkdir()
    victim = shutil.move(only, tmp_path / "one" / only.name)
    set_element(Path(victim), 0x00180050, b"nan")
    volume = load(tmp_path / "one")
    assert_geometry_finite(volume)
    assert any("SliceThickness" in w for w in volume.warnings)


def test_nan_rescale_is_named_not_a_crash(head_ct: SeriesInfo, tmp_path: Path) -> None:
    victim = copy_head_ct(head_ct, tmp_path / "ct")[4]
    set_element(victim, 0x00281053, b"nan")  # RescaleSlope
    series = only_loadable(tmp_path / "ct")
    assert any(victim.name in w and "RescaleSlope" in w for w in series.warnings)
    assert victim not in series.files
    volume = load(series)
    assert np.all(np.isfinite(volume.array_zyx))


# --- 3. pixel layout differing from the series' -------------------------------------------------


def write_as_32_bit(path: Path) -> None:
    """The same values, stored in 32 bits: a consistent file, unlike the rest of its series."""
    ds = pydicom.dcmread(path)
    values = ds.pixel_array.astype(np.uint32)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 32, 32, 31
    ds.PixelData = values.tobytes()
    ds.save_as(path)


def test_consistent_32_bit_slice_in_a_16_bit_series_is_not_read_as_16_bit(
    head_ct: SeriesInfo, head_ct_volume: Volume, tmp_path: Path
) -> None:
    """The slice was read with the series' 16-bit layout: half its pixels garbage, exit 0."""
    files = copy_head_ct(head_ct, tmp_path / "ct")
    victim = files[12]
    write_as_32_bit(victim)
    series = only_loadable(tmp_path / "ct")
    assert victim not in series.files
    (note,) = [w for w in series.warnings if victim.name in w]
    assert "left out" in note and "BitsAllocated 32" in note and "16" in note
    volume = load(series)
    kept = [k for k in range(HEAD_CT_SLICES) if k != 12]
    np.testing.assert_allclose(volume.array_zyx[kept], head_ct_volume.array_zyx[kept])


@pytest.mark.parametrize(
    ("tag", "value", "words"),
    [
        (0x00280100, 32, "BitsAllocated 32"),  # declared 32 bits, 16-bit pixel data
        (0x00280010, 256, "256x512"),  # Rows halved: the pixel data holds twice that
        (0x00280011, 1024, "512x1024"),  # Columns doubled: the pixel data holds half
    ],
    ids=["bits-allocated", "rows", "columns"],
)
def test_pixel_data_length_must_match_the_declared_layout(
    head_ct: SeriesInfo,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    tag: int,
    value: int,
    words: str,
) -> None:
    files = copy_head_ct(head_ct, tmp_path / "ct")
    victim = files[0]
    item = pydicom.dcmread(victim, stop_before_pixels=True).get_item(tag)
    data = bytearray(victim.read_bytes())
    data[item.value_tell : item.value_tell + 2] = struct.pack("<H", value)
    victim.write_bytes(bytes(data))
    header = read_header(victim)
    assert "pixel data" in header.damage and words in header.damage
    code, out, _err = run_cli(capsys, "scan", str(tmp_path / "ct"))
    assert code == 0
    assert "loadable as a 3-D volume" in out and "1 loadable" not in out
    assert victim.name in out
    code, _out, err = run_cli(capsys, "convert", str(tmp_path / "ct"), "--out", "x.nii.gz")
    assert code == 2
    assert victim.name in err and words in err


@pytest.mark.parametrize(
    ("tag", "value"),
    [
        (0x00280100, 32),  # BitsAllocated
        (0x00280101, 16),  # BitsStored
        (0x00280102, 15),  # HighBit
        (0x00280103, 1),  # PixelRepresentation
        (0x00280010, 256),  # Rows
        (0x00280011, 256),  # Columns
        (0x00280002, 3),  # SamplesPerPixel
    ],
)
def test_layout_memo_reads_each_files_own_pixel_layout(
    head_ct: SeriesInfo, tmp_path: Path, tag: int, value: int
) -> None:
    """The header reader's per-file layout memo must give what walking the file alone gives
    for every field that changes how pixels are read, whichever file of the series differs."""
    files = copy_head_ct(head_ct, tmp_path / "ct")
    for victim in (files[0], files[14], files[-1]):
        item = pydicom.dcmread(victim, stop_before_pixels=True).get_item(tag)
        data = bytearray(victim.read_bytes())
        data[item.value_tell : item.value_tell + 2] = struct.pack("<H", value)
        victim.write_bytes(bytes(data))
    reader = HeaderReader()
    for path in files:
        assert reader.read(path) == read_header(path), path
    assert reader._hits > HEAD_CT_SLICES // 2


def test_photometric_change_on_one_slice_is_left_out(head_ct: SeriesInfo, tmp_path: Path) -> None:
    """MONOCHROME1 shows the same numbers inverted: one such slice cannot join the stack."""
    victim = copy_head_ct(head_ct, tmp_path / "ct")[20]
    set_element(victim, 0x00280004, b"MONOCHROME1")
    series = only_loadable(tmp_path / "ct")
    (note,) = [w for w in series.warnings if victim.name in w]
    assert "PhotometricInterpretation MONOCHROME1" in note


# --- 4. outlying positions ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("which", "position"),
    [(9, b"0\\0\\0"), (0, b"0\\0\\0"), (-1, b"-115.0\\-130.0\\900.0")],
    ids=["middle-origin", "first-origin", "last-far-along"],
)
def test_outlying_slice_is_left_out_not_interpolated_across(
    head_ct: SeriesInfo,
    head_ct_volume: Volume,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    which: int,
    position: bytes,
) -> None:
    """One wild position made the series 'uneven': resampled across hundreds of millimetres
    into hundreds of slices with only the uneven-spacing warning."""
    files = copy_head_ct(head_ct, tmp_path / "ct")
    original = pydicom.dcmread(files[which], stop_before_pixels=True).ImagePositionPatient
    victim = files[which]
    if which == -1:
        x, y = original[0], original[1]
        position = f"{x}\\{y}\\{float(original[2]) + 900}".encode()
    set_element(victim, POSITION, position)
    series = only_loadable(tmp_path / "ct")
    assert victim not in series.files
    (note,) = [w for w in series.warnings if victim.name in w]
    assert "left out" in note and "position" in note
    assert series.size_xyz[2] <= HEAD_CT_SLICES
    code, out, _err = run_cli(capsys, "scan", str(tmp_path / "ct"))
    assert code == 0 and victim.name in out
    volume = load(series)
    assert volume.shape_zyx[0] <= HEAD_CT_SLICES
    assert volume.spacing_xyz_mm[2] == pytest.approx(5.0)
    assert not any("Gantry tilt" in w for w in volume.warnings)


def test_gantry_tilt_keeps_every_slice(dicom_root: Path) -> None:
    """Genuine uneven gaps (1.08 to 7.00 mm) with an 18.5 degree tilt are no outliers."""
    (series,) = [s for s in discover(dicom_root / "ct_ge_gantry_tilt") if s.loadable]
    assert len(series.slices) == series.file_count
    assert not any("left out" in w for w in series.warnings)
    assert any("Gantry tilt" in w for w in series.warnings)


def test_regular_series_without_outliers_is_untouched(head_ct: SeriesInfo) -> None:
    assert head_ct.warnings == ()
    assert len(head_ct.files) == HEAD_CT_SLICES


def test_load_refuses_a_series_whose_geometry_is_not_finite(head_ct: SeriesInfo) -> None:
    """The last gate, for a SeriesInfo that did not come from this discovery (kept from an
    earlier listing, or built by hand): no NaN geometry reaches a Volume."""
    refs = list(head_ct.slices)
    x, y, _z = refs[3].position_lps_mm
    refs[3] = replace(refs[3], position_lps_mm=(x, y, float("nan")))
    with pytest.raises(ScanError, match="geometry is not usable"):
        load(replace(head_ct, slices=tuple(refs)))


def test_multiframe_frame_with_nan_position_is_refused(head_ct: SeriesInfo, tmp_path: Path) -> None:
    """An enhanced file keeps positions in functional groups: a NaN there is refused too."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence as DicomSequence
    from pydicom.uid import EnhancedCTImageStorage

    ds = pydicom.dcmread(head_ct.slices[0].path)
    frames = 4
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = EnhancedCTImageStorage
    ds.NumberOfFrames = frames
    ds.PixelData = ds.PixelData * frames
    shared = Dataset()
    shared.PixelMeasuresSequence = DicomSequence([Dataset()])
    shared.PixelMeasuresSequence[0].PixelSpacing = [0.45, 0.45]
    shared.PlaneOrientationSequence = DicomSequence([Dataset()])
    shared.PlaneOrientationSequence[0].ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
    per_frame = []
    for k in range(frames):
        item = Dataset()
        item.PlanePositionSequence = DicomSequence([Dataset()])
        item.PlanePositionSequence[0].ImagePositionPatient = [0.0, 0.0, 5.0 * k]
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(per_frame)
    ds.save_as(tmp_path / "good.dcm")
    assert only_loadable(tmp_path).kind is SeriesKind.MULTI_FRAME
    position = per_frame[2].PlanePositionSequence[0]
    position["ImagePositionPatient"].value = [0.0, 0.0, float("nan")]
    (tmp_path / "good.dcm").unlink()
    ds.save_as(tmp_path / "bad.dcm")
    (series,) = discover(tmp_path)
    assert not series.loadable
    assert "frame 3" in series.reason and "ImagePositionPatient" in series.reason


def test_slice_cut_inside_a_non_zero_preamble_is_named(tmp_path: Path, write_series) -> None:
    """Some writers fill the preamble: a slice cut inside it looks like no DICOM file at all,
    but it is named like the other slices and sits among them."""
    written = write_series(tmp_path / "ct", [(0.0, 0.0, float(z)) for z in range(5)])
    paths = [source.with_name(f"IM{1000 + n}") for n, source in enumerate(written)]  # no .dcm
    for source, path in zip(written, paths, strict=True):
        data = bytearray(source.read_bytes())
        data[:128] = b"vendor preamble ".ljust(128, b"-")
        path.write_bytes(bytes(data))
        source.unlink()
    victim = paths[-1]
    victim.write_bytes(victim.read_bytes()[:102])
    series = only_loadable(tmp_path / "ct")
    assert len(series.slices) == 4
    assert any(victim.name in w and "may be missing slices" in w for w in series.warnings)


def test_notes_beside_a_series_are_not_slices(tmp_path: Path, write_series) -> None:
    write_series(tmp_path / "ct", [(0.0, 0.0, float(z)) for z in range(3)])
    (tmp_path / "ct" / "notes.txt").write_text("first scan of the day\n")
    assert only_loadable(tmp_path / "ct").warnings == ()
