"""What a user gets from damaged, missing, unreadable or unwritable files: a ScanError that names
the file and says what is wrong, never a half-loaded scan or a half-written file."""

from __future__ import annotations

import errno
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pydicom.data
import pytest

from meddiag_desktop.domain import SeriesKind, Volume
from meddiag_desktop.scans import ScanError, discover, load, write_label_map, write_volume
from meddiag_desktop.scans import writing as writing_module

needs_non_root = pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0,
    reason="running as root: file permissions are not enforced for root",
)


def copy_series(source: Path, target: Path) -> list[Path]:
    """Contents only: the shared data is read-only and its modes must not come along."""
    target.mkdir(parents=True)
    for path in sorted(source.iterdir()):
        if path.is_file() and not path.name.startswith("LICENSE"):
            shutil.copyfile(path, target / path.name)
    return sorted(target.iterdir())


def cut(path: Path, keep: int) -> None:
    with open(path, "r+b") as handle:
        handle.truncate(keep)


def assert_refused_naming(folder: Path, victim: Path) -> ScanError:
    """Discovery refuses the series and says why; load gives the same reason."""
    found = discover(folder)
    assert not any(s.loadable for s in found), [(s.key, s.reason) for s in found]
    refused = [s for s in found if victim.name in s.reason]
    assert refused, [s.reason for s in found]
    assert all("truncated" in s.reason for s in refused)
    with pytest.raises(ScanError) as caught:
        load(folder)
    assert victim.name in caught.value.reason
    assert "truncated" in caught.value.reason
    return caught.value


@pytest.mark.parametrize(
    "keep_bytes",
    [526474 - 1000, 526474 // 2, 1800],
    ids=["end", "half", "header-after-uids"],
)
def test_cut_slice_in_an_uncompressed_series(
    dicom_root: Path, tmp_path: Path, keep_bytes: int
) -> None:
    """The middle of three slices cut short; at 1800 bytes its header holds the series UID but
    the pixel data (at byte 2178) never starts."""
    files = copy_series(dicom_root / "ct_3slice_with_seg", tmp_path / "ct")
    victim = files[1]
    assert victim.stat().st_size == 526474
    cut(victim, keep_bytes)
    assert_refused_naming(tmp_path / "ct", victim)


def test_slice_cut_before_its_uids_warns_the_series_beside_it(
    dicom_root: Path, tmp_path: Path
) -> None:
    """Cut at 1000 bytes, the file no longer says which series it belongs to (its UID is at
    byte 1330). The two slices left are evenly spaced and would look complete: warn."""
    files = copy_series(dicom_root / "ct_3slice_with_seg", tmp_path / "ct")
    victim = files[1]
    cut(victim, 1000)
    found = discover(tmp_path / "ct")
    damaged = next(s for s in found if s.kind is SeriesKind.UNREADABLE)
    assert victim.name in damaged.reason
    assert "truncated" in damaged.reason
    volume = load(tmp_path / "ct")
    assert volume.shape_zyx[0] == 2
    (warning,) = volume.warnings
    assert victim.name in warning
    assert "missing slices" in warning


@pytest.mark.slow
@pytest.mark.parametrize("keep_fraction", [0.9, 0.01])
def test_cut_slice_in_a_jpeg2000_series_is_named_at_once(
    dicom_root: Path, tmp_path: Path, keep_fraction: float
) -> None:
    """Decoders fail slowly on a short compressed slice (SimpleITK: seconds) and only say that
    decoding failed; the sizes in the file say 'truncated' without decoding anything."""
    files = copy_series(dicom_root / "ct_siemens_j2k", tmp_path / "j2k")
    victim = files[len(files) // 2]
    cut(victim, int(victim.stat().st_size * keep_fraction))
    started = time.perf_counter()
    assert_refused_naming(tmp_path / "j2k", victim)
    assert time.perf_counter() - started < 2.0


def test_slice_cut_after_discovery_is_named_when_loading(dicom_root: Path, tmp_path: Path) -> None:
    """A file may change between listing and loading (a copy still running)."""
    files = copy_series(dicom_root / "ct_3slice_with_seg", tmp_path / "ct")
    series = next(s for s in discover(tmp_path / "ct") if s.loadable)
    victim = files[2]
    cut(victim, victim.stat().st_size - 1000)
    with pytest.raises(ScanError) as caught:
        load(series)
    assert caught.value.path == victim
    assert "truncated" in caught.value.reason


def test_cut_deflated_file_is_unreadable_not_a_crash(tmp_path: Path) -> None:
    """pydicom raised zlib.error (not a ScanError) on a short deflate-compressed file."""
    source = Path(pydicom.data.get_testdata_file("image_dfl.dcm"))
    victim = tmp_path / "deflated.dcm"
    data = source.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    (series,) = discover(tmp_path)
    assert series.kind is SeriesKind.UNREADABLE
    assert not series.loadable
    assert "deflated.dcm" in series.reason
    with pytest.raises(ScanError):
        load(tmp_path)


def test_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "no such folder"
    for action in (discover, load):
        with pytest.raises(ScanError) as caught:
            action(missing)
        assert caught.value.path == missing
        assert caught.value.reason == "does not exist"


def test_missing_image_file(tmp_path: Path) -> None:
    with pytest.raises(ScanError) as caught:
        load(tmp_path / "scan.nii.gz")
    assert "does not exist" in caught.value.reason


def test_empty_folder(tmp_path: Path) -> None:
    for action in (discover, load):
        with pytest.raises(ScanError) as caught:
            action(tmp_path)
        assert caught.value.path == tmp_path
        assert "holds no DICOM series or image files" in caught.value.reason


def test_folder_of_text_files(tmp_path: Path) -> None:
    (tmp_path / "README.txt").write_text("study notes\n")
    (tmp_path / "report.csv").write_text("lesion,volume\n1,2.5\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "IM0001").write_bytes(b"\x00" * 64 + b"not dicom at all")
    for action in (discover, load):
        with pytest.raises(ScanError, match="holds no DICOM series or image files"):
            action(tmp_path)


def test_single_text_file_says_what_is_supported(tmp_path: Path) -> None:
    note = tmp_path / "notes.txt"
    note.write_text("hello")
    with pytest.raises(ScanError) as caught:
        load(note)
    assert caught.value.path == note
    assert "neither DICOM nor a supported image format" in caught.value.reason
    assert "NIfTI" in caught.value.reason


@needs_non_root
def test_unreadable_dicom_file_is_listed_with_the_reason(dicom_root: Path, tmp_path: Path) -> None:
    files = copy_series(dicom_root / "ct_3slice_with_seg", tmp_path / "ct")
    locked = files[0]
    locked.chmod(0)
    try:
        found = discover(tmp_path / "ct")
        unreadable = next(s for s in found if s.kind is SeriesKind.UNREADABLE)
        assert unreadable.files == (locked,)
        assert locked.name in unreadable.reason
        assert "cannot be read" in unreadable.reason
    finally:
        locked.chmod(0o644)


@needs_non_root
def test_unreadable_image_file(volumes_root: Path, tmp_path: Path) -> None:
    locked = tmp_path / "ct.nii.gz"
    shutil.copyfile(volumes_root / "ct_abdomen_small/example_ct_sm.nii.gz", locked)
    locked.chmod(0)
    try:
        with pytest.raises(ScanError) as caught:
            load(locked)
        assert caught.value.path == locked
        assert "permission denied" in caught.value.reason  # not "damaged"
    finally:
        locked.chmod(0o644)


def small_volume() -> Volume:
    return Volume(
        array_zyx=np.arange(24, dtype=np.int16).reshape(2, 3, 4),
        spacing_xyz_mm=(0.5, 0.5, 2.0),
        origin_lps_mm=(1.0, 2.0, 3.0),
    )


def test_writing_into_a_missing_folder(tmp_path: Path) -> None:
    target = tmp_path / "not there" / "mask.nii.gz"
    with pytest.raises(ScanError) as caught:
        write_volume(small_volume(), target)
    assert caught.value.path == target
    assert "does not exist" in caught.value.reason
    assert not target.parent.exists()


def test_writing_an_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(ScanError, match="cannot be written"):
        write_volume(small_volume(), tmp_path / "mask.png")
    assert list(tmp_path.iterdir()) == []


@needs_non_root
def test_writing_into_a_read_only_folder_leaves_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(ScanError) as caught:
            write_label_map(small_volume(), np.ones((2, 3, 4), np.uint8), folder / "mask.nii.gz")
        assert "could not be written" in caught.value.reason
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


@pytest.mark.parametrize("name", ["mask.nii.gz", "mask.mha", "mask.nrrd"])
def test_disk_full_while_writing_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """Works as root too: the failure comes after the temporary file is written."""

    def disk_full(_fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(writing_module.os, "fsync", disk_full)
    target = tmp_path / name
    with pytest.raises(ScanError) as caught:
        write_volume(small_volume(), target)
    assert caught.value.path == target
    assert "No space left on device" in caught.value.reason
    assert list(tmp_path.iterdir()) == []


def test_write_failure_keeps_the_previous_file(tmp_path: Path, monkeypatch) -> None:
    """A failed overwrite must not destroy the mask already saved under that name."""
    target = tmp_path / "mask.nii.gz"
    write_volume(small_volume(), target)
    before = target.read_bytes()

    def disk_full(_fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(writing_module.os, "fsync", disk_full)
    changed = small_volume().with_array(np.zeros((2, 3, 4), np.int16))
    with pytest.raises(ScanError):
        write_volume(changed, target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mask.nii.gz"]
