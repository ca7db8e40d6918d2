"""``meddiag db info``: where the database is, its schema version, what it holds, and how it is
encrypted at rest (by the app, and by the operating system's disk encryption)."""

from __future__ import annotations

from sqlalchemy import func, select, text

from meddiag_desktop.db.disk_encryption import disk_encryption
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
        encryption=_encryption(db),
        disk_encryption=str(disk_encryption(path.parent if path is not None else db.masks_dir)),
    )


def _encryption(db: Database) -> str:
    """The app's own encryption at rest, in one line (see docs/threat-model.md)."""
    from meddiag_desktop.db.encryption_conversion import conversion_in_progress
    from meddiag_desktop.db.encryption_keys import keyring_status

    path = db.sqlite_path
    unfinished = conversion_in_progress(path) if path is not None else None
    note = f"; '{unfinished}' unfinished: run 'meddiag db {unfinished}' again" if unfinished else ""
    if db.key is None:
        return f"none (plain SQLite; 'meddiag db encrypt' encrypts it){note}"
    sealed, plain = _sealed_masks(db)
    masks = f"{sealed} mask file(s) sealed" + (f", {plain} still plain" if plain else "")
    return (
        f"SQLCipher 4 (AES-256, key from a passphrase via argon2id); masks AES-256-GCM: "
        f"{masks}; OS keyring {keyring_status()}{note}"
    )


def _sealed_masks(db: Database) -> tuple[int, int]:
    from meddiag_desktop.db.mask_encryption import file_is_sealed
    from meddiag_desktop.db.masks import files_in

    names, _temporaries = files_in(db.masks_dir)
    sealed = 0
    for name in names:
        try:
            sealed += file_is_sealed(db.masks_dir / name)
        except OSError:
            continue
    return sealed, len(names) - sealed
