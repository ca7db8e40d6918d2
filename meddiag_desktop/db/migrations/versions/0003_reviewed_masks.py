"""Reviewed masks: every saved edit of a case's label map, as a versioned mask file.

Revision ID: 0003_reviewed_masks
Revises: 0002_worklist
Create Date: 2026-12-06

Until now only the re-measured findings of an edit were stored, and the edited voxels were lost
when the case was closed. Existing databases get the empty table: nothing to fill in.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_reviewed_masks"
down_revision = "0002_worklist"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reviewed_masks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_fk", sa.Integer(), nullable=False),
        sa.Column("run_fk", sa.Integer(), nullable=True),
        sa.Column("relative_path", sa.String(length=255), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("geometry", sa.JSON(), nullable=False),
        sa.Column("label_names", sa.JSON(), nullable=False),
        sa.Column("author_fk", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_fk"],
            ["cases.id"],
            name=op.f("fk_reviewed_masks_case_fk_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_fk"],
            ["model_runs.id"],
            name=op.f("fk_reviewed_masks_run_fk_model_runs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["author_fk"],
            ["users.id"],
            name=op.f("fk_reviewed_masks_author_fk_users"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reviewed_masks")),
        sa.UniqueConstraint("relative_path", name=op.f("uq_reviewed_masks_relative_path")),
    )
    op.create_index("ix_reviewed_masks_case_fk", "reviewed_masks", ["case_fk"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_reviewed_masks_case_fk", "reviewed_masks")
    op.drop_table("reviewed_masks")
