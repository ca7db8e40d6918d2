"""The case database's files, readable by their owner only (:mod:`meddiag_desktop.private_files`).

Checked at every open, before the first connection (:meth:`.engine.Database.open`):

- the database's folder is created 0700 when missing; an existing one is fixed only when it is
  the user data folder (a folder the user chose may hold other things, none of the app's
  business);
- a new SQLite file is created empty with mode 0600 before SQLite opens it, so its ``-wal`` and
  ``-shm`` files, which SQLite creates with the database file's own mode, are 0600 too; an
  existing file and its ``-wal``/``-shm``/``-journal`` are fixed;
- the masks folder (created 0700 by the first save: :mod:`.pending_masks`) is fixed, and when it
  was readable by others (an older version made it) so is everything inside it.

Each fix is logged as a warning naming the path and the modes; the CLI prints it on stderr, the
app shows it.
"""

from __future__ import annotations

import os
from pathlib import Path

from meddiag_desktop.private_files import (
    ModeFix,
    create_owner_only_file,
    fix_owner_only,
    owner_only_folder,
)
from meddiag_desktop.user_folders import user_data_dir

SQLITE_SIDE_SUFFIXES = ("-wal", "-shm", "-journal")


def secure_database_files(
    sqlite_path: Path | None, masks_dir: Path, read_only: bool = False
) -> list[ModeFix]:
    """Create and fix as the module docstring says; the fixes made. Raises OSError when the
    database's folder cannot be created."""
    fixes: list[ModeFix] = []
    if sqlite_path is not None:
        folder = sqlite_path.parent
        if not read_only:
            fixes += owner_only_folder(folder, fix_existing=is_user_data_dir(folder))
            create_owner_only_file(sqlite_path)
        for path in (sqlite_path, *_side_files(sqlite_path)):
            fix = fix_owner_only(path)
            if fix is not None:
                fixes.append(fix)
    return fixes + secure_masks_folder(masks_dir)


def secure_masks_folder(masks_dir: Path) -> list[ModeFix]:
    """Fix the masks folder; only when it needed fixing, everything in it too (one walk, the
    first time only: a folder already 0700 is not walked at every open)."""
    fix = fix_owner_only(masks_dir)
    if fix is None:
        return []
    fixes = [fix]
    for root, folders, files in os.walk(masks_dir):
        for name in (*folders, *files):
            inner = fix_owner_only(Path(root) / name)
            if inner is not None:
                fixes.append(inner)
    return fixes


def is_user_data_dir(folder: Path) -> bool:
    try:
        return folder.resolve() == user_data_dir().resolve()
    except OSError:
        return False


def _side_files(sqlite_path: Path) -> tuple[Path, ...]:
    return tuple(sqlite_path.with_name(sqlite_path.name + s) for s in SQLITE_SIDE_SUFFIXES)
