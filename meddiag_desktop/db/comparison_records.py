"""What the follow-up comparison tables hand out and take in: frozen dataclasses and enums.

A comparison (migration 0008) is one case (the current study) against an earlier case of the
same patient (the prior): the registration's transform and quality, one track per lesion with
the tracking UID exports write, the reader's overrides and chosen target lesions, and the
result as shown (RECIST response, rule, per-lesion numbers). Rows are never changed: a revision
(an override, other targets) is a new comparison of the same pair, and the newest one counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class TrackStatus(StrEnum):
    MATCHED = "matched"  # in both studies
    NEW = "new"  # only in the current study
    GONE = "gone"  # only in the prior study


class MatchBasis(StrEnum):
    """Why two findings are one lesion (or why a lesion has no partner)."""

    OVERLAP = "overlap"  # their masks overlap once the prior is registered
    DISTANCE = "distance"  # their centres are close for their size
    MANUAL = "manual"  # the reader linked them, or unlinked / marked them
    UNMATCHED = "unmatched"  # nothing close enough


class OverrideAction(StrEnum):
    """What a reader can correct by hand."""

    LINK = "link"  # these two findings are one lesion (both given)
    UNLINK = "unlink"  # these two are not the same lesion (both given)
    MARK_NEW = "new"  # this current finding has no prior (current given)
    MARK_GONE = "gone"  # this prior finding has no current one (prior given)


class Response(StrEnum):
    """RECIST 1.1 overall response."""

    CR = "CR"  # complete response
    PR = "PR"  # partial response
    SD = "SD"  # stable disease
    PD = "PD"  # progressive disease


@dataclass(frozen=True)
class MatchOverride:
    """One correction by the reader; the findings are named by their database ids."""

    action: OverrideAction
    prior_finding_pk: int | None = None
    current_finding_pk: int | None = None

    def __post_init__(self) -> None:
        needs = {
            OverrideAction.LINK: (True, True),
            OverrideAction.UNLINK: (True, True),
            OverrideAction.MARK_NEW: (False, True),
            OverrideAction.MARK_GONE: (True, False),
        }[OverrideAction(self.action)]
        given = (self.prior_finding_pk is not None, self.current_finding_pk is not None)
        if given != needs:
            wanted = " and ".join(
                name for name, need in zip(("a prior", "a current"), needs, strict=True) if need
            )
            raise ValueError(f"'{self.action}' needs {wanted} finding, and only that")


@dataclass(frozen=True)
class StoredTrack:
    """One lesion across the two studies as stored with its comparison."""

    track_id: str  # "T1"...: the row's name in the comparison's tables
    tracking_uid: str  # DICOM UID; the prior's for a continued lesion
    status: TrackStatus
    basis: MatchBasis
    prior_finding_pk: int | None
    current_finding_pk: int | None
    target: bool = False  # a RECIST target lesion
    dice: float | None = None  # overlap after registration, when matched by it
    distance_mm: float | None = None  # between the centres after registration


@dataclass(frozen=True)
class NewComparison:
    """What :func:`~meddiag_desktop.db.comparisons.store_comparison` saves."""

    case_id: int  # the current study's case
    prior_case_id: int
    transform: dict[str, Any]  # {"type", "parameters", "fixed_parameters"}: current -> prior
    quality: dict[str, Any]  # metric, NCC and body Dice before/after, iterations...
    seconds: float  # the registration's
    response: Response
    rule: str  # the RECIST rule that decided the response, in words
    summary: dict[str, Any]  # the result as ``meddiag compare --json`` prints it
    tracks: tuple[StoredTrack, ...]
    overrides: tuple[MatchOverride, ...] = ()
    chosen_targets: tuple[int, ...] | None = None  # prior finding ids; None: the proposal
    revises: int | None = None  # the comparison this one revises (same pair, no new registration)


@dataclass(frozen=True)
class ComparisonRecord:
    comparison_id: int
    case_id: int
    prior_case_id: int
    created_at: datetime
    created_by: str
    transform: dict[str, Any]
    quality: dict[str, Any]
    seconds: float
    response: Response
    rule: str
    summary: dict[str, Any]
    tracks: tuple[StoredTrack, ...]
    overrides: tuple[MatchOverride, ...]
    chosen_targets: tuple[int, ...] | None
    revises: int | None
