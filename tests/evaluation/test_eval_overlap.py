"""Voxel overlap: Dice checked against SimpleITK's LabelOverlapMeasuresImageFilter."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from meddiag_desktop.evaluation.overlap import VoxelOverlap, mean_of, measure_overlap, pooled


def _sitk_dice(reference: np.ndarray, prediction: np.ndarray, label: int) -> float:
    measures = sitk.LabelOverlapMeasuresImageFilter()
    measures.Execute(sitk.GetImageFromArray(reference), sitk.GetImageFromArray(prediction))
    return measures.GetDiceCoefficient(label)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dice_per_label_and_any_lesion_match_simpleitk(seed: int) -> None:
    rng = np.random.default_rng(seed)
    reference = rng.choice(4, size=(12, 15, 17), p=[0.6, 0.2, 0.15, 0.05]).astype(np.uint8)
    prediction = reference.copy()
    flip = rng.random(reference.shape) < 0.3
    prediction[flip] = rng.integers(0, 4, size=int(flip.sum()))

    result = measure_overlap(reference, prediction)

    assert set(result.labels) == {1, 2, 3}
    for label, overlap in result.labels.items():
        assert overlap.dice == pytest.approx(_sitk_dice(reference, prediction, label), abs=1e-12)
    any_dice = _sitk_dice((reference > 0).astype(np.uint8), (prediction > 0).astype(np.uint8), 1)
    assert result.any_lesion.dice == pytest.approx(any_dice, abs=1e-12)
    truth, found = reference > 0, prediction > 0
    assert result.any_lesion.sensitivity == pytest.approx((truth & found).sum() / truth.sum())
    assert result.any_lesion.precision == pytest.approx((truth & found).sum() / found.sum())


def test_large_label_values_take_the_sparse_path_with_the_same_answer() -> None:
    rng = np.random.default_rng(5)
    reference = rng.integers(0, 3, size=(6, 7, 8)).astype(np.int32)
    prediction = rng.integers(0, 3, size=(6, 7, 8)).astype(np.int32)
    dense = measure_overlap(reference, prediction)
    remap = np.array([0, 70_000, 90_000], dtype=np.int32)
    sparse = measure_overlap(remap[reference], remap[prediction])
    assert sparse.labels[70_000] == dense.labels[1]
    assert sparse.labels[90_000] == dense.labels[2]
    assert sparse.any_lesion == dense.any_lesion


def test_labels_only_in_one_map_and_empty_maps() -> None:
    reference = np.zeros((3, 3, 3), dtype=np.uint8)
    prediction = np.zeros_like(reference)
    reference[0, 0, 0] = 2
    prediction[2, 2, 2] = 5
    result = measure_overlap(reference, prediction)
    assert result.labels[2] == VoxelOverlap(0, 0, 1)
    assert result.labels[5] == VoxelOverlap(0, 1, 0)
    assert result.labels[2].precision is None
    assert result.labels[5].sensitivity is None

    empty = measure_overlap(np.zeros_like(reference), np.zeros_like(reference))
    assert empty.labels == {}
    assert empty.any_lesion.dice is None


def test_pooled_counts_and_mean_skip_undefined() -> None:
    total = pooled([VoxelOverlap(1, 2, 3), VoxelOverlap(4, 5, 6)])
    assert total == VoxelOverlap(5, 7, 9)
    assert total.dice == pytest.approx(10 / 26)
    assert mean_of([0.5, None, 1.0]) == pytest.approx(0.75)
    assert mean_of([None]) is None
