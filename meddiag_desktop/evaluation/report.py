"""The results of an evaluation: one :class:`CaseResult` per case and the :class:`EvaluationReport`.

Overall voxel measures pool the voxel counts of all cases (as if they were one volume); the
``mean_dice`` figures average the per-case Dice where it is defined. Lesion counts are summed
over cases; false positives per case divide by the number of cases.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from meddiag_desktop.evaluation.froc import FrocCurve, ThresholdCount
from meddiag_desktop.evaluation.lesions import LesionDetection, ReferenceLesion, summed
from meddiag_desktop.evaluation.options import EvaluationOptions
from meddiag_desktop.evaluation.overlap import CaseOverlap, VoxelOverlap, mean_of, pooled
from meddiag_desktop.evaluation.timings import TOTAL, mean_timings

CRITERION = (
    "a reference lesion is detected when a predicted component (26-connected) overlaps it by at "
    "least one voxel, or when its centroid lies within max({distance:g} mm, the reference "
    "lesion's equivalent radius) of the reference centroid"
)


@dataclass(frozen=True)
class CaseResult:
    """Everything measured on one case."""

    name: str
    reference: Path
    prediction: Path
    probabilities: Path | None
    overlap: CaseOverlap
    lesions: LesionDetection
    reference_lesions: tuple[ReferenceLesion, ...]
    threshold_counts: tuple[ThresholdCount, ...] | None
    timings_s: Mapping[str, float] | None

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "reference": str(self.reference),
            "prediction": str(self.prediction),
            "probabilities": str(self.probabilities) if self.probabilities else None,
            "labels": {str(k): v.to_dict() for k, v in sorted(self.overlap.labels.items())},
            "any_lesion": self.overlap.any_lesion.to_dict(),
            "lesions": self.lesions.to_dict(),
            "reference_lesions": [lesion.to_dict() for lesion in self.reference_lesions],
            "timings_s": dict(self.timings_s) if self.timings_s is not None else None,
        }


@dataclass(frozen=True)
class EvaluationReport:
    """All cases, the options used and the FROC curve (``None`` without probability maps)."""

    cases: tuple[CaseResult, ...]
    options: EvaluationOptions
    froc: FrocCurve | None

    @property
    def label_values(self) -> tuple[int, ...]:
        return tuple(sorted({label for case in self.cases for label in case.overlap.labels}))

    def pooled_label(self, label: int) -> VoxelOverlap:
        return pooled(
            case.overlap.labels[label] for case in self.cases if label in case.overlap.labels
        )

    def mean_dice(self, label: int | None) -> float | None:
        """Mean per-case Dice of one label (``None``: any lesion) over cases where defined."""
        if label is None:
            return mean_of(case.overlap.any_lesion.dice for case in self.cases)
        return mean_of(
            case.overlap.labels[label].dice for case in self.cases if label in case.overlap.labels
        )

    @property
    def any_lesion(self) -> VoxelOverlap:
        return pooled(case.overlap.any_lesion for case in self.cases)

    @property
    def lesions(self) -> LesionDetection:
        return summed(case.lesions for case in self.cases)

    @property
    def fp_per_case(self) -> float | None:
        return self.lesions.false_positive / len(self.cases) if self.cases else None

    @property
    def timed_cases(self) -> int:
        return sum(case.timings_s is not None for case in self.cases)

    @property
    def mean_timings_s(self) -> dict[str, float] | None:
        return mean_timings([case.timings_s for case in self.cases])

    @property
    def mean_total_s(self) -> float | None:
        return mean_of(
            case.timings_s.get(TOTAL) for case in self.cases if case.timings_s is not None
        )

    def to_dict(self) -> dict:
        overall_labels = {}
        for label in self.label_values:
            entry = self.pooled_label(label).to_dict()
            entry["mean_dice"] = self.mean_dice(label)
            overall_labels[str(label)] = entry
        any_lesion = self.any_lesion.to_dict()
        any_lesion["mean_dice"] = self.mean_dice(None)
        lesions = self.lesions.to_dict()
        lesions["fp_per_case"] = self.fp_per_case
        timings = self.mean_timings_s
        return {
            "criterion": {
                "text": CRITERION.format(distance=self.options.min_distance_mm),
                "connectivity": 26,
                "min_distance_mm": self.options.min_distance_mm,
                "min_diameter_mm": self.options.min_diameter_mm,
                "froc_thresholds": list(self.options.thresholds),
            },
            "overall": {
                "cases": len(self.cases),
                "labels": overall_labels,
                "any_lesion": any_lesion,
                "lesions": lesions,
                "froc": self.froc.to_dict() if self.froc else None,
                "timings_s": None
                if timings is None
                else {"cases": self.timed_cases, "mean": timings, "mean_total": self.mean_total_s},
            },
            "cases": [case.to_dict() for case in self.cases],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)
