"""The journal of mask saves in progress, and the healing of the ones a kill interrupted.

A mask file is written before the transaction that records it commits (a committed row must
never lack its file), so a kill in between leaves a file that no row refers to. This journal
says which files are such leftovers, so that the next open removes them and ``meddiag db check``
keeps reporting only real damage.

One save, ``NAME`` a fresh random hex name, in ``MASKS/.pending/``:

1. ``NAME.lock`` is created and locked (an OS lock that dies with the process, see
   :mod:`~meddiag_desktop.db.crash_safe_files`), and the folder fsynced: the entry is on disk
   before any byte of the mask.
2. The label map is written inside ``.pending/NAME/`` (SimpleITK's temporary file lies there
   too), fsynced, and renamed to ``MASKS/NAME.nii.gz``; the masks folder is fsynced.
3. The caller's transaction commits the row naming ``NAME.nii.gz`` (or fails, and the file is
   removed).
4. ``.pending/NAME/`` and then ``NAME.lock`` are removed.

At every open (:func:`heal_interrupted_saves`, called by ``Database.open``, so the app and every
CLI command do it) each ``NAME.lock`` whose lock can be taken belongs to a save that is not
running any more. Holding that lock (so nobody else heals it at the same time), the rows naming
``NAME.nii.gz`` are read: if there is one, the save committed and only its journal entry is left
(a kill after step 3); if there is none it never will, and ``NAME.nii.gz`` and anything in
``.pending/NAME/`` are removed. The journal entry goes last, so a kill during the healing leaves
it for the next open. A kill at each point thus leaves: before 2, an entry with at most a partial
file in its folder; inside 2, the same or the mask file too; between 2 and 3, the mask file
uncommitted; after 3, only the entry. Each is explained by its entry and healed; files of a save
still running (its lock held, in this or any process) are left alone and are not damage.

Each entry names the database it was for (its URL, password hidden): a masks folder shared by
two databases (the default one for SQLite and PostgreSQL alike) has only the entries of the
database being opened healed, since only its rows can say whether a file committed.

On PostgreSQL the client's lock goes when it dies, but a COMMIT it sent just before may still be
being applied by the server; the healer therefore first waits (a few seconds at most) until every
transaction in progress at that moment has ended, so the rows it reads are final.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select, text
from sqlalchemy.exc import SQLAlchemyError

from meddiag_desktop.db import errors
from meddiag_desktop.db.crash_safe_files import (
    create_locked,
    fsync_folder,
    lock_if_abandoned,
    release_and_remove,
)
from meddiag_desktop.db.records import AuditAction, Backend
from meddiag_desktop.private_files import owner_only_folder

if TYPE_CHECKING:
    from meddiag_desktop.db.engine import Database

JOURNAL_FOLDER = ".pending"
MASK_SUFFIX = ".nii.gz"
_LOCK_SUFFIX = ".lock"
_COMMITS_IN_FLIGHT_WAIT_S = 5.0

log = logging.getLogger(__name__)


@dataclass
class PendingSave:
    """One mask save in progress: its journal entry (held locked) and its staging folder."""

    masks_dir: Path
    name: str
    staging: Path
    _lock_fd: int

    @property
    def mask_name(self) -> str:
        """The mask file's name in the masks folder, as its row will record it."""
        return self.name + MASK_SUFFIX

    def finish(self) -> None:
        """Remove the journal entry: after the caller's transaction committed, or after the
        mask file was removed again. Never raises: an entry left behind is healed at the next
        open (and is not damage meanwhile)."""
        journal = self.staging.parent
        shutil.rmtree(self.staging, ignore_errors=True)
        release_and_remove(self._lock_fd, journal / (self.name + _LOCK_SUFFIX))
        fsync_folder(journal)


def start_save(masks_dir: Path, database: str) -> PendingSave:
    """Step 1 of a save for ``database`` (its display URL): a locked, durable journal entry and
    an empty staging folder.

    Raises OSError (a read-only or full disk) with nothing left behind but, at worst, the entry.
    """
    journal = masks_dir / JOURNAL_FOLDER
    if not journal.is_dir():
        owner_only_folder(journal)  # and the masks folder: 0700, patient data (file_modes)
        fsync_folder(masks_dir)
        fsync_folder(masks_dir.parent)
    for _ in range(5):
        name = uuid.uuid4().hex
        try:
            fd = create_locked(journal / (name + _LOCK_SUFFIX))
        except FileNotFoundError:
            continue  # a healer took it in the instant before it was locked: a new name
        save = PendingSave(masks_dir, name, journal / name, fd)
        try:
            os.write(fd, database.encode() + b"\n")
            os.fsync(fd)
            fsync_folder(journal)
            save.staging.mkdir()
        except BaseException:
            save.finish()
            raise
        return save
    raise OSError(f"could not start a mask save in {journal}")


def journaled_mask_names(masks_dir: Path) -> set[str]:
    """The mask file names that saves in progress (or interrupted ones) account for."""
    journal = masks_dir / JOURNAL_FOLDER
    try:
        return {
            entry.name.removesuffix(_LOCK_SUFFIX) + MASK_SUFFIX
            for entry in os.scandir(journal)
            if entry.name.endswith(_LOCK_SUFFIX)
        }
    except OSError:
        return set()


def heal_interrupted_saves(db: Database) -> tuple[str, ...]:
    """Remove what killed saves left (see the module docstring); the files removed, relative
    to the masks folder. Logs one line naming them; never fails the open it is part of."""
    journal = db.masks_dir / JOURNAL_FOLDER
    try:
        entries = list(os.scandir(journal))
    except OSError:  # no journal (nothing was ever saved here), or an unreadable folder
        return ()
    names = {e.name.removesuffix(_LOCK_SUFFIX) for e in entries if e.name.endswith(_LOCK_SUFFIX)}
    abandoned: dict[str, int] = {}
    for name in sorted(names):
        fd = lock_if_abandoned(journal / (name + _LOCK_SUFFIX))
        if fd is None:
            continue
        if _database_of(fd) in ("", db.display_url):  # "": killed before it had written a byte
            abandoned[name] = fd
        else:
            os.close(fd)  # another database's save: only its rows can tell
    # A staging folder without its entry: the healing of it was killed halfway (the entry
    # exists before its folder and is removed after it, so no running save lacks one).
    strays = [
        e.name
        for e in entries
        if e.is_dir(follow_symlinks=False)
        and e.name not in names
        and not (journal / (e.name + _LOCK_SUFFIX)).exists()
    ]
    if not abandoned and not strays:
        return ()
    try:
        committed = _committed(db, [name + MASK_SUFFIX for name in abandoned])
    except (errors.CaseDatabaseError, SQLAlchemyError, _CommitsInFlight) as exc:
        for fd in abandoned.values():
            os.close(fd)
        log.info("interrupted mask saves in %s left for the next open: %s", journal, exc)
        return ()
    removed, kept = _remove_uncommitted(db.masks_dir, abandoned, committed)
    for name in strays:
        removed += _remove_folder(journal / name)
    for name, fd in abandoned.items():
        if name in kept:
            os.close(fd)  # its mask file could not be removed: the entry still explains it
            continue
        removed += _remove_folder(journal / name)
        release_and_remove(fd, journal / (name + _LOCK_SUFFIX))
    fsync_folder(journal)
    _report(db, removed, len(abandoned) - len(kept))
    return tuple(removed)


def _database_of(fd: int) -> str:
    """The database a journal entry was made for, as its lock file says."""
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return os.read(fd, 4096).decode(errors="replace").strip()
    except OSError:
        return "?"


class _CommitsInFlight(Exception):
    """Transactions that may be committing a killed writer's rows have not ended in time."""


def _committed(db: Database, mask_names: list[str]) -> set[str]:
    """Which of ``mask_names`` committed rows (a run's mask or a saved edit) refer to."""
    from meddiag_desktop.db.schema import MaskRow, ReviewedMaskRow

    if not mask_names:
        return set()
    _wait_for_commits_in_flight(db)
    with db.reading() as session:
        return {
            *session.scalars(
                select(MaskRow.relative_path).where(MaskRow.relative_path.in_(mask_names))
            ),
            *session.scalars(
                select(ReviewedMaskRow.relative_path).where(
                    ReviewedMaskRow.relative_path.in_(mask_names)
                )
            ),
        }


def _wait_for_commits_in_flight(db: Database) -> None:
    """On PostgreSQL, wait until every transaction that has written anything and is still in
    progress now has ended (a dead client's COMMIT may still be being applied). SQLite commits
    inside the writer's process: once that process is gone its commit is whole or absent."""
    if db.backend is not Backend.POSTGRESQL:
        return
    with db.reading() as session:
        in_progress = [
            int(x)
            for x in session.scalars(text("SELECT txid_snapshot_xip(txid_current_snapshot())"))
        ]
    deadline = time.monotonic() + _COMMITS_IN_FLIGHT_WAIT_S
    while in_progress:
        if time.monotonic() > deadline:
            raise _CommitsInFlight(f"{len(in_progress)} transaction(s) still in progress")
        time.sleep(0.05)
        with db.reading() as session:
            in_progress = [
                int(x)
                for x in session.scalars(
                    text(
                        "SELECT x FROM unnest(CAST(:xids AS bigint[])) AS x "
                        "WHERE txid_status(x) = 'in progress'"
                    ),
                    {"xids": in_progress},
                )
            ]


def _remove_uncommitted(
    masks_dir: Path, abandoned: dict[str, int], committed: set[str]
) -> tuple[list[str], set[str]]:
    """Remove the mask files of abandoned saves that never committed; (removed, entries whose
    file could not be removed). The masks folder is fsynced before any entry goes."""
    removed: list[str] = []
    kept: set[str] = set()
    for name in abandoned:
        mask = name + MASK_SUFFIX
        if mask in committed:
            continue
        try:
            (masks_dir / mask).unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("could not remove %s, left by an interrupted save: %s", mask, exc)
            kept.add(name)
            continue
        removed.append(mask)
    if removed:
        fsync_folder(masks_dir)
    return removed, kept


def _remove_folder(staging: Path) -> list[str]:
    """Remove a staging folder; the files it held, as paths relative to the masks folder."""
    if not staging.is_dir():
        return []
    held = sorted(
        f"{JOURNAL_FOLDER}/{staging.name}/{p.relative_to(staging).as_posix()}"
        for p in staging.rglob("*")
        if p.is_file()
    )
    shutil.rmtree(staging, ignore_errors=True)
    return held


def _report(db: Database, removed: list[str], healed: int) -> None:
    """One log line naming what was removed, and an audit event (where the database takes
    one: a read-only open still heals the masks folder, and says so in the log only)."""
    if not removed:
        log.info(
            "closed %d journal entr(ies) of interrupted mask saves (nothing to remove)", healed
        )
        return
    log.warning(
        "removed %d file(s) that interrupted mask saves left in %s (never committed): %s",
        len(removed),
        db.masks_dir,
        ", ".join(removed),
    )
    from meddiag_desktop.db.audit import add_event

    with contextlib.suppress(errors.CaseDatabaseError, SQLAlchemyError), db.writing() as session:
        add_event(
            session,
            db.actor,
            AuditAction.MASK_FILES_REMOVED,
            details={"files": removed, "reason": "left by an interrupted save, never committed"},
        )
