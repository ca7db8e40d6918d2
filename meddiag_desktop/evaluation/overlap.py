"""Voxel overlap between a reference and a predicted label map: Dice, sensitivity, precision.

Counted per label and for "any lesion" (every label above 0 taken as one). Each measure is
``None`` where it is undefined (Dice when both are empty, sensitivity without reference voxels,
precision without predicted voxels); means over cases leave those out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

_DENSE_LIMIT = 1 << 20  # confusion-matrix cells; more distinct label values go through np.unique


@dataclass(frozen=True)
class VoxelOverlap:
    """Voxel counts of one label in one case (or pooled over cases) and the measures from them."""

    true_positive: int = 0
    false_positive: int = 0
    false_negative: int = 0

    @property
    def dice(self) -> float | None:
        denominator = 2 * self.true_positive + self.false_positive + self.false_negative
        return 2 * self.true_positive / denominator if denominator else None

    @property
    def sensitivity(self) -> float | None:
        reference = self.true_positive + self.false_negative
        return self.true_positive / reference if reference else None

    @property
    def precision(self) -> float | None:
        predicted = self.true_positive + self.false_positive
        return self.true_positive / predicted if predicted else None

    def __add__(self, other: VoxelOverlap) -> VoxelOverlap:
        return VoxelOverlap(
            self.true_positive + other.true_positive,
            self.false_positive + other.false_positive,
            self.false_negative + other.false_negative,
        )

    def to_dict(self) -> dict:
        return {
            "dice": self.dice,
            "sensitivity": self.sensitivity,
            "precision": self.precision,
            "tp_voxels": self.true_positive,
            "fp_voxels": self.false_positive,
            "fn_voxels": self.false_negative,
        }


@dataclass(frozen=True)
class CaseOverlap:
    """Per-label overlap (labels present in either map) and the any-lesion overlap of one case."""

    labels: Mapping[int, VoxelOverlap]
    any_lesion: VoxelOverlap


def measure_overlap(reference_zyx: np.ndarray, prediction_zyx: np.ndarray) -> CaseOverlap:
    """Count overlap from one confusion matrix, so many labels cost one pass, not one each."""
    values, confusion = _confusion(reference_zyx, prediction_zyx)
    reference_totals = confusion.sum(axis=1)
    predicted_totals = confusion.sum(axis=0)
    labels: dict[int, VoxelOverlap] = {}
    for index, value in enumerate(values):
        if value == 0 or (reference_totals[index] == 0 and predicted_totals[index] == 0):
            continue
        hit = int(confusion[index, index])
        labels[int(value)] = VoxelOverlap(
            hit, int(predicted_totals[index]) - hit, int(reference_totals[index]) - hit
        )
    foreground = values != 0
    any_hit = int(confusion[np.ix_(foreground, foreground)].sum())
    any_lesion = VoxelOverlap(
        any_hit,
        int(predicted_totals[foreground].sum()) - any_hit,
        int(reference_totals[foreground].sum()) - any_hit,
    )
    return CaseOverlap(labels, any_lesion)


def pooled(overlaps: Iterable[VoxelOverlap]) -> VoxelOverlap:
    """Counts summed over cases: measures as if all cases were one big volume."""
    return sum(overlaps, VoxelOverlap())


def mean_of(values: Iterable[float | None]) -> float | None:
    """Mean of the defined values, ``None`` when there are none."""
    defined = [v for v in values if v is not None]
    return float(np.mean(defined)) if defined else None


def _confusion(reference: np.ndarray, prediction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct label values (0 included) and counts[reference value, predicted value]."""
    top = int(max(reference.max(initial=0), prediction.max(initial=0)))
    if (top + 1) ** 2 <= _DENSE_LIMIT:
        size = top + 1
        flat = reference.astype(np.intp).ravel() * size + prediction.astype(np.intp).ravel()
        confusion = np.bincount(flat, minlength=size * size).reshape(size, size)
        present = (confusion.sum(axis=0) + confusion.sum(axis=1)) > 0
        present[0] = True
        values = np.flatnonzero(present)
        return values, confusion[np.ix_(present, present)]
    values, inverse = np.unique(
        np.concatenate([reference.ravel(), prediction.ravel()]), return_inverse=True
    )
    if values[0] != 0:
        values = np.concatenate([[0], values])
        inverse = inverse + 1
    size = len(values)
    ref_index, pred_index = np.split(inverse.ravel(), 2)
    confusion = np.bincount(ref_index * size + pred_index, minlength=size * size)
    return values, confusion.reshape(size, size)
