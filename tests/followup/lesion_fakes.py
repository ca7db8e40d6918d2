"""Small synthetic studies for the matching and RECIST tests: spheres on a 1 mm grid."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from meddiag_desktop.db.comparison_records import MatchBasis, TrackStatus
from meddiag_desktop.db.records import ReviewStatus, StoredFinding
from meddiag_desktop.domain import Finding, Volume
from meddiag_desktop.followup.matching import StudyLesions
from meddiag_desktop.followup.numbers import lesion_numbers
from meddiag_desktop.followup.tracks import LesionTrack
from meddiag_desktop.reports.review_outcome import LesionRegion

SHAPE_ZYX = (60, 80, 80)


def grid(origin: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> Volume:
    return Volume(np.zeros(SHAPE_ZYX, np.uint8), (1.0, 1.0, 1.0), origin)


def stored(pk: int, centre_lps: tuple[float, float, float], diameter_mm: float) -> StoredFinding:
    volume_ml = np.pi * diameter_mm**3 / 6000.0
    finding = Finding(
        finding_id=pk,
        label=1,
        label_name="nodule",
        volume_ml=float(volume_ml),
        long_axis_mm=diameter_mm,
        short_axis_mm=diameter_mm * 0.9,
        centroid_lps_mm=centre_lps,
        centroid_index_xyz=centre_lps,
        bbox_index_xyz=(0, 0, 0, 0, 0, 0),
        voxel_count=1,
        mean_intensity=20.0,
        max_intensity=60.0,
        mean_probability=0.9,
        max_probability=1.0,
    )
    return StoredFinding(pk, 1, 1, finding, ReviewStatus.PENDING)


def sphere(study: Volume, finding: Finding) -> LesionRegion:
    """A ball of the finding's diameter about its centroid, on ``study``'s grid."""
    z, y, x = np.indices(study.shape_zyx)
    index = np.asarray(study.lps_to_index(finding.centroid_lps_mm))
    inside = (x - index[0]) ** 2 + (y - index[1]) ** 2 + (z - index[2]) ** 2 <= (
        finding.long_axis_mm / 2
    ) ** 2
    where = np.argwhere(inside)
    low, high = where.min(axis=0), where.max(axis=0) + 1
    box = tuple(slice(a, b) for a, b in zip(low, high, strict=True))
    return LesionRegion((int(low[0]), int(low[1]), int(low[2])), inside[box].copy())


def study(
    findings: list[StoredFinding],
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0),
    masks: bool = True,
) -> StudyLesions:
    g = grid(origin)
    regions = {s.finding_pk: sphere(g, s.finding) for s in findings} if masks else {}
    return StudyLesions(g, tuple(findings), regions)


def track(
    track_id: str,
    prior_mm: float | None,
    current_mm: float | None,
    organ: str = "lung",
    days: int = 90,
) -> LesionTrack:
    """A track of a lesion this long at each time (None: absent)."""
    prior = stored(1, (10.0, 10.0, 10.0), prior_mm) if prior_mm is not None else None
    current = stored(2, (10.0, 10.0, 10.0), current_mm) if current_mm is not None else None
    if prior is not None and organ != "lung":
        prior = replace(prior, finding=replace(prior.finding, label_name=organ))
    status = (
        TrackStatus.MATCHED if prior and current else TrackStatus.GONE if prior else TrackStatus.NEW
    )
    return LesionTrack(
        track_id=track_id,
        tracking_uid=f"2.25.{abs(hash(track_id))}",
        status=status,
        basis=MatchBasis.OVERLAP,
        prior=prior,
        current=current,
        numbers=lesion_numbers(
            prior.finding if prior else None, current.finding if current else None, days
        ),
        organ=organ,
    )
