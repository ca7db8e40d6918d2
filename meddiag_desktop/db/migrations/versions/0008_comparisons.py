"""Comparisons: a case against an earlier case of the same patient, and its lesion tracks.

Revision ID: 0008_comparisons
Revises: 0007_login
Create Date: 2026-12-20

``comparisons`` holds the registration (transform current -> prior, its quality), the RECIST
result and the summary ``meddiag compare`` prints; ``comparison_tracks`` one row per lesion
with the tracking UID every later export of the current case writes; ``comparison_overrides``
the reader's links, unlinks and marks. ``series.body_part`` (DICOM BodyPartExamined) lets a
prior of the same region be offered first; existing series get an empty one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_comparisons"
down_revision = "0007_login"
branch_labels = None
depends_on = None


def _finding_fk(table: str, column: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], ["findings.id"], name=op.f(f"fk_{table}_{column}_findings"), ondelete="CASCADE"
    )


def upgrade() -> None:
    with op.batch_alter_table("series") as batch:
        batch.add_column(
            sa.Column("body_part", sa.String(length=64), nullable=False, server_default="")
        )
    op.create_table(
        "comparisons",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_fk", sa.Integer(), nullable=False),
        sa.Column("prior_case_fk", sa.Integer(), nullable=False),
        sa.Column("revises_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("transform", sa.JSON(), nullable=False),
        sa.Column("quality", sa.JSON(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column(
            "response",
            sa.Enum(
                "CR",
                "PR",
                "SD",
                "PD",
                name="comparison_response",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("chosen_targets", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_fk"],
            ["cases.id"],
            name=op.f("fk_comparisons_case_fk_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["prior_case_fk"],
            ["cases.id"],
            name=op.f("fk_comparisons_prior_case_fk_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comparisons")),
    )
    op.create_index("ix_comparisons_case_fk", "comparisons", ["case_fk", "prior_case_fk"])
    op.create_index("ix_comparisons_prior_case_fk", "comparisons", ["prior_case_fk"])
    op.create_table(
        "comparison_tracks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("comparison_fk", sa.Integer(), nullable=False),
        sa.Column("track_id", sa.String(length=16), nullable=False),
        sa.Column("tracking_uid", sa.String(length=64), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "matched",
                "new",
                "gone",
                name="track_status",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column(
            "basis",
            sa.Enum(
                "overlap",
                "distance",
                "manual",
                "unmatched",
                name="match_basis",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("prior_finding_fk", sa.Integer(), nullable=True),
        sa.Column("current_finding_fk", sa.Integer(), nullable=True),
        sa.Column("target", sa.Boolean(), nullable=False),
        sa.Column("dice", sa.Float(), nullable=True),
        sa.Column("distance_mm", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["comparison_fk"],
            ["comparisons.id"],
            name=op.f("fk_comparison_tracks_comparison_fk_comparisons"),
            ondelete="CASCADE",
        ),
        _finding_fk("comparison_tracks", "prior_finding_fk"),
        _finding_fk("comparison_tracks", "current_finding_fk"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comparison_tracks")),
    )
    op.create_index("ix_comparison_tracks_comparison_fk", "comparison_tracks", ["comparison_fk"])
    op.create_index(
        "ix_comparison_tracks_current_finding_fk", "comparison_tracks", ["current_finding_fk"]
    )
    op.create_table(
        "comparison_overrides",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("comparison_fk", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column(
            "action",
            sa.Enum(
                "link",
                "unlink",
                "new",
                "gone",
                name="override_action",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("prior_finding_fk", sa.Integer(), nullable=True),
        sa.Column("current_finding_fk", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["comparison_fk"],
            ["comparisons.id"],
            name=op.f("fk_comparison_overrides_comparison_fk_comparisons"),
            ondelete="CASCADE",
        ),
        _finding_fk("comparison_overrides", "prior_finding_fk"),
        _finding_fk("comparison_overrides", "current_finding_fk"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comparison_overrides")),
    )
    op.create_index(
        "ix_comparison_overrides_comparison_fk", "comparison_overrides", ["comparison_fk"]
    )


def downgrade() -> None:
    op.drop_table("comparison_overrides")
    op.drop_table("comparison_tracks")
    op.drop_table("comparisons")
    with op.batch_alter_table("series") as batch:
        batch.drop_column("body_part")
