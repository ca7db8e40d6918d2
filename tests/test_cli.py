"""The ``meddiag`` command: output a user reads, JSON a script reads, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from meddiag_desktop.cli import main
from meddiag_desktop.domain import ScanMetadata, Volume
from meddiag_desktop.scans import write_volume


@pytest.fixture
def nifti_file(tmp_path: Path) -> Path:
    array = np.arange(6 * 7 * 8, dtype=np.int16).reshape(6, 7, 8)
    volume = Volume(array, (0.5, 0.75, 2.0), (10.0, -20.0, 30.0), metadata=ScanMetadata())
    return write_volume(volume, tmp_path / "scan.nii.gz")


def test_scan_json_lists_a_file(nifti_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", str(nifti_file), "--json"]) == 0
    series = json.loads(capsys.readouterr().out)
    assert len(series) == 1
    entry = series[0]
    assert entry["size"] == [8, 7, 6]
    assert entry["spacing_mm"] == [0.5, 0.75, 2.0]
    assert entry["loadable"] is True
    assert {"uid", "modality", "description", "file_count", "reason", "warnings"} <= set(entry)


def test_convert_round_trip_keeps_geometry(nifti_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.nii.gz"
    assert main(["convert", str(nifti_file), "--out", str(out)]) == 0
    image = sitk.ReadImage(str(out))
    assert image.GetSize() == (8, 7, 6)
    assert image.GetOrigin() == pytest.approx((10.0, -20.0, 30.0))
    assert np.array_equal(sitk.GetArrayFromImage(image),
                          sitk.GetArrayFromImage(sitk.ReadImage(str(nifti_file))))


def test_bad_input_is_one_line_and_exit_code_2(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "does not exist" in err
    junk = tmp_path / "junk.nii.gz"
    junk.write_bytes(b"not an image at all")
    assert main(["convert", str(junk), "--out", str(tmp_path / "x.nii.gz")]) == 2
    err = capsys.readouterr().err.strip()
    assert "junk.nii.gz" in err and "Traceback" not in err
    assert not (tmp_path / "x.nii.gz").exists()


def test_convert_refuses_unknown_output_type(nifti_file: Path, tmp_path: Path) -> None:
    assert main(["convert", str(nifti_file), "--out", str(tmp_path / "x.png")]) == 2


def test_entry_point_exit_code(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "meddiag_desktop.cli", "scan", str(tmp_path / "nope")],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("meddiag: error:")
    assert "Traceback" not in result.stderr


def test_scan_mixed_folder_text(sample_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = sample_data / "dicom" / "ct_philips_mixed_folder"
    assert main(["scan", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "STD BRAIN 5MM" in out and "512x512x28" in out
    assert "localizer" in out and "secondary capture" in out
    assert "1 loadable" in out


def test_convert_chooses_by_series_key(sample_data: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    folder = sample_data / "dicom" / "several_series_tiny"
    assert main(["scan", str(folder), "--json"]) == 0
    series = json.loads(capsys.readouterr().out)
    loadable = [s for s in series if s["loadable"]]
    assert main(["convert", str(folder), "--out", str(tmp_path / "a.nii.gz")]) in (0, 2)
    capsys.readouterr()
    key = loadable[0]["key"]
    out = tmp_path / "chosen.nii.gz"
    assert main(["convert", str(folder), "--series", key, "--out", str(out)]) == 0
    assert sitk.ReadImage(str(out)).GetSize() == tuple(loadable[0]["size"])
    assert main(["convert", str(folder), "--series", "no-such", "--out", str(out)]) == 2
