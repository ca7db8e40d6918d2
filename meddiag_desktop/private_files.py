"""Owner-only files and folders: patient data readable by the account that owns it, nobody else.

Under the usual umask (022) a new folder is 0755 and a new file 0644, so on a shared workstation
every local account could read every patient's name in the database, the masks and the exports.
What the app creates for patient data is therefore set to exactly 0700 (folders) or 0600 (files)
with ``chmod``, whatever the umask, and what an older version (or another tool) left readable by
others is fixed when it is next opened, with a warning naming it: "fixed permissions of PATH:
was 0644, now 0600". Fixing only takes the group and other bits away; the owner's stay.

POSIX only: on Windows ``chmod`` merely toggles the read-only flag, and a user's profile folder
is already private to them by its ACL, so there these functions do nothing.
"""

from __future__ import annotations

import logging
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

FOLDER_MODE = 0o700
FILE_MODE = 0o600
_OTHERS = 0o077  # group and other permission bits

log = logging.getLogger(__name__)
_POSIX = os.name == "posix"


@dataclass(frozen=True)
class ModeFix:
    """One path whose permissions were narrowed to its owner."""

    path: Path
    before: int
    after: int

    @property
    def message(self) -> str:
        return f"fixed permissions of {self.path}: was {self.before:04o}, now {self.after:04o}"


def fix_owner_only(path: Path) -> ModeFix | None:
    """Take group and other permissions off an existing ``path``; the fix, logged as a
    warning, or None when there was nothing to fix (or it is missing, or not ours to change:
    a failure is logged, never raised, since the data is still there to work on)."""
    if not _POSIX:
        return None
    try:
        status = os.stat(path)
        mode = stat.S_IMODE(status.st_mode)
        if not mode & _OTHERS or status.st_uid != os.geteuid():
            return None  # nothing to fix, or another account's file (not ours to change)
        os.chmod(path, mode & ~_OTHERS)
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("could not make %s readable by its owner only: %s", path, exc.strerror or exc)
        return None
    fix = ModeFix(path, mode, mode & ~_OTHERS)
    log.warning("%s", fix.message)
    return fix


class _StderrLines(logging.Handler):
    """Each message as one line on whatever ``sys.stderr`` is when it comes."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(record.getMessage() + "\n")
        except Exception:
            self.handleError(record)


def echo_fixes_to_stderr() -> None:
    """In the CLI: every fix (and every failure to fix) also as a line on stderr."""
    if not any(isinstance(h, _StderrLines) for h in log.handlers):
        log.addHandler(_StderrLines(logging.WARNING))


def set_owner_only(path: Path) -> None:
    """Set a file the app has just written to exactly 0600 (a folder to 0700)."""
    if _POSIX:
        os.chmod(path, FOLDER_MODE if path.is_dir() else FILE_MODE)


def owner_only_folder(path: Path, fix_existing: bool = True) -> list[ModeFix]:
    """Make sure the folder ``path`` exists: every folder created on the way is 0700 (not just
    the last), and an existing ``path`` is fixed when ``fix_existing`` (an app-owned folder;
    not one the user chose, whose other contents are none of the app's business). Existing
    parents are left alone. The fixes made; raises OSError when it cannot be created."""
    missing: list[Path] = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(FOLDER_MODE)
        except FileExistsError:  # another process made it meanwhile: fixed below if needed
            continue
        set_owner_only(folder)  # the umask may have taken bits off FOLDER_MODE
    if not path.is_dir():
        raise NotADirectoryError(f"{path} is not a folder")
    if fix_existing:
        fix = fix_owner_only(path)
        return [fix] if fix is not None else []
    return []


def create_owner_only_file(path: Path) -> bool:
    """Create ``path`` empty with mode 0600 if it does not exist yet (so whatever later writes
    into it keeps that mode); True when it was created here."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE)
    except FileExistsError:
        return False
    try:
        if _POSIX:
            os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return True
