"""What the case database hands out and takes in: frozen dataclasses and enums, no ORM.

Callers (CLI, GUI controllers) only ever see these and the domain objects they wrap
(:class:`~meddiag_desktop.domain.Finding`, :class:`~meddiag_desktop.domain.ScanMetadata`), so a
widget can never hold a live row or session. Coded values are enums whose ``value`` is what the
database stores.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

import numpy as np

from meddiag_desktop.domain import Finding, Matrix3, ScanMetadata, SeriesKind, Vector3, Volume


class CaseStatus(StrEnum):
    """Where a case is in its life: new -> analysed -> in review -> signed, or failed."""

    NEW = "new"
    ANALYSED = "analysed"
    IN_REVIEW = "in_review"
    SIGNED = "signed"
    FAILED = "failed"


class RunOutcome(StrEnum):
    SUCCEEDED = "succeeded"
    CANCELLED = "cancelled"
    FAILED = "failed"


class ReviewStatus(StrEnum):
    """A finding's review state; a review decision is any of them except PENDING."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    EDITED = "edited"


class UserRole(StrEnum):
    RADIOLOGIST = "radiologist"  # may sign cases
    RESIDENT = "resident"  # may review, not sign
    TECHNOLOGIST = "technologist"
    ADMIN = "admin"  # manages users, models and the login setting
    VIEWER = "viewer"  # may look at cases, not review, sign or export them


class AuditAction(StrEnum):
    CASE_IMPORTED = "case.imported"
    SERIES_FILES_CHANGED = "series.files_changed"
    RUN_SAVED = "run.saved"
    FINDING_ADDED = "finding.added"
    FINDING_REVIEWED = "finding.reviewed"
    MASK_EDIT_SAVED = "mask.edit_saved"
    CASE_SIGNED = "case.signed"
    CASE_DELETED = "case.deleted"
    CASE_VIEWED = "case.viewed"
    REPORT_EXPORTED = "report.exported"
    USER_ADDED = "user.added"
    USER_CHANGED = "user.changed"
    DATABASE_MIGRATED = "database.migrated"
    DATABASE_BACKED_UP = "database.backed_up"
    DATABASE_ENCRYPTED = "database.encrypted"
    DATABASE_DECRYPTED = "database.decrypted"
    MASK_FILES_REMOVED = "masks.orphans_removed"
    MODEL_ADDED = "model.added"  # only audited when an admin accepted it unsigned
    MODEL_KEY_TRUSTED = "model.key_trusted"
    MODEL_KEY_UNTRUSTED = "model.key_untrusted"
    LOGIN_SUCCEEDED = "user.login"
    LOGIN_FAILED = "user.login_failed"  # the details never hold the password typed
    LOGIN_CHANGED = "login.changed"  # login turned on or off, or its idle lock changed
    SCREEN_LOCKED = "user.screen_locked"
    SCREEN_UNLOCKED = "user.screen_unlocked"
    # An admin looked up who a pseudonym of a de-identified export is (details: the pseudonym).
    PSEUDONYM_LOOKED_UP = "pseudonym.looked_up"
    # A case compared with an earlier one (details: prior case, response, registration).
    COMPARISON_SAVED = "comparison.saved"
    # The reader corrected a comparison: links, unlinks, marks or target lesions (details).
    COMPARISON_REVISED = "comparison.revised"


class WorklistOrder(StrEnum):
    """How the worklist is sorted; every order has an index (see ``db.worklist``).

    Ties go newest study first (then newest case). The second order of each pair is the exact
    reverse of the first, ties included, so one index serves both directions.
    """

    NEWEST_STUDY = "newest_study"  # study date, newest first; cases without a date last
    OLDEST_STUDY = "oldest_study"
    NEWEST_IMPORT = "newest_import"
    OLDEST_IMPORT = "oldest_import"
    PATIENT_NAME = "patient_name"  # A -> Z on the folded name (family name first)
    PATIENT_NAME_DESC = "patient_name_desc"  # Z -> A
    PATIENT_ID = "patient_id"  # on the folded ID, as text (P10 before P9)
    PATIENT_ID_DESC = "patient_id_desc"
    STATUS = "status"  # workflow order: new, analysed, in review, signed, failed
    STATUS_DESC = "status_desc"  # failed first ... new last
    MODALITY = "modality"
    MODALITY_DESC = "modality_desc"
    MOST_FINDINGS = "most_findings"  # the count the worklist shows
    FEWEST_FINDINGS = "fewest_findings"


class Backend(StrEnum):
    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


class MaskProblemKind(StrEnum):
    MISSING = "missing"  # a mask row whose file is gone
    SHA256_MISMATCH = "sha256 mismatch"  # the file changed after it was stored
    ORPHAN = "orphan"  # a mask file no row refers to (a crash before commit, or a deleted case)
    LEFTOVER_TEMPORARY = "leftover temporary file"  # a write killed before its rename


@dataclass(frozen=True)
class User:
    user_id: int
    username: str
    display_name: str
    role: UserRole
    active: bool
    has_password: bool
    created_at: datetime


@dataclass(frozen=True)
class CaseSummary:
    """One worklist row: enough to find and open a case without loading its runs."""

    case_id: int
    status: CaseStatus
    patient_name: str
    patient_id: str
    patient_birth_date: str
    patient_sex: str
    study_date: date | None
    modality: str
    study_description: str
    series_description: str
    series_uid: str
    imported_at: datetime
    updated_at: datetime
    finding_count: int = 0  # the current run's findings plus manual ones (worklist pages only)


@dataclass(frozen=True)
class SeriesRecord:
    """The imported series: where its files were and the fingerprint to notice changes."""

    series_id: int
    key: str
    kind: SeriesKind
    metadata: ScanMetadata
    size_xyz: tuple[int, int, int]
    spacing_xyz_mm: Vector3
    location: str
    files: tuple[str, ...]  # relative to ``location`` (or the file itself for single files)
    fingerprint: str
    files_bytes: int


@dataclass(frozen=True)
class MaskGeometry:
    size_xyz: tuple[int, int, int]
    spacing_xyz_mm: Vector3
    origin_lps_mm: Vector3
    direction_lps: Matrix3


@dataclass(frozen=True)
class MaskRecord:
    mask_id: int
    relative_path: str  # under the database's masks folder
    sha256: str
    size_bytes: int
    geometry: MaskGeometry
    label_names: dict[int, str]


@dataclass(frozen=True)
class ReviewedMask:
    """One saved version of the label map as the radiologist edited it (brush, eraser, manual
    lesions). Versions are never changed or replaced; the newest one is the case's edit."""

    reviewed_mask_id: int
    case_id: int
    run_id: int | None  # the run whose mask the edit started from; None: painted from empty
    author: str
    created_at: datetime
    mask: MaskRecord  # the file; ``mask.mask_id`` is ``reviewed_mask_id``


@dataclass(frozen=True)
class MaskEdit:
    """What a review saves besides its decision: the whole edited label map on the scan's grid."""

    scan: Volume  # the open scan: the grid (and file geometry) the labels lie on
    labels_zyx: np.ndarray  # uint8, scan.shape_zyx
    label_names: dict[int, str]
    run_id: int | None  # the run whose mask the editor started from (None: an empty map)


@dataclass(frozen=True)
class StoredFinding:
    """A domain Finding with its database id (what reviews refer to) and review state."""

    finding_pk: int
    case_id: int
    run_id: int | None  # None for a manual finding
    finding: Finding
    review_status: ReviewStatus


@dataclass(frozen=True)
class ModelRun:
    run_id: int
    case_id: int
    model_name: str
    model_version: str
    model_sha256: str
    provider: str
    provider_attempts: tuple[tuple[str, str], ...]
    parameters: dict[str, Any]
    timings_s: dict[str, float]
    warnings: tuple[str, ...]
    started_at: datetime
    finished_at: datetime
    outcome: RunOutcome
    error: str
    actor: str
    findings: tuple[StoredFinding, ...] = ()
    mask: MaskRecord | None = None


@dataclass(frozen=True)
class Review:
    review_id: int
    finding_pk: int
    case_id: int
    decision: ReviewStatus
    reviewer: str
    decided_at: datetime
    reason: str
    previous_status: ReviewStatus
    previous_finding: Finding | None  # the measurements before an edit
    edited_finding: Finding | None


@dataclass(frozen=True)
class CaseDetail:
    """A case with everything a reviewer needs: series, runs with findings, reviews."""

    summary: CaseSummary
    series: SeriesRecord
    runs: tuple[ModelRun, ...]  # oldest first
    manual_findings: tuple[StoredFinding, ...]
    reviews: tuple[Review, ...]  # oldest first
    signed_by: str | None
    signed_at: datetime | None
    reviewed_mask: ReviewedMask | None = None  # the newest saved edit of the label map

    @property
    def case_id(self) -> int:
        return self.summary.case_id

    @property
    def current_reviewed_mask(self) -> ReviewedMask | None:
        """The edit the viewer shows: the newest one, unless a model run was stored after it.

        An edit made on the current run's mask (or on a case without a successful run) is what
        the radiologist last saw and saved, so it is shown. A model run stored later brings new
        AI findings to review, so its own mask is shown instead; the older edit stays on file.
        """
        edit, run = self.reviewed_mask, self.current_run
        if edit is None or run is None:
            return edit
        return edit if edit.run_id == run.run_id else None

    @property
    def current_run(self) -> ModelRun | None:
        """The latest successful run: the one whose AI findings must be reviewed."""
        done = [r for r in self.runs if r.outcome is RunOutcome.SUCCEEDED]
        return done[-1] if done else None

    @property
    def unreviewed_findings(self) -> tuple[StoredFinding, ...]:
        run = self.current_run
        if run is None:
            return ()
        return tuple(f for f in run.findings if f.review_status is ReviewStatus.PENDING)


@dataclass(frozen=True)
class AuditEvent:
    event_id: int
    occurred_at: datetime
    actor: str
    action: AuditAction | str  # a str when a newer app wrote an action this one does not know
    object_type: str
    object_id: str
    case_id: int | None
    details: dict[str, Any]


@dataclass(frozen=True)
class ImportResult:
    case_id: int
    created: bool  # False: the series was already a case (importing is idempotent)
    files_changed: bool  # an existing case whose files differ from the first import


@dataclass(frozen=True)
class WorklistQuery:
    """Filters for the worklist; all optional, combined with AND. Pages count from 0."""

    statuses: tuple[CaseStatus, ...] = ()
    patient: str = ""  # prefix of the patient's name (any case, ^ as space) or ID
    study_date_from: date | None = None
    study_date_to: date | None = None  # inclusive
    modality: str = ""
    text: str = ""  # anywhere in patient name/ID, descriptions, institution
    order: WorklistOrder = WorklistOrder.NEWEST_STUDY
    page: int = 0
    page_size: int = 50

    def __post_init__(self) -> None:
        if self.page < 0:
            raise ValueError(f"page must be 0 or more, got {self.page}")
        if not 1 <= self.page_size <= 1000:
            raise ValueError(f"page size must be 1..1000, got {self.page_size}")


@dataclass(frozen=True)
class WorklistPage:
    items: tuple[CaseSummary, ...]
    total: int
    page: int
    page_size: int

    @property
    def has_next(self) -> bool:
        return (self.page + 1) * self.page_size < self.total


@dataclass(frozen=True)
class MaskProblem:
    kind: MaskProblemKind
    relative_path: str
    run_id: int | None = None
    case_id: int | None = None
    reviewed_mask_id: int | None = None  # set when the file is a saved edit, not a run's mask


@dataclass(frozen=True)
class SeriesProblem:
    case_id: int
    location: str
    reason: str  # "missing" or "changed"


class ChainBreakKind(StrEnum):
    CONTENT = "content"  # the event's stored hash does not match its content: it was edited
    LINK = "link"  # its link does not match the event before it: events deleted or rewritten


@dataclass(frozen=True)
class AuditChainBreak:
    """The first audit event where the hash chain (``db.audit_chain``) does not hold."""

    event_id: int
    occurred_at: datetime | None
    action: str
    kind: ChainBreakKind
    reason: str
    missing_ids: tuple[int, int] | None = None  # (first, last) id of a gap before this event


@dataclass(frozen=True)
class AuditChainReport:
    events: int  # events checked
    head_hash: str  # the last event's hash: noted elsewhere, it also catches a cut-off tail
    first_break: AuditChainBreak | None = None

    @property
    def intact(self) -> bool:
        return self.first_break is None


@dataclass(frozen=True)
class CheckReport:
    """What ``meddiag db check`` found; ``ok`` only when nothing at all is wrong."""

    integrity: tuple[str, ...]  # SQLite integrity_check lines; ("ok",) when sound
    foreign_key_problems: tuple[str, ...]
    mask_problems: tuple[MaskProblem, ...]
    series_problems: tuple[SeriesProblem, ...] = ()
    masks_checked: int = 0
    audit_chain: AuditChainReport | None = None

    @property
    def ok(self) -> bool:
        return (
            self.integrity == ("ok",)
            and not self.foreign_key_problems
            and not self.mask_problems
            and not self.series_problems
            and (self.audit_chain is None or self.audit_chain.intact)
        )

    def problems(self, kind: MaskProblemKind) -> tuple[MaskProblem, ...]:
        return tuple(p for p in self.mask_problems if p.kind is kind)


@dataclass(frozen=True)
class DatabaseInfo:
    url: str  # password hidden
    backend: Backend
    schema_revision: str | None
    head_revision: str
    server_version: str
    file_bytes: int | None
    journal_mode: str
    synchronous: str
    masks_dir: str
    cases_by_status: dict[CaseStatus, int] = field(default_factory=dict)
    mask_count: int = 0
    audit_event_count: int = 0
    encryption: str = "none"  # the app's own: SQLCipher + sealed masks, or none
    disk_encryption: str = ""  # the operating system's, for the database's folder
