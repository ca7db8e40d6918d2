"""Consistent copies of the case database (and its mask files), made while it is in use.

SQLite's online backup API copies a consistent snapshot even while another connection writes
(copying the file with ``cp`` could catch a half-applied WAL). The copy is written under a
temporary name, checked with ``integrity_check`` and renamed into place; a backup folder is
built beside its destination and renamed into place whole (``backup_database``), so a backup
that exists is a whole one, database and masks.

An encrypted database is copied through SQLCipher with its own key (the copy is encrypted the
same way, its key file copied beside it; its mask files are copied sealed, as they are).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meddiag_desktop.db import errors
from meddiag_desktop.db.audit import add_event
from meddiag_desktop.db.crash_safe_files import fsync_folder, lock_if_abandoned, lock_new_folder
from meddiag_desktop.db.engine import DEFAULT_FILE_NAME, MASKS_FOLDER, Database
from meddiag_desktop.db.mask_encryption import MaskCipher, content_sha256
from meddiag_desktop.db.records import AuditAction, Backend
from meddiag_desktop.db.schema import MaskRow, ReviewedMaskRow
from meddiag_desktop.private_files import owner_only_folder, set_owner_only

if TYPE_CHECKING:
    from meddiag_desktop.db.encryption_keys import DatabaseKey

BACKUPS_FOLDER = "backups"
INCOMPLETE_SUFFIX = ".incomplete"  # a backup being built (or killed while it was)


def timestamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def _driver(key: DatabaseKey | None) -> Any:
    """The DB-API module for a plain (``sqlite3``) or encrypted (``sqlcipher3``) file."""
    if key is None:
        return sqlite3
    from sqlcipher3 import dbapi2

    return dbapi2


def keyed(connection: Any, key: DatabaseKey | None) -> Any:
    """``connection`` with the database key set (first statement), for an encrypted file."""
    if key is not None:
        connection.execute(f'PRAGMA key = "{key.sqlcipher_pragma_value()}"')
        connection.execute("PRAGMA cipher_log_level = NONE")
    return connection


def copy_sqlite_file(
    source: Path, target: Path, busy_timeout_s: float = 30.0, key: DatabaseKey | None = None
) -> Path:
    """Copy a live SQLite database to ``target`` atomically; returns ``target``. With ``key``
    (an encrypted database) the copy is encrypted with the same key, its key file beside it."""
    owner_only_folder(target.parent, fix_existing=False)  # created 0700: copies of patient data
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    driver = _driver(key)
    try:
        if key is not None:
            from meddiag_desktop.db.encryption_keys import read_keyinfo, write_keyinfo

            write_keyinfo(target, read_keyinfo(source))
        # A URI (percent-encoded: folders like "Application Support" or "#2" stay intact).
        uri = f"{source.resolve().as_uri()}?mode=ro"
        with keyed(driver.connect(uri, uri=True, timeout=busy_timeout_s), key) as src:
            destination = keyed(driver.connect(partial), key)
            try:
                src.backup(destination)
                result = destination.execute("PRAGMA integrity_check").fetchone()[0]
                # A backup is one self-contained file: no -wal beside it.
                destination.execute("PRAGMA journal_mode = DELETE")
            finally:
                destination.close()
        if result != "ok":
            raise errors.BackupError(f"the copy of {source} failed its integrity check: {result}")
        set_owner_only(partial)
        with open(partial, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(partial, target)
        fsync_folder(target.parent)
    except driver.Error as exc:
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
    """Copy the database and every mask it refers to (runs' and saved edits') into a new folder.

    Returns the folder.

    The folder holds ``meddiag.sqlite3`` and ``masks/``: open it with ``--db FOLDER/...`` to
    restore. PostgreSQL databases are backed up with the server's own tools (``pg_dump``).

    The backup is whole or absent: it is built in a hidden sibling folder named
    ``.NAME.RANDOM.incomplete``, fsynced, and renamed to ``NAME`` as the very last step, so a
    kill at any moment leaves either no ``NAME`` or a complete one. The folder being built is
    locked while this runs (a lock that dies with the process); a later backup removes such
    folders whose lock is free, i.e. whose backup was killed (on Windows, where folders cannot
    be locked, they are only ignored).
    """
    source = db.sqlite_path
    if db.backend is not Backend.SQLITE or source is None:
        raise errors.BackupError(
            "this database is on a PostgreSQL server: back it up with pg_dump (and copy the "
            f"masks folder {db.masks_dir})"
        )
    folder = destination or default_backup_folder(db)
    _check_free(folder)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        _remove_abandoned_builds(folder.parent)
        build, lock = _start_build(folder)
    except OSError as exc:
        raise errors.translate(exc, str(folder.parent)) from exc
    try:
        copy_sqlite_file(source, build / DEFAULT_FILE_NAME, key=db.key)
        copied = _copy_masks(db.masks_dir, build, db.key, db.mask_cipher)
        fsync_folder(build)
        _check_free(folder)
        if folder.exists():
            folder.rmdir()  # an empty folder given as the destination: replaced whole
        os.rename(build, folder)
        fsync_folder(folder.parent)
    except OSError as exc:
        raise errors.translate(exc, str(folder.parent)) from exc
    finally:
        if build.exists():
            shutil.rmtree(build, ignore_errors=True)
        if lock is not None:
            os.close(lock)
    with db.writing() as session:
        add_event(
            session,
            db.actor,
            AuditAction.DATABASE_BACKED_UP,
            details={"folder": str(folder), "masks": copied.count},
        )
    if copied.missing or copied.changed:
        raise errors.BackupError(
            f"backup written to {folder}, but of its {copied.expected} mask files "
            f"{len(copied.missing)} were missing and {len(copied.changed)} had changed in "
            f"{db.masks_dir} (first: {(copied.missing + copied.changed)[0]}): run 'meddiag db "
            "check'"
        )
    return folder


def _check_free(folder: Path) -> None:
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise errors.BackupError(f"{folder} is not empty: choose a new folder for the backup")


def _start_build(folder: Path) -> tuple[Path, int | None]:
    """A new, locked, hidden sibling folder to build the backup ``folder`` in."""
    for _ in range(5):
        build = folder.with_name(f".{folder.name}.{uuid.uuid4().hex[:8]}{INCOMPLETE_SUFFIX}")
        try:
            return build, lock_new_folder(build)
        except FileNotFoundError:
            continue  # another backup cleared it away in the instant before it was locked
    raise errors.BackupError(f"could not start a backup in {folder.parent}")


def _remove_abandoned_builds(parent: Path) -> None:
    """Remove the folders of killed backups (see ``backup_database``); running ones stay."""
    for entry in parent.iterdir():
        if not (entry.name.startswith(".") and entry.name.endswith(INCOMPLETE_SUFFIX)):
            continue
        lock = lock_if_abandoned(entry) if entry.is_dir() else None
        if lock is None:
            continue
        try:
            shutil.rmtree(entry, ignore_errors=True)
        finally:
            os.close(lock)


@dataclass(frozen=True)
class _CopiedMasks:
    expected: int
    count: int
    missing: list[str]
    changed: list[str]


def _copy_masks(
    masks_dir: Path,
    build: Path,
    key: DatabaseKey | None = None,
    cipher: MaskCipher | None = None,
) -> _CopiedMasks:
    """Copy every mask file the copied database refers to, fsynced, and check each copy's
    sha256 against the one stored with it.

    The list comes from the copy itself, not the live database: a case deleted or a mask
    added after the snapshot cannot make the backup refer to a file it lacks.
    """
    stored = _masks_of(build / DEFAULT_FILE_NAME, key)
    target_dir = build / MASKS_FOLDER
    target_dir.mkdir()
    missing: list[str] = []
    changed: list[str] = []
    for relative, sha256 in stored:
        origin = masks_dir / relative
        if not origin.is_file():
            missing.append(relative)
            continue
        target = target_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(origin, target)
        set_owner_only(target)
        with open(target, "rb") as handle:
            os.fsync(handle.fileno())
        try:
            if content_sha256(target, cipher) != sha256:
                changed.append(relative)
        except errors.MaskIntegrityError:
            changed.append(relative)
    fsync_folder(target_dir)
    return _CopiedMasks(len(stored), len(stored) - len(missing), missing, changed)


def _masks_of(sqlite_copy: Path, key: DatabaseKey | None = None) -> list[tuple[str, str]]:
    """(relative path, sha256) of every mask row in a database file, read without changing it."""
    uri = f"{sqlite_copy.resolve().as_uri()}?mode=ro"
    driver = _driver(key)
    try:
        with contextlib.closing(keyed(driver.connect(uri, uri=True), key)) as connection:
            return [
                (str(path), str(sha256))
                for table in (MaskRow.__tablename__, ReviewedMaskRow.__tablename__)
                # The table names are the schema's own constants, not input.
                for path, sha256 in connection.execute(f"SELECT relative_path, sha256 FROM {table}")
            ]
    except driver.Error as exc:
        raise errors.BackupError(f"could not read the copy {sqlite_copy}: {exc}") from exc
