"""What one review produced, in the form every output is written from.

The PDF, the DICOM SEG and SR, the NIfTI label map and the CSV/JSON tables are all written from one
:class:`ReviewOutcome`, so they cannot disagree about which findings were kept or what was
measured. It holds only domain types (no database rows): ``reports`` sits beside ``db`` in the
layers, and ``meddiag_desktop.export`` builds the outcome from a stored case.

Only findings the radiologist kept are here: accepted, edited and manual ones. Rejected and
unreviewed findings never reach an output; their voxels are not in :attr:`ReportedFinding.region`
nor in :meth:`ReviewOutcome.kept_labels_zyx`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from meddiag_desktop.domain import Finding, FindingSource, Volume
from meddiag_desktop.reports.follow_up_summary import FollowUpSummary

NOT_A_MEDICAL_DEVICE = (
    "MedDiag Desktop is not a medical device and is not for clinical use. Its findings are "
    "research output and must not be used for diagnosis or treatment."
)


class KeptDecision(StrEnum):
    """How a finding came to be kept: the radiologist's own word for it."""

    ACCEPTED = "accepted"  # an AI finding accepted as it was
    EDITED = "edited"  # an AI finding whose outline (and so its measurements) was changed
    MANUAL = "manual"  # a lesion the radiologist marked

    @property
    def algorithmic(self) -> bool:
        """Whether the segment is the model's (accepted) rather than a person's outline."""
        return self is KeptDecision.ACCEPTED


@dataclass(frozen=True, eq=False)
class LesionRegion:
    """One finding's voxels: a boolean mask inside a box of the scan's grid.

    A box, not a whole-volume mask: a CT of 512x512x300 voxels is 79 MB per boolean copy, and a
    lesion fills a few thousand voxels of it.
    """

    start_zyx: tuple[int, int, int]  # first voxel of the box
    mask_zyx: np.ndarray  # bool, the box's shape

    @property
    def box(self) -> tuple[slice, slice, slice]:
        """The box as slices into an array on the scan's grid (z, y, x)."""
        z, y, x = self.start_zyx
        dz, dy, dx = self.mask_zyx.shape
        return np.s_[z : z + dz, y : y + dy, x : x + dx]

    @property
    def voxel_count(self) -> int:
        return int(np.count_nonzero(self.mask_zyx))

    def full(self, shape_zyx: tuple[int, int, int]) -> np.ndarray:
        """The region as a boolean mask of the whole grid (for writers that need one)."""
        out = np.zeros(shape_zyx, dtype=bool)
        out[self.box] = self.mask_zyx
        return out


@dataclass(frozen=True, eq=False)
class ReportedFinding:
    """A kept finding with the values the database holds and who decided on it."""

    number: int  # 1-based, as ``meddiag cases show`` prints it (#N)
    finding_pk: int  # the database id, stable across exports
    tracking_uid: str  # DICOM UID for the SR's tracking; the same in every export of the case
    finding: Finding  # the measurements as stored (an edit's new values for an edited one)
    decision: KeptDecision
    decided_by: str  # username; for a manual finding, who drew it
    decided_at: datetime | None
    region: LesionRegion

    @property
    def tracking_id(self) -> str:
        """The human-readable tracking identifier (TID 1500), e.g. ``finding 2``."""
        return f"finding {self.number}"

    @property
    def manual(self) -> bool:
        return self.decision is KeptDecision.MANUAL or self.finding.source is FindingSource.MANUAL


@dataclass(frozen=True)
class ModelSummary:
    """The model behind the AI findings, as the run stored it and the card describes it."""

    name: str
    version: str
    sha256: str
    provider: str  # the execution provider that ran it, e.g. CPUExecutionProvider
    intended_use: str = ""  # from the card; empty when the card is no longer installed
    run_id: int | None = None
    run_finished_at: datetime | None = None
    run_warnings: tuple[str, ...] = ()  # e.g. an anatomy check overridden by the user
    parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditLine:
    """One event of the case's history, as the report's audit summary prints it."""

    occurred_at: datetime
    actor: str
    action: str  # e.g. ``finding.reviewed``
    text: str  # what happened, in words


@dataclass(frozen=True, eq=False)
class ReviewOutcome:
    """One case's review, ready to be written as a report and DICOM objects."""

    case_id: int
    scan: Volume  # the source series as loaded (geometry, metadata, scanner units)
    source_files: tuple[Path, ...]  # the series' DICOM files, in slice order; () for NIfTI etc.
    findings: tuple[ReportedFinding, ...]  # kept findings only, in number order
    label_names: Mapping[int, str]
    label_colours: Mapping[int, str]  # "#rrggbb"
    model: ModelSummary | None  # None when the case has no successful run (manual-only)
    signed_by: str | None  # None: not signed, every output says DRAFT
    signed_at: datetime | None
    exported_by: str
    exported_at: datetime
    audit: tuple[AuditLine, ...] = ()
    warnings: tuple[str, ...] = ()  # the scan's and the run's, carried into the report
    follow_up: FollowUpSummary | None = None  # the case's newest comparison with a prior

    @property
    def draft(self) -> bool:
        """An unsigned review: every output is marked DRAFT."""
        return self.signed_at is None

    @property
    def reviewer(self) -> str:
        """Who answers for the review: the signer, else (draft) the user exporting it."""
        return self.signed_by or self.exported_by

    @property
    def is_dicom(self) -> bool:
        """Whether the source is a DICOM series (SEG and SR need one to reference)."""
        return bool(self.source_files)

    def kept_labels_zyx(self) -> np.ndarray:
        """The label map of the kept findings only (uint8 label values on the scan's grid)."""
        labels = np.zeros(self.scan.shape_zyx, dtype=np.uint8)
        for reported in self.findings:
            labels[reported.region.box][reported.region.mask_zyx] = reported.finding.label
        return labels
