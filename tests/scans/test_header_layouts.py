"""Discovery reads a series' headers through :class:`HeaderReader`, which checks each file
against the layout of files read before and parses only the elements whose bytes differ. That
shortcut must give exactly what walking each file alone gives: the same header, or the same
error, for real series, for pydicom's test files and for damaged or altered copies."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pydicom
import pydicom.data
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ImplicitVRLittleEndian

from meddiag_desktop.scans import ScanError, discover, file_formats
from meddiag_desktop.scans.dicom_header import DicomHeader, HeaderReader, read_header
from meddiag_desktop.scans.discovery import _VolumeFileNames

POSITIONS = [(0.0, 0.0, float(z)) for z in range(6)]


def outcome(read, path: Path) -> tuple:
    try:
        header = read(path)
    except ScanError as exc:
        return ("error", type(exc).__name__, exc.reason)
    return ("header", header)


def assert_reads_alike(paths: list[Path]) -> HeaderReader:
    """One reader for all files (layouts kept) against a fresh read of each file."""
    reader = HeaderReader()
    for path in paths:
        shared = outcome(reader.read, path)
        alone = outcome(read_header, path)
        assert shared == alone, path
    return reader


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("LICENSE"))


def test_real_series_read_alike_in_any_order(dicom_root: Path) -> None:
    hits = 0
    for folder in sorted(p for p in dicom_root.iterdir() if p.is_dir()):
        files = files_under(folder)
        hits += assert_reads_alike(files)._hits
        assert_reads_alike(files[::-1])
        assert_reads_alike(random.Random(7).sample(files, len(files)))
    assert hits > 200  # the shortcut was taken, not only the element-by-element walk


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom on odd files
def test_pydicom_test_files_read_alike() -> None:
    """Hundreds of unrelated files, many odd ones, through one reader."""
    files = sorted(Path(p) for p in pydicom.data.get_testdata_files())
    assert len(files) > 100
    assert_reads_alike(files)
    assert_reads_alike(files[::-1])


def test_each_file_keeps_its_own_values(tmp_path: Path, write_series) -> None:
    """Values that differ between slices come from each file, not from the first one."""
    paths = write_series(tmp_path, [(0.5 * k, -1.25, 10.0 + 2.5 * k) for k in range(12)])
    reader = HeaderReader()
    headers = [reader.read(path) for path in paths]
    assert reader._hits == len(paths) - 1
    for header, path in zip(headers, paths, strict=True):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        assert header.floats("image_position") == tuple(float(v) for v in ds.ImagePositionPatient)
        assert header.instance_number == str(ds.InstanceNumber)
        assert header.sop_instance_uid == ds.SOPInstanceUID
        assert header.series_uid == ds.SeriesInstanceUID
        assert header.pixel_offset > 0 and header.has_pixels and not header.damage


def rewrite(path: Path, target: Path, change) -> Path:
    ds = pydicom.dcmread(path)
    change(ds)
    ds.save_as(target, enforce_file_format=True)
    return target


def add_private_sequence(ds: Dataset) -> None:
    item = Dataset()
    item.add_new(0x00091001, "LO", "inside an item")
    ds.add_new(0x00090010, "LO", "TEST PRIVATE")
    ds.add_new(0x00091010, "SQ", Sequence([item]))


def set_implicit(ds: Dataset) -> None:
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian


CHANGES = {
    "longer description": lambda ds: setattr(ds, "SeriesDescription", "x" * 41),
    "no intercept": lambda ds: delattr(ds, "RescaleIntercept"),
    "extra element": lambda ds: setattr(ds, "SliceThickness", 1.25),
    "extra last element": lambda ds: setattr(ds, "RescaleType", "HU"),
    "private sequence": add_private_sequence,
    "implicit VR": set_implicit,
    "other rows": lambda ds: setattr(ds, "Rows", 4) or setattr(ds, "PixelData", ds.PixelData[:64]),
    "latin-1 name": lambda ds: setattr(ds, "PatientName", "Müller^Jörg"),
    "utf-8 name": lambda ds: (
        setattr(ds, "SpecificCharacterSet", "ISO_IR 192"),
        setattr(ds, "PatientName", "Müller^Jörg"),
    ),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_altered_slices_among_plain_ones(tmp_path: Path, write_series, change: str) -> None:
    paths = write_series(tmp_path / "series", POSITIONS)
    altered = rewrite(paths[2], tmp_path / "series" / "002.dcm", CHANGES[change])
    order = [paths[0], paths[1], altered, paths[3], altered, paths[4]]
    assert_reads_alike(order)
    if change == "no intercept":
        assert HeaderReader().read(altered).rescale_intercept == ""


def header_length(path: Path) -> int:
    return read_header(path).pixel_offset


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom on the damaged values
@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("layout", [None, "implicit VR", "private sequence"])
def test_damaged_copies_read_alike(
    tmp_path: Path, write_series, seed: int, layout: str | None
) -> None:
    """Bytes changed, inserted, removed or cut off in the header of copies of a slice, read
    after clean slices (so a layout is in use), each compared with reading it alone."""
    rng = random.Random(seed)
    paths = write_series(tmp_path / "clean", POSITIONS)
    if layout:
        paths = [rewrite(path, path, CHANGES[layout]) for path in paths]
    end = header_length(paths[0]) + 16
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    mutants = []
    for index in range(150):
        data = bytearray(paths[rng.randrange(len(paths))].read_bytes())
        where = rng.randrange(128, end)
        kind = rng.choice(["flip", "byte", "insert", "delete", "cut"])
        if kind == "flip":
            data[where] ^= 1 << rng.randrange(8)
        elif kind == "byte":
            data[where] = rng.randrange(256)
        elif kind == "insert":
            data[where:where] = bytes(rng.randrange(256) for _ in range(rng.choice([1, 2, 4, 8])))
        elif kind == "delete":
            del data[where : where + rng.choice([1, 2, 4, 8])]
        else:
            del data[where:]
        mutant = damaged / f"{index:03d}.dcm"
        mutant.write_bytes(bytes(data))
        mutants.append(mutant)
    order = []
    for mutant in mutants:  # clean slices between the damaged ones keep the layouts in use
        order += [paths[rng.randrange(len(paths))], mutant]
    assert_reads_alike(order)


def test_discovery_of_altered_series_is_unchanged(tmp_path: Path, write_series) -> None:
    """discover() on a folder of mixed layouts gives what header-by-header reading gives."""
    folder = tmp_path / "mixed"
    paths = write_series(folder, POSITIONS)
    rewrite(paths[1], paths[1], CHANGES["no intercept"])
    rewrite(paths[3], paths[3], CHANGES["implicit VR"])
    rewrite(paths[4], paths[4], CHANGES["private sequence"])
    found = discover(folder)
    (series,) = found
    assert series.loadable and len(series.slices) == len(POSITIONS)
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    headers = [read_header(p) for p in sorted(copy.iterdir())]
    assert [h.floats("image_position") for h in headers] == [
        (s.position_lps_mm[0], s.position_lps_mm[1], s.position_lps_mm[2]) for s in series.slices
    ]
    assert all(isinstance(h, DicomHeader) for h in headers)


@pytest.mark.parametrize(
    "name",
    [
        "IM0001.dcm",
        "a.nii.gz",
        "A.NII.GZ",
        "b.nii",
        "c.tar.gz",
        ".nii.gz",
        "x.",
        "noext",
        "v.mgz",
        "s.img",
        "d.MHA",
        "e.nhdr",
        "f.gz",
        "g.nii.gz.bak",
        "h..gz",
        ".nii",
        "k.NII",
        "x.y.nii",
        "b.Nii.Gz",
        "q.GZ",
        "\u0130x.nii",
    ],
)
def test_volume_file_names_like_file_formats(name: str) -> None:
    """discovery asks file_formats once per name ending; each answer must be the same."""
    names = _VolumeFileNames()
    others = ["IM0001.dcm", "a.nii.gz", "c.tar.gz", "f.gz", "x.", "noext", "z.nii", "z.NII"]
    for other in [*others, name, *others]:
        names(Path(other))
    assert names(Path(name)) == file_formats.is_volume_file(Path(name))
    assert all(names(Path(o)) == file_formats.is_volume_file(Path(o)) for o in others)
