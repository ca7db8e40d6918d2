"""A real public model through our pipeline: MeshNet grey/white matter on a FreeSurfer T1.

Proves orientation (LIA), spacing, min-max normalisation, logits->softmax and label handling on
data nobody here made. Plain onnxruntime gives Dice 0.881 (white) / 0.709 (grey).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from model_signing import sign_test_model

from meddiag_desktop.cli import main

CARD = """
schema = 1
name = "meshnet-gwm"
version = "tissue_fast"
task = "segmentation"
modality = "MR"
intended_use = "Brain grey/white matter segmentation of a conformed T1 (research model)."
licence = "BSD-2-Clause"
authors = ["brainchop / niivue (MeshNet)"]

[anatomy]
region = "head"
body_parts = ["HEAD", "BRAIN"]
words = ["head", "brain", "cerebral"]

[file]
onnx = "model.onnx"
sha256 = "{sha256}"

[input]
name = "input"
mode = "whole_volume"
shape_zyx = [256, 256, 256]
target_spacing_xyz_mm = [1.0, 1.0, 1.0]
orientation = "LIA"

[input.normalization]
method = "minmax"

[output]
name = "output"
activation = "logits"

[[output.labels]]
value = 1
name = "white matter"
colour = "#ffffff"

[[output.labels]]
value = 2
name = "grey matter"
colour = "#cd3e4e"

[postprocessing]
findings = false
"""


def meshnet_folder(sample_data: Path, target: Path) -> Path:
    source = sample_data / "models" / "meshnet_gwm" / "model.onnx"
    if not source.is_file():
        pytest.skip(f"MeshNet model not found at {source}")
    target.mkdir()
    shutil.copyfile(source, target / "model.onnx")
    sha = hashlib.sha256(source.read_bytes()).hexdigest()
    (target / "card.toml").write_text(CARD.format(sha256=sha))
    return sign_test_model(target)  # a package must be signed by a trusted key to run


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


@pytest.mark.slow
def test_meshnet_dice_through_the_cli(sample_data: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    model = meshnet_folder(sample_data, tmp_path / "meshnet")
    reference = sample_data / "models" / "meshnet_gwm" / "reference"
    out = tmp_path / "out"
    assert main(["infer", str(reference / "norm.nii.gz"), "--model", str(model),
                 "--out", str(out), "--provider", "cpu"]) == 0
    predicted = sitk.ReadImage(str(out / "mask.nii.gz"))
    truth = sitk.ReadImage(str(reference / "gwm3_labels.nii.gz"))
    assert predicted.GetSize() == truth.GetSize()
    assert np.allclose(predicted.GetOrigin(), truth.GetOrigin(), atol=1e-3)
    p, t = sitk.GetArrayFromImage(predicted), sitk.GetArrayFromImage(truth)
    assert dice(p == 1, t == 1) >= 0.85
    assert dice(p == 2, t == 2) >= 0.68
    capsys.readouterr()
    assert main(["evaluate", "--pred", str(out), "--ref", str(reference / "gwm3_labels.nii.gz"),
                 "--json"]) == 0
    labels = json.loads(capsys.readouterr().out)["overall"]["labels"]
    assert labels["1"]["dice"] >= 0.85 and labels["2"]["dice"] >= 0.68
