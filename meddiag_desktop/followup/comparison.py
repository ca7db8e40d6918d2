"""A case compared with an earlier case of its patient, from the database and back into it.

:func:`compare_cases` is what ``meddiag compare`` and the app's worker run: both scans are
read again from their files (checked against their import fingerprint), the prior registered
to the current (:mod:`.registration`), both cases' findings matched through the transform
(:mod:`.matching`) with the reader's earlier corrections of the same pair applied again, the
numbers and the RECIST response worked out, and all of it stored as a comparison
(:mod:`meddiag_desktop.db.comparisons`). :func:`revise_comparison` applies new corrections
(link, unlink, mark new or gone, other targets) to a stored comparison without registering
again. The findings compared are each case's current run's and manual ones, minus those the
reader rejected.

Each track's tracking UID is the prior finding's (the one its own exports write, or the one it
continues from an older comparison), so a matched lesion keeps one UID across all studies; a
new lesion starts its own (the current finding's).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

import numpy as np

from meddiag_desktop.db.case_label_map import case_label_map
from meddiag_desktop.db.cases import get_case
from meddiag_desktop.db.comparison_records import (
    ComparisonRecord,
    MatchOverride,
    NewComparison,
    StoredTrack,
    TrackStatus,
)
from meddiag_desktop.db.comparisons import (
    continued_tracking_uids,
    get_comparison,
    latest_comparison,
    store_comparison,
)
from meddiag_desktop.db.engine import Database
from meddiag_desktop.db.records import CaseDetail, CaseStatus, ReviewStatus, StoredFinding
from meddiag_desktop.db.roles import Permission, require
from meddiag_desktop.domain import Progress, Volume
from meddiag_desktop.export.errors import ExportError
from meddiag_desktop.export.finding_regions import finding_region
from meddiag_desktop.export.outcome_from_case import finding_name, load_case_scan, tracking_uid
from meddiag_desktop.followup.errors import FollowUpError
from meddiag_desktop.followup.matching import (
    LesionMatch,
    MatchingOptions,
    StudyLesions,
    apply_overrides,
    match_lesions,
)
from meddiag_desktop.followup.numbers import lesion_numbers
from meddiag_desktop.followup.recist import RecistAssessment, assess, organ_of, propose_targets
from meddiag_desktop.followup.registration import (
    CancelCheck,
    ProgressCallback,
    RegistrationOptions,
    register,
)
from meddiag_desktop.followup.tracks import LesionTrack
from meddiag_desktop.followup.transform import StoredTransform
from meddiag_desktop.reports.review_outcome import LesionRegion

_KEEP = frozenset({ReviewStatus.PENDING, ReviewStatus.ACCEPTED, ReviewStatus.EDITED})
_AS_BEFORE: Any = object()  # "keep what the pair's newest comparison had"


@dataclass(frozen=True)
class CompareOptions:
    registration: RegistrationOptions = field(default_factory=RegistrationOptions)
    matching: MatchingOptions = field(default_factory=MatchingOptions)
    # None: the corrections of the pair's newest comparison, applied again.
    overrides: tuple[MatchOverride, ...] | None = None
    # Prior finding ids; None: those chosen for the pair before, else the RECIST proposal.
    targets: tuple[int, ...] | None = None
    propose_targets: bool = False  # the RECIST proposal, whatever was chosen before
    store: bool = True


@dataclass(frozen=True)
class RegistrationSummary:
    transform: StoredTransform  # current LPS point -> prior LPS point
    quality: Mapping[str, Any]  # metric, ncc/body Dice before and after, iterations, stop
    seconds: float

    @property
    def metric(self) -> float | None:
        value = self.quality.get("metric")
        return float(value) if value is not None else None


@dataclass(frozen=True)
class ComparisonOutcome:
    """A comparison as the viewer, the CLI and the report show it."""

    comparison_id: int | None  # None when not stored
    case_id: int
    prior_case_id: int
    current_date: date | None
    prior_date: date | None
    registration: RegistrationSummary
    tracks: tuple[LesionTrack, ...]
    recist: RecistAssessment
    overrides: tuple[MatchOverride, ...]
    chosen_targets: tuple[int, ...] | None  # the reader's (prior finding ids); None: proposal

    @property
    def days_between(self) -> int | None:
        if self.current_date is None or self.prior_date is None:
            return None
        return (self.current_date - self.prior_date).days

    @property
    def transform(self) -> StoredTransform:
        return self.registration.transform

    def to_json(self) -> dict[str, Any]:
        """What ``meddiag compare --json`` prints (and the comparison's stored summary)."""
        recist = self.recist
        transform = self.transform
        matrix, offset = transform.matrix_and_translation()
        return {
            "comparison_id": self.comparison_id,
            "case_id": self.case_id,
            "prior_case_id": self.prior_case_id,
            "current_study_date": _iso(self.current_date),
            "prior_study_date": _iso(self.prior_date),
            "days_between": self.days_between,
            "response": recist.response.value,
            "rule": recist.rule,
            "targets": list(recist.targets),
            "targets_proposed": recist.proposed,
            "sum_of_diameters_mm": [recist.sum_prior_mm, recist.sum_current_mm],
            "sum_change_pct": _round(recist.change_pct, 2),
            "registration": {
                "type": transform.kind.value,
                "metric": _round(self.registration.metric, 5),
                "seconds": round(self.registration.seconds, 3),
                **{k: v for k, v in self.registration.quality.items() if k != "metric"},
                "rotation_deg": round(transform.rotation_deg(), 4),
                "matrix": [round(float(v), 8) for v in matrix.ravel()],
                "translation_mm": [round(float(v), 4) for v in offset],
                "transform": transform.to_json(),
            },
            "lesions": [_track_json(t) for t in self.tracks],
            "overrides": [
                {
                    "action": o.action.value,
                    "prior_finding_pk": o.prior_finding_pk,
                    "current_finding_pk": o.current_finding_pk,
                }
                for o in self.overrides
            ],
        }


def compare_cases(
    db: Database,
    case_id: int,
    prior_case_id: int,
    options: CompareOptions | None = None,
    progress: ProgressCallback | None = None,
    cancelled: CancelCheck | None = None,
) -> ComparisonOutcome:
    """Register, match, measure and (``options.store``) store; see the module docstring.

    For a worker: ``progress`` gets a :class:`~meddiag_desktop.domain.Progress` after each
    step and each registration iteration; ``cancelled()`` is polled as often and raises
    :class:`~meddiag_desktop.followup.errors.RegistrationCancelled` (nothing stored).
    Raises :class:`FollowUpError` for cases that cannot be compared (another patient, a scan
    moved away or changed, no body to register on).
    """
    options = options or CompareOptions()
    report = progress or (lambda _p: None)
    if options.store:
        require(db, Permission.REVIEW)
    if case_id == prior_case_id:
        raise FollowUpError(f"case {case_id} cannot be compared with itself")
    current, prior = get_case(db, case_id), get_case(db, prior_case_id)
    _check_same_patient(current, prior)
    _check_analysed(current)
    _check_analysed(prior)
    if options.store and current.summary.status is CaseStatus.SIGNED:
        raise FollowUpError(
            f"case {case_id} is signed: its exports are final, so a comparison cannot be "
            "stored for it (compare it without storing to view one)"
        )
    report(Progress(0.0, "comparison", "reading both scans"))
    current_scan, prior_scan = _scan(current), _scan(prior)

    def registration_progress(p: Progress) -> None:
        report(Progress(0.05 + 0.8 * p.fraction, p.stage, p.message))

    result = register(
        current_scan, prior_scan, options.registration, registration_progress, cancelled
    )
    quality = {
        "metric": result.quality.metric,
        "ncc_before": result.quality.ncc_before,
        "ncc_after": result.quality.ncc_after,
        "body_dice_before": result.quality.body_dice_before,
        "body_dice_after": result.quality.body_dice_after,
        "iterations": result.iterations,
        "stop_reason": result.stop_reason,
    }
    summary = RegistrationSummary(result.transform, quality, result.seconds)
    report(Progress(0.87, "comparison", "matching lesions"))
    before = latest_comparison(db, case_id, prior_case_id)
    overrides = options.overrides
    if overrides is None:
        overrides = before.overrides if before is not None else ()
    targets = options.targets
    if targets is None and before is not None and not options.propose_targets:
        targets = before.chosen_targets
    outcome = _evaluate(
        db,
        (prior, current),
        (_lesions(db, prior, prior_scan), _lesions(db, current, current_scan)),
        summary,
        overrides,
        targets,
        options.matching,
    )
    if options.store:
        report(Progress(0.97, "comparison", "storing"))
        outcome = _store(db, outcome, None)
    report(Progress(1.0, "comparison", f"done: {outcome.recist.response.value}"))
    return outcome


def revise_comparison(
    db: Database,
    comparison_id: int,
    overrides: Sequence[MatchOverride] | None = None,
    targets: tuple[int, ...] | None = _AS_BEFORE,
    options: MatchingOptions | None = None,
) -> ComparisonOutcome:
    """The stored comparison matched again with the reader's ``overrides`` (all of them, in
    order; None: those it has) and ``targets`` (prior finding ids; None: the proposal; left
    out: as before), stored as its revision. No registration: the stored transform is used."""
    require(db, Permission.REVIEW)
    record = get_comparison(db, comparison_id)
    current, prior = get_case(db, record.case_id), get_case(db, record.prior_case_id)
    summary = RegistrationSummary(
        StoredTransform.from_json(record.transform), dict(record.quality), record.seconds
    )
    chosen = record.chosen_targets if targets is _AS_BEFORE else targets
    outcome = _evaluate(
        db,
        (prior, current),
        (_lesions(db, prior, None), _lesions(db, current, None)),
        summary,
        tuple(record.overrides if overrides is None else overrides),
        chosen,
        options or MatchingOptions(),
    )
    return _store(db, outcome, comparison_id)


def add_override(db: Database, comparison_id: int, override: MatchOverride) -> ComparisonOutcome:
    """One more correction (link, unlink, mark new or gone) on top of the stored ones."""
    record = get_comparison(db, comparison_id)
    return revise_comparison(db, comparison_id, (*record.overrides, override))


def summary_of(record: ComparisonRecord) -> dict[str, Any]:
    """A stored comparison as ``meddiag compare --json`` printed it when it was made."""
    return {**record.summary, "comparison_id": record.comparison_id}


def _evaluate(
    db: Database,
    cases: tuple[CaseDetail, CaseDetail],
    lesions: tuple[StudyLesions, StudyLesions],
    registration: RegistrationSummary,
    overrides: Sequence[MatchOverride],
    targets: tuple[int, ...] | None,
    matching: MatchingOptions,
) -> ComparisonOutcome:
    prior_case, current_case = cases
    prior, current = lesions
    automatic = match_lesions(prior, current, registration.transform, matching)
    matches, applied = apply_overrides(automatic, overrides)
    days = _days(prior_case, current_case)
    uids = _uids(db, prior_case, current_case)
    by_pk = {s.finding_pk: s for s in (*prior.findings, *current.findings)}
    tracks = [
        _track(f"T{number}", match, by_pk, days, uids)
        for number, match in enumerate(matches, start=1)
    ]
    if targets is None:
        target_ids = propose_targets(tracks)
    else:
        by_prior = {t.prior_finding_pk: t.track_id for t in tracks if t.prior is not None}
        missing = [pk for pk in targets if pk not in by_prior]
        if missing:
            raise FollowUpError(
                f"finding(s) {', '.join(map(str, missing))} are not lesions of the prior case "
                f"{prior_case.case_id} in this comparison"
            )
        target_ids = tuple(by_prior[pk] for pk in targets)
    recist = assess(tracks, target_ids, proposed=targets is None)
    chosen = set(target_ids)
    tracks = [_with_target(t, t.track_id in chosen) for t in tracks]
    return ComparisonOutcome(
        comparison_id=None,
        case_id=current_case.case_id,
        prior_case_id=prior_case.case_id,
        current_date=current_case.summary.study_date,
        prior_date=prior_case.summary.study_date,
        registration=registration,
        tracks=tuple(tracks),
        recist=recist,
        overrides=applied,
        chosen_targets=targets,
    )


def _store(db: Database, outcome: ComparisonOutcome, revises: int | None) -> ComparisonOutcome:
    new = NewComparison(
        case_id=outcome.case_id,
        prior_case_id=outcome.prior_case_id,
        transform=outcome.transform.to_json(),
        quality=dict(outcome.registration.quality),
        seconds=outcome.registration.seconds,
        response=outcome.recist.response,
        rule=outcome.recist.rule,
        summary=outcome.to_json(),
        tracks=tuple(
            StoredTrack(
                track_id=t.track_id,
                tracking_uid=t.tracking_uid,
                status=t.status,
                basis=t.basis,
                prior_finding_pk=t.prior_finding_pk,
                current_finding_pk=t.current_finding_pk,
                target=t.target,
                dice=t.dice,
                distance_mm=t.distance_mm,
            )
            for t in outcome.tracks
        ),
        overrides=outcome.overrides,
        chosen_targets=outcome.chosen_targets,
        revises=revises,
    )
    comparison_id = store_comparison(db, new)
    return replace(outcome, comparison_id=comparison_id)


def _check_analysed(detail: CaseDetail) -> None:
    """A case without a model run or manual lesion has not been read: comparing it would call
    every prior lesion gone."""
    if detail.current_run is None and not detail.manual_findings:
        raise FollowUpError(
            f"case {detail.case_id} has no model run and no manual finding yet: run the model "
            "(or mark its lesions) before comparing"
        )


def _check_same_patient(current: CaseDetail, prior: CaseDetail) -> None:
    a, b = current.summary, prior.summary
    same = (a.patient_id, a.patient_name, a.patient_birth_date) == (
        b.patient_id,
        b.patient_name,
        b.patient_birth_date,
    )
    if not same:
        raise FollowUpError(
            f"cases {a.case_id} and {b.case_id} are of different patients: a follow-up "
            "compares studies of one patient"
        )


def _scan(detail: CaseDetail) -> Volume:
    try:
        scan, _files = load_case_scan(detail)
    except ExportError as exc:
        raise FollowUpError(str(exc)) from exc
    return scan


def _kept(detail: CaseDetail) -> tuple[StoredFinding, ...]:
    run = detail.current_run
    found = [*(run.findings if run is not None else ()), *detail.manual_findings]
    return tuple(s for s in found if s.review_status in _KEEP)


def _lesions(db: Database, detail: CaseDetail, scan: Volume | None) -> StudyLesions:
    findings = _kept(detail)
    shown = case_label_map(db, detail)
    regions: dict[int, LesionRegion] = {}
    if shown is None:
        grid = scan if scan is not None else _grid_of(detail, None)
        return StudyLesions(grid, findings, regions)
    labels = shown.labels_zyx
    grid = _grid_of(detail, labels) if scan is None else scan
    if grid.shape_zyx != labels.shape:
        raise FollowUpError(f"case {detail.case_id}: its label map does not lie on its scan's grid")
    for stored in findings:
        region = finding_region(labels, stored.finding)
        if region is not None:
            regions[stored.finding_pk] = region
    return StudyLesions(grid, findings, regions)


def _grid_of(detail: CaseDetail, labels: Any) -> Volume:
    """The case's grid from its mask's stored geometry (no need to read the scan again)."""
    edit, run = detail.current_reviewed_mask, detail.current_run
    record = edit.mask if edit is not None else (run.mask if run is not None else None)
    if record is None:
        raise FollowUpError(f"case {detail.case_id} has no label map to match lesions on")
    geometry = record.geometry
    size_x, size_y, size_z = geometry.size_xyz
    array = labels if labels is not None else np.zeros((size_z, size_y, size_x), np.uint8)
    return Volume(
        array_zyx=array,
        spacing_xyz_mm=geometry.spacing_xyz_mm,
        origin_lps_mm=geometry.origin_lps_mm,
        direction_lps=geometry.direction_lps,
    )


def _days(prior: CaseDetail, current: CaseDetail) -> int | None:
    a, b = prior.summary.study_date, current.summary.study_date
    return (b - a).days if a is not None and b is not None else None


@dataclass(frozen=True)
class _Uids:
    prior_continued: Mapping[int, str]
    prior: tuple[str, int]  # (series UID, case id)
    current: tuple[str, int]


def _uids(db: Database, prior: CaseDetail, current: CaseDetail) -> _Uids:
    return _Uids(
        continued_tracking_uids(db, prior.case_id),
        (prior.series.metadata.series_uid, prior.case_id),
        (current.series.metadata.series_uid, current.case_id),
    )


def _track(
    track_id: str,
    match: LesionMatch,
    by_pk: Mapping[int, StoredFinding],
    days: int | None,
    uids: _Uids,
) -> LesionTrack:
    prior = by_pk.get(match.prior_finding_pk) if match.prior_finding_pk is not None else None
    current = by_pk.get(match.current_finding_pk) if match.current_finding_pk is not None else None
    if prior is not None:
        uid = uids.prior_continued.get(prior.finding_pk) or tracking_uid(
            uids.prior[0], uids.prior[1], prior.finding_pk
        )
    else:
        assert current is not None
        uid = tracking_uid(uids.current[0], uids.current[1], current.finding_pk)
    shown = prior if prior is not None else current
    assert shown is not None
    return LesionTrack(
        track_id=track_id,
        tracking_uid=uid,
        status=match.status,
        basis=match.basis,
        prior=prior,
        current=current,
        numbers=lesion_numbers(
            prior.finding if prior is not None else None,
            current.finding if current is not None else None,
            days,
        ),
        organ=organ_of(shown.finding),
        dice=match.dice,
        distance_mm=match.distance_mm,
    )


def _with_target(track: LesionTrack, target: bool) -> LesionTrack:
    return track if track.target == target else replace(track, target=target)


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day is not None else None


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)


def _track_json(track: LesionTrack) -> dict[str, Any]:
    n = track.numbers

    def pair(values: tuple[float | None, float | None], digits: int) -> list[float | None]:
        return [_round(v, digits) for v in values]

    return {
        "track_id": track.track_id,
        "tracking_uid": track.tracking_uid,
        "status": TrackStatus(track.status).value,
        "basis": track.basis.value,
        "target": track.target,
        "organ": track.organ,
        "prior_finding": finding_name(track.prior) if track.prior is not None else None,
        "current_finding": finding_name(track.current) if track.current is not None else None,
        "prior_finding_pk": track.prior_finding_pk,
        "current_finding_pk": track.current_finding_pk,
        "volume_ml": pair(n.volume_ml, 5),
        "long_axis_mm": pair(n.long_axis_mm, 2),
        "short_axis_mm": pair(n.short_axis_mm, 2),
        "volume_change_ml": _round(n.volume_change_ml, 5),
        "volume_change_pct": _round(n.volume_change_pct, 2),
        "long_axis_change_mm": _round(n.long_axis_change_mm, 2),
        "long_axis_change_pct": _round(n.long_axis_change_pct, 2),
        "doubling_time_days": _round(n.doubling_time_days, 1),
        "centroid_lps_mm": [
            [round(v, 2) for v in s.finding.centroid_lps_mm] if s is not None else None
            for s in (track.prior, track.current)
        ],
        "dice": track.dice,
        "distance_mm": track.distance_mm,
    }
