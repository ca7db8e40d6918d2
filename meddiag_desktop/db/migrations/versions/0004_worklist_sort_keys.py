"""Worklist sort keys: every column of the worklist sorts, paged from ``cases`` indexes alone.

Revision ID: 0004_worklist_sort_keys
Revises: 0003_reviewed_masks
Create Date: 2026-12-13

Cases get the folded patient name and ID, a workflow rank for the status and the finding count
the worklist shows, each with an index (and one per status filter) in the worklist's tie order:
newest study, then newest case. Joining patients or counting findings per page instead costs a
sort of every matching case. Existing cases are filled in from their patient, status and
findings.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_worklist_sort_keys"
down_revision = "0003_reviewed_masks"
branch_labels = None
depends_on = None

# Frozen copy of meddiag_desktop.db.schema.STATUS_RANK as of this revision.
_STATUS_RANK = {"new": 0, "analysed": 1, "in_review": 2, "signed": 3, "failed": 4}

_INDEXES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ix_cases_worklist_modality", ("modality",)),
    ("ix_cases_worklist_name", ("patient_name_key",)),
    ("ix_cases_worklist_status_name", ("status", "patient_name_key")),
    ("ix_cases_worklist_patient_id", ("patient_id_key",)),
    ("ix_cases_worklist_status_patient_id", ("status", "patient_id_key")),
    ("ix_cases_worklist_status_rank", ("status_rank",)),
    ("ix_cases_worklist_status_modality", ("status", "modality")),
    ("ix_cases_worklist_findings", ("finding_count DESC",)),
    ("ix_cases_worklist_status_findings", ("status", "finding_count DESC")),
)


def _key_type() -> sa.types.TypeEngine:
    """As schema.SEARCH_TEXT: byte-wise order on PostgreSQL too, the same order as SQLite."""
    return sa.String(255).with_variant(sa.String(255, collation="C"), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(
            sa.Column("patient_name_key", _key_type(), nullable=False, server_default="")
        )
        batch.add_column(
            sa.Column("patient_id_key", _key_type(), nullable=False, server_default="")
        )
        batch.add_column(
            sa.Column("status_rank", sa.SmallInteger(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("finding_count", sa.Integer(), nullable=False, server_default="0")
        )
    _fill_sort_keys()
    # 0002 made this one (modality, study_date, id) on SQLite: its newest-first order within a
    # modality was a backwards read of all modalities; now the tie order is stored descending.
    if op.get_bind().dialect.name != "postgresql":
        op.drop_index("ix_cases_worklist_modality", "cases")
    for name, leading in _INDEXES:
        if name == "ix_cases_worklist_modality" and op.get_bind().dialect.name == "postgresql":
            continue  # already (modality, study_date DESC NULLS LAST, id DESC) there
        _order_index(name, *leading)


def _order_index(name: str, *leading: str) -> None:
    """``leading``, then newest study (undated last), then newest case.

    Read forwards that is an order, read backwards its exact reverse. SQLite keeps NULLs lowest,
    so its DESC puts undated cases last and it refuses NULLS LAST in an index; PostgreSQL needs
    it stated, as in 0002.
    """
    postgres = op.get_bind().dialect.name == "postgresql"
    tail = ("study_date DESC NULLS LAST", "id DESC") if postgres else ("study_date DESC", "id DESC")
    columns = [sa.text(c) if " " in c else c for c in (*leading, *tail)]
    op.create_index(name, "cases", columns)


def _fill_sort_keys() -> None:
    ranks = " ".join(f"WHEN '{status}' THEN {rank}" for status, rank in _STATUS_RANK.items())
    # The finding count as the worklist showed it: the latest successful run's plus manual ones.
    op.execute(
        sa.text(
            "UPDATE cases SET "
            "patient_name_key = (SELECT name_folded FROM patients "
            "WHERE patients.id = cases.patient_fk), "
            "patient_id_key = (SELECT patient_id_folded FROM patients "
            "WHERE patients.id = cases.patient_fk), "
            f"status_rank = CASE status {ranks} ELSE 0 END, "
            "finding_count = (SELECT count(*) FROM findings WHERE findings.case_fk = cases.id "
            "AND (findings.run_fk IS NULL OR findings.run_fk = (SELECT max(model_runs.id) "
            "FROM model_runs WHERE model_runs.case_fk = cases.id "
            "AND model_runs.outcome = 'succeeded')))"
        )
    )


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for name, _leading in reversed(_INDEXES):
        if name != "ix_cases_worklist_modality" or not postgres:
            op.drop_index(name, "cases")
    if not postgres:
        op.create_index("ix_cases_worklist_modality", "cases", ["modality", "study_date", "id"])
    with op.batch_alter_table("cases") as batch:
        for column in ("finding_count", "status_rank", "patient_id_key", "patient_name_key"):
            batch.drop_column(column)
