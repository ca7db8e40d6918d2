"""Evaluate predicted label maps against references, case by case, into an EvaluationReport."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from meddiag_desktop.domain import Progress
from meddiag_desktop.evaluation.froc import froc_curve, threshold_counts, threshold_level
from meddiag_desktop.evaluation.label_maps import (
    GridImage,
    check_same_grid,
    read_label_map,
    read_probability_map,
)
from meddiag_desktop.evaluation.lesions import (
    bounding_box,
    describe_reference,
    detection_counts,
    find_lesions,
    match_lesions,
)
from meddiag_desktop.evaluation.options import EvaluationOptions
from meddiag_desktop.evaluation.overlap import measure_overlap
from meddiag_desktop.evaluation.pairing import CasePair
from meddiag_desktop.evaluation.report import CaseResult, EvaluationReport
from meddiag_desktop.evaluation.timings import read_timings


def evaluate_cases(
    pairs: Sequence[CasePair],
    options: EvaluationOptions | None = None,
    progress: Callable[[Progress], None] | None = None,
) -> EvaluationReport:
    """Measure every pair; the FROC curve covers the cases that have probability maps."""
    options = options or EvaluationOptions()
    results = []
    for index, pair in enumerate(pairs):
        if progress is not None:
            progress(Progress(index / len(pairs), "evaluate", pair.name))
        results.append(evaluate_case(pair, options))
    if progress is not None:
        progress(Progress(1.0, "evaluate", "done"))
    sweeps = [r.threshold_counts for r in results if r.threshold_counts is not None]
    return EvaluationReport(tuple(results), options, froc_curve(sweeps, options))


def evaluate_case(pair: CasePair, options: EvaluationOptions) -> CaseResult:
    """Read one pair (and its probability map and timings) and measure it."""
    reference = read_label_map(pair.reference.label_map)
    prediction = read_label_map(pair.prediction.label_map)
    check_same_grid(reference, prediction)
    probabilities = None
    if pair.prediction.probabilities is not None:
        probabilities = read_probability_map(pair.prediction.probabilities)
        check_same_grid(reference, probabilities, role="probability map")
    timings = read_timings(pair.prediction.findings)

    # Everything below only looks at lesion voxels: work on their bounding box.
    foreground = (reference.array_zyx > 0) | (prediction.array_zyx > 0)
    if probabilities is not None:
        map_zyx = probabilities.array_zyx
        foreground |= map_zyx >= threshold_level(min(options.thresholds), map_zyx.dtype)
    box = bounding_box(foreground)
    offset = tuple(int(s.start) for s in box)
    spacing = reference.spacing_zyx_mm
    reference_zyx, prediction_zyx = reference.array_zyx[box], prediction.array_zyx[box]

    overlap = measure_overlap(reference_zyx, prediction_zyx)
    reference_lesions = find_lesions(reference_zyx > 0, spacing, offset)
    predicted_lesions = find_lesions(prediction_zyx > 0, spacing, offset)
    match = match_lesions(reference_lesions, predicted_lesions, options)
    counts = None
    if probabilities is not None:
        counts = threshold_counts(reference_lesions, probabilities.array_zyx[box], options, offset)
    return CaseResult(
        name=pair.name,
        reference=pair.reference.label_map,
        prediction=pair.prediction.label_map,
        probabilities=pair.prediction.probabilities,
        overlap=overlap,
        lesions=detection_counts(reference_lesions, match, options),
        reference_lesions=describe_reference(reference_lesions, match, _to_patient(reference)),
        threshold_counts=counts,
        timings_s=timings,
    )


def _to_patient(image: GridImage) -> Callable[[np.ndarray], tuple[float, float, float]]:
    """Voxel index (z, y, x) -> patient coordinates (LPS mm) on ``image``'s grid."""
    dimension = len(image.origin_xyz_mm)
    direction = np.asarray(image.direction).reshape(dimension, dimension)
    origin = np.asarray(image.origin_xyz_mm)
    spacing = np.asarray(image.spacing_xyz_mm)

    def convert(index_zyx: np.ndarray) -> tuple[float, float, float]:
        index_xyz = np.asarray(index_zyx)[::-1][:dimension]
        point = origin + direction @ (index_xyz * spacing)
        x, y, z = (float(v) for v in (*point, 0.0, 0.0)[:3])
        return (x, y, z)

    return convert
