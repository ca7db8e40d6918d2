"""Damaged or inconsistent NIfTI/MHA/NRRD files: a named error, never a plausible wrong volume.

Each damaged file is a copy of a real one from ../shared/data/volumes, changed in one way found
by mutating real files (issue 16): flipped bytes mid-stream, a stream cut after its header, a
truncated file listed as loadable, datatype/bitpix disagreeing, nonsense voxel sizes, origins
and directions. SimpleITK reads every one of them without an error.
"""

from __future__ import annotations

import gzip
import math
import re
import struct
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from meddiag_desktop import cli
from meddiag_desktop.domain import IDENTITY_DIRECTION, Volume
from meddiag_desktop.scans import ScanError, discover, load
from meddiag_desktop.scans.file_formats import verified_for_import
from meddiag_desktop.scans.volume_geometry import checked

CT = "ct_abdomen_small/example_ct_sm.nii.gz"
T2 = "mr_spine_t2/t2.nii.gz"
NAN, INF = float("nan"), float("inf")


def flip_middle(data: bytes, count: int = 64) -> bytes:
    """``count`` bytes inverted in the middle of the file; gzip header and trailer untouched."""
    damaged = bytearray(data)
    middle = len(data) // 2
    damaged[middle : middle + count] = bytes(b ^ 0xFF for b in damaged[middle : middle + count])
    return bytes(damaged)


def nifti_with(source: Path, target: Path, edits: list[tuple[str, int, float]]) -> Path:
    """An uncompressed or gzipped (by ``target``'s name) copy of a NIfTI with header fields set."""
    with gzip.open(source, "rb") as handle:
        data = bytearray(handle.read())
    for fmt, offset, value in edits:
        struct.pack_into(fmt, data, offset, value)
    payload = gzip.compress(bytes(data)) if target.name.endswith(".gz") else bytes(data)
    target.write_bytes(payload)
    return target


def refused(path: Path) -> str:
    """The reason a file is refused both when loaded and when listed (they must agree)."""
    with pytest.raises(ScanError) as caught:
        load(path)
    assert caught.value.path == path
    (listed,) = discover(path)
    assert not listed.loadable
    assert listed.reason
    return caught.value.reason


def refused_on_load(path: Path) -> str:
    """The reason a file whose damage only a full inflate shows is refused when loaded and
    when imported (a listing reads headers and sizes only, and may call it loadable)."""
    with pytest.raises(ScanError) as caught:
        load(path)
    assert caught.value.path == path
    (checked_for_import,) = [verified_for_import(s) for s in discover(path)]
    assert not checked_for_import.loadable
    assert checked_for_import.reason == caught.value.reason
    return caught.value.reason


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# 1. Flipped bytes: the whole-stream CRC is checked.


def test_flipped_bytes_mid_stream_are_refused(volumes_root: Path, tmp_path: Path) -> None:
    """SimpleITK loaded this copy with half its voxels wrong: the gzip CRC was never checked."""
    source = volumes_root / CT
    damaged = tmp_path / "flipped.nii.gz"
    damaged.write_bytes(flip_middle(source.read_bytes()))
    loaded_anyway = sitk.GetArrayFromImage(sitk.ReadImage(str(damaged)))
    assert np.mean(loaded_anyway != load(source).array_zyx) > 0.2  # the damage is real

    with pytest.raises(ScanError) as caught:
        load(damaged)
    assert caught.value.path == damaged
    assert "fails the gzip checksum (CRC)" in caught.value.reason


def test_flipped_bytes_in_a_scaled_nifti_are_refused(volumes_root: Path, tmp_path: Path) -> None:
    """A file SimpleITK rescales (scl_slope) cannot be checked against its own buffer: the
    loader inflates it again, which catches the damage too."""
    source = next((volumes_root / "brats_tumour").rglob("brainmask.nii.gz"))
    np.testing.assert_array_equal(
        load(source).array_zyx, sitk.GetArrayFromImage(sitk.ReadImage(str(source)))
    )  # the undamaged scaled file loads
    damaged = tmp_path / "brainmask.nii.gz"
    damaged.write_bytes(flip_middle(source.read_bytes()))
    with pytest.raises(ScanError, match="checksum"):
        load(damaged)


def test_flipped_bytes_in_one_gzip_member_are_refused(volumes_root: Path, tmp_path: Path) -> None:
    with gzip.open(volumes_root / T2, "rb") as handle:
        data = handle.read()
    first = bytearray(gzip.compress(data[:200_000]))
    first[len(first) // 2] ^= 0x55
    (tmp_path / "blocks.nii.gz").write_bytes(bytes(first) + gzip.compress(data[200_000:]))
    assert "damaged" in refused(tmp_path / "blocks.nii.gz")


def test_flipped_bytes_are_neither_converted_nor_imported(
    volumes_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    damaged = tmp_path / "in" / "flipped.nii.gz"
    damaged.parent.mkdir()
    damaged.write_bytes(flip_middle((volumes_root / CT).read_bytes()))

    code, _, err = run_cli(capsys, "convert", str(damaged), "--out", str(tmp_path / "o.nii.gz"))
    assert code == 2
    assert "flipped.nii.gz" in err and "checksum" in err
    assert not (tmp_path / "o.nii.gz").exists()

    db = f"sqlite:///{tmp_path / 'cases.db'}"
    code, out, _ = run_cli(capsys, "import", str(damaged.parent), "--db", db)
    assert code == 0
    assert "skipped" in out and "checksum" in out
    assert "0 new case(s)" in out
    code, out, _ = run_cli(capsys, "cases", "list", "--db", db)
    assert out.strip() == "No cases."


# 2 and 3. Truncation: refused when loaded, and listed as not loadable with the reason.


@pytest.mark.parametrize("kept", [200, 250, 300])
def test_nii_gz_cut_after_its_header_is_not_an_empty_scan(
    volumes_root: Path, tmp_path: Path, kept: int
) -> None:
    """SimpleITK loads such a stub as an all-zero volume."""
    damaged = tmp_path / "stub.nii.gz"
    damaged.write_bytes((volumes_root / CT).read_bytes()[:kept])
    assert "truncated" in refused(damaged)


@pytest.mark.parametrize("name", ["half.nii.gz", "half.nii"])
def test_truncated_nifti_is_listed_as_not_loadable(
    volumes_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    with gzip.open(volumes_root / T2, "rb") as handle:
        data = handle.read()
    half = data[: len(data) // 2]
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / name).write_bytes(gzip.compress(half) if name.endswith(".gz") else half)

    (listed,) = discover(folder)
    assert not listed.loadable
    assert re.search(
        r"truncated.*171,776 of the 343,552|truncated: 171,776 of 343,552", listed.reason
    )

    code, out, _ = run_cli(capsys, "scan", str(folder))
    assert code == 0 and "NOT loadable" in out and "truncated" in out
    db = f"sqlite:///{tmp_path / 'cases.db'}"
    code, out, _ = run_cli(capsys, "import", str(folder), "--db", db)
    assert "0 new case(s)" in out and "truncated" in out


# 4. datatype and bitpix must agree (SimpleITK reads by datatype, sizes were checked by bitpix).


def test_datatype_and_bitpix_that_disagree_are_refused(volumes_root: Path, tmp_path: Path) -> None:
    damaged = nifti_with(volumes_root / T2, tmp_path / "float.nii", [("<h", 70, 16)])
    assert refused(damaged).endswith(
        "has an inconsistent header: datatype 16 (float32) implies 32 bits per voxel, "
        "but bitpix says 16"
    )


# 5. Voxel size, origin and direction: never silently 1 mm, 0 or skewed.


@pytest.mark.parametrize("axis", [1, 3])
@pytest.mark.parametrize("value", [NAN, 0.0, -2.0, INF])
def test_nonsense_pixdim_is_refused(
    volumes_root: Path, tmp_path: Path, axis: int, value: float
) -> None:
    """SimpleITK made NaN/0/inf 1 mm, and -2 2 mm with the axis mirrored."""
    damaged = nifti_with(volumes_root / T2, tmp_path / "t2.nii.gz", [("<f", 76 + 4 * axis, value)])
    assert f"pixdim[{axis}] is {value:g}" in refused(damaged)


@pytest.mark.parametrize(
    ("field", "edits"),
    [
        ("qform", [("<h", 254, 0), ("<f", 268, NAN)]),  # SimpleITK: origin x silently 0
        ("qform", [("<h", 254, 0), ("<f", 256, NAN)]),  # a NaN quaternion
        ("sform", [("<f", 292, NAN)]),  # SimpleITK: NaN origin
    ],
)
def test_non_finite_nifti_orientation_is_refused(
    volumes_root: Path, tmp_path: Path, field: str, edits: list
) -> None:
    damaged = nifti_with(volumes_root / T2, tmp_path / "t2.nii", edits)
    assert f"non-finite value (NaN or infinity) in its {field}" in refused(damaged)


def _metaimage_with(volumes_root: Path, target: Path, key: str, value: str) -> Path:
    data = (volumes_root / "formats/mha.mha").read_bytes()
    end = data.index(b"ElementDataFile")
    header = re.sub(rf"{key} = [^\n]*\n", f"{key} = {value}\n", data[:end].decode())
    target.write_bytes(header.encode() + data[end:])
    return target


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("ElementSpacing", "nan 1 1", "ElementSpacing = 'nan 1 1'"),
        ("ElementSpacing", "0 1 1", "ElementSpacing = '0 1 1'"),
        ("ElementSpacing", "-2 1 1", "ElementSpacing = '-2 1 1'"),  # SimpleITK: 2, unmirrored
        ("Offset", "nan 0 0", "invalid Offset"),  # SimpleITK: origin 0
        ("Offset", "inf 0 0", "invalid Offset"),
        ("TransformMatrix", "2 0 0 0 1 0 0 0 1", "not orthonormal"),
        ("TransformMatrix", "1 1 0 0 1 0 0 0 1", "not orthonormal"),
    ],
)
def test_nonsense_metaimage_geometry_is_refused(
    volumes_root: Path, tmp_path: Path, key: str, value: str, expected: str
) -> None:
    damaged = _metaimage_with(volumes_root, tmp_path / "bad.mha", key, value)
    assert expected in refused(damaged)


def _nrrd_with(volumes_root: Path, target: Path, field: str, value: str) -> Path:
    plain = target.with_name("plain.nrrd")
    sitk.WriteImage(sitk.ReadImage(str(volumes_root / "formats/mha.mha")), str(plain))
    data = plain.read_bytes()
    end = data.index(b"\n\n") + 2
    header = data[:end].decode()
    header = re.sub(rf"{field}: [^\n]*\n", f"{field}: {value}\n", header)
    if field not in header:
        header = header.replace("encoding:", f"{field}: {value}\nencoding:")
    target.write_bytes(header.encode() + data[end:])
    plain.unlink()
    return target


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("space directions", "none (0,1,0) (0,0,1)", "no voxel size or direction for image axis 0"),
        ("space directions", "(1,1,0) (0,1,0) (0,0,1)", "not orthonormal"),
        ("space directions", "(0,0,0) (0,1,0) (0,0,1)", "invalid space direction for axis 0"),
    ],
)
def test_nonsense_nrrd_geometry_is_refused(
    volumes_root: Path, tmp_path: Path, field: str, value: str, expected: str
) -> None:
    damaged = _nrrd_with(volumes_root, tmp_path / "bad.nrrd", field, value)
    assert expected in refused(damaged)


def test_nan_nrrd_spacing_is_refused(volumes_root: Path, tmp_path: Path) -> None:
    """Without space directions, ``spacings: nan`` became 1 mm."""
    plain = tmp_path / "plain.nrrd"
    sitk.WriteImage(sitk.ReadImage(str(volumes_root / "formats/mha.mha")), str(plain))
    data = plain.read_bytes()
    end = data.index(b"\n\n") + 2
    lines = [
        line
        for line in data[:end].decode().splitlines(keepends=True)
        if not line.startswith(("space", "kinds"))
    ]
    header = "".join(lines).replace("encoding:", "spacings: nan 1 1\nencoding:")
    damaged = tmp_path / "nan.nrrd"
    damaged.write_bytes(header.encode() + data[end:])
    assert "spacings 'nan 1 1' (axis 0 is nan)" in refused(damaged)


def test_mirrored_nrrd_axis_is_valid_and_loads(volumes_root: Path, tmp_path: Path) -> None:
    """A negative NRRD space direction is a direction, not damage: it must still load."""
    good = _nrrd_with(
        volumes_root, tmp_path / "mirrored.nrrd", "space directions", "(-2,0,0) (0,1,0) (0,0,1)"
    )
    volume = load(good)
    assert volume.spacing_xyz_mm == (2.0, 1.0, 1.0)
    assert volume.direction_lps[0] == -1.0


@pytest.mark.parametrize(
    ("spacing", "origin", "direction", "expected"),
    [
        ((1.0, NAN, 1.0), (0.0, 0.0, 0.0), IDENTITY_DIRECTION, "invalid voxel spacing"),
        ((1.0, 1.0, 1.0), (0.0, INF, 0.0), IDENTITY_DIRECTION, "invalid origin"),
        ((1.0, 1.0, 1.0), (0.0, 0.0, 0.0), (1, 0, 0, 0, NAN, 0, 0, 0, 1), "not finite"),
        ((1.0, 1.0, 1.0), (0.0, 0.0, 0.0), (1, 0.2, 0, 0, 1, 0, 0, 0, 1), "not orthonormal"),
    ],
)
def test_every_volume_handed_out_has_sound_geometry(
    spacing: tuple, origin: tuple, direction: tuple, expected: str
) -> None:
    volume = Volume(np.zeros((2, 2, 2), np.int16), spacing, origin, tuple(map(float, direction)))
    with pytest.raises(ScanError, match=expected) as caught:
        checked(volume, "scan.nii.gz")
    assert str(caught.value).startswith("scan.nii.gz: ")


def test_real_volume_files_pass_every_new_check(volumes_root: Path) -> None:
    """The checks refuse damage, not the real files: every shared volume still loads."""
    for path in sorted(volumes_root.rglob("*")):
        if path.suffix in (".gz", ".mha") and "perfusion" not in path.name:
            volume = load(path)
            assert all(math.isfinite(v) for v in volume.origin_lps_mm)


# 6. MetaImage zlib and NRRD gzip streams are checked (Adler-32 / CRC-32, inflated length).

MHA = "formats/mha.mha"
NRRD = "../dicom/ct_3slice_with_seg_refs/liver_seg.nrrd"  # encoding: gzip, sizes 512 512 3


def _split_text_image(data: bytes) -> tuple[bytes, bytes]:
    """(header, payload) of a MetaImage .mha (data after ElementDataFile) or an NRRD."""
    if data.startswith(b"NRRD"):
        end = data.index(b"\n\n") + 2
    else:
        end = data.index(b"\n", data.index(b"ElementDataFile")) + 1
    return data[:end], data[end:]


def _with_header_line(data: bytes, key: str, line: str) -> bytes:
    """``data`` with the header line starting with ``key`` replaced by ``line``."""
    header, payload = _split_text_image(data)
    lines = [line if text.startswith(key) else text for text in header.decode().split("\n")]
    return "\n".join(lines).encode() + payload


def _raw_mha(data: bytes) -> bytes:
    import zlib

    header, payload = _split_text_image(data)
    text = header.decode().replace("CompressedData = True", "CompressedData = False")
    text = re.sub(r"CompressedDataSize = \d+\n", "", text)
    return text.encode() + zlib.decompress(payload)


def _raw_nrrd(data: bytes) -> bytes:
    header, payload = _split_text_image(data)
    return header.replace(b"encoding: gzip", b"encoding: raw") + gzip.decompress(payload)


def _flip_in_payload(data: bytes, count: int = 64) -> bytes:
    header, payload = _split_text_image(data)
    return header + flip_middle(payload, count)


@pytest.mark.parametrize("count", [1, 64])
def test_flipped_bytes_in_a_compressed_metaimage_are_refused(
    volumes_root: Path, tmp_path: Path, count: int
) -> None:
    """SimpleITK never checks the zlib stream's Adler-32: such copies loaded with voxels wrong."""
    damaged = tmp_path / "flipped.mha"
    damaged.write_bytes(_flip_in_payload((volumes_root / MHA).read_bytes(), count))
    loaded_anyway = sitk.GetArrayFromImage(sitk.ReadImage(str(damaged)))
    assert not np.array_equal(loaded_anyway, load(volumes_root / MHA).array_zyx)
    reason = refused_on_load(damaged)
    assert "is damaged" in reason and "compressed data" in reason


def test_flipped_bytes_in_a_gzip_nrrd_are_refused(volumes_root: Path, tmp_path: Path) -> None:
    damaged = tmp_path / "flipped.nrrd"
    damaged.write_bytes(_flip_in_payload((volumes_root / NRRD).read_bytes()))
    assert not np.array_equal(
        sitk.GetArrayFromImage(sitk.ReadImage(str(damaged))), load(volumes_root / NRRD).array_zyx
    )  # the damage is real, and SimpleITK does not see it
    assert "fails the gzip checksum (CRC)" in refused_on_load(damaged)


@pytest.mark.parametrize(
    ("dim_size", "expected"),
    [
        ("64 128 37", "is truncated: its compressed data holds 303,104 of the 606,208 bytes"),
        ("64 64 36", "8,192 bytes more image data than its header declares (303,104, not 294,912)"),
    ],
)
def test_compressed_metaimage_whose_sizes_disagree_with_its_data_is_refused(
    volumes_root: Path, tmp_path: Path, dim_size: str, expected: str
) -> None:
    """SimpleITK loaded both: the first zero-filled to twice its size, the second one slice
    short, with the last slice's voxels silently dropped."""
    damaged = tmp_path / "sizes.mha"
    data = (volumes_root / MHA).read_bytes()
    damaged.write_bytes(_with_header_line(data, "DimSize", f"DimSize = {dim_size}"))
    assert expected in refused_on_load(damaged)


def test_metaimage_compressed_data_size_must_match(volumes_root: Path, tmp_path: Path) -> None:
    data = (volumes_root / MHA).read_bytes()
    damaged = tmp_path / "size.mha"
    damaged.write_bytes(
        _with_header_line(data, "CompressedDataSize", "CompressedDataSize = 131200")
    )
    assert "CompressedDataSize = 131200, but 131,270 bytes of compressed data follow" in refused(
        damaged
    )


def test_raw_metaimage_marked_compressed_is_refused(volumes_root: Path, tmp_path: Path) -> None:
    """``CompressedData = True`` on raw voxels loaded as garbage (zlib's errors ignored)."""
    raw = _raw_mha((volumes_root / MHA).read_bytes())
    damaged = tmp_path / "marked.mha"
    damaged.write_bytes(_with_header_line(raw, "CompressedData", "CompressedData = True"))
    assert "is damaged or not zlib data" in refused(damaged)


@pytest.mark.parametrize(
    ("fmt", "key", "line", "expected"),
    [
        ("mha", "DimSize", "DimSize = 63 64 37", "4,736 bytes more image data than its header"),
        ("nrrd", "sizes", "sizes: 511 512 3", "3,072 bytes more image data than its header"),
    ],
)
def test_raw_text_image_that_declares_less_than_it_holds_is_refused(
    volumes_root: Path, tmp_path: Path, fmt: str, key: str, line: str, expected: str
) -> None:
    """A header one row short read without any shortage: every row after it shifted."""
    raw = (
        _raw_mha((volumes_root / MHA).read_bytes())
        if fmt == "mha"
        else _raw_nrrd((volumes_root / NRRD).read_bytes())
    )
    damaged = tmp_path / f"less.{fmt}"
    damaged.write_bytes(_with_header_line(raw, key, line))
    assert expected in refused(damaged)


def test_gzip_nrrd_that_declares_less_than_it_holds_is_refused(
    volumes_root: Path, tmp_path: Path
) -> None:
    damaged = tmp_path / "less.nrrd"
    damaged.write_bytes(
        _with_header_line((volumes_root / NRRD).read_bytes(), "sizes", "sizes: 512 512 2")
    )
    assert "524,288 bytes more image data than its header declares (1,572,864, not 1,048,576)" in (
        refused(damaged)
    )


# 7. A NIfTI header that declares less data than the file holds, or has no NIfTI magic.


@pytest.mark.parametrize("name", ["t2.nii", "t2.nii.gz"])
@pytest.mark.parametrize(
    "edits",
    [
        [("<h", 70, 2), ("<h", 72, 8)],  # int16 -> uint8, consistently: half the data unread
        [("<h", 44, 53)],  # dim[2] 55 -> 53
    ],
)
def test_nifti_that_declares_less_than_it_holds_is_refused(
    volumes_root: Path, tmp_path: Path, name: str, edits: list
) -> None:
    damaged = nifti_with(volumes_root / T2, tmp_path / name, edits)
    assert "more image data than its header declares" in refused(damaged)


@pytest.mark.parametrize("name", ["t2.nii", "t2.nii.gz"])
@pytest.mark.parametrize("magic", [b"xyz\0", b"n+3\0", b"n+2\0"])
def test_nifti_without_its_magic_is_refused(
    volumes_root: Path, tmp_path: Path, name: str, magic: bytes
) -> None:
    """SimpleITK reads it as ANALYZE 7.5: origin 0, another direction, no word said."""
    damaged = nifti_with(volumes_root / T2, tmp_path / name, [("4s", 344, magic)])  # type: ignore[list-item]
    assert f"has no valid NIfTI-1 magic (bytes 344-347 are {magic!r}" in refused(damaged)


def test_nifti_extensions_before_the_voxels_are_not_surplus(
    volumes_root: Path, tmp_path: Path
) -> None:
    """Bytes between the header and vox_offset are extensions, not excess voxel data."""
    with gzip.open(volumes_root / T2, "rb") as handle:
        data = handle.read()
    vox_offset = int(struct.unpack_from("<f", data, 108)[0])
    extension = struct.pack("<ii", 32, 6) + b"meddiag test extension\0\0"
    assert len(extension) == 32
    out = bytearray(data[:348]) + b"\x01\0\0\0" + extension + data[vox_offset:]
    struct.pack_into("<f", out, 108, float(348 + 4 + len(extension)))
    for name in ("ext.nii", "ext.nii.gz"):
        path = tmp_path / name
        path.write_bytes(gzip.compress(bytes(out)) if name.endswith(".gz") else bytes(out))
        np.testing.assert_array_equal(load(path).array_zyx, load(volumes_root / T2).array_zyx)


def test_every_shared_volume_file_still_loads(sample_data: Path) -> None:
    """The payload checks refuse damage only: every NIfTI, MetaImage and NRRD file in the
    shared data (extensions, 4-D, segmentations) loads or is refused for its old reason."""
    suffixes = (".nii", ".nii.gz", ".mha", ".mhd", ".nrrd", ".nhdr")
    paths = sorted(p for p in sample_data.rglob("*") if p.name.lower().endswith(suffixes))
    assert len(paths) > 50
    for path in paths:
        (listed,) = discover(path)
        if "colour" in listed.reason:  # ct_perfusion.nii.gz: RGB, refused for that since before
            continue
        assert listed.loadable, f"{path}: {listed.reason}"
        volume = load(path)
        assert volume.array_zyx.size > 0


@pytest.mark.parametrize(
    ("fmt", "key", "line", "expected"),
    [
        ("mha", "DimSize", "DimSize = 64 64 3\xb7", "invalid DimSize in its header: '64 64 3\xb7'"),
        ("mha", "DimSize", "DimSize = 64 64 -37", "invalid DimSize in its header: '64 64 -37'"),
        ("nrrd", "sizes", "sizes: 512 512 3.5", "invalid sizes in its header: '512 512 3.5'"),
    ],
)
def test_sizes_that_are_not_whole_numbers_are_refused(
    volumes_root: Path, tmp_path: Path, fmt: str, key: str, line: str, expected: str
) -> None:
    """ITK read the digits before the flipped byte: ``DimSize = 64 64 3\\xb7`` loaded as 3 of
    the 37 slices, and the payload could not be checked against a size nobody could parse."""
    source = volumes_root / (MHA if fmt == "mha" else NRRD)
    damaged = tmp_path / f"sizes.{fmt}"
    header, payload = _split_text_image(source.read_bytes())
    lines = [line if text.startswith(key) else text for text in header.decode().split("\n")]
    damaged.write_bytes("\n".join(lines).encode("latin-1") + payload)
    assert expected in refused(damaged)


@pytest.mark.parametrize("fmt", ["mha", "raw.mha", "raw.nrrd"])
def test_cut_text_image_is_listed_as_not_loadable(
    volumes_root: Path, tmp_path: Path, fmt: str
) -> None:
    """A cut MetaImage/NRRD was listed loadable and refused only when loaded: its header's
    sizes (or CompressedDataSize) say how many bytes must follow, so the listing says it."""
    data = (volumes_root / MHA).read_bytes()
    if fmt == "raw.mha":
        data = _raw_mha(data)
    elif fmt == "raw.nrrd":
        data = _raw_nrrd((volumes_root / NRRD).read_bytes())
    damaged = tmp_path / f"cut.{fmt}"
    damaged.write_bytes(data[: len(data) * 2 // 3])
    assert "is truncated: it " in refused(damaged)
