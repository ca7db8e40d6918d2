"""Which track of a comparison is which lesion of the demo pair's ground truth: by position."""

from __future__ import annotations

from typing import Any

import numpy as np

NEAR_MM = 6.0


def pair_with_truth(
    compared: dict[str, Any], truth: dict[str, Any]
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Truth track id -> the compared lesion at its place, and the compared lesions that are
    at no true lesion's place (false positives of a model)."""
    found: dict[str, dict[str, Any]] = {}
    used: set[str] = set()
    for lesion in truth["lesions"]:
        for candidate in compared["lesions"]:
            if candidate["track_id"] in used:
                continue
            if _same_place(lesion["centre_lps_mm"], candidate["centroid_lps_mm"]):
                found[lesion["track_id"]] = candidate
                used.add(candidate["track_id"])
                break
    extra = [c for c in compared["lesions"] if c["track_id"] not in used]
    return found, extra


def _same_place(truth: list[Any], measured: list[Any]) -> bool:
    """Near on every side where either has the lesion; present on the same sides."""
    for true_point, point in zip(truth, measured, strict=True):
        if (true_point is None) != (point is None):
            continue
        if true_point is not None and np.linalg.norm(np.subtract(true_point, point)) > NEAR_MM:
            return False
    sides = [p is not None for p in truth]
    seen = [p is not None for p in measured]
    return any(a and b for a, b in zip(sides, seen, strict=True))
