"""Worklist: a folded search text per case and the indexes the worklist queries use.

Revision ID: 0002_worklist
Revises: 0001_initial
Create Date: 2026-11-29

Existing cases get their search text computed from their patient, study and series rows, so a
database from the first release finds its old cases by text search too.
"""

from __future__ import annotations

import unicodedata

import sqlalchemy as sa
from alembic import op

revision = "0002_worklist"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def _fold(*parts: str) -> str:
    """Frozen copy of meddiag_desktop.db.text_search.fold as of this revision."""
    text = unicodedata.normalize("NFKC", " ".join(p for p in parts if p)).casefold()
    return " ".join(text.replace("^", " ").split())


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("search_text", sa.Text(), nullable=False, server_default=""))
    _fill_search_text()
    op.create_index("ix_patients_name_folded", "patients", ["name_folded"])
    op.create_index("ix_patients_patient_id_folded", "patients", ["patient_id_folded"])
    _worklist_index("ix_cases_worklist_status", "status")
    _worklist_index("ix_cases_worklist_date")
    _worklist_index("ix_cases_worklist_modality", "modality")
    op.create_index("ix_cases_created_at", "cases", ["created_at"])
    # Finding a patient's cases in date order from the index alone (covers the foreign key).
    _worklist_index("ix_cases_worklist_patient", "patient_fk")
    op.drop_index("ix_cases_patient_fk", "cases")


def _worklist_index(name: str, *leading: str) -> None:
    """An index in the worklist's order: newest study first, undated cases last, then id.

    SQLite keeps NULLs lowest, so its plain ascending index read backwards gives exactly that
    order (and it refuses NULLS LAST in an index). PostgreSQL reads an ascending index backwards
    as DESC NULLS FIRST, so there the index states the order, or every page sorts all matches.
    """
    if op.get_bind().dialect.name == "postgresql":
        order = [sa.text("study_date DESC NULLS LAST"), sa.text("id DESC")]
        op.create_index(name, "cases", [*leading, *order])
    else:
        op.create_index(name, "cases", [*leading, "study_date", "id"])


def _fill_search_text() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT cases.id, patients.name, patients.dicom_patient_id, studies.description, "
            "series.description, studies.institution, series.modality "
            "FROM cases JOIN series ON cases.series_fk = series.id "
            "JOIN studies ON series.study_fk = studies.id "
            "JOIN patients ON cases.patient_fk = patients.id"
        )
    ).all()
    update = sa.text("UPDATE cases SET search_text = :text WHERE id = :id")
    values = [{"id": row[0], "text": _fold(*(str(v or "") for v in row[1:]))} for row in rows]
    if values:
        bind.execute(update, values)


def downgrade() -> None:
    op.create_index("ix_cases_patient_fk", "cases", ["patient_fk"])
    for name in (
        "ix_cases_worklist_patient",
        "ix_cases_created_at",
        "ix_cases_worklist_modality",
        "ix_cases_worklist_date",
        "ix_cases_worklist_status",
        "ix_patients_patient_id_folded",
        "ix_patients_name_folded",
    ):
        op.drop_index(name)
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("search_text")
