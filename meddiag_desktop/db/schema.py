"""The tables, as SQLAlchemy 2 typed ORM classes (the schema at the newest migration).

Rows stay inside :mod:`meddiag_desktop.db`; the repository modules turn them into the records of
:mod:`meddiag_desktop.db.records`. Every change here needs an Alembic revision in
``migrations/versions`` (``tests/db/test_db_migrations.py`` compares the two).

Notes on choices:

- Patients have a surrogate key: a PatientID is only unique at the site that issued it, so one
  patient row is one (PatientID, name, birth date) combination.
- A case is one series (the reviewable unit). It repeats the patient, study date and modality of
  its series so the worklist filters and orders on one table with one composite index.
- Coded values are stored as their enum's text with a CHECK constraint; the names follow the
  naming convention so batch migrations on SQLite can find them.
- Times are stored as UTC (naive in the column, aware in Python).
- Audit events have no foreign keys: they must outlive the case they describe; triggers created
  by the migrations refuse UPDATE and DELETE on them, and a hash chain shows an edit made anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Dialect,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, validates

from meddiag_desktop.db.comparison_records import (
    MatchBasis,
    OverrideAction,
    Response,
    TrackStatus,
)
from meddiag_desktop.db.records import CaseStatus, ReviewStatus, RunOutcome, UserRole
from meddiag_desktop.domain import FindingSource

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Byte-wise ordering on PostgreSQL too, so a prefix search is an index range scan on both.
SEARCH_TEXT = String(255).with_variant(String(255, collation="C"), "postgresql")


def now_utc() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware datetimes in Python, UTC without zone in the column (same on SQLite and Postgres)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use an aware UTC time")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def coded(enum: type[StrEnum], name: str) -> Enum:
    """An enum column stored as its values' text, checked by a named CHECK constraint."""
    return Enum(
        enum,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UtcDateTime(),
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class PatientRow(Base):
    __tablename__ = "patients"
    __table_args__ = (
        UniqueConstraint("dicom_patient_id", "name", "birth_date", name="uq_patients_identity"),
        Index("ix_patients_name_folded", "name_folded"),
        Index("ix_patients_patient_id_folded", "patient_id_folded"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dicom_patient_id: Mapped[str] = mapped_column(String(64), default="")
    name: Mapped[str] = mapped_column(String(324), default="")
    name_folded: Mapped[str] = mapped_column(SEARCH_TEXT, default="")
    patient_id_folded: Mapped[str] = mapped_column(SEARCH_TEXT, default="")
    birth_date: Mapped[str] = mapped_column(String(16), default="")
    sex: Mapped[str] = mapped_column(String(16), default="")
    created_at: Mapped[datetime] = mapped_column(default=now_utc)


class StudyRow(Base):
    __tablename__ = "studies"
    __table_args__ = (UniqueConstraint("patient_fk", "study_uid", name="uq_studies_patient_uid"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_fk: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="RESTRICT"))
    study_uid: Mapped[str] = mapped_column(String(64), default="")
    study_date: Mapped[date | None] = mapped_column(Date)
    description: Mapped[str] = mapped_column(String(255), default="")
    institution: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(default=now_utc)


class SeriesRow(Base):
    __tablename__ = "series"
    __table_args__ = (Index("ix_series_study_fk", "study_fk"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_fk: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="RESTRICT"))
    # "dicom:<series key>" or "file:<fingerprint>": what makes importing idempotent.
    identity: Mapped[str] = mapped_column(String(200), unique=True)
    series_key: Mapped[str] = mapped_column(String(200), default="")
    series_uid: Mapped[str] = mapped_column(String(200), default="")
    kind: Mapped[str] = mapped_column(String(32), default="")
    modality: Mapped[str] = mapped_column(String(16), default="")
    description: Mapped[str] = mapped_column(String(255), default="")
    series_number: Mapped[str] = mapped_column(String(16), default="")
    series_date: Mapped[str] = mapped_column(String(16), default="")
    manufacturer: Mapped[str] = mapped_column(String(128), default="")
    manufacturer_model: Mapped[str] = mapped_column(String(128), default="")
    # DICOM BodyPartExamined (migration 0008): how a prior of the same region is found first.
    body_part: Mapped[str] = mapped_column(String(64), default="")
    size_x: Mapped[int] = mapped_column(default=0)
    size_y: Mapped[int] = mapped_column(default=0)
    size_z: Mapped[int] = mapped_column(default=0)
    spacing_x_mm: Mapped[float] = mapped_column(Float, default=0.0)
    spacing_y_mm: Mapped[float] = mapped_column(Float, default=0.0)
    spacing_z_mm: Mapped[float] = mapped_column(Float, default=0.0)
    location: Mapped[str] = mapped_column(Text, default="")
    files: Mapped[list[Any]] = mapped_column(default=list)
    file_count: Mapped[int] = mapped_column(default=0)
    files_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    fingerprint: Mapped[str] = mapped_column(String(64), default="")
    imported_at: Mapped[datetime] = mapped_column(default=now_utc)
    files_seen_at: Mapped[datetime] = mapped_column(default=now_utc)


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(255), default="")
    role: Mapped[UserRole] = mapped_column(coded(UserRole, "user_role"))
    password_hash: Mapped[str | None] = mapped_column(String(255))  # argon2id, when login is on
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=now_utc)


class CaseRow(Base):
    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_worklist_status", "status", "study_date", "id"),
        Index("ix_cases_worklist_date", "study_date", "id"),
        Index("ix_cases_worklist_patient", "patient_fk", "study_date", "id"),
        Index("ix_cases_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    series_fk: Mapped[int] = mapped_column(
        ForeignKey("series.id", ondelete="RESTRICT"), unique=True
    )
    patient_fk: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="RESTRICT"))
    status: Mapped[CaseStatus] = mapped_column(coded(CaseStatus, "case_status"))
    study_date: Mapped[date | None] = mapped_column(Date)
    modality: Mapped[str] = mapped_column(String(16), default="")
    search_text: Mapped[str] = mapped_column(Text, default="")
    # Sort keys copied from the patient and kept in step (migration 0004), so every worklist
    # order pages from an index of this table alone. A patient's name and ID never change
    # (they are the patient row's identity); status and finding count change here.
    patient_name_key: Mapped[str] = mapped_column(SEARCH_TEXT, default="")  # name_folded
    patient_id_key: Mapped[str] = mapped_column(SEARCH_TEXT, default="")  # patient_id_folded
    status_rank: Mapped[int] = mapped_column(SmallInteger, default=0)  # STATUS_RANK[status]
    finding_count: Mapped[int] = mapped_column(Integer, default=0)  # what the worklist shows
    created_at: Mapped[datetime] = mapped_column(default=now_utc)
    updated_at: Mapped[datetime] = mapped_column(default=now_utc)
    signed_at: Mapped[datetime | None] = mapped_column()
    signed_by_fk: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))

    @validates("status")
    def _rank_follows_status(self, _key: str, status: CaseStatus) -> CaseStatus:
        """Every status change through the ORM moves the rank the worklist sorts by with it."""
        self.status_rank = STATUS_RANK[CaseStatus(status)]
        return status


def _worklist_order_index(name: str, *leading: Any) -> Index:
    """Index ``leading`` then newest study, newest case: what each worklist order reads.

    The tie-breakers are stored descending so one index serves an order read forwards and its
    exact reverse read backwards (on PostgreSQL migration 0004 adds NULLS LAST to the date).
    """
    return Index(name, *leading, CaseRow.study_date.desc(), CaseRow.id.desc())


_worklist_order_index("ix_cases_worklist_modality", CaseRow.modality)
_worklist_order_index("ix_cases_worklist_name", CaseRow.patient_name_key)
_worklist_order_index("ix_cases_worklist_status_name", CaseRow.status, CaseRow.patient_name_key)
_worklist_order_index("ix_cases_worklist_patient_id", CaseRow.patient_id_key)
_worklist_order_index("ix_cases_worklist_status_patient_id", CaseRow.status, CaseRow.patient_id_key)
_worklist_order_index("ix_cases_worklist_status_rank", CaseRow.status_rank)
_worklist_order_index("ix_cases_worklist_status_modality", CaseRow.status, CaseRow.modality)
_worklist_order_index("ix_cases_worklist_findings", CaseRow.finding_count.desc())
_worklist_order_index(
    "ix_cases_worklist_status_findings", CaseRow.status, CaseRow.finding_count.desc()
)


class ModelRunRow(Base):
    __tablename__ = "model_runs"
    __table_args__ = (Index("ix_model_runs_case_fk", "case_fk"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_fk: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    model_name: Mapped[str] = mapped_column(String(128))
    model_version: Mapped[str] = mapped_column(String(64), default="")
    model_sha256: Mapped[str] = mapped_column(String(64), default="")
    provider: Mapped[str] = mapped_column(String(64), default="")
    provider_attempts: Mapped[list[Any]] = mapped_column(default=list)
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    timings_s: Mapped[dict[str, Any]] = mapped_column(default=dict)
    warnings: Mapped[list[Any]] = mapped_column(default=list)
    started_at: Mapped[datetime] = mapped_column()
    finished_at: Mapped[datetime] = mapped_column()
    outcome: Mapped[RunOutcome] = mapped_column(coded(RunOutcome, "run_outcome"))
    error: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(64), default="")


class MaskRow(Base):
    __tablename__ = "masks"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_fk: Mapped[int] = mapped_column(
        ForeignKey("model_runs.id", ondelete="CASCADE"), unique=True
    )
    relative_path: Mapped[str] = mapped_column(String(255), unique=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    geometry: Mapped[dict[str, Any]] = mapped_column()
    label_names: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=now_utc)


class ReviewedMaskRow(Base):
    """A saved edit of a case's label map: one row per version, never updated (migration 0003)."""

    __tablename__ = "reviewed_masks"
    __table_args__ = (Index("ix_reviewed_masks_case_fk", "case_fk"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_fk: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    run_fk: Mapped[int | None] = mapped_column(ForeignKey("model_runs.id", ondelete="CASCADE"))
    relative_path: Mapped[str] = mapped_column(String(255), unique=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    geometry: Mapped[dict[str, Any]] = mapped_column()
    label_names: Mapped[dict[str, Any]] = mapped_column(default=dict)
    author_fk: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    created_at: Mapped[datetime] = mapped_column(default=now_utc)


class FindingRow(Base):
    __tablename__ = "findings"
    __table_args__ = (
        Index("ix_findings_case_fk", "case_fk"),
        Index("ix_findings_run_fk", "run_fk"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_fk: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    run_fk: Mapped[int | None] = mapped_column(ForeignKey("model_runs.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column()  # Finding.finding_id: the lesion's number in its run
    label: Mapped[int] = mapped_column()
    label_name: Mapped[str] = mapped_column(String(128), default="")
    volume_ml: Mapped[float] = mapped_column(Float)
    long_axis_mm: Mapped[float] = mapped_column(Float)
    short_axis_mm: Mapped[float] = mapped_column(Float)
    centroid_x_mm: Mapped[float] = mapped_column(Float)
    centroid_y_mm: Mapped[float] = mapped_column(Float)
    centroid_z_mm: Mapped[float] = mapped_column(Float)
    centroid_index_x: Mapped[float] = mapped_column(Float)
    centroid_index_y: Mapped[float] = mapped_column(Float)
    centroid_index_z: Mapped[float] = mapped_column(Float)
    bbox_min_x: Mapped[int] = mapped_column(Integer)
    bbox_min_y: Mapped[int] = mapped_column(Integer)
    bbox_min_z: Mapped[int] = mapped_column(Integer)
    bbox_max_x: Mapped[int] = mapped_column(Integer)
    bbox_max_y: Mapped[int] = mapped_column(Integer)
    bbox_max_z: Mapped[int] = mapped_column(Integer)
    voxel_count: Mapped[int] = mapped_column(BigInteger)
    mean_intensity: Mapped[float] = mapped_column(Float)
    max_intensity: Mapped[float] = mapped_column(Float)
    mean_probability: Mapped[float] = mapped_column(Float)
    max_probability: Mapped[float] = mapped_column(Float)
    source: Mapped[FindingSource] = mapped_column(coded(FindingSource, "finding_source"))
    review_status: Mapped[ReviewStatus] = mapped_column(
        coded(ReviewStatus, "review_status"), default=ReviewStatus.PENDING
    )
    created_at: Mapped[datetime] = mapped_column(default=now_utc)


class ReviewRow(Base):
    __tablename__ = "reviews"
    __table_args__ = (
        Index("ix_reviews_finding_fk", "finding_fk"),
        Index("ix_reviews_case_fk", "case_fk"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    finding_fk: Mapped[int] = mapped_column(ForeignKey("findings.id", ondelete="CASCADE"))
    case_fk: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    reviewer_fk: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    decision: Mapped[ReviewStatus] = mapped_column(coded(ReviewStatus, "review_decision"))
    previous_status: Mapped[ReviewStatus] = mapped_column(coded(ReviewStatus, "review_previous"))
    reason: Mapped[str] = mapped_column(Text, default="")
    previous_values: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    new_values: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    decided_at: Mapped[datetime] = mapped_column(default=now_utc)


class AuditEventRow(Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_case_id", "case_id"),
        Index("ix_audit_events_occurred_at", "occurred_at"),
        # Migration 0005: the hash chain (db/audit_chain.py); unique, so it cannot fork.
        Index("uq_audit_events_prev_hash", "prev_hash", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(default=now_utc)
    actor: Mapped[str] = mapped_column(String(64))
    # Plain text, no CHECK: a newer app may log actions this one does not know.
    action: Mapped[str] = mapped_column(String(48))
    object_type: Mapped[str] = mapped_column(String(32), default="")
    object_id: Mapped[str] = mapped_column(String(64), default="")
    case_id: Mapped[int | None] = mapped_column()
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))  # the previous event's row_hash
    row_hash: Mapped[str] = mapped_column(String(64))  # sha256 of content + prev_hash


APPEND_ONLY_TABLES = ("audit_events",)

# A case's place in the workflow, what the worklist's status order sorts by (failed last).
STATUS_RANK: dict[CaseStatus, int] = {
    CaseStatus.NEW: 0,
    CaseStatus.ANALYSED: 1,
    CaseStatus.IN_REVIEW: 2,
    CaseStatus.SIGNED: 3,
    CaseStatus.FAILED: 4,
}

# Migrations 0002 and 0004 create these in the worklist's order. On PostgreSQL their columns
# end "study_date DESC NULLS LAST, id DESC" (else every page sorts all matches), which SQLite
# cannot express in an index (its NULLs sort lowest, so DESC puts them last anyway); the models
# show the SQLite form, and autogenerate skips them on PostgreSQL rather than "fixing" them.
WORKLIST_ORDER_INDEXES = frozenset(
    {
        "ix_cases_worklist_status",
        "ix_cases_worklist_date",
        "ix_cases_worklist_modality",
        "ix_cases_worklist_patient",
        # 0004: one per sortable column, unfiltered and filtered by status
        "ix_cases_worklist_name",
        "ix_cases_worklist_status_name",
        "ix_cases_worklist_patient_id",
        "ix_cases_worklist_status_patient_id",
        "ix_cases_worklist_status_rank",
        "ix_cases_worklist_status_modality",
        "ix_cases_worklist_findings",
        "ix_cases_worklist_status_findings",
    }
)


def autogenerate_filter(dialect: str) -> Callable[..., bool]:
    """Alembic ``include_object`` hook: what autogenerate may compare on ``dialect``."""

    def include(_object: Any, name: str | None, type_: str, *_rest: Any) -> bool:
        return not (dialect == "postgresql" and type_ == "index" and name in WORKLIST_ORDER_INDEXES)

    return include


class PseudonymRow(Base):
    """A patient's pseudonym for de-identified exports and the secret that seeds its new UIDs
    and date offset (``meddiag_desktop.deid``); migration 0006.

    Keyed on the patient's identity (as ``patients``), without a foreign key: the pseudonym
    outlives the patient row, so a patient deleted and imported again keeps the same pseudonym,
    UIDs and offset. This table is the only place the pseudonym leads back to the patient.
    """

    __tablename__ = "pseudonyms"
    __table_args__ = (
        UniqueConstraint(
            "dicom_patient_id", "patient_name", "birth_date", name="uq_pseudonyms_identity"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pseudonym: Mapped[str] = mapped_column(String(32), unique=True)
    secret: Mapped[str] = mapped_column(String(64))  # hex, 32 random bytes
    dicom_patient_id: Mapped[str] = mapped_column(String(64), default="")
    patient_name: Mapped[str] = mapped_column(String(324), default="")
    birth_date: Mapped[str] = mapped_column(String(16), default="")
    created_at: Mapped[datetime] = mapped_column(default=now_utc)
    created_by: Mapped[str] = mapped_column(String(64), default="")


class SiteSettingRow(Base):
    """One workstation-wide setting (migration 0007), such as whether login is required.

    Kept in the database, not in a program's own settings file, so it holds for the app, every
    ``meddiag`` command and every account that opens this database.
    """

    __tablename__ = "site_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(default=dict)
    changed_at: Mapped[datetime] = mapped_column(default=now_utc)
    changed_by: Mapped[str] = mapped_column(String(64), default="")


class LoginFailureRow(Base):
    """Consecutive failed sign-ins per user name (migration 0007): what slows guessing down.

    ``name_key`` is a keyed hash of the name typed, never the name itself: a password typed into
    the name field by mistake must not be stored, and known and unknown names look alike.
    """

    __tablename__ = "login_failures"

    name_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failed_at: Mapped[datetime] = mapped_column(default=now_utc)


class ComparisonRow(Base):
    """A case compared with an earlier case of the same patient (migration 0008).

    Never updated: a revision (the reader's overrides, other target lesions) is a new row of
    the same pair naming the one it revises; the newest row of a pair is the comparison.
    ``transform`` maps a current-study LPS point to the prior study (ITK's fixed -> moving).
    """

    __tablename__ = "comparisons"
    __table_args__ = (
        Index("ix_comparisons_case_fk", "case_fk", "prior_case_fk"),
        Index("ix_comparisons_prior_case_fk", "prior_case_fk"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_fk: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    prior_case_fk: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    revises_id: Mapped[int | None] = mapped_column()  # history only: no foreign key
    created_at: Mapped[datetime] = mapped_column(default=now_utc)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    transform: Mapped[dict[str, Any]] = mapped_column(default=dict)
    quality: Mapped[dict[str, Any]] = mapped_column(default=dict)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    response: Mapped[Response] = mapped_column(coded(Response, "comparison_response"))
    rule: Mapped[str] = mapped_column(Text, default="")
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)
    chosen_targets: Mapped[list[Any] | None] = mapped_column(JSON)  # prior finding ids


class ComparisonTrackRow(Base):
    """One lesion of a comparison: its findings in both studies and its tracking UID."""

    __tablename__ = "comparison_tracks"
    __table_args__ = (
        Index("ix_comparison_tracks_comparison_fk", "comparison_fk"),
        Index("ix_comparison_tracks_current_finding_fk", "current_finding_fk"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    comparison_fk: Mapped[int] = mapped_column(ForeignKey("comparisons.id", ondelete="CASCADE"))
    track_id: Mapped[str] = mapped_column(String(16))
    tracking_uid: Mapped[str] = mapped_column(String(64))
    status: Mapped[TrackStatus] = mapped_column(coded(TrackStatus, "track_status"))
    basis: Mapped[MatchBasis] = mapped_column(coded(MatchBasis, "match_basis"))
    prior_finding_fk: Mapped[int | None] = mapped_column(
        ForeignKey("findings.id", ondelete="CASCADE")
    )
    current_finding_fk: Mapped[int | None] = mapped_column(
        ForeignKey("findings.id", ondelete="CASCADE")
    )
    target: Mapped[bool] = mapped_column(Boolean, default=False)
    dice: Mapped[float | None] = mapped_column(Float)
    distance_mm: Mapped[float | None] = mapped_column(Float)


class ComparisonOverrideRow(Base):
    """A reader's correction of the matching, in force for its comparison."""

    __tablename__ = "comparison_overrides"
    __table_args__ = (Index("ix_comparison_overrides_comparison_fk", "comparison_fk"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    comparison_fk: Mapped[int] = mapped_column(ForeignKey("comparisons.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer, default=0)  # the order they are applied in
    action: Mapped[OverrideAction] = mapped_column(coded(OverrideAction, "override_action"))
    prior_finding_fk: Mapped[int | None] = mapped_column(
        ForeignKey("findings.id", ondelete="CASCADE")
    )
    current_finding_fk: Mapped[int | None] = mapped_column(
        ForeignKey("findings.id", ondelete="CASCADE")
    )
