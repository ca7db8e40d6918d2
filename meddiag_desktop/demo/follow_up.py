"""A baseline and a follow-up scan of one synthetic patient, with known changes between them.

The pair the follow-up comparison (``meddiag compare``) is checked on. The follow-up is taken
``FOLLOW_UP_DAYS`` later with the patient lying differently (``FOLLOW_UP_POSE``: about 17 mm
and 4 degrees), and its nodules changed as ``PLAN`` says: one grown by a known volume factor,
one shrunk, one gone, one new, the others unchanged. All nodules are 10 mm or more, so the demo
model (sensitivity 1.00 from 6 mm) finds them.

The ground truth says, per nodule track, what ``meddiag compare --json`` says: status, volume
and long axis at both visits, volume change and doubling time, and the RECIST 1.1 response,
worked out here from the phantom's analytic shapes (independently of the comparison's code).
Volumes are those of the analytic lobulated spheres; the long axis is the diameter, which
every chord through the centre of the (odd-lobulated) shape measures exactly.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

import numpy as np

from meddiag_desktop.demo.nodules import NoduleShape, NoduleSizes, nodule_volume_mm3, place_nodules
from meddiag_desktop.demo.patient_pose import PatientPose
from meddiag_desktop.demo.phantom import (
    CENTRE_LPS_MM,
    DEFAULT_SHAPE_ZYX,
    DEFAULT_SPACING_XYZ_MM,
    Phantom,
    ScanSettings,
    checked_grid,
    field_of_view,
    phantom_scene,
    render_phantom,
)
from meddiag_desktop.demo.tubes import Grid
from meddiag_desktop.domain import ScanMetadata

FOLLOW_UP_DAYS = 90
FOLLOW_UP_POSE = PatientPose(rotation_deg_xyz=(1.5, -1.0, 3.5), translation_mm=(8.0, -6.0, 14.0))
BASELINE_DATE = date(2025, 1, 6)
TRUTH_FORMAT_VERSION = 1
TRUTH_GENERATOR = "meddiag-desktop demo follow-up pair"


@dataclass(frozen=True)
class PlannedNodule:
    """One nodule track of the pair: its size at baseline and what becomes of it."""

    change: str  # "grown", "shrunk", "gone", "new" or "unchanged"
    diameter_mm: float  # at baseline; for a new nodule, at follow-up
    volume_factor: float = 1.0  # follow-up volume / baseline volume (grown, shrunk)


PLAN: tuple[PlannedNodule, ...] = (
    PlannedNodule("shrunk", 14.0, 0.5),
    PlannedNodule("grown", 10.0, 2.0),
    PlannedNodule("gone", 12.0),
    PlannedNodule("unchanged", 16.0),
    PlannedNodule("unchanged", 11.0),
    PlannedNodule("new", 10.0),
)
# RECIST 1.1 as the comparison applies it: measurable from 10 mm, up to 5 targets, 2 per organ
# (both lungs are one organ), PR from -30%, PD from +20% and +5 mm, or any new lesion.
_MEASURABLE_MM, _MAX_TARGETS, _PER_ORGAN = 10.0, 5, 2


@dataclass(frozen=True, eq=False)
class FollowUpPair:
    baseline: Phantom
    follow_up: Phantom
    truth: dict[str, Any]  # what ``follow_up_truth.json`` holds


def make_follow_up_pair(
    seed: int = 7,
    shape_zyx: tuple[int, int, int] = DEFAULT_SHAPE_ZYX,
    spacing_xyz_mm: tuple[float, float, float] = DEFAULT_SPACING_XYZ_MM,
) -> FollowUpPair:
    """The baseline and follow-up phantoms of patient ``seed`` and their ground truth.

    Raises ValueError when the field of view leaves too little lung to place every nodule.
    """
    shape, spacing = checked_grid(shape_zyx, spacing_xyz_mm)
    scene = phantom_scene(seed)
    fov = _shared_field_of_view(shape, spacing)
    existing = [p for p in PLAN if p.change != "new"]
    largest = tuple(p.diameter_mm * max(p.volume_factor, 1.0) ** (1 / 3) for p in existing)
    placed = place_nodules(
        np.random.default_rng([seed, 2]), 0, scene.lung, scene.vessels, fov, NoduleSizes(largest)
    )
    new_plans = [p for p in PLAN if p.change == "new"]
    added = place_nodules(
        np.random.default_rng([seed, 4]),
        0,
        scene.lung,
        scene.vessels,
        fov,
        NoduleSizes(tuple(p.diameter_mm for p in new_plans), tuple(placed)),
    )
    if len(placed) < len(existing) or len(added) < len(new_plans):
        raise ValueError(
            f"the field of view of {shape} voxels of {spacing} mm shows too little lung for "
            "the follow-up phantom's nodules: use a larger one"
        )
    at_baseline: dict[int, NoduleShape] = {}
    at_follow_up: dict[int, NoduleShape] = {}
    shapes = iter(placed)
    new_shapes = iter(added)
    for index, plan in enumerate(PLAN):
        if plan.change == "new":
            at_follow_up[index] = next(new_shapes)
            continue
        grown = next(shapes)
        first = replace(grown, radius=plan.diameter_mm / 2.0)
        at_baseline[index] = first
        if plan.change != "gone":
            factor = plan.volume_factor ** (1 / 3)
            at_follow_up[index] = replace(first, radius=first.radius * factor)
    baseline_meta, follow_up_meta = _metadata(seed, shape, spacing)
    baseline = render_phantom(
        scene, list(at_baseline.values()), ScanSettings(shape, spacing, baseline_meta)
    )
    follow_up = render_phantom(
        scene,
        list(at_follow_up.values()),
        ScanSettings(shape, spacing, follow_up_meta, FOLLOW_UP_POSE, visit=1),
    )
    truth = _truth(seed, at_baseline, at_follow_up, baseline_meta, follow_up_meta)
    return FollowUpPair(baseline, follow_up, truth)


def current_to_prior(pose: PatientPose) -> tuple[np.ndarray, np.ndarray]:
    """The map from a follow-up (current) LPS point to the baseline (prior) LPS point of the
    same anatomy, as (3x3 matrix, translation mm): what registering prior to current finds."""
    rotation = pose.matrix()
    centre = np.asarray(CENTRE_LPS_MM)
    translation = centre - rotation.T @ (centre + np.asarray(pose.translation_mm))
    return rotation.T, translation


def _shared_field_of_view(
    shape: tuple[int, int, int], spacing: tuple[float, float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Where (anatomy mm) a nodule is inside both scans' fields of view."""
    nz, ny, nx = shape

    def centres(count: int, step: float) -> np.ndarray:
        return ((np.arange(count) - (count - 1) / 2.0) * step).astype(np.float32)

    grid = Grid(centres(nx, spacing[0]), centres(ny, spacing[1]), centres(nz, spacing[2]))
    lo, hi = field_of_view(grid, spacing)
    margin = FOLLOW_UP_POSE.reach_mm((lo, hi))
    return lo + margin, hi - margin


def _uid(*parts: object) -> str:
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return f"2.25.{int.from_bytes(digest[:16], 'big')}"


def _metadata(
    seed: int, shape: tuple[int, int, int], spacing: tuple[float, float, float]
) -> tuple[ScanMetadata, ScanMetadata]:
    def visit(name: str, day: date) -> ScanMetadata:
        stamp = day.strftime("%Y%m%d")
        return ScanMetadata(
            modality="CT",
            patient_name="PHANTOM^FOLLOWUP",
            patient_id=f"PHANTOM-FU-{seed:04d}",
            patient_birth_date="19600101",
            patient_sex="O",
            study_uid=_uid("meddiag-demo-follow-up", seed, name, "study"),
            series_uid=_uid("meddiag-demo-follow-up", seed, name, "series", shape, spacing),
            study_date=stamp,
            series_date=stamp,
            study_description=f"CT chest - synthetic phantom, {name}",
            series_description=f"Axial {spacing[2]:g} mm - synthetic phantom {name} (seed {seed})",
            series_number="2",
            institution="MedDiag Desktop demo (synthetic phantom, not a patient)",
            manufacturer="MedDiag",
            manufacturer_model="Synthetic chest phantom",
        )

    return (
        visit("baseline", BASELINE_DATE),
        visit("follow-up", BASELINE_DATE + timedelta(days=FOLLOW_UP_DAYS)),
    )


def _truth(
    seed: int,
    at_baseline: dict[int, NoduleShape],
    at_follow_up: dict[int, NoduleShape],
    baseline_meta: ScanMetadata,
    follow_up_meta: ScanMetadata,
) -> dict[str, Any]:
    lesions = []
    for index, plan in enumerate(PLAN):
        before, after = at_baseline.get(index), at_follow_up.get(index)
        volumes = [_ml(before), _ml(after)]
        axes = [_diameter(before), _diameter(after)]
        lesions.append(
            {
                "track_id": f"N{index + 1}",
                "status": _STATUS[plan.change],
                "change": plan.change,
                "volume_ml": volumes,
                "long_axis_mm": axes,
                "volume_change_pct": _change_pct(volumes),
                "doubling_time_days": _doubling_days(volumes),
                "centre_lps_mm": [_centre(before, None), _centre(after, FOLLOW_UP_POSE)],
            }
        )
    response, rule, targets, sums = _recist(lesions)
    matrix, translation = current_to_prior(FOLLOW_UP_POSE)
    return {
        "generator": TRUTH_GENERATOR,
        "format_version": TRUTH_FORMAT_VERSION,
        "seed": seed,
        "note": "Synthetic phantoms, not a patient. Coordinates are LPS millimetres; each "
        "centre is in its own study's coordinates. Volumes are the nodules' analytic shapes.",
        "baseline": _study(baseline_meta),
        "follow_up": _study(follow_up_meta),
        "days_between": FOLLOW_UP_DAYS,
        "transform": {
            "maps": "follow-up (current) LPS point -> baseline (prior) LPS point",
            "matrix": [round(float(v), 9) for v in matrix.ravel()],
            "translation_mm": [round(float(v), 6) for v in translation],
            "rotation_deg": round(FOLLOW_UP_POSE.rotation_deg, 4),
            "shift_mm": round(float(np.linalg.norm(FOLLOW_UP_POSE.translation_mm)), 3),
        },
        "response": response,
        "rule": rule,
        "target_lesions": targets,
        "sum_of_diameters_mm": sums,
        "lesions": lesions,
    }


_STATUS = {
    "grown": "matched",
    "shrunk": "matched",
    "unchanged": "matched",
    "gone": "gone",
    "new": "new",
}


def _study(meta: ScanMetadata) -> dict[str, str]:
    return {
        "study_uid": meta.study_uid,
        "series_uid": meta.series_uid,
        "study_date": meta.study_date,
    }


def _ml(nodule: NoduleShape | None) -> float | None:
    return None if nodule is None else round(nodule_volume_mm3(nodule) / 1000.0, 5)


def _diameter(nodule: NoduleShape | None) -> float | None:
    return None if nodule is None else round(2.0 * nodule.radius, 3)


def _centre(nodule: NoduleShape | None, pose: PatientPose | None) -> list[float] | None:
    if nodule is None:
        return None
    point = nodule.centre if pose is None else pose.scanner_point(nodule.centre)
    return [round(float(v + c), 3) for v, c in zip(point, CENTRE_LPS_MM, strict=True)]


def _change_pct(volumes: list[float | None]) -> float | None:
    first, second = volumes
    if first is None or second is None:
        return None
    return round(100.0 * (second - first) / first, 3)


def _doubling_days(volumes: list[float | None]) -> float | None:
    first, second = volumes
    if first is None or second is None or math.isclose(first, second, rel_tol=1e-9):
        return None
    return round(FOLLOW_UP_DAYS * math.log(2.0) / math.log(second / first), 3)


def _recist(lesions: list[dict[str, Any]]) -> tuple[str, str, list[str], list[float]]:
    """RECIST 1.1 on the true diameters: (response, rule, target track ids, [sum, sum])."""
    measurable = [
        lesion
        for lesion in lesions
        if lesion["long_axis_mm"][0] is not None and lesion["long_axis_mm"][0] >= _MEASURABLE_MM
    ]
    measurable.sort(key=lambda lesion: -lesion["long_axis_mm"][0])
    targets = measurable[: min(_MAX_TARGETS, _PER_ORGAN)]  # every nodule is in the lungs
    before = sum(t["long_axis_mm"][0] for t in targets)
    after = sum(t["long_axis_mm"][1] or 0.0 for t in targets)
    change = 100.0 * (after - before) / before
    new = [lesion["track_id"] for lesion in lesions if lesion["status"] == "new"]
    if new:
        response, rule = "PD", f"PD: new lesion(s) {', '.join(new)}"
    elif all(t["long_axis_mm"][1] is None for t in targets):
        response, rule = "CR", "CR: all target lesions gone"
    elif change >= 20.0 and after - before >= 5.0:
        response, rule = "PD", "PD: sum of diameters +20% and +5 mm or more"
    elif change <= -30.0:
        response, rule = "PR", "PR: sum of diameters -30% or more"
    else:
        response, rule = "SD", "SD: neither PR nor PD"
    rule += f" (sum of target diameters {before:.1f} -> {after:.1f} mm, {change:+.1f}%)"
    return response, rule, [t["track_id"] for t in targets], [round(before, 3), round(after, 3)]
