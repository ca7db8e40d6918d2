"""``meddiag infer``: mask on the input's grid, findings.json, probabilities, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from test_pipeline import phantom
from tiny_models import make_model_folder

from meddiag_desktop.cli import main
from meddiag_desktop.scans import write_volume


def test_infer_writes_mask_findings_and_probabilities(tmp_path: Path) -> None:
    scan = write_volume(phantom(), tmp_path / "scan.nii.gz")
    model = make_model_folder(tmp_path / "model", min_volume=10.0)
    out = tmp_path / "out"
    assert main(["infer", str(scan), "--model", str(model), "--out", str(out),
                 "--probabilities", "--provider", "cuda"]) == 0
    mask = sitk.ReadImage(str(out / "mask.nii.gz"))
    source = sitk.ReadImage(str(scan))
    assert mask.GetSize() == source.GetSize()
    assert np.allclose(mask.GetOrigin(), source.GetOrigin())
    assert np.allclose(mask.GetSpacing(), source.GetSpacing())
    assert sitk.GetArrayFromImage(mask).max() == 1
    probabilities = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "probabilities.nii.gz")))
    assert probabilities.dtype == np.float32
    assert 0.0 <= probabilities.min() <= probabilities.max() <= 1.0
    report = json.loads((out / "findings.json").read_text())
    assert report["model"]["name"] == "threshold-test" and len(report["model"]["sha256"]) == 64
    assert report["provider"] in ("cpu", "cuda")
    if report["provider"] == "cpu":
        assert report["provider_fallbacks"], "the reason CUDA was not used must be recorded"
    assert {"preprocess", "model", "total"} <= set(report["timings_s"])
    assert len(report["findings"]) == 2
    assert {"volume_ml", "long_axis_mm", "short_axis_mm", "centroid_lps_mm",
            "mean_probability"} <= set(report["findings"][0])
    assert "Not for clinical use" in report["disclaimer"]


def test_unknown_modality_runs_with_a_warning(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    mr_like = phantom("MR")
    mr_like = mr_like.with_array((mr_like.array_zyx + 1000).astype(np.int16))  # no air at -1000
    scan = write_volume(mr_like, tmp_path / "mr.mha")
    model = make_model_folder(tmp_path / "model")
    assert main(["infer", str(scan), "--model", str(model), "--out", str(tmp_path / "o")]) == 0
    assert "modality is unknown" in capsys.readouterr().err


def test_infer_unknown_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scan = write_volume(phantom(), tmp_path / "scan.nii.gz")
    assert main(["infer", str(scan), "--model", "no-such-model", "--out", str(tmp_path)]) == 2
    assert "no model named" in capsys.readouterr().err
