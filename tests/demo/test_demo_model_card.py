"""The bundled demo model: a valid card, the model file it names, and the promised interface."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from meddiag_desktop.inference.card import read_card, verify_onnx

MODEL_FOLDER = Path(__file__).resolve().parents[2] / "models" / "demo_lung_nodules"


def test_card_is_valid_and_matches_the_model_file() -> None:
    card = read_card(MODEL_FOLDER)
    verify_onnx(card)
    assert card.name == "demo-lung-nodules"
    assert card.modality == "CT"
    assert card.not_for_clinical_use
    assert "synthetic" in card.intended_use and "Not for clinical use" in card.intended_use
    assert card.input.shape_zyx == (64, 64, 64)
    assert card.input.target_spacing_xyz_mm == (1.5, 1.5, 1.5)
    assert card.input.orientation == "LPS"
    assert card.input.normalization.window == (-1000.0, 400.0)
    assert card.output.activation.value == "sigmoid"
    assert [(label.value, label.name, label.channel) for label in card.output.labels] == [
        (1, "nodule", 0)
    ]
    assert card.training["parameters"] > 0 and card.training["flops_per_64_patch"] > 0
    assert card.training["seeds"][1] < 1000  # seeds from 1000 on are held out
    assert card.validation["sensitivity_6mm_and_larger"] >= 0.0
    assert card.onnx_path.stat().st_size < 5 * 1024 * 1024


def test_model_takes_any_batch_and_size_and_returns_probabilities() -> None:
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(
        str(MODEL_FOLDER / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, out.name) == ("input", "output")
    rng = np.random.default_rng(0)
    for shape in ((1, 1, 64, 64, 64), (2, 1, 32, 48, 64)):
        patch = rng.uniform(0.0, 0.2, shape).astype(np.float32)
        (probability,) = session.run(["output"], {"input": patch})
        assert probability.shape == shape
        assert probability.min() >= 0.0 and probability.max() <= 1.0
