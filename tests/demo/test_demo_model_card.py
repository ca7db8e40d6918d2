"""The bundled demo model: a valid card, the model file it names, and the promised interface."""

from __future__ import annotations

import importlib.util
import shutil
import tomllib
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
    assert card.anatomy is not None and card.anatomy.region == "chest"
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


def _validate_script():
    spec = importlib.util.spec_from_file_location("validate", MODEL_FOLDER / "validate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_card_figures_come_from_seeds_nobody_tuned_on() -> None:
    card = read_card(MODEL_FOLDER)
    figures = card.validation
    first, last = figures["seeds"]
    used = _validate_script().used_seeds()
    assert not set(range(first, last + 1)) & used  # neither training (0-55) nor tuning (1000s)
    assert last - first + 1 == figures["cases"] >= 20
    assert figures["command"] == (
        f".venv/bin/python models/demo_lung_nodules/validate.py --seeds {first}-{last} "
        "--write-card"
    )
    low, high = figures["false_positives_per_scan_95ci"]
    assert low <= figures["false_positives_per_scan"] <= high
    assert figures["false_positives_per_scan_min"] <= figures["false_positives_per_scan"]
    assert figures["false_positives_per_scan"] <= figures["false_positives_per_scan_max"]
    scans = last - first + 1
    assert figures["false_positives"] == round(figures["false_positives_per_scan"] * scans)
    low, high = figures["sensitivity_6mm_and_larger_95ci"]
    assert low <= figures["sensitivity_6mm_and_larger"] <= high
    assert figures["case_dice_min"] <= figures["mean_case_dice"] <= figures["case_dice_max"]
    assert "tuning_check" in card.training  # the development figures, kept apart


def test_write_card_replaces_only_the_validation_table(tmp_path: Path) -> None:
    validate = _validate_script()
    folder = tmp_path / "model"
    shutil.copytree(MODEL_FOLDER, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    before = tomllib.loads((folder / "card.toml").read_text())
    report = {
        "overall": {
            "any_lesion": {"dice": 0.8},
            "lesions": {"tp": 9, "fn": 1, "reference_lesions": 10, "recall": 0.9,
                        "detected_min_size": 8, "reference_lesions_min_size": 8},
            "timings_s": {"mean_total": 12.34},
        },
        "cases": [
            {"lesions": {"fp": fp}, "any_lesion": {"dice": dice}}
            for fp, dice in ((0, 0.9), (2, 0.7), (1, 0.8), (0, None))
        ],
    }
    figures = validate.figures_from(report, [2000, 2001, 2002, 2003], 6.0)
    validate.write_card(figures, folder / "card.toml")
    card = read_card(folder)
    assert card.validation["false_positives"] == 3
    assert card.validation["false_positives_per_scan"] == 0.75
    assert card.validation["false_positives_per_scan_max"] == 2
    assert card.validation["false_positives_per_scan_sd"] == pytest.approx(0.96, abs=0.01)
    assert card.validation["false_positives_per_scan_95ci"] == [0.15, 2.19]  # exact Poisson
    assert card.validation["sensitivity_6mm_and_larger_95ci"] == [0.676, 1.0]  # Wilson
    assert card.validation["mean_case_dice"] == 0.8  # cases without a lesion have no Dice
    after = tomllib.loads((folder / "card.toml").read_text())
    assert {k: v for k, v in after.items() if k != "validation"} == {
        k: v for k, v in before.items() if k != "validation"
    }
