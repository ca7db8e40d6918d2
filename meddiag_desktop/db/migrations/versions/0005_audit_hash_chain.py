"""Audit hash chain: every audit event carries the hash of the one before it and its own.

Revision ID: 0005_audit_hash_chain
Revises: 0004_worklist_sort_keys
Create Date: 2026-12-14

``prev_hash`` is the previous event's ``row_hash`` (64 zeros for the first event) and
``row_hash`` the sha256 of the event's canonical form (``meddiag_desktop.db.audit_chain``),
which includes ``prev_hash``: editing or deleting an event breaks the chain at that event.
A unique index on ``prev_hash`` makes a fork (two events after the same one) impossible in the
database itself. Existing events are chained in id order; the append-only triggers refuse that
UPDATE, so they are dropped for the backfill and recreated exactly as 0001 made them, inside
the migration's one transaction.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005_audit_hash_chain"
down_revision = "0004_worklist_sort_keys"
branch_labels = None
depends_on = None

APPEND_ONLY_MESSAGE = "audit events are append-only"
# Frozen copy of meddiag_desktop.db.audit_chain's version 1 canonical form as of this revision.
_GENESIS = "0" * 64


def _canonical(row: Any, prev_hash: str) -> bytes:
    occurred: datetime = row.occurred_at
    if occurred.tzinfo is not None:
        occurred = occurred.astimezone(UTC).replace(tzinfo=None)
    content = {
        "v": 1,
        "occurred_at": occurred.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "actor": row.actor,
        "action": row.action,
        "object_type": row.object_type,
        "object_id": row.object_id,
        "case_id": row.case_id,
        "details": json.loads(json.dumps(row.details if row.details is not None else {})),
        "prev_hash": prev_hash,
    }
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return text.encode("ascii")


def _audit_table() -> sa.TableClause:
    return sa.table(
        "audit_events",
        sa.column("id", sa.Integer()),
        sa.column("occurred_at", sa.DateTime()),
        sa.column("actor", sa.String()),
        sa.column("action", sa.String()),
        sa.column("object_type", sa.String()),
        sa.column("object_id", sa.String()),
        sa.column("case_id", sa.Integer()),
        sa.column("details", sa.JSON()),
        sa.column("prev_hash", sa.String()),
        sa.column("row_hash", sa.String()),
    )


def upgrade() -> None:
    _drop_append_only_triggers()
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("prev_hash", sa.String(64), nullable=False, server_default=""))
        batch.add_column(sa.Column("row_hash", sa.String(64), nullable=False, server_default=""))
    _chain_existing_events()
    op.create_index("uq_audit_events_prev_hash", "audit_events", ["prev_hash"], unique=True)
    _create_append_only_triggers()


def _chain_existing_events() -> None:
    audit = _audit_table()
    bind = op.get_bind()
    rows = bind.execute(sa.select(audit).order_by(audit.c.id)).all()
    prev = _GENESIS
    updates = []
    for row in rows:
        digest = hashlib.sha256(_canonical(row, prev)).hexdigest()
        updates.append({"row_id": row.id, "new_prev": prev, "new_hash": digest})
        prev = digest
    if updates:
        bind.execute(
            audit.update()
            .where(audit.c.id == sa.bindparam("row_id"))
            .values(prev_hash=sa.bindparam("new_prev"), row_hash=sa.bindparam("new_hash")),
            updates,
        )


def _drop_append_only_triggers() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_delete")
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_change ON audit_events")
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events")


def _create_append_only_triggers() -> None:
    """As 0001_initial made them (the trigger function itself was never dropped)."""
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_events_no_{verb.lower()} BEFORE {verb} ON audit_events "
                f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END"
            )
    elif dialect == "postgresql":
        op.execute(
            "CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events "
            "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()"
        )


def downgrade() -> None:
    _drop_append_only_triggers()
    op.drop_index("uq_audit_events_prev_hash", "audit_events")
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("row_hash")
        batch.drop_column("prev_hash")
    _create_append_only_triggers()
