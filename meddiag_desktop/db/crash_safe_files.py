"""Files that survive a crash: durable renames, and locks that die with their process.

- :func:`fsync_folder` makes a rename or a new file in a folder durable (the file's own fsync
  does not cover its name).
- An advisory lock on an open file (``flock`` on POSIX, a byte-range lock on Windows) is
  released by the operating system when the process holding it ends, however it ends (SIGKILL,
  a crash). So "can I take this lock?" tells a save still in progress from one that was killed,
  without process ids (which are reused, and mean nothing on another machine) or file ages (a
  slow save is not a dead one). ``flock`` locks belong to an open file, not to a process, so a
  second opener in the same process is refused too.

Taking a lock and checking it is the only way to tell: a file whose lock can be taken belongs to
nobody alive. A new lock file is created, then locked, then checked to be still the file at its
path; a cleaner removes such a file only while holding its lock. A cleaner that took the lock in
the instant between the creation and the locking has removed the file before the creator could
lock it, and the creator, seeing its file gone, starts again under a new name.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path

# Windows cannot remove a file that is open, so there a file is closed before it is removed;
# for the same reason nobody else can remove it while its owner has it open.
_REMOVE_WHILE_OPEN = sys.platform != "win32"


def fsync_folder(folder: Path) -> None:
    """Make renames and new files in ``folder`` durable (a no-op where folders can't be opened)."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def _lock(fd: int, wait: bool) -> bool:
    """Take the exclusive lock on ``fd``; False when another open file holds it (``wait`` off)."""
    if sys.platform == "win32":
        import msvcrt

        while True:
            try:
                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
                return True
            except OSError:
                if not wait:
                    return False
            time.sleep(0.05)
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True


def _still_at(fd: int, path: Path) -> bool:
    """Whether ``path`` is still the file open as ``fd`` (not removed or replaced meanwhile)."""
    try:
        on_disk = os.stat(path)
    except OSError:
        return False
    held = os.fstat(fd)
    return (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)


def create_locked(path: Path) -> int:
    """Create ``path`` (it must not exist) and hold its lock; the open descriptor.

    Raises FileNotFoundError when a cleaner removed it before it could be locked (start again
    under another name) and FileExistsError when the name is taken.
    """
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    try:
        _lock(fd, wait=True)
        if not _still_at(fd, path):
            raise FileNotFoundError(f"{path} was removed before it could be locked")
    except BaseException:
        os.close(fd)
        raise
    return fd


def lock_if_abandoned(path: Path) -> int | None:
    """The locked descriptor of ``path`` when no live process holds it; None when one does (or
    the file is gone). A folder is locked the same way on POSIX; on Windows, where a folder
    cannot be opened, a folder is always taken as in use."""
    try:
        fd = os.open(path, os.O_RDONLY if path.is_dir() else os.O_RDWR)
    except OSError:
        return None
    if not _lock(fd, wait=False) or not _still_at(fd, path):
        os.close(fd)
        return None
    return fd


def lock_new_folder(path: Path) -> int | None:
    """Create the folder ``path`` and hold its lock; the descriptor (None on Windows, where
    folders cannot be locked). Raises FileNotFoundError as :func:`create_locked` does."""
    path.mkdir(0o700)  # a backup being built: a copy of the database
    if sys.platform == "win32":
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        _lock(fd, wait=True)
        if not _still_at(fd, path):
            raise FileNotFoundError(f"{path} was removed before it could be locked")
    except BaseException:
        os.close(fd)
        raise
    return fd


def release_and_remove(fd: int, path: Path) -> bool:
    """Remove the lock file ``path`` and let its lock go; False when it could not be removed.

    Removed before the lock goes where the system allows it, so no other process can take the
    lock of a file that is still there and think it abandoned.
    """
    removed = True
    if not _REMOVE_WHILE_OPEN:
        os.close(fd)
    try:
        path.unlink(missing_ok=True)
    except OSError:
        removed = False
    if _REMOVE_WHILE_OPEN:
        with contextlib.suppress(OSError):
            os.close(fd)
    return removed
