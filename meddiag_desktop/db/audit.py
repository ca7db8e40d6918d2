"""The append-only audit log: who did what to which object, and when.

Every repository write adds its event in the same transaction as the change, so the log and
the data cannot disagree. Rows are never updated or deleted: the migrations install triggers
that make the database itself refuse it (SQLite ``RAISE(ABORT)``, a PostgreSQL trigger
function), so not even a buggy future version of the app can rewrite history. Every event is
also a link of a hash chain (:mod:`.audit_chain`), so an edit made anyway, with the triggers
dropped or in the file itself, shows: ``meddiag audit verify``, ``meddiag db check``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from meddiag_desktop.db.audit_chain import append_event, verify_chain
from meddiag_desktop.db.engine import Database
from meddiag_desktop.db.records import AuditAction, AuditChainReport, AuditEvent
from meddiag_desktop.db.schema import AuditEventRow, now_utc

APPEND_ONLY_MESSAGE = "audit events are append-only"


def event_values(
    actor: str,
    action: AuditAction,
    object_type: str = "",
    object_id: int | str = "",
    case_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "occurred_at": now_utc(),
        "actor": actor[:64],
        "action": action.value,
        "object_type": object_type,
        "object_id": str(object_id),
        "case_id": case_id,
        "details": details or {},
    }


def add_event(
    session: Session,
    actor: str,
    action: AuditAction,
    object_type: str = "",
    object_id: int | str = "",
    case_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Add an event to the caller's unit of work (committed with the change it describes).

    It is inserted at once, linked to the newest event (:func:`.audit_chain.append_event`), so
    several events of one unit chain in the order they were added.
    """
    append_event(
        session.connection(), event_values(actor, action, object_type, object_id, case_id, details)
    )


def log_event(
    db: Database,
    action: AuditAction,
    case_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Record something that changes no data: a case viewed, a report exported."""
    with db.writing() as session:
        add_event(
            session, db.actor, action, "case" if case_id else "", case_id or "", case_id, details
        )


def case_history(db: Database, case_id: int) -> tuple[AuditEvent, ...]:
    """Every event about one case, oldest first (kept even after the case is deleted)."""
    with db.reading() as session:
        rows = session.scalars(
            select(AuditEventRow).where(AuditEventRow.case_id == case_id).order_by(AuditEventRow.id)
        ).all()
        return tuple(_event(row) for row in rows)


def recent_events(
    db: Database, limit: int = 100, since: datetime | None = None
) -> tuple[AuditEvent, ...]:
    """The newest events first."""
    with db.reading() as session:
        query = select(AuditEventRow).order_by(AuditEventRow.id.desc()).limit(limit)
        if since is not None:
            query = query.where(AuditEventRow.occurred_at >= since)
        return tuple(_event(row) for row in session.scalars(query).all())


def list_events(
    db: Database, case_id: int | None = None, since: datetime | None = None
) -> tuple[AuditEvent, ...]:
    """Events oldest first, optionally only one case's or those from ``since`` on."""
    with db.reading() as session:
        query = select(AuditEventRow).order_by(AuditEventRow.id)
        if case_id is not None:
            query = query.where(AuditEventRow.case_id == case_id)
        if since is not None:
            query = query.where(AuditEventRow.occurred_at >= since)
        return tuple(_event(row) for row in session.scalars(query).all())


def verify_audit_chain(db: Database) -> AuditChainReport:
    """Check the whole hash chain in one read (a consistent snapshot on SQLite)."""
    with db.reading() as session:
        return verify_chain(session.connection())


def _event(row: AuditEventRow) -> AuditEvent:
    try:
        action: AuditAction | str = AuditAction(row.action)
    except ValueError:
        action = row.action
    return AuditEvent(
        event_id=row.id,
        occurred_at=row.occurred_at,
        actor=row.actor,
        action=action,
        object_type=row.object_type,
        object_id=row.object_id,
        case_id=row.case_id,
        details=dict(row.details or {}),
    )
