"""FROC on synthetic probability maps whose operating points are known by construction."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from meddiag_desktop.evaluation import EvaluationOptions, evaluate_cases, pair_cases
from meddiag_desktop.evaluation.froc import FrocPoint, envelope, sensitivity_at

WriteMap = Callable[..., Path]
SHAPE = (30, 30, 30)


def _blob(array: np.ndarray, corner: tuple[int, int, int], value: float) -> None:
    z, y, x = corner
    array[z : z + 3, y : y + 3, x : x + 3] = value


def _infer_folder(
    write_map: WriteMap, root: Path, name: str, reference: np.ndarray, probabilities: np.ndarray
) -> None:
    """A 'meddiag infer --out' folder and its reference in a 'ground_truth' case folder."""
    write_map(root / "pred" / name / "mask.nii.gz", (probabilities >= 0.5).astype(np.uint8))
    write_map(root / "pred" / name / "probabilities.nii.gz", probabilities.astype(np.float32))
    write_map(root / "ref" / name / "ground_truth.nii.gz", reference)


@pytest.fixture
def froc_cases(tmp_path: Path, write_map: WriteMap) -> tuple[list[Path], list[Path]]:
    """Case a: lesions at 0.92 and 0.42, false positives at 0.72, 0.22, 0.22; case b: 0.62."""
    reference = np.zeros(SHAPE, dtype=np.uint8)
    probabilities = np.zeros(SHAPE, dtype=np.float32)
    for corner, value in [((2, 2, 2), 0.92), ((2, 20, 20), 0.42)]:
        _blob(reference, corner, 1)
        _blob(probabilities, corner, value)
    for corner, value in [((20, 2, 2), 0.72), ((20, 20, 2), 0.22), ((20, 2, 20), 0.22)]:
        _blob(probabilities, corner, value)
    _infer_folder(write_map, tmp_path, "a", reference, probabilities)

    reference = np.zeros(SHAPE, dtype=np.uint8)
    probabilities = np.zeros(SHAPE, dtype=np.float32)
    _blob(reference, (10, 10, 10), 2)
    _blob(probabilities, (10, 10, 10), 0.62)
    _infer_folder(write_map, tmp_path, "b", reference, probabilities)
    return [tmp_path / "pred"], [tmp_path / "ref"]


def test_froc_operating_points_and_standard_rates(froc_cases) -> None:
    predictions, references = froc_cases
    report = evaluate_cases(pair_cases(predictions, references))
    froc = report.froc
    assert froc is not None and froc.cases == 2 and froc.reference_lesions == 3

    by_threshold = {point.threshold: point for point in froc.points}
    expected = {  # threshold: (sensitivity, FP per case)
        0.05: (1.0, 1.5),
        0.2: (1.0, 1.5),
        0.25: (1.0, 0.5),
        0.4: (1.0, 0.5),
        0.45: (2 / 3, 0.5),
        0.6: (2 / 3, 0.5),
        0.65: (1 / 3, 0.5),
        0.7: (1 / 3, 0.5),
        0.75: (1 / 3, 0.0),
        0.9: (1 / 3, 0.0),
        0.95: (0.0, 0.0),
    }
    for threshold, (sensitivity, fp_rate) in expected.items():
        point = by_threshold[threshold]
        assert point.sensitivity == pytest.approx(sensitivity), threshold
        assert point.fp_per_case == pytest.approx(fp_rate), threshold

    at = {entry.fp_per_case: entry for entry in froc.at_rates}
    assert at[0.25].sensitivity == pytest.approx(2 / 3)  # halfway from (0, 1/3) to (0.5, 1)
    for rate in (0.5, 1.0, 2.0, 4.0, 8.0):
        assert at[rate].sensitivity == pytest.approx(1.0)
    assert [at[r].beyond_sweep for r in (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)] == [
        False, False, False, True, True, True,
    ]  # fmt: skip
    assert froc.score == pytest.approx((2 / 3 + 5) / 6)

    # The binary masks (probability >= 0.5) give the operating point in between.
    assert (report.lesions.detected, report.lesions.false_positive) == (2, 1)
    overall = json.loads(report.to_json())["overall"]["froc"]
    assert overall["sensitivity_at_fp_per_case"][0]["sensitivity"] == pytest.approx(2 / 3)


def test_froc_thresholds_are_configurable_and_compared_in_the_map_type(froc_cases) -> None:
    predictions, references = froc_cases
    options = EvaluationOptions(thresholds=(0.42, 0.92))
    froc = evaluate_cases(pair_cases(predictions, references), options).froc
    assert froc is not None
    # float32(0.42) >= float32(0.42): the lesion stored as 0.42 counts at threshold 0.42.
    assert [p.sensitivity for p in froc.points] == pytest.approx([1.0, 1 / 3])


def test_no_froc_without_probability_maps(tmp_path: Path, write_map: WriteMap) -> None:
    mask = np.zeros(SHAPE, dtype=np.uint8)
    _blob(mask, (5, 5, 5), 1)
    pred = write_map(tmp_path / "pred.nii.gz", mask)
    ref = write_map(tmp_path / "ref.nii.gz", mask)
    report = evaluate_cases(pair_cases([pred], [ref]))
    assert report.froc is None
    assert report.cases[0].threshold_counts is None


def test_interpolation_uses_the_best_sensitivity_at_or_below_each_rate() -> None:
    # Not monotone: merging components at a lower threshold can lower the FP count.
    points = [
        FrocPoint(0.2, 0.6, 3.0),
        FrocPoint(0.4, 0.8, 1.0),
        FrocPoint(0.6, 0.5, 2.0),
        FrocPoint(0.8, 0.4, 0.5),
    ]
    fp, sensitivity = envelope(points)
    assert fp.tolist() == [0.0, 0.5, 1.0, 2.0, 3.0]
    assert sensitivity.tolist() == pytest.approx([0.0, 0.4, 0.8, 0.8, 0.8])
    entries = sensitivity_at(points, (0.25, 0.75, 4.0))
    assert [e.sensitivity for e in entries] == pytest.approx([0.2, 0.6, 0.8])
    assert [e.beyond_sweep for e in entries] == [False, False, True]
