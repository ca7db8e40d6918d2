"""``meddiag db info``: where the database is, its schema version and what it holds."""

from __future__ import annotations

from sqlalchemy import func, select, text

from meddiag_desktop.db.engine import Database
from meddiag_desktop.db.migrate import current_revision
from meddiag_desktop.db.migrations import HEAD
from meddiag_desktop.db.records import Backend, DatabaseInfo
from meddiag_desktop.db.schema import AuditEventRow, MaskRow, ReviewedMaskRow
from meddiag_desktop.db.worklist import counts_by_status

_SYNCHRONOUS = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


def database_info(db: Database) -> DatabaseInfo:
    with db.reading() as session:
        connection = session.connection()
        revision = current_revision(connection)
        if db.backend is Backend.SQLITE:
            version = str(session.scalar(text("SELECT sqlite_version()")))
            journal = str(session.scalar(text("PRAGMA journal_mode")))
            sync_level = int(session.scalar(text("PRAGMA synchronous")) or 0)
            synchronous = _SYNCHRONOUS.get(sync_level, str(sync_level))
        else:
            version = str(session.scalar(text("SHOW server_version")))
            journal, synchronous = "server", str(session.scalar(text("SHOW synchronous_commit")))
        masks = sum(  # the runs' masks and the saved edits: the files in the masks folder
            int(session.scalar(select(func.count()).select_from(table)) or 0)
            for table in (MaskRow, ReviewedMaskRow)
        )
        events = int(session.scalar(select(func.count()).select_from(AuditEventRow)) or 0)
    path = db.sqlite_path
    size = None
    if path is not None and path.exists():
        size = path.stat().st_size
        wal = path.with_name(path.name + "-wal")
        size += wal.stat().st_size if wal.exists() else 0
    return DatabaseInfo(
        url=db.display_url,
        backend=db.backend,
        schema_revision=revision,
        head_revision=HEAD,
        server_version=version,
        file_bytes=size,
        journal_mode=journal,
        synchronous=synchronous,
        masks_dir=str(db.masks_dir),
        cases_by_status=counts_by_status(db),
        mask_count=masks,
        audit_event_count=events,
    )
