"""Lesion-wise detection: connected lesions in the reference and the prediction, and matching.

The criterion (the same for every case, and for every threshold of the FROC sweep):

- Lesions are the connected components of "any lesion" (every label above 0 taken as one) with
  26-connectivity (voxels touching by a face, an edge or a corner belong together).
- A reference lesion is *detected* when a predicted component overlaps it by at least one voxel,
  or when a predicted component's centroid lies within ``max(5 mm, the reference lesion's
  equivalent radius)`` of the reference lesion's centroid. Distances are physical millimetres
  (voxel spacing applied); the equivalent radius is that of a sphere of the lesion's volume.
- A predicted component is a true positive when it detects at least one reference lesion, and a
  false positive otherwise. Two predicted components on one lesion are both true positives and
  the lesion counts once.
- Recall = detected / reference lesions; precision = true-positive components / predicted
  components; F1 = their harmonic mean. The size-restricted recall counts only reference lesions
  whose equivalent-sphere diameter is at least 6 mm (both distances configurable).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from scipy import ndimage

from meddiag_desktop.evaluation.options import EvaluationOptions

_CONNECTIVITY_26 = np.ones((3, 3, 3), dtype=bool)


@dataclass(frozen=True, eq=False)
class Lesions:
    """The connected components of a mask: ids in ``ids_zyx`` (0 background), sizes, centroids.

    ``centroids_zyx`` are voxel indices (fractional) on the full grid, ``ids_zyx`` may cover only
    a crop of it; distances use ``centroids_mm``, which scale the indices by the spacing.
    """

    ids_zyx: np.ndarray
    voxels: np.ndarray
    centroids_zyx: np.ndarray
    spacing_zyx_mm: tuple[float, float, float]

    @property
    def count(self) -> int:
        return len(self.voxels)

    @property
    def centroids_mm(self) -> np.ndarray:
        return self.centroids_zyx * np.asarray(self.spacing_zyx_mm)

    @property
    def volumes_mm3(self) -> np.ndarray:
        return self.voxels * float(np.prod(self.spacing_zyx_mm))

    @property
    def equivalent_radii_mm(self) -> np.ndarray:
        return np.cbrt(3.0 * self.volumes_mm3 / (4.0 * np.pi))

    @property
    def equivalent_diameters_mm(self) -> np.ndarray:
        return 2.0 * self.equivalent_radii_mm


def find_lesions(
    mask_zyx: np.ndarray,
    spacing_zyx_mm: tuple[float, float, float],
    offset_zyx: Sequence[int] = (0, 0, 0),
) -> Lesions:
    """26-connected components of ``mask_zyx`` (nonzero = lesion).

    ``offset_zyx`` is where ``mask_zyx`` starts when it is a crop, so centroids stay full-grid.
    """
    ids, count = ndimage.label(mask_zyx, structure=_CONNECTIVITY_26)
    where = np.nonzero(ids)
    owner = ids[where]
    voxels = np.bincount(owner, minlength=count + 1)[1:]
    centroids = np.zeros((count, 3))
    if count:
        for axis in range(3):
            sums = np.bincount(owner, weights=where[axis], minlength=count + 1)[1:]
            centroids[:, axis] = sums / voxels + offset_zyx[axis]
    z, y, x = (float(v) for v in spacing_zyx_mm)
    return Lesions(ids, voxels, centroids, (z, y, x))


def bounding_box(mask_zyx: np.ndarray) -> tuple[slice, slice, slice]:
    """The smallest box holding every true voxel (one voxel at the corner when there is none)."""
    box = []
    for axis in range(3):
        others = tuple(a for a in range(3) if a != axis)
        hits = np.flatnonzero(mask_zyx.any(axis=others))
        box.append(slice(int(hits[0]), int(hits[-1]) + 1) if hits.size else slice(0, 1))
    return (box[0], box[1], box[2])


class MatchedBy(StrEnum):
    """Why a reference lesion counts as detected (overlap wins when both hold)."""

    OVERLAP = "overlap"
    DISTANCE = "distance"


@dataclass(frozen=True)
class ReferenceLesion:
    """One reference lesion's size, place and outcome, for the per-case report."""

    volume_ml: float
    equivalent_diameter_mm: float
    centroid_lps_mm: tuple[float, float, float]
    matched_by: MatchedBy | None

    @property
    def detected(self) -> bool:
        return self.matched_by is not None

    def to_dict(self) -> dict:
        return {
            "volume_ml": round(self.volume_ml, 6),
            "equivalent_diameter_mm": round(self.equivalent_diameter_mm, 3),
            "centroid_lps_mm": [round(v, 2) for v in self.centroid_lps_mm],
            "detected": self.detected,
            "matched_by": self.matched_by.value if self.matched_by else None,
        }


@dataclass(frozen=True)
class LesionDetection:
    """Lesion counts of one case, or summed over cases, and the rates from them."""

    detected: int = 0
    missed: int = 0
    false_positive: int = 0
    true_positive_predictions: int = 0
    large_detected: int = 0
    large_reference: int = 0

    @property
    def reference_lesions(self) -> int:
        return self.detected + self.missed

    @property
    def predicted_lesions(self) -> int:
        return self.true_positive_predictions + self.false_positive

    @property
    def recall(self) -> float | None:
        return _ratio(self.detected, self.reference_lesions)

    @property
    def precision(self) -> float | None:
        return _ratio(self.true_positive_predictions, self.predicted_lesions)

    @property
    def f1(self) -> float | None:
        recall, precision = self.recall, self.precision
        if recall is None or precision is None:
            return None
        return 2 * recall * precision / (recall + precision) if recall + precision else 0.0

    @property
    def large_recall(self) -> float | None:
        return _ratio(self.large_detected, self.large_reference)

    def __add__(self, other: LesionDetection) -> LesionDetection:
        return LesionDetection(
            *(getattr(self, name) + getattr(other, name) for name in _COUNT_FIELDS)
        )

    def to_dict(self) -> dict:
        return {
            "tp": self.detected,
            "fn": self.missed,
            "fp": self.false_positive,
            "tp_predictions": self.true_positive_predictions,
            "reference_lesions": self.reference_lesions,
            "predicted_lesions": self.predicted_lesions,
            "recall": self.recall,
            "precision": self.precision,
            "f1": self.f1,
            "recall_min_size": self.large_recall,
            "reference_lesions_min_size": self.large_reference,
            "detected_min_size": self.large_detected,
        }


_COUNT_FIELDS = (
    "detected",
    "missed",
    "false_positive",
    "true_positive_predictions",
    "large_detected",
    "large_reference",
)


def summed(detections: Iterable[LesionDetection]) -> LesionDetection:
    return sum(detections, LesionDetection())


@dataclass(frozen=True, eq=False)
class LesionMatch:
    """Which predicted components detect which reference lesions, and how."""

    overlaps: np.ndarray  # bool [reference, prediction]
    near: np.ndarray  # bool [reference, prediction]

    @property
    def matched(self) -> np.ndarray:
        return self.overlaps | self.near


def match_lesions(
    reference: Lesions, prediction: Lesions, options: EvaluationOptions
) -> LesionMatch:
    """Apply the detection criterion of this module's docstring to every lesion pair."""
    overlaps = np.zeros((reference.count, prediction.count), dtype=bool)
    both = (reference.ids_zyx > 0) & (prediction.ids_zyx > 0)
    overlaps[reference.ids_zyx[both] - 1, prediction.ids_zyx[both] - 1] = True
    if reference.count and prediction.count:
        offsets = reference.centroids_mm[:, None, :] - prediction.centroids_mm[None, :, :]
        distances = np.sqrt((offsets**2).sum(axis=2))
        reach = np.maximum(options.min_distance_mm, reference.equivalent_radii_mm)
        near = distances <= reach[:, None]
    else:
        near = np.zeros_like(overlaps)
    return LesionMatch(overlaps, near)


def detection_counts(
    reference: Lesions, match: LesionMatch, options: EvaluationOptions
) -> LesionDetection:
    matched = match.matched
    detected = matched.any(axis=1)
    true_predictions = int(matched.any(axis=0).sum())
    large = reference.equivalent_diameters_mm >= options.min_diameter_mm - 1e-9
    return LesionDetection(
        detected=int(detected.sum()),
        missed=int((~detected).sum()),
        false_positive=matched.shape[1] - true_predictions,
        true_positive_predictions=true_predictions,
        large_detected=int((detected & large).sum()),
        large_reference=int(large.sum()),
    )


def describe_reference(
    reference: Lesions,
    match: LesionMatch,
    to_patient: Callable[[np.ndarray], tuple[float, float, float]],
) -> tuple[ReferenceLesion, ...]:
    """One entry per reference lesion; ``to_patient`` maps a z-y-x voxel index to LPS mm."""
    by_overlap = np.asarray(match.overlaps.any(axis=1))
    by_distance = np.asarray(match.near.any(axis=1))
    return tuple(
        ReferenceLesion(
            volume_ml=float(reference.volumes_mm3[i]) / 1000.0,
            equivalent_diameter_mm=float(reference.equivalent_diameters_mm[i]),
            centroid_lps_mm=to_patient(reference.centroids_zyx[i]),
            matched_by=MatchedBy.OVERLAP
            if by_overlap[i]
            else MatchedBy.DISTANCE
            if by_distance[i]
            else None,
        )
        for i in range(reference.count)
    )


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None
