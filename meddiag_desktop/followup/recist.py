"""RECIST 1.1 for one pair of studies: the target lesions and the response, with its rule.

Targets are chosen on the prior (baseline) study: measurable lesions (long axis 10 mm or
more), the largest first, at most five, at most two per organ (both lungs are one organ). The
reader may pick others (:func:`assess` takes any prior lesions, up to five). Their sum of
diameters is compared at both studies (a target that disappeared counts 0 mm). The response
(RECIST 1.1, Eisenhauer et al. 2009, table 1, with this pair's prior as baseline and nadir):

- PD: any new lesion; or the sum grew by 20% or more and by 5 mm or more;
- CR: every target lesion disappeared and no other lesion is left;
- PR: the sum fell by 30% or more (or every target disappeared while others remain);
- SD: neither.

Non-target progression ("unequivocal", a reader's judgement) and lymph-node short axes are not
assessed here; the rule text says what decided the category.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from meddiag_desktop.db.comparison_records import Response, TrackStatus
from meddiag_desktop.domain import Finding
from meddiag_desktop.followup.errors import FollowUpError
from meddiag_desktop.followup.tracks import LesionTrack

MEASURABLE_MM = 10.0
MAX_TARGETS = 5
MAX_PER_ORGAN = 2
PD_INCREASE = 0.20
PD_ABSOLUTE_MM = 5.0
PR_DECREASE = 0.30

# Label names of the lesions models report, and the organ each lies in.
_ORGANS = {"nodule": "lung", "lung nodule": "lung", "pulmonary nodule": "lung"}


@dataclass(frozen=True)
class RecistAssessment:
    response: Response
    rule: str  # what decided it, in words
    targets: tuple[str, ...]  # track ids
    proposed: bool  # the targets are the proposal (not the reader's choice)
    sum_prior_mm: float
    sum_current_mm: float

    @property
    def change_mm(self) -> float:
        return self.sum_current_mm - self.sum_prior_mm

    @property
    def change_pct(self) -> float | None:
        if self.sum_prior_mm <= 0:
            return None
        return 100.0 * self.change_mm / self.sum_prior_mm


def organ_of(finding: Finding) -> str:
    """The organ a finding lies in, as far as its label says (RECIST counts per organ)."""
    name = finding.label_name.strip().lower()
    return _ORGANS.get(name, name or "unknown")


def propose_targets(tracks: Sequence[LesionTrack]) -> tuple[str, ...]:
    """The target lesions RECIST 1.1 would take: see the module docstring."""
    measurable = [
        t for t in tracks if t.prior is not None and t.prior.finding.long_axis_mm >= MEASURABLE_MM
    ]
    measurable.sort(key=lambda t: (-_prior_axis(t), t.track_id))
    chosen: list[str] = []
    per_organ: dict[str, int] = {}
    for track in measurable:
        if len(chosen) == MAX_TARGETS:
            break
        if per_organ.get(track.organ, 0) == MAX_PER_ORGAN:
            continue
        per_organ[track.organ] = per_organ.get(track.organ, 0) + 1
        chosen.append(track.track_id)
    return tuple(chosen)


def assess(
    tracks: Sequence[LesionTrack], targets: Sequence[str], proposed: bool = True
) -> RecistAssessment:
    """The response of ``tracks`` with ``targets`` (track ids) as the target lesions."""
    by_id = {t.track_id: t for t in tracks}
    unknown = [name for name in targets if name not in by_id]
    if unknown:
        raise FollowUpError(f"no lesion {', '.join(unknown)} in this comparison")
    chosen = [by_id[name] for name in targets]
    if any(t.prior is None for t in chosen):
        raise FollowUpError("a target lesion must be one of the prior (baseline) study's")
    if len(chosen) > MAX_TARGETS:
        raise FollowUpError(f"RECIST 1.1 takes at most {MAX_TARGETS} target lesions")
    before = sum(_prior_axis(t) for t in chosen)
    after = sum(t.current.finding.long_axis_mm for t in chosen if t.current is not None)
    new = [t.track_id for t in tracks if t.status is TrackStatus.NEW]
    others_left = [
        t.track_id for t in tracks if t.track_id not in targets and t.status is TrackStatus.MATCHED
    ]
    response, reason = _response(chosen, before, after, new, others_left, tracks)
    sums = f"sum of target diameters {before:.1f} -> {after:.1f} mm"
    if before > 0:
        sums += f" ({100.0 * (after - before) / before:+.1f}%, {after - before:+.1f} mm)"
    elif not chosen:
        sums = "no target lesions"
    return RecistAssessment(
        response=response,
        rule=f"{response.value}: {reason}; {sums}",
        targets=tuple(targets),
        proposed=proposed,
        sum_prior_mm=round(before, 3),
        sum_current_mm=round(after, 3),
    )


def _response(
    chosen: list[LesionTrack],
    before: float,
    after: float,
    new: list[str],
    others_left: list[str],
    tracks: Sequence[LesionTrack],
) -> tuple[Response, str]:
    if new:
        return Response.PD, f"new lesion(s) {', '.join(new)} (any new lesion is progression)"
    if chosen:
        if all(t.current is None for t in chosen):
            if others_left:
                return Response.PR, (
                    "every target lesion disappeared but non-target lesion(s) "
                    f"{', '.join(others_left)} remain"
                )
            return Response.CR, "every lesion disappeared"
        change = after - before
        if before > 0 and change >= PD_INCREASE * before and change >= PD_ABSOLUTE_MM:
            return Response.PD, "sum of diameters grew by 20% or more and by 5 mm or more"
        if before > 0 and change <= -PR_DECREASE * before:
            return Response.PR, "sum of diameters fell by 30% or more"
        return Response.SD, "neither 30% smaller nor 20% and 5 mm larger"
    if tracks and all(t.current is None for t in tracks):
        return Response.CR, "every lesion disappeared"
    return Response.SD, "no measurable target lesion; no new lesion"


def _prior_axis(track: LesionTrack) -> float:
    return track.prior.finding.long_axis_mm if track.prior is not None else 0.0
