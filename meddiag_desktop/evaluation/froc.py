"""FROC: lesion-wise sensitivity against mean false positives per case over a threshold sweep.

Each case's probability map is thresholded (``probability >= t``, ``t`` compared in the map's own
number type) at every threshold; the components are matched to the reference lesions with the
criterion of :mod:`meddiag_desktop.evaluation.lesions`. Summed over cases, each threshold gives an
operating point: sensitivity = detected / reference lesions, and false positives per case =
false-positive components / cases.

The sensitivity at a false-positive rate (0.25, 0.5, 1, 2, 4, 8 per case) is read from the best
sensitivity reached with at most that many false positives (the upper envelope of the operating
points, which also starts at (0, 0): a threshold above every probability), linearly interpolated
between operating points. Beyond the largest rate the sweep reached, the curve stays flat at its
last sensitivity; such values are marked ``beyond_sweep``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from meddiag_desktop.evaluation.lesions import (
    Lesions,
    bounding_box,
    detection_counts,
    find_lesions,
    match_lesions,
)
from meddiag_desktop.evaluation.options import EvaluationOptions


@dataclass(frozen=True)
class ThresholdCount:
    """One case at one threshold: lesions detected (of how many) and false positives."""

    threshold: float
    detected: int
    reference_lesions: int
    false_positives: int


@dataclass(frozen=True)
class FrocPoint:
    threshold: float
    sensitivity: float
    fp_per_case: float


@dataclass(frozen=True)
class SensitivityAtRate:
    fp_per_case: float
    sensitivity: float
    beyond_sweep: bool


@dataclass(frozen=True)
class FrocCurve:
    """The sweep summed over ``cases`` cases, and the sensitivity at the standard rates."""

    cases: int
    reference_lesions: int
    points: tuple[FrocPoint, ...]
    at_rates: tuple[SensitivityAtRate, ...]

    @property
    def score(self) -> float:
        """Mean sensitivity over the reported false-positive rates (the usual FROC summary)."""
        return float(np.mean([entry.sensitivity for entry in self.at_rates]))

    def to_dict(self) -> dict:
        return {
            "cases": self.cases,
            "reference_lesions": self.reference_lesions,
            "score": self.score,
            "sensitivity_at_fp_per_case": [
                {
                    "fp_per_case": entry.fp_per_case,
                    "sensitivity": entry.sensitivity,
                    "beyond_sweep": entry.beyond_sweep,
                }
                for entry in self.at_rates
            ],
            "points": [
                {
                    "threshold": p.threshold,
                    "sensitivity": p.sensitivity,
                    "fp_per_case": p.fp_per_case,
                }
                for p in self.points
            ],
        }


def threshold_counts(
    reference: Lesions,
    probabilities_zyx: np.ndarray,
    options: EvaluationOptions,
    offset_zyx: Sequence[int] = (0, 0, 0),
) -> tuple[ThresholdCount, ...]:
    """Detection counts of one case at every threshold of ``options.thresholds``."""
    counts = []
    for threshold in options.thresholds:
        level = threshold_level(threshold, probabilities_zyx.dtype)
        # Label only the box the thresholded voxels span: it shrinks as the threshold rises.
        mask = probabilities_zyx >= level
        box = bounding_box(mask)
        start = tuple(o + s.start for o, s in zip(offset_zyx, box, strict=True))
        predicted = find_lesions(mask[box], reference.spacing_zyx_mm, start)
        in_box = replace(reference, ids_zyx=reference.ids_zyx[box])
        detection = detection_counts(reference, match_lesions(in_box, predicted, options), options)
        counts.append(
            ThresholdCount(threshold, detection.detected, reference.count, detection.false_positive)
        )
    return tuple(counts)


def threshold_level(threshold: float, dtype: np.dtype) -> np.generic:
    """``threshold`` in the map's own number type, so a stored 0.9 counts at threshold 0.9."""
    if np.dtype(dtype).kind in "iub":
        return np.dtype(dtype).type(np.ceil(threshold))
    return np.dtype(dtype).type(threshold)


def froc_curve(
    per_case: Sequence[Sequence[ThresholdCount]], options: EvaluationOptions
) -> FrocCurve | None:
    """Sum the cases' counts per threshold; ``None`` without cases or reference lesions."""
    if not per_case:
        return None
    lesions = sum(case[0].reference_lesions for case in per_case)
    if lesions == 0:
        return None
    cases = len(per_case)
    points = []
    for index, threshold in enumerate(options.thresholds):
        detected = sum(case[index].detected for case in per_case)
        false_positives = sum(case[index].false_positives for case in per_case)
        points.append(FrocPoint(threshold, detected / lesions, false_positives / cases))
    return FrocCurve(cases, lesions, tuple(points), sensitivity_at(points, options.fp_rates))


def sensitivity_at(
    points: Sequence[FrocPoint], rates: Sequence[float]
) -> tuple[SensitivityAtRate, ...]:
    """Best sensitivity with at most ``rate`` false positives per case, interpolated."""
    fp, sensitivity = envelope(points)
    reached = float(fp[-1])
    return tuple(
        SensitivityAtRate(rate, float(np.interp(rate, fp, sensitivity)), rate > reached + 1e-12)
        for rate in rates
    )


def envelope(points: Sequence[FrocPoint]) -> tuple[np.ndarray, np.ndarray]:
    """Distinct FP rates (from 0) and the best sensitivity reached at or below each."""
    fp = np.array([0.0, *(p.fp_per_case for p in points)])
    sensitivity = np.array([0.0, *(p.sensitivity for p in points)])
    order = np.lexsort((sensitivity, fp))
    fp, sensitivity = fp[order], np.maximum.accumulate(sensitivity[order])
    last_of_each = np.append(fp[1:] != fp[:-1], True)
    return fp[last_of_each], sensitivity[last_of_each]
