"""Bring a database to the newest schema at start-up, after a backup copy of the SQLite file.

Everything happens in one transaction under the write lock, so a crash mid-migration leaves the
old schema (SQLite and PostgreSQL both roll DDL back), and a second app starting at the same
moment waits, then finds the schema already current.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Connection, insert, inspect, text

from meddiag_desktop.db import errors
from meddiag_desktop.db.backup import copy_sqlite_file, timestamp
from meddiag_desktop.db.engine import _BEGIN_OPTION, Database
from meddiag_desktop.db.migrations import HEAD, REVISIONS, SCRIPT_LOCATION
from meddiag_desktop.db.records import AuditAction, Backend

_POSTGRES_MIGRATION_LOCK = 0x4D44_0001  # pg_advisory_xact_lock key ("MD" 1)
# Alembic narrates each migration at INFO ("Context impl SQLiteImpl", "Running upgrade ..."),
# which an app logging INFO prints on a user's first start. The audit log records every
# migration (from, to, backup), so Alembic speaks only for warnings; a developer can lower it.
logging.getLogger("alembic").setLevel(logging.WARNING)


def current_revision(connection: Connection) -> str | None:
    """The schema revision stored in the database; None for an empty (new) database."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    rows = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    if len(rows) > 1:
        raise errors.SchemaVersionError(f"the database has several schema heads: {rows}")
    return rows[0] if rows else None


def schema_revision(db: Database) -> str | None:
    with db.reading() as session:
        return current_revision(session.connection())


def ensure_schema(db: Database) -> str | None:
    """Migrate to head when needed; returns the path of the backup taken, if any."""
    with db.reading() as session:
        current = current_revision(session.connection())
    if current == HEAD:
        return None
    if current is not None and current not in REVISIONS:
        raise errors.SchemaVersionError(
            f"the case database {db.display_url} has schema '{current}', written by a newer "
            f"MedDiag Desktop; this version knows up to '{HEAD}': update the app"
        )
    backup = None
    path = db.sqlite_path
    if current is not None and path is not None:
        target = path.parent / "backups" / f"{path.stem}-before-{HEAD}-{timestamp()}.sqlite3"
        backup = str(copy_sqlite_file(path, target, key=db.key))
    try:
        upgrade(db, "head", backup)
    except Exception as exc:
        if errors.is_driver_error(exc) or isinstance(exc, OSError):
            raise errors.translate(exc, db.display_url) from exc
        raise
    return backup


def alembic_config(connection: Connection | None = None) -> Any:
    """An Alembic Config for the packaged scripts, bound to ``connection``."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.attributes["connection"] = connection
    return config


def upgrade(db: Database, target: str = "head", backup: str | None = None) -> None:
    """Run the migrations up to ``target`` under the write lock, in one transaction."""
    from alembic import command

    with db.engine.connect() as connection:
        raw = connection.connection.dbapi_connection
        if db.backend is Backend.SQLITE:
            # Batch migrations drop and recreate tables: with foreign keys on, dropping a parent
            # would cascade-delete its children. Foreign keys are checked before commit instead.
            assert raw is not None
            raw.execute("PRAGMA foreign_keys = OFF")
            connection = connection.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
        try:
            with connection.begin():
                if db.backend is Backend.POSTGRESQL:
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"),
                        {"key": _POSTGRES_MIGRATION_LOCK},
                    )
                before = current_revision(connection)
                if before == HEAD or (target != "head" and before == target):
                    return
                command.upgrade(alembic_config(connection), target)
                if db.backend is Backend.SQLITE:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise errors.SchemaVersionError(
                            f"migration left rows with broken references: {broken[:5]}"
                        )
                _log_migration(connection, db.actor, before, current_revision(connection), backup)
        finally:
            if db.backend is Backend.SQLITE and raw is not None:
                raw.execute("PRAGMA foreign_keys = ON")


def _log_migration(
    connection: Connection, actor: str, before: str | None, after: str | None, backup: str | None
) -> None:
    from meddiag_desktop.db.audit import event_values
    from meddiag_desktop.db.audit_chain import append_event
    from meddiag_desktop.db.schema import AuditEventRow

    details = {"from": before, "to": after, "backup": backup}
    values = event_values(actor, AuditAction.DATABASE_MIGRATED, details=details)
    columns = {c["name"] for c in inspect(connection).get_columns("audit_events")}
    if "row_hash" in columns:
        append_event(connection, values)
    else:  # upgraded only to a revision before the hash chain (0005)
        connection.execute(insert(AuditEventRow).values(**values))
