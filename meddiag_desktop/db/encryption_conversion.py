"""``meddiag db encrypt`` and ``db decrypt``: convert a SQLite case database and its mask files.

Nothing may be lost, and a kill at any instant must leave a database that opens. ``encrypt``:

1. The plain database is opened once the usual way (schema to head, interrupted saves healed)
   and closed; it must then be in use by nobody else (SQLite removes the ``-wal`` and ``-shm``
   files only when the last connection closes). It is reopened with ``locking_mode=EXCLUSIVE``,
   which locks every other program out, readers and writers, until the end of step 5.
2. The key file ``NAME.keyinfo`` (a fresh salt) is written. The database file's first bytes
   decide whether it is encrypted, so this key file beside a still-plain database changes nothing.
3. ``sqlcipher_export`` copies everything into ``NAME.converting``, encrypted with the new key.
4. The copy is checked: ``integrity_check``, the same schema objects, and per table the same
   row count and the same digest of every row; then fsynced.
5. The journal ``NAME.conversion-journal`` is written, the original is kept as
   ``NAME.before-conversion`` (a hard link, else a copy), and the copy is renamed over ``NAME``
   (atomic) and the folder fsynced: from here on the database is the encrypted one.
6. Each mask file is rewritten sealed (:mod:`.mask_encryption`) under a temporary name, fsynced
   and renamed over itself, one by one, after its NIfTI bytes were checked against the sha256
   of its row (a file that does not match is left as it is and reported). A sealed file's own
   first bytes say that it is done, so a restart simply goes on with the others.
7. The kept original and then the journal are removed.

A kill before 5's rename leaves the plain database as it was (and files that the next run
replaces); after it, the encrypted database with all its rows, and masks some sealed, some still
plain, all readable: the journal says the job is unfinished, and running ``db encrypt`` again
finishes it. ``decrypt`` runs the same steps the other way round, masks first (a plain database
cannot open sealed masks), and removes the key file last.

The in-use check of step 1 sees other *processes* only: the standard ``sqlite3`` module and
``sqlcipher3`` bundle two SQLite libraries, and POSIX advisory locks taken by one process are
not told apart, so a connection of the same process is invisible (and closing one would drop the
other's locks). Never convert from inside a process that holds the database open (the app).

Decrypted pages once written to the disk may survive in freed blocks (and in SSD spare area):
converting protects what is written from now on; docs/threat-model.md says what that means.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import stat
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from meddiag_desktop.db import errors
from meddiag_desktop.db.backup import BACKUPS_FOLDER, keyed
from meddiag_desktop.db.crash_safe_files import fsync_folder
from meddiag_desktop.db.encryption_keys import (
    DatabaseKey,
    KdfParameters,
    has_plain_header,
    is_encrypted,
    keyinfo_path,
    new_key,
    unlock,
    write_keyinfo,
)
from meddiag_desktop.db.engine import Database, DatabaseSettings
from meddiag_desktop.db.mask_encryption import MaskCipher, is_sealed
from meddiag_desktop.db.masks import TEMPORARY_MARKER, files_in
from meddiag_desktop.db.pending_masks import journaled_mask_names
from meddiag_desktop.db.schema import MaskRow, ReviewedMaskRow

JOURNAL_SUFFIX = ".conversion-journal"
ORIGINAL_SUFFIX = ".before-conversion"
WORK_SUFFIX = ".converting"
_REWRITE_MARKER = ".rewriting"
# Tests set this to a step's name: each step is then announced on stderr ("conversion step
# NAME") and the process waits after the named one, so the test can SIGKILL it right there.
TEST_PAUSE_VARIABLE = "MEDDIAG_TEST_CONVERSION_PAUSE_AT"
_TEST_PAUSE_S = 60.0


@dataclass(frozen=True)
class ConversionReport:
    database: Path
    encrypted: bool  # the database's state at the end
    database_converted: bool  # False: it already was (this run finished an interrupted one)
    masks_rewritten: int
    masks_already_done: int
    masks_missing: tuple[str, ...] = ()
    masks_changed: tuple[str, ...] = ()  # bytes differ from their row: left as they were
    plain_backups: tuple[str, ...] = ()  # older backups beside it that are still unencrypted


def conversion_in_progress(database_file: Path) -> str | None:
    """The operation an interrupted conversion left unfinished ("encrypt"/"decrypt"), or None."""
    try:
        data = json.loads(_journal(database_file).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return str(data.get("operation", "encrypt"))


def encrypt_database(
    database_file: Path,
    passphrase: str,
    masks_dir: Path | None = None,
    kdf: KdfParameters | None = None,
) -> ConversionReport:
    """Encrypt a plain SQLite database and its masks (or finish an interrupted encryption)."""
    path = database_file.expanduser().resolve()
    if not path.exists():
        Database.open(DatabaseSettings(url=str(path), masks_dir=masks_dir)).close()
    converted = False
    if has_plain_header(path):
        info, key = new_key(passphrase, kdf)
        Database.open(DatabaseSettings(url=str(path), masks_dir=masks_dir)).close()
        with _exclusive(path, None) as connection:
            _original(path).unlink(missing_ok=True)  # the file is still the original
            _write_journal(path, "encrypt")
            write_keyinfo(path, info)
            _step("keyinfo")
            _replace_with_copy(connection, path, key)
        converted = True
    elif is_encrypted(path):
        key = unlock(path, passphrase)
    else:
        raise errors.DatabaseCorruptError(
            f"{path} is not a plain SQLite database and has no key file beside it: it is "
            "damaged, or encrypted with its key file lost; restore a backup"
        )
    settings = DatabaseSettings(url=str(path), masks_dir=masks_dir, passphrase=passphrase)
    with Database.open(settings) as db:
        assert db.mask_cipher is not None
        masks = _rewrite_masks(db, db.mask_cipher, seal=True)
    _finish(path)
    return _report(path, True, converted, masks)


def decrypt_database(
    database_file: Path, passphrase: str, masks_dir: Path | None = None
) -> ConversionReport:
    """Turn an encrypted database and its masks back into plain files (or finish doing so)."""
    path = database_file.expanduser().resolve()
    converted = False
    if is_encrypted(path):
        key = unlock(path, passphrase)
        _write_journal(path, "decrypt")
        settings = DatabaseSettings(url=str(path), masks_dir=masks_dir, passphrase=passphrase)
        with Database.open(settings) as db:
            assert db.mask_cipher is not None
            masks = _rewrite_masks(db, db.mask_cipher, seal=False)
        if masks.changed or masks.undecryptable:
            raise errors.MaskIntegrityError(
                f"{len(masks.changed) + len(masks.undecryptable)} mask file(s) do not match "
                f"their rows (first: {(masks.changed + masks.undecryptable)[0]}); the database "
                "stays encrypted: run 'meddiag db check'"
            )
        with _exclusive(path, key) as connection:
            _original(path).unlink(missing_ok=True)
            _replace_with_copy(connection, path, None)
        converted = True
    elif has_plain_header(path):
        masks = _MaskTally()
    else:
        raise errors.DatabaseCorruptError(f"{path} is neither a plain nor an encrypted database")
    keyinfo_path(path).unlink(missing_ok=True)
    fsync_folder(path.parent)
    _step("keyinfo removed")
    _finish(path)
    return _report(path, False, converted, masks)


def _journal(path: Path) -> Path:
    return path.with_name(path.name + JOURNAL_SUFFIX)


def _original(path: Path) -> Path:
    return path.with_name(path.name + ORIGINAL_SUFFIX)


def _step(name: str) -> None:
    pause_at = os.environ.get(TEST_PAUSE_VARIABLE)
    if pause_at:
        print(f"conversion step {name}", file=sys.stderr, flush=True)
        if name == pause_at:
            time.sleep(_TEST_PAUSE_S)


def _sqlcipher() -> Any:
    from sqlcipher3 import dbapi2

    return dbapi2


@contextlib.contextmanager
def _exclusive(path: Path, key: DatabaseKey | None) -> Iterator[Any]:
    """A connection holding the database locked against every other program (step 1)."""
    driver = _sqlcipher()
    try:
        probe = keyed(driver.connect(str(path), isolation_level=None, timeout=10), key)
        try:
            probe.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        finally:
            probe.close()
        if any(path.with_name(path.name + s).exists() for s in ("-wal", "-shm")):
            raise errors.DatabaseLockedError(
                f"the case database {path} is open in another program (the MedDiag app, or a "
                "'meddiag' command): close it and run this again; nothing was changed"
            )
        connection = keyed(driver.connect(str(path), isolation_level=None, timeout=2), key)
    except driver.Error as exc:
        raise errors.translate(exc, str(path)) from exc
    try:
        connection.execute("PRAGMA locking_mode = EXCLUSIVE")
        connection.execute("SELECT count(*) FROM sqlite_master").fetchall()  # takes the lock
        yield connection
    except driver.Error as exc:
        raise errors.translate(exc, str(path)) from exc
    finally:
        connection.close()


def _replace_with_copy(connection: Any, path: Path, target_key: DatabaseKey | None) -> None:
    """Steps 3-5: export, check, keep the original, rename the copy over it."""
    work = path.with_name(path.name + WORK_SUFFIX)
    for leftover in (work, *(work.with_name(work.name + s) for s in ("-journal", "-wal"))):
        leftover.unlink(missing_ok=True)
    value = "" if target_key is None else target_key.sqlcipher_pragma_value()
    # The file name is ours (the database's own path + a suffix); quotes doubled all the same.
    quoted = str(work).replace("'", "''")
    connection.execute(f"ATTACH DATABASE '{quoted}' AS converted KEY \"{value}\"")
    try:
        connection.execute("SELECT sqlcipher_export('converted')").fetchall()
        version = int(connection.execute("PRAGMA main.user_version").fetchone()[0])
        connection.execute(f"PRAGMA converted.user_version = {version}")
    finally:
        connection.execute("DETACH DATABASE converted")
    _step("exported")
    _check_copy(connection, work, target_key)
    os.chmod(work, stat.S_IMODE(os.stat(path).st_mode))  # who may read it stays the same
    with open(work, "rb") as handle:
        os.fsync(handle.fileno())
    _step("verified")
    original = _original(path)
    try:
        os.link(path, original)
    except OSError:
        shutil.copy2(path, original)
        with open(original, "rb") as handle:
            os.fsync(handle.fileno())
    fsync_folder(path.parent)
    _step("original kept")
    _drop_empty_wal(path)
    if sys.platform == "win32":
        connection.close()  # Windows cannot rename over an open file
    os.replace(work, path)
    fsync_folder(path.parent)
    _step("renamed")


def _drop_empty_wal(path: Path) -> None:
    """The original's ``-wal`` (empty: the original was checkpointed and is only read) would
    otherwise lie beside the new file after a kill, where SQLite would take it for the new
    file's; one that is not empty means a write got in, and the conversion stops."""
    wal = path.with_name(path.name + "-wal")
    try:
        size = wal.stat().st_size
    except FileNotFoundError:
        return
    if size:
        raise errors.DatabaseLockedError(
            f"the case database {path} was written to during the conversion; nothing was "
            "changed: close every program using it and run this again"
        )
    wal.unlink()


def _check_copy(source: Any, work: Path, key: DatabaseKey | None) -> None:
    """Step 4: the copy is sound and holds exactly what the source holds."""
    copy = keyed(_sqlcipher().connect(str(work)), key)
    try:
        result = [str(r[0]) for r in copy.execute("PRAGMA integrity_check").fetchall()]
        if result != ["ok"]:
            raise errors.DatabaseCorruptError(
                f"the converted copy {work} failed its integrity check ({result[0]}); the "
                "database was not changed"
            )
        source_objects = _schema(source)
        if _schema(copy) != source_objects:
            raise errors.DatabaseCorruptError(
                f"the converted copy {work} lacks schema objects; the database was not changed"
            )
        for kind, name, _sql in source_objects:
            if kind == "table" and _digest(source, name) != _digest(copy, name):
                raise errors.DatabaseCorruptError(
                    f"the converted copy {work} differs in table {name}; the database was "
                    "not changed"
                )
    finally:
        copy.close()


def _schema(connection: Any) -> list[tuple[str, str, str]]:
    rows = connection.execute(
        "SELECT type, name, coalesce(sql, '') FROM sqlite_master "
        "WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name"
    ).fetchall()
    return [(str(t), str(n), str(s)) for t, n, s in rows]


def _digest(connection: Any, table: str) -> tuple[int, str]:
    """(row count, sha256 over every row in rowid order) of one table."""
    digest = hashlib.sha256()
    count = 0
    quoted = table.replace('"', '""')  # a name from sqlite_master, quoted as an identifier
    for row in connection.execute(f'SELECT * FROM "{quoted}" ORDER BY rowid'):
        digest.update(repr(row).encode())
        count += 1
    return count, digest.hexdigest()


def _write_journal(path: Path, operation: str) -> None:
    journal = _journal(path)
    partial = journal.with_name(journal.name + ".partial")
    with open(partial, "w", encoding="utf-8") as handle:
        json.dump(
            {
                "operation": operation,
                "original": _original(path).name,
                "started_at": datetime.now(UTC).isoformat(),
            },
            handle,
        )
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, journal)
    fsync_folder(path.parent)


def _finish(path: Path) -> None:
    """Step 7: the job is done; the kept original, then the journal, go."""
    _original(path).unlink(missing_ok=True)
    fsync_folder(path.parent)
    _step("original removed")
    _journal(path).unlink(missing_ok=True)
    fsync_folder(path.parent)


@dataclass
class _MaskTally:
    rewritten: int = 0
    already: int = 0
    missing: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    undecryptable: tuple[str, ...] = ()


def _rewrite_masks(db: Database, cipher: MaskCipher, seal: bool) -> _MaskTally:
    """Step 6: every mask file (and any orphan) rewritten sealed (or plain), one by one."""
    masks_dir = db.masks_dir
    with db.reading() as session:
        expected: dict[str, str | None] = {
            str(p): str(s)
            for table in (MaskRow, ReviewedMaskRow)
            for p, s in session.execute(select(table.relative_path, table.sha256)).all()
        }
    on_disk, temporaries = files_in(masks_dir)
    for name in temporaries:  # what a killed earlier run of this step left
        if _REWRITE_MARKER + TEMPORARY_MARKER in name:
            (masks_dir / name).unlink(missing_ok=True)
    busy = journaled_mask_names(masks_dir)
    for orphan in set(on_disk) - set(expected) - busy:
        expected[orphan] = None  # nobody's, but its content is kept and protected too
    tally = _MaskTally()
    missing, changed, undecryptable = [], [], []
    for number, name in enumerate(sorted(expected), 1):
        path = masks_dir / name
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            missing.append(name)
            continue
        except OSError as exc:
            raise errors.translate(exc, str(path)) from exc
        if is_sealed(data) == seal:
            tally.already += 1
            continue
        if is_sealed(data):
            try:
                data = cipher.open(data, path)
            except errors.MaskIntegrityError:
                undecryptable.append(name)
                continue
        sha256 = expected[name]
        if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
            changed.append(name)
            continue
        _replace_file(path, cipher.seal(data) if seal else data)
        tally.rewritten += 1
        _step(f"mask {number}")
    tally.missing, tally.changed = tuple(missing), tuple(changed)
    tally.undecryptable = tuple(undecryptable)
    return tally


def _replace_file(path: Path, content: bytes) -> None:
    partial = path.with_name(
        f".{path.name}.{uuid.uuid4().hex[:8]}{_REWRITE_MARKER}{TEMPORARY_MARKER}"
    )
    mode = stat.S_IMODE(os.stat(path).st_mode)  # who may read it stays the same
    try:
        fd = os.open(
            partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), mode
        )
        with open(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise errors.translate(exc, str(path.parent)) from exc
    fsync_folder(path.parent)


def _report(path: Path, encrypted: bool, converted: bool, masks: _MaskTally) -> ConversionReport:
    return ConversionReport(
        database=path,
        encrypted=encrypted,
        database_converted=converted,
        masks_rewritten=masks.rewritten,
        masks_already_done=masks.already,
        masks_missing=masks.missing,
        masks_changed=masks.changed + masks.undecryptable,
        plain_backups=_plain_backups(path) if encrypted else (),
    )


def _plain_backups(path: Path) -> tuple[str, ...]:
    """Backups beside the database that still hold its data unencrypted (reported, kept)."""
    folder = path.parent / BACKUPS_FOLDER
    if not folder.is_dir():
        return ()
    found = [
        str(candidate)
        for candidate in sorted(folder.rglob("*.sqlite3"))
        if has_plain_header(candidate)
    ]
    return tuple(found)
