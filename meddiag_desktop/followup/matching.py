"""Which lesion of the prior study is which lesion of the current one.

Prior lesions are carried into the current study through the registration. Pairs are then
chosen one to one, in two rounds, each solved with the Hungarian method
(``scipy.optimize.linear_sum_assignment``) so no lesion is claimed twice:

1. overlap: lesions whose voxels overlap once the prior mask is resampled onto the current
   grid, the best Dice first;
2. distance: of those left, lesions whose centres lie within a tolerance that grows with their
   size (``distance_factor`` times the larger long axis, at least ``min_tolerance_mm``), the
   closest first. A lesion that shrank away from its old outline, or one without a mask, is
   still found this way.

A prior lesion left over is gone; a current one left over is new. The reader's corrections
(:class:`~meddiag_desktop.db.comparison_records.MatchOverride`) are applied afterwards, in the
order they were made, by :func:`apply_overrides`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from meddiag_desktop.db.comparison_records import (
    MatchBasis,
    MatchOverride,
    OverrideAction,
    TrackStatus,
)
from meddiag_desktop.db.records import StoredFinding
from meddiag_desktop.domain import Volume
from meddiag_desktop.followup.transform import StoredTransform
from meddiag_desktop.reports.review_outcome import LesionRegion

_FORBIDDEN = 1e9


@dataclass(frozen=True)
class MatchingOptions:
    distance_factor: float = 0.75  # tolerance per mm of the larger long axis
    min_tolerance_mm: float = 5.0


@dataclass(frozen=True, eq=False)
class StudyLesions:
    """One study's lesions as matching sees them: findings and (where known) their voxels."""

    grid: Volume  # the grid the regions lie on (its array is not read)
    findings: tuple[StoredFinding, ...]
    regions: Mapping[int, LesionRegion]  # finding id -> voxels; a finding without: centre only


@dataclass(frozen=True)
class LesionMatch:
    """One track as matching decided it: a pair, or a lesion on one side only."""

    prior_finding_pk: int | None
    current_finding_pk: int | None
    status: TrackStatus
    basis: MatchBasis
    dice: float | None = None
    distance_mm: float | None = None


def match_lesions(
    prior: StudyLesions,
    current: StudyLesions,
    transform: StoredTransform,
    options: MatchingOptions | None = None,
) -> tuple[LesionMatch, ...]:
    """One-to-one matches of ``prior``'s lesions to ``current``'s (module docstring)."""
    options = options or MatchingOptions()
    p, c = len(prior.findings), len(current.findings)
    dice = _dice_matrix(prior, current, transform)
    distance = _distance_matrix(prior, current, transform)
    tolerance = _tolerance_matrix(prior, current, options)
    pairs: dict[int, tuple[int, MatchBasis]] = {}
    overlap_cost = np.where(dice > 0, 1.0 - dice, _FORBIDDEN)
    for i, j in _assign(overlap_cost, range(p), range(c)):
        pairs[i] = (j, MatchBasis.OVERLAP)
    left_prior = [i for i in range(p) if i not in pairs]
    taken = {j for j, _ in pairs.values()}
    left_current = [j for j in range(c) if j not in taken]
    near_cost = np.where(distance <= tolerance, distance / np.maximum(tolerance, 1e-6), _FORBIDDEN)
    for i, j in _assign(near_cost, left_prior, left_current):
        pairs[i] = (j, MatchBasis.DISTANCE)
    matches: list[LesionMatch] = []
    for i in range(p):
        prior_pk = prior.findings[i].finding_pk
        if i in pairs:
            j, basis = pairs[i]
            matches.append(
                LesionMatch(
                    prior_pk,
                    current.findings[j].finding_pk,
                    TrackStatus.MATCHED,
                    basis,
                    round(float(dice[i, j]), 4) if dice[i, j] > 0 else None,
                    round(float(distance[i, j]), 2),
                )
            )
        else:
            matches.append(LesionMatch(prior_pk, None, TrackStatus.GONE, MatchBasis.UNMATCHED))
    matched = {j for j, _ in pairs.values()}
    matches.extend(
        LesionMatch(None, current.findings[j].finding_pk, TrackStatus.NEW, MatchBasis.UNMATCHED)
        for j in range(c)
        if j not in matched
    )
    return tuple(matches)


def apply_overrides(
    matches: Sequence[LesionMatch], overrides: Iterable[MatchOverride]
) -> tuple[tuple[LesionMatch, ...], tuple[MatchOverride, ...]]:
    """``matches`` as the reader corrected them, and the overrides that applied (one naming a
    finding the matches do not hold, e.g. from before a new model run, is dropped)."""
    known_prior = {m.prior_finding_pk for m in matches if m.prior_finding_pk is not None}
    known_current = {m.current_finding_pk for m in matches if m.current_finding_pk is not None}
    tracks = list(matches)
    applied: list[MatchOverride] = []
    for override in overrides:
        p, c = override.prior_finding_pk, override.current_finding_pk
        if (p is not None and p not in known_prior) or (c is not None and c not in known_current):
            continue
        action = OverrideAction(override.action)
        if action is OverrideAction.LINK:
            assert p is not None and c is not None
            tracks = _split_off(_split_off(tracks, prior_pk=p), current_pk=c)
            tracks = [t for t in tracks if t.prior_finding_pk != p and t.current_finding_pk != c]
            tracks.append(LesionMatch(p, c, TrackStatus.MATCHED, MatchBasis.MANUAL))
        elif action is OverrideAction.UNLINK:
            if any(t.prior_finding_pk == p and t.current_finding_pk == c for t in tracks):
                tracks = _split_off(tracks, prior_pk=p)
            else:
                continue  # nothing to undo: not stored, so it cannot surprise later
        elif action is OverrideAction.MARK_NEW:
            tracks = _split_off(tracks, current_pk=c)
        else:
            tracks = _split_off(tracks, prior_pk=p)
        applied.append(override)
    return tuple(sorted(tracks, key=_order)), tuple(applied)


def _split_off(
    tracks: list[LesionMatch], prior_pk: int | None = None, current_pk: int | None = None
) -> list[LesionMatch]:
    """The matched pair holding ``prior_pk`` (or ``current_pk``) made into a gone and a new
    lesion, by the reader's hand; other tracks unchanged."""
    out: list[LesionMatch] = []
    for track in tracks:
        hit = track.status is TrackStatus.MATCHED and (
            (prior_pk is not None and track.prior_finding_pk == prior_pk)
            or (current_pk is not None and track.current_finding_pk == current_pk)
        )
        if not hit:
            out.append(track)
            continue
        out.append(LesionMatch(track.prior_finding_pk, None, TrackStatus.GONE, MatchBasis.MANUAL))
        out.append(LesionMatch(None, track.current_finding_pk, TrackStatus.NEW, MatchBasis.MANUAL))
    return out


def _order(track: LesionMatch) -> tuple[int, int, int]:
    rank = {TrackStatus.MATCHED: 0, TrackStatus.GONE: 1, TrackStatus.NEW: 2}[track.status]
    return (rank, track.prior_finding_pk or 0, track.current_finding_pk or 0)


def _assign(cost: np.ndarray, rows: Iterable[int], columns: Iterable[int]) -> list[tuple[int, int]]:
    """Minimum-cost one-to-one pairs among ``rows`` x ``columns``, allowed pairs only."""
    rows, columns = list(rows), list(columns)
    if not rows or not columns:
        return []
    sub = cost[np.ix_(rows, columns)]
    chosen_rows, chosen_columns = linear_sum_assignment(sub)
    return [
        (rows[r], columns[k])
        for r, k in zip(chosen_rows, chosen_columns, strict=True)
        if sub[r, k] < _FORBIDDEN
    ]


def _index_map(study: StudyLesions) -> np.ndarray:
    """uint16 map on ``study.grid``: 0 background, k + 1 the voxels of finding k."""
    out = np.zeros(study.grid.shape_zyx, dtype=np.uint16)
    for k, stored in enumerate(study.findings):
        region = study.regions.get(stored.finding_pk)
        if region is not None:
            out[region.box][region.mask_zyx] = k + 1
    return out


def _dice_matrix(
    prior: StudyLesions, current: StudyLesions, transform: StoredTransform
) -> np.ndarray:
    p, c = len(prior.findings), len(current.findings)
    dice = np.zeros((p, c))
    if not p or not c or not prior.regions or not current.regions:
        return dice
    moved = transform.resample_to_current(_index_map(prior), prior.grid, current.grid)
    here = _index_map(current)
    prior_sizes = np.bincount(moved.ravel(), minlength=p + 1)[1:].astype(float)
    current_sizes = np.bincount(here.ravel(), minlength=c + 1)[1:].astype(float)
    both = (moved > 0) & (here > 0)
    if not both.any():
        return dice
    codes = (moved[both].astype(np.int64) - 1) * c + (here[both].astype(np.int64) - 1)
    counts = np.bincount(codes, minlength=p * c).reshape(p, c).astype(float)
    total = prior_sizes[:, None] + current_sizes[None, :]
    np.divide(2.0 * counts, total, out=dice, where=total > 0)
    return dice


def _distance_matrix(
    prior: StudyLesions, current: StudyLesions, transform: StoredTransform
) -> np.ndarray:
    moved = np.array(
        [transform.to_current(s.finding.centroid_lps_mm) for s in prior.findings], dtype=float
    ).reshape(-1, 3)
    here = np.array([s.finding.centroid_lps_mm for s in current.findings], dtype=float).reshape(
        -1, 3
    )
    return np.linalg.norm(moved[:, None, :] - here[None, :, :], axis=2)


def _tolerance_matrix(
    prior: StudyLesions, current: StudyLesions, options: MatchingOptions
) -> np.ndarray:
    a = np.array([_size_mm(s) for s in prior.findings], dtype=float)
    b = np.array([_size_mm(s) for s in current.findings], dtype=float)
    larger = np.maximum(a[:, None], b[None, :])
    return np.maximum(options.min_tolerance_mm, options.distance_factor * larger)


def _size_mm(stored: StoredFinding) -> float:
    """The lesion's size for the tolerance: its long axis, or its equivalent sphere's."""
    finding = stored.finding
    sphere = (6.0 * max(finding.volume_ml, 0.0) * 1000.0 / np.pi) ** (1.0 / 3.0)
    return float(max(finding.long_axis_mm, sphere))
