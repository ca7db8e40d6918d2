"""The knobs of an evaluation, grouped so functions take one argument instead of five."""

from __future__ import annotations

from dataclasses import dataclass

from meddiag_desktop.evaluation.errors import EvaluationError

DEFAULT_THRESHOLDS: tuple[float, ...] = tuple(round(0.05 * step, 2) for step in range(1, 20))
STANDARD_FP_RATES: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


@dataclass(frozen=True)
class EvaluationOptions:
    """How lesions are matched and where the FROC curve is sampled.

    ``min_distance_mm``: a predicted component whose centroid lies within
    ``max(min_distance_mm, reference lesion's equivalent radius)`` of a reference lesion's
    centroid detects it. ``min_diameter_mm``: the size (equivalent-sphere diameter) from which a
    reference lesion counts for the size-restricted recall. ``thresholds``: probability
    thresholds of the FROC sweep. ``fp_rates``: false positives per case at which the FROC
    sensitivity is reported.
    """

    min_distance_mm: float = 5.0
    min_diameter_mm: float = 6.0
    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS
    fp_rates: tuple[float, ...] = STANDARD_FP_RATES

    def __post_init__(self) -> None:
        if self.min_distance_mm < 0 or self.min_diameter_mm < 0:
            raise EvaluationError("lesion distances and sizes must not be negative")
        if not self.thresholds or any(not 0.0 < t <= 1.0 for t in self.thresholds):
            raise EvaluationError("FROC thresholds must lie in (0, 1]")
        if not self.fp_rates or any(rate <= 0 for rate in self.fp_rates):
            raise EvaluationError("FROC false-positive rates must be positive")
