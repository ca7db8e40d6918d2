"""Initial schema: patients, studies, series, cases, model runs, findings, masks, reviews, users
and the append-only audit log (with the triggers that keep it append-only).

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-29

Frozen: a migration never imports the live schema, so it means the same thing forever.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

APPEND_ONLY_MESSAGE = "audit events are append-only"


def _search_text() -> sa.types.TypeEngine:
    return sa.String(length=255).with_variant(sa.String(length=255, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=48), nullable=False),
        sa.Column("object_type", sa.String(length=32), nullable=False),
        sa.Column("object_id", sa.String(length=64), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index("ix_audit_events_case_id", "audit_events", ["case_id"], unique=False)
    op.create_index("ix_audit_events_occurred_at", "audit_events", ["occurred_at"], unique=False)

    op.create_table(
        "patients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dicom_patient_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=324), nullable=False),
        sa.Column("name_folded", _search_text(), nullable=False),
        sa.Column("patient_id_folded", _search_text(), nullable=False),
        sa.Column("birth_date", sa.String(length=16), nullable=False),
        sa.Column("sex", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patients")),
        sa.UniqueConstraint("dicom_patient_id", "name", "birth_date", name="uq_patients_identity"),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=255), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "radiologist",
                "resident",
                "technologist",
                "admin",
                name="user_role",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "studies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_fk", sa.Integer(), nullable=False),
        sa.Column("study_uid", sa.String(length=64), nullable=False),
        sa.Column("study_date", sa.Date(), nullable=True),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("institution", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_fk"],
            ["patients.id"],
            name=op.f("fk_studies_patient_fk_patients"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_studies")),
        sa.UniqueConstraint("patient_fk", "study_uid", name="uq_studies_patient_uid"),
    )
    op.create_table(
        "series",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_fk", sa.Integer(), nullable=False),
        sa.Column("identity", sa.String(length=200), nullable=False),
        sa.Column("series_key", sa.String(length=200), nullable=False),
        sa.Column("series_uid", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("modality", sa.String(length=16), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("series_number", sa.String(length=16), nullable=False),
        sa.Column("series_date", sa.String(length=16), nullable=False),
        sa.Column("manufacturer", sa.String(length=128), nullable=False),
        sa.Column("manufacturer_model", sa.String(length=128), nullable=False),
        sa.Column("size_x", sa.Integer(), nullable=False),
        sa.Column("size_y", sa.Integer(), nullable=False),
        sa.Column("size_z", sa.Integer(), nullable=False),
        sa.Column("spacing_x_mm", sa.Float(), nullable=False),
        sa.Column("spacing_y_mm", sa.Float(), nullable=False),
        sa.Column("spacing_z_mm", sa.Float(), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("file_count", sa.Integer(), nullable=False),
        sa.Column("files_bytes", sa.BigInteger(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("imported_at", sa.DateTime(), nullable=False),
        sa.Column("files_seen_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["study_fk"],
            ["studies.id"],
            name=op.f("fk_series_study_fk_studies"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_series")),
        sa.UniqueConstraint("identity", name=op.f("uq_series_identity")),
    )
    op.create_index("ix_series_study_fk", "series", ["study_fk"], unique=False)

    op.create_table(
        "cases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("series_fk", sa.Integer(), nullable=False),
        sa.Column("patient_fk", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "new",
                "analysed",
                "in_review",
                "signed",
                "failed",
                name="case_status",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("study_date", sa.Date(), nullable=True),
        sa.Column("modality", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("signed_at", sa.DateTime(), nullable=True),
        sa.Column("signed_by_fk", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_fk"],
            ["patients.id"],
            name=op.f("fk_cases_patient_fk_patients"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["series_fk"],
            ["series.id"],
            name=op.f("fk_cases_series_fk_series"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["signed_by_fk"],
            ["users.id"],
            name=op.f("fk_cases_signed_by_fk_users"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cases")),
        sa.UniqueConstraint("series_fk", name=op.f("uq_cases_series_fk")),
    )
    op.create_index("ix_cases_patient_fk", "cases", ["patient_fk"], unique=False)

    op.create_table(
        "model_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_fk", sa.Integer(), nullable=False),
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("model_sha256", sa.String(length=64), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("provider_attempts", sa.JSON(), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("timings_s", sa.JSON(), nullable=False),
        sa.Column("warnings", sa.JSON(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=False),
        sa.Column(
            "outcome",
            sa.Enum(
                "succeeded",
                "cancelled",
                "failed",
                name="run_outcome",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_fk"], ["cases.id"], name=op.f("fk_model_runs_case_fk_cases"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_runs")),
    )
    op.create_index("ix_model_runs_case_fk", "model_runs", ["case_fk"], unique=False)

    op.create_table(
        "findings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_fk", sa.Integer(), nullable=False),
        sa.Column("run_fk", sa.Integer(), nullable=True),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("label", sa.Integer(), nullable=False),
        sa.Column("label_name", sa.String(length=128), nullable=False),
        sa.Column("volume_ml", sa.Float(), nullable=False),
        sa.Column("long_axis_mm", sa.Float(), nullable=False),
        sa.Column("short_axis_mm", sa.Float(), nullable=False),
        sa.Column("centroid_x_mm", sa.Float(), nullable=False),
        sa.Column("centroid_y_mm", sa.Float(), nullable=False),
        sa.Column("centroid_z_mm", sa.Float(), nullable=False),
        sa.Column("centroid_index_x", sa.Float(), nullable=False),
        sa.Column("centroid_index_y", sa.Float(), nullable=False),
        sa.Column("centroid_index_z", sa.Float(), nullable=False),
        sa.Column("bbox_min_x", sa.Integer(), nullable=False),
        sa.Column("bbox_min_y", sa.Integer(), nullable=False),
        sa.Column("bbox_min_z", sa.Integer(), nullable=False),
        sa.Column("bbox_max_x", sa.Integer(), nullable=False),
        sa.Column("bbox_max_y", sa.Integer(), nullable=False),
        sa.Column("bbox_max_z", sa.Integer(), nullable=False),
        sa.Column("voxel_count", sa.BigInteger(), nullable=False),
        sa.Column("mean_intensity", sa.Float(), nullable=False),
        sa.Column("max_intensity", sa.Float(), nullable=False),
        sa.Column("mean_probability", sa.Float(), nullable=False),
        sa.Column("max_probability", sa.Float(), nullable=False),
        sa.Column(
            "source",
            sa.Enum(
                "ai",
                "manual",
                name="finding_source",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column(
            "review_status",
            sa.Enum(
                "pending",
                "accepted",
                "rejected",
                "edited",
                name="review_status",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_fk"], ["cases.id"], name=op.f("fk_findings_case_fk_cases"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["run_fk"],
            ["model_runs.id"],
            name=op.f("fk_findings_run_fk_model_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_findings")),
    )
    op.create_index("ix_findings_case_fk", "findings", ["case_fk"], unique=False)
    op.create_index("ix_findings_run_fk", "findings", ["run_fk"], unique=False)

    op.create_table(
        "masks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_fk", sa.Integer(), nullable=False),
        sa.Column("relative_path", sa.String(length=255), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("geometry", sa.JSON(), nullable=False),
        sa.Column("label_names", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_fk"],
            ["model_runs.id"],
            name=op.f("fk_masks_run_fk_model_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_masks")),
        sa.UniqueConstraint("relative_path", name=op.f("uq_masks_relative_path")),
        sa.UniqueConstraint("run_fk", name=op.f("uq_masks_run_fk")),
    )
    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("finding_fk", sa.Integer(), nullable=False),
        sa.Column("case_fk", sa.Integer(), nullable=False),
        sa.Column("reviewer_fk", sa.Integer(), nullable=False),
        sa.Column(
            "decision",
            sa.Enum(
                "pending",
                "accepted",
                "rejected",
                "edited",
                name="review_decision",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column(
            "previous_status",
            sa.Enum(
                "pending",
                "accepted",
                "rejected",
                "edited",
                name="review_previous",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("previous_values", sa.JSON(), nullable=True),
        sa.Column("new_values", sa.JSON(), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_fk"], ["cases.id"], name=op.f("fk_reviews_case_fk_cases"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["finding_fk"],
            ["findings.id"],
            name=op.f("fk_reviews_finding_fk_findings"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["reviewer_fk"],
            ["users.id"],
            name=op.f("fk_reviews_reviewer_fk_users"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reviews")),
    )
    op.create_index("ix_reviews_case_fk", "reviews", ["case_fk"], unique=False)
    op.create_index("ix_reviews_finding_fk", "reviews", ["finding_fk"], unique=False)
    _make_audit_append_only()


def _make_audit_append_only() -> None:
    """The database itself refuses UPDATE and DELETE on audit events, whatever the app does."""
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_events_no_{verb.lower()} BEFORE {verb} ON audit_events "
                f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END"
            )
    elif dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{APPEND_ONLY_MESSAGE}'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events "
            "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()"
        )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events")
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_change ON audit_events")
        op.execute("DROP FUNCTION IF EXISTS audit_events_append_only()")
    for table in (
        "reviews",
        "masks",
        "findings",
        "model_runs",
        "cases",
        "series",
        "studies",
        "users",
        "patients",
        "audit_events",
    ):
        op.drop_table(table)
