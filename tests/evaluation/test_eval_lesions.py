"""Lesion-wise matching on hand-made cases whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from meddiag_desktop.evaluation.lesions import (
    LesionDetection,
    MatchedBy,
    describe_reference,
    detection_counts,
    find_lesions,
    match_lesions,
)
from meddiag_desktop.evaluation.options import EvaluationOptions

SHAPE = (40, 40, 40)


def _detect(
    reference: np.ndarray,
    prediction: np.ndarray,
    spacing_zyx: tuple[float, float, float] = (1.0, 1.0, 1.0),
    options: EvaluationOptions | None = None,
) -> tuple[LesionDetection, list[MatchedBy | None]]:
    options = options or EvaluationOptions()
    truth = find_lesions(reference > 0, spacing_zyx)
    found = find_lesions(prediction > 0, spacing_zyx)
    match = match_lesions(truth, found, options)
    outcome = describe_reference(truth, match, lambda index: tuple(index))
    return detection_counts(truth, match, options), [lesion.matched_by for lesion in outcome]


def _box(array: np.ndarray, z: slice, y: slice, x: slice) -> None:
    array[z, y, x] = 1


def _empty() -> np.ndarray:
    return np.zeros(SHAPE, dtype=np.uint8)


def test_overlap_by_one_voxel_detects() -> None:
    reference, prediction = _empty(), _empty()
    _box(reference, slice(5, 9), slice(5, 9), slice(5, 9))
    _box(prediction, slice(8, 16), slice(8, 16), slice(8, 16))  # corner voxel (8, 8, 8) shared
    counts, how = _detect(reference, prediction)
    assert how == [MatchedBy.OVERLAP]
    assert (counts.detected, counts.missed, counts.false_positive) == (1, 0, 0)
    assert counts.recall == counts.precision == counts.f1 == 1.0


def test_centroid_within_5_mm_detects_without_overlap() -> None:
    reference, prediction = _empty(), _empty()
    _box(reference, slice(19, 22), slice(19, 22), slice(19, 22))  # centroid x = 20
    _box(prediction, slice(20, 21), slice(20, 21), slice(24, 26))  # centroid x = 24.5, a gap
    counts, how = _detect(reference, prediction)
    assert how == [MatchedBy.DISTANCE]
    assert (counts.detected, counts.false_positive, counts.true_positive_predictions) == (1, 0, 1)


def test_distance_is_physical_millimetres() -> None:
    reference, prediction = _empty(), _empty()
    _box(reference, slice(20, 21), slice(20, 21), slice(20, 21))
    _box(prediction, slice(22, 23), slice(20, 21), slice(20, 21))  # two slices away
    counts, _ = _detect(reference, prediction, spacing_zyx=(2.0, 1.0, 1.0))  # 4 mm
    assert counts.detected == 1
    counts, _ = _detect(reference, prediction, spacing_zyx=(3.0, 1.0, 1.0))  # 6 mm
    assert (counts.detected, counts.missed, counts.false_positive) == (0, 1, 1)


def test_large_lesion_reaches_its_equivalent_radius() -> None:
    reference, prediction = _empty(), _empty()
    _box(reference, slice(10, 22), slice(10, 22), slice(10, 22))  # 1728 voxels, radius 7.44 mm
    _box(prediction, slice(15, 17), slice(15, 17), slice(22, 24))  # adjacent, no overlap, 7.0 mm
    counts, how = _detect(reference, prediction)
    assert how == [MatchedBy.DISTANCE]
    assert (counts.detected, counts.false_positive) == (1, 0)
    # With only the 5 mm rule this would be a miss: the radius rule makes it a hit.
    radius = find_lesions(reference > 0, (1.0, 1.0, 1.0)).equivalent_radii_mm[0]
    assert radius == pytest.approx((3 * 1728 / (4 * np.pi)) ** (1 / 3))
    assert 7.0 < radius < 7.5
    far = _empty()
    _box(far, slice(15, 17), slice(15, 17), slice(23, 25))  # 8.0 mm away
    _, how = _detect(reference, far)
    assert how == [None]


def test_miss_and_false_positive() -> None:
    reference, prediction = _empty(), _empty()
    _box(reference, slice(2, 5), slice(2, 5), slice(2, 5))
    _box(prediction, slice(30, 33), slice(30, 33), slice(30, 33))
    counts, how = _detect(reference, prediction)
    assert how == [None]
    assert (counts.detected, counts.missed, counts.false_positive) == (0, 1, 1)
    assert counts.recall == counts.precision == counts.f1 == 0.0


def test_two_predictions_on_one_lesion_are_both_true_positives() -> None:
    reference, prediction = _empty(), _empty()
    _box(reference, slice(10, 20), slice(10, 20), slice(10, 20))
    _box(prediction, slice(10, 13), slice(10, 13), slice(10, 13))
    _box(prediction, slice(16, 19), slice(16, 19), slice(16, 19))
    _box(prediction, slice(34, 36), slice(34, 36), slice(34, 36))  # and one false positive
    counts, _ = _detect(reference, prediction)
    assert counts.detected == 1
    assert counts.true_positive_predictions == 2
    assert counts.false_positive == 1
    assert counts.recall == 1.0
    assert counts.precision == pytest.approx(2 / 3)
    assert counts.f1 == pytest.approx(0.8)


def test_components_are_26_connected() -> None:
    mask = _empty()
    mask[5, 5, 5] = mask[6, 6, 6] = 1  # corner neighbours: one lesion
    mask[20, 20, 20] = 1
    lesions = find_lesions(mask, (1.0, 1.0, 1.0))
    assert lesions.count == 2
    assert sorted(lesions.voxels.tolist()) == [1, 2]


def test_centroids_and_size_restricted_recall() -> None:
    reference, prediction = _empty(), _empty()
    _box(reference, slice(2, 4), slice(2, 4), slice(2, 4))  # 8 voxels: diameter 2.48 mm
    _box(reference, slice(20, 28), slice(20, 28), slice(20, 28))  # 512 voxels: 9.9 mm
    _box(prediction, slice(22, 24), slice(22, 24), slice(22, 24))
    counts, how = _detect(reference, prediction)
    assert how == [None, MatchedBy.OVERLAP]
    assert counts.recall == 0.5
    assert (counts.large_detected, counts.large_reference, counts.large_recall) == (1, 1, 1.0)
    options = EvaluationOptions(min_diameter_mm=2.0)
    counts, _ = _detect(reference, prediction, options=options)
    assert (counts.large_detected, counts.large_reference) == (1, 2)

    lesions = find_lesions(reference > 0, (2.0, 1.0, 0.5), offset_zyx=(10, 0, 0))
    assert lesions.centroids_zyx[0] == pytest.approx([12.5, 2.5, 2.5])
    assert lesions.centroids_mm[0] == pytest.approx([25.0, 2.5, 1.25])
    assert lesions.volumes_mm3[0] == pytest.approx(8.0)


def test_no_lesions_anywhere() -> None:
    counts, how = _detect(_empty(), _empty())
    assert how == []
    assert counts == LesionDetection()
    assert counts.recall is None and counts.precision is None and counts.f1 is None


def test_detection_counts_add_up() -> None:
    total = LesionDetection(1, 2, 3, 1, 1, 2) + LesionDetection(2, 0, 1, 3, 0, 0)
    assert total == LesionDetection(3, 2, 4, 4, 1, 2)
