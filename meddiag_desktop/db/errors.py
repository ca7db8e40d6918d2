"""Errors a user can cause or meet in the case database, each with a one-line message.

They derive from ``ValueError`` so the CLI prints them as ``meddiag: error: ...`` (exit 2) and
the GUI shows the message; driver exceptions never reach a user untranslated.
"""

from __future__ import annotations

import errno

from sqlalchemy import exc as sa_exc


class CaseDatabaseError(ValueError):
    """Base of every error the case database raises on purpose."""


class DatabaseLockedError(CaseDatabaseError):
    """Another program held the write lock for longer than the busy timeout."""


class StorageFullError(CaseDatabaseError):
    """The disk (or the database's size limit) is full; nothing of the failed change was kept."""


class DatabaseAccessError(CaseDatabaseError):
    """The file or folder cannot be opened or written (permissions, read-only medium, server)."""


class DatabaseCorruptError(CaseDatabaseError):
    """SQLite says the file is not a database or is damaged."""


class SchemaVersionError(CaseDatabaseError):
    """The database was written by a newer app version (its schema revision is unknown here)."""


class NotFoundError(CaseDatabaseError):
    """No case, run, finding or user with that id."""


class NotImportableError(CaseDatabaseError):
    """The series cannot become a case (not loadable as a volume)."""


class CaseStateError(CaseDatabaseError):
    """The case's status forbids the change (signed cases are locked; unreviewed findings)."""


class PermissionDeniedError(CaseDatabaseError):
    """The acting user may not do this (unknown, inactive, or wrong role)."""


class MaskIntegrityError(CaseDatabaseError):
    """A stored mask file is missing, changed since it was saved, or has the wrong geometry."""


class MaskWriteError(CaseDatabaseError):
    """The mask file could not be written; the model run was not saved."""


class ConflictError(CaseDatabaseError):
    """A uniqueness rule was broken, usually by another program writing the same thing at once."""


class BackupError(CaseDatabaseError):
    """A backup could not be made."""


def translate(exc: BaseException, where: str) -> CaseDatabaseError:
    """The user-facing error for a driver or OS exception met while using ``where``."""
    if isinstance(exc, CaseDatabaseError):
        return exc
    if isinstance(exc, sa_exc.IntegrityError):
        return ConflictError(
            f"the case database {where} refused the change: {_driver_message(exc)}"
        )
    if isinstance(exc, OSError):
        if exc.errno == errno.ENOSPC:
            return StorageFullError(f"the disk holding {where} is full: free some space")
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return DatabaseAccessError(f"{where} cannot be written ({exc.strerror})")
        return DatabaseAccessError(f"{where}: {exc.strerror or exc}")
    text = _driver_message(exc)
    lowered = text.lower()
    if "locked" in lowered or "could not obtain lock" in lowered or "busy" in lowered:
        return DatabaseLockedError(
            f"the case database {where} is busy (another MedDiag window or program is "
            "writing to it); try again in a moment"
        )
    if "disk is full" in lowered or "database or disk is full" in lowered or "no space" in lowered:
        return StorageFullError(
            f"the case database {where} is full (disk full or size limit reached); free some "
            "space and try again: the last change was not saved, earlier work is intact"
        )
    if "readonly" in lowered or "read-only" in lowered or "read only" in lowered:
        return DatabaseAccessError(
            f"the case database {where} is read-only: check the file's and folder's permissions"
        )
    if "unable to open" in lowered:
        return DatabaseAccessError(
            f"the case database {where} cannot be opened: check that the folder exists and "
            "is writable"
        )
    if "not a database" in lowered or "malformed" in lowered:
        return DatabaseCorruptError(
            f"{where} is damaged or not a MedDiag case database ({text}); restore a backup"
        )
    if "disk i/o error" in lowered:
        return DatabaseAccessError(f"the disk holding {where} reported an I/O error")
    if "connection" in lowered and ("refused" in lowered or "failed" in lowered):
        return DatabaseAccessError(f"cannot reach the database server {where}: {text}")
    return CaseDatabaseError(f"the case database {where} failed: {text}")


def is_driver_error(exc: BaseException) -> bool:
    """Whether ``exc`` comes from the database driver (and so should be translated)."""
    return isinstance(exc, sa_exc.OperationalError | sa_exc.DatabaseError | sa_exc.InterfaceError)


def _driver_message(exc: BaseException) -> str:
    original = getattr(exc, "orig", None) or exc
    first_line = str(original).strip().splitlines()
    return first_line[0][:200] if first_line else type(original).__name__
