"""Consistent copies of the case database (and its mask files), made while it is in use.

SQLite's online backup API copies a consistent snapshot even while another connection writes
(copying the file with ``cp`` could catch a half-applied WAL). The copy is written under a
temporary name, checked with ``integrity_check`` and renamed into place, so a backup that exists
is a whole one.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from meddiag_desktop.db import errors
from meddiag_desktop.db.audit import add_event
from meddiag_desktop.db.engine import DEFAULT_FILE_NAME, Database
from meddiag_desktop.db.integrity import stored_mask_paths
from meddiag_desktop.db.masks import fsync_folder
from meddiag_desktop.db.records import AuditAction, Backend
from meddiag_desktop.db.schema import MaskRow, ReviewedMaskRow

BACKUPS_FOLDER = "backups"


def timestamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def copy_sqlite_file(source: Path, target: Path, busy_timeout_s: float = 30.0) -> Path:
    """Copy a live SQLite database to ``target`` atomically; returns ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        # A URI (percent-encoded: folders like "Application Support" or "#2" stay intact).
        uri = f"{source.resolve().as_uri()}?mode=ro"
        with sqlite3.connect(uri, uri=True, timeout=busy_timeout_s) as src:
            destination = sqlite3.connect(partial)
            try:
                src.backup(destination)
                result = destination.execute("PRAGMA integrity_check").fetchone()[0]
                # A backup is one self-contained file: no -wal beside it.
                destination.execute("PRAGMA journal_mode = DELETE")
            finally:
                destination.close()
        if result != "ok":
            raise errors.BackupError(f"the copy of {source} failed its integrity check: {result}")
        with open(partial, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(partial, target)
        fsync_folder(target.parent)
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise errors.BackupError(f"could not back up {source}: {exc}") from exc
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise errors.translate(exc, str(target.parent)) from exc
    return target


def default_backup_folder(db: Database) -> Path:
    path = db.sqlite_path
    assert path is not None
    return path.parent / BACKUPS_FOLDER / f"meddiag-{timestamp()}"


def backup_database(db: Database, destination: Path | None = None) -> Path:
    """Copy the database and every stored mask (runs' and saved edits') into a new folder.

    Returns the folder.

    The folder holds ``meddiag.sqlite3`` and ``masks/``: open it with ``--db FOLDER/...`` to
    restore. PostgreSQL databases are backed up with the server's own tools (``pg_dump``).
    """
    source = db.sqlite_path
    if db.backend is not Backend.SQLITE or source is None:
        raise errors.BackupError(
            "this database is on a PostgreSQL server: back it up with pg_dump (and copy the "
            f"masks folder {db.masks_dir})"
        )
    folder = destination or default_backup_folder(db)
    if folder.exists() and any(folder.iterdir()):
        raise errors.BackupError(f"{folder} is not empty: choose a new folder for the backup")
    copy_sqlite_file(source, folder / DEFAULT_FILE_NAME)
    # Mask files never change after they are written, so copying after the database snapshot
    # can only find more files than the copy refers to, never fewer.
    with db.reading() as session:
        paths = stored_mask_paths(session)
    copied = 0
    masks = folder / "masks"
    masks.mkdir(exist_ok=True)
    for relative in paths:
        origin = db.masks_dir / relative
        if origin.is_file():
            target = masks / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                shutil.copy2(origin, target)
            except OSError as exc:
                raise errors.translate(exc, str(target.parent)) from exc
            copied += 1
    fsync_folder(masks)
    with db.writing() as session:
        add_event(
            session,
            db.actor,
            AuditAction.DATABASE_BACKED_UP,
            details={"folder": str(folder), "masks": copied},
        )
        session.flush()
        count = sum(
            session.scalar(select(func.count()).select_from(table)) or 0
            for table in (MaskRow, ReviewedMaskRow)
        )
    if copied != len(paths):
        raise errors.BackupError(
            f"backup written to {folder}, but {len(paths) - copied} of {count} mask files were "
            "missing: run 'meddiag db check'"
        )
    return folder
