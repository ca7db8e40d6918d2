"""De-identified copies of real scanner series load in the app exactly as the originals did.

Each real series of the shared sample data is de-identified file by file (pixels untouched,
compressed ones still compressed) and read back through ``meddiag_desktop.scans`` (discover,
then load): the same size, spacing, origin, direction and voxel values, under new UIDs (the
patient's, the same in a second run), with no name, ID, birth date, original UID or private
attribute left in the files' bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from meddiag_desktop.deid import DeidOption, DeidSettings, PatientKey, deidentify_dataset
from meddiag_desktop.domain import SeriesKind
from meddiag_desktop.scans import discover, load

KEY = PatientKey("ANON-SERIES0001", "c3" * 32)
FOLDERS = ("ct_siemens_j2k", "mr_siemens_t1", "ct_3slice_with_seg", "ct_philips_mixed_folder")


def _copy_series(files: tuple[Path, ...], out: Path, settings: DeidSettings) -> None:
    out.mkdir(parents=True)
    for index, path in enumerate(files, start=1):
        dataset = pydicom.dcmread(path)
        deidentify_dataset(dataset, settings)
        dataset.save_as(out / f"IM{index:05d}.dcm", enforce_file_format=True)


def _identifying(files: tuple[Path, ...]) -> set[bytes]:
    """The originals' name, ID, birth date, accession number and instance UIDs, as bytes."""
    found: set[bytes] = set()
    for path in files:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        for keyword in ("PatientName", "PatientID", "PatientBirthDate", "AccessionNumber",
                        "SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID",
                        "FrameOfReferenceUID", "InstitutionName"):
            value = str(ds.get(keyword, "") or "").strip()
            if len(value) >= 4 and value.upper() not in ("ANONYMOUS", "ANONYMIZED"):
                found.add(value.encode())
    return found


@pytest.mark.slow
@pytest.mark.parametrize("folder", FOLDERS)
@pytest.mark.parametrize("options", [frozenset(), frozenset(DeidOption)], ids=["basic", "all"])
def test_a_deidentified_series_loads_with_identical_geometry_and_pixels(
    sample_data: Path, tmp_path: Path, folder: str, options: frozenset[DeidOption]
) -> None:
    volumes = [
        s for s in discover(sample_data / "dicom" / folder)
        if s.loadable and s.kind is SeriesKind.VOLUME
    ]
    assert volumes, f"{folder}: no loadable volume"
    original = volumes[0]
    settings = DeidSettings(KEY, options)
    _copy_series(original.files, tmp_path / "copy", settings)

    (copied,) = [s for s in discover(tmp_path / "copy") if s.loadable]
    # ct_siemens_j2k leaves its UIDs empty: an empty UID stays empty (nothing to map).
    assert copied.uid == (KEY.uid(original.uid) if original.uid else "")
    assert copied.uid != original.uid or not original.uid
    assert copied.metadata.patient_id == KEY.pseudonym
    assert copied.metadata.patient_birth_date == ""
    before, after = load(original), load(copied)
    assert after.shape_zyx == before.shape_zyx
    assert after.spacing_xyz_mm == before.spacing_xyz_mm
    assert after.origin_lps_mm == before.origin_lps_mm
    assert after.direction_lps == before.direction_lps
    assert after.array_zyx.dtype == before.array_zyx.dtype
    assert np.array_equal(after.array_zyx, before.array_zyx)

    secrets = _identifying(original.files)
    for path in sorted((tmp_path / "copy").iterdir()):
        data = path.read_bytes()
        assert not [s for s in secrets if s in data], path.name
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        assert not [e.tag for e in ds.iterall() if e.tag.is_private]

    # The same patient again: the very same UIDs (and so dates) in a second copy.
    _copy_series(original.files, tmp_path / "again", settings)
    first = pydicom.dcmread(tmp_path / "copy" / "IM00001.dcm", stop_before_pixels=True)
    second = pydicom.dcmread(tmp_path / "again" / "IM00001.dcm", stop_before_pixels=True)
    for keyword in ("SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID",
                    "FrameOfReferenceUID", "StudyDate", "PatientID"):
        assert first.get(keyword) == second.get(keyword), keyword
