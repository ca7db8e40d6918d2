"""Pseudonyms: one per patient identity, for de-identified exports (PS3.15 Annex E).

Revision ID: 0006_pseudonyms
Revises: 0005_audit_hash_chain
Create Date: 2026-12-14

Each row holds the pseudonym a patient's de-identified exports carry and the random secret that
seeds their new UIDs and date offset, so every later export of the patient matches the earlier
ones. The patient's identity is copied, not referenced: the row must outlive the patient row.
Existing databases get the empty table; a pseudonym is made at a patient's first export.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_pseudonyms"
down_revision = "0005_audit_hash_chain"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pseudonyms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pseudonym", sa.String(length=32), nullable=False),
        sa.Column("secret", sa.String(length=64), nullable=False),
        sa.Column("dicom_patient_id", sa.String(length=64), nullable=False),
        sa.Column("patient_name", sa.String(length=324), nullable=False),
        sa.Column("birth_date", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pseudonyms")),
        sa.UniqueConstraint("pseudonym", name=op.f("uq_pseudonyms_pseudonym")),
        sa.UniqueConstraint(
            "dicom_patient_id", "patient_name", "birth_date", name="uq_pseudonyms_identity"
        ),
    )


def downgrade() -> None:
    op.drop_table("pseudonyms")
