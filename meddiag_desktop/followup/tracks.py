"""One lesion followed across two studies, with everything the tables and exports show."""

from __future__ import annotations

from dataclasses import dataclass

from meddiag_desktop.db.comparison_records import MatchBasis, TrackStatus
from meddiag_desktop.db.records import StoredFinding
from meddiag_desktop.followup.numbers import LesionNumbers


@dataclass(frozen=True)
class LesionTrack:
    track_id: str  # "T1"...: its name in this comparison
    tracking_uid: str  # the DICOM tracking UID: the prior finding's for a continued lesion
    status: TrackStatus
    basis: MatchBasis
    prior: StoredFinding | None
    current: StoredFinding | None
    numbers: LesionNumbers
    organ: str  # for RECIST's two targets per organ
    target: bool = False
    dice: float | None = None
    distance_mm: float | None = None

    @property
    def prior_finding_pk(self) -> int | None:
        return self.prior.finding_pk if self.prior is not None else None

    @property
    def current_finding_pk(self) -> int | None:
        return self.current.finding_pk if self.current is not None else None
