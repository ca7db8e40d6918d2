"""Mask files: compressed NIfTI label maps in the masks folder, checked against the database.

Order of a save, and why no crash can leave a committed row without its file, nor a file that
nobody can account for (:func:`mask_written`; the journal is :mod:`.pending_masks`):

1. A journal entry for the save is made durable (``.pending/NAME.lock``, locked while the save
   runs).
2. The label map is written inside the entry's folder, fsynced and renamed to ``NAME.nii.gz``
   in the masks folder, the folder fsynced, the file hashed as it lies on disk.
3. Only then is the caller's transaction committed, with the file's name, sha256, size and
   geometry. If it fails the file is removed again.
4. The journal entry is removed.

A kill anywhere leaves at most the entry and what it names; the next open of the database sees
that no live process holds the entry and removes the file unless a committed row refers to it.
``meddiag db check`` is left with real damage: a committed row whose file is missing or whose
bytes changed (which :func:`read_verified` refuses to hand out too), or a file no row and no
journal entry explains (``--remove-orphans`` deletes those once they are old).

When the database is encrypted (``cipher`` given: :mod:`.mask_encryption`) the file holds the
NIfTI bytes sealed with AES-256-GCM, and the stored sha256 is that of the NIfTI bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from meddiag_desktop.db import errors
from meddiag_desktop.db.crash_safe_files import fsync_folder
from meddiag_desktop.db.mask_encryption import (
    MaskCipher,
    content_sha256,
    is_sealed,
    plaintext_scratch,
    write_sealed,
)
from meddiag_desktop.db.pending_masks import MASK_SUFFIX, PendingSave, start_save
from meddiag_desktop.db.records import MaskGeometry, MaskRecord
from meddiag_desktop.domain import Volume
from meddiag_desktop.private_files import set_owner_only
from meddiag_desktop.scans import ScanError, load, write_label_map

TEMPORARY_MARKER = ".partial"
_GEOMETRY_TOLERANCE = 1e-4


@dataclass(frozen=True)
class WrittenMask:
    relative_path: str
    sha256: str
    size_bytes: int
    geometry: MaskGeometry


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def geometry_of(volume: Volume) -> MaskGeometry:
    return MaskGeometry(
        size_xyz=volume.size_xyz,
        spacing_xyz_mm=volume.spacing_xyz_mm,
        origin_lps_mm=volume.origin_lps_mm,
        direction_lps=volume.direction_lps,
    )


@contextlib.contextmanager
def mask_written(
    masks_dir: Path,
    reference: Volume,
    labels_zyx: np.ndarray,
    saving: str = "the model run",
    *,
    database: str,
    cipher: MaskCipher | None = None,
) -> Iterator[WrittenMask]:
    """Write a label map durably under a new name, for the transaction run inside the block.

    Use it as ``with mask_written(...) as mask, db.writing() as session:``: the file is on
    disk (journaled as pending) before the transaction starts, removed again when the block
    fails, and its journal entry removed once the transaction has ended either way (see the
    module docstring). ``database`` (``Database.display_url``) is the database the row goes
    to, recorded in the journal entry. Raises MaskWriteError with the reason; ``saving`` names
    what the mask belongs to, for the message: it was not saved either. With ``cipher`` (an
    encrypted database) the file is sealed.
    """
    try:
        save = start_save(masks_dir, database)
    except OSError as exc:
        raise _not_saved(masks_dir, exc.strerror or str(exc), saving) from exc
    try:
        written = _write_staged(save, reference, labels_zyx, saving, cipher)
        try:
            yield written
        except BaseException:
            remove_mask_file(masks_dir, written.relative_path)
            raise
    finally:
        save.finish()


def _write_staged(
    save: PendingSave,
    reference: Volume,
    labels_zyx: np.ndarray,
    saving: str,
    cipher: MaskCipher | None = None,
) -> WrittenMask:
    """Step 2 of the module docstring: write in the entry's folder, then rename into place."""
    masks_dir = save.masks_dir
    staged = save.staging / save.mask_name
    path = masks_dir / save.mask_name
    try:
        if cipher is None:
            write_label_map(reference, labels_zyx, staged)
        else:
            with plaintext_scratch() as scratch:
                plain = write_label_map(reference, labels_zyx, scratch / save.mask_name)
                content = plain.read_bytes()
            write_sealed(staged, content, cipher)
        set_owner_only(staged)  # 0600 whatever the umask: patient data
        os.replace(staged, path)
        fsync_folder(masks_dir)
        return WrittenMask(
            relative_path=path.name,
            sha256=content_sha256(path, cipher),
            size_bytes=path.stat().st_size,
            geometry=geometry_of(reference),
        )
    except ScanError as exc:
        reason = _why_not_writable(masks_dir) or exc.reason
        raise _not_saved(masks_dir, reason, saving) from exc
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise _not_saved(masks_dir, exc.strerror or str(exc), saving) from exc


def _not_saved(masks_dir: Path, reason: str, saving: str) -> errors.MaskWriteError:
    return errors.MaskWriteError(
        f"the mask could not be saved in {masks_dir} ({reason}); {saving} was not saved, "
        "earlier work is intact"
    )


def _why_not_writable(folder: Path) -> str | None:
    """The operating system's reason a file cannot be written in ``folder`` (SimpleITK's own
    message names only the file), or None when a probe file can be written there."""
    probe = folder / f".probe-{uuid.uuid4().hex}{TEMPORARY_MARKER}"
    try:
        with open(probe, "xb") as handle:
            handle.write(b"\0" * 65536)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        return exc.strerror or str(exc)
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()
    return None


def remove_mask_file(masks_dir: Path, relative_path: str) -> bool:
    """Delete a mask file; False when it is still there (db check reports it as an orphan,
    unless a journal entry of the save it belongs to still explains it)."""
    try:
        (masks_dir / relative_path).unlink()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    fsync_folder(masks_dir)
    return True


def verify_file(
    masks_dir: Path, record: MaskRecord, cipher: MaskCipher | None = None
) -> str | None:
    """None when the file is there with the stored sha256 (of its NIfTI bytes, a sealed file
    opened with ``cipher``); else what is wrong."""
    path = masks_dir / record.relative_path
    if not path.is_file():
        return "missing"
    try:
        if content_sha256(path, cipher) != record.sha256:
            return "sha256 mismatch"
    except errors.MaskIntegrityError:
        return "sha256 mismatch"  # sealed, and not openable with this key
    return None


def read_verified(masks_dir: Path, record: MaskRecord, cipher: MaskCipher | None = None) -> Volume:
    """The stored label map as a Volume, after checking its bytes and geometry (a sealed file
    is opened with ``cipher``, the key of an encrypted database)."""
    path = masks_dir / record.relative_path
    if not path.is_file():
        raise errors.MaskIntegrityError(f"the mask file {path} is missing")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise errors.MaskIntegrityError(f"the mask file {path} cannot be read: {exc}") from exc
    sealed = is_sealed(data)
    if sealed:
        if cipher is None:
            raise errors.MaskIntegrityError(
                f"the mask file {path} is encrypted, but the database was not opened with a key"
            )
        data = cipher.open(data, path)
    if hashlib.sha256(data).hexdigest() != record.sha256:
        raise errors.MaskIntegrityError(
            f"the mask file {path} has changed since it was saved (sha256 differs)"
        )
    try:
        if sealed:
            with plaintext_scratch() as scratch:
                plain = scratch / path.name
                plain.write_bytes(data)
                volume = load(plain)
        else:
            volume = load(path)
    except ScanError as exc:
        raise errors.MaskIntegrityError(f"the mask file {path} cannot be read: {exc}") from exc
    stored, found = record.geometry, geometry_of(volume)
    if stored.size_xyz != found.size_xyz or not all(
        np.allclose(a, b, atol=_GEOMETRY_TOLERANCE)
        for a, b in (
            (stored.spacing_xyz_mm, found.spacing_xyz_mm),
            (stored.origin_lps_mm, found.origin_lps_mm),
            (stored.direction_lps, found.direction_lps),
        )
    ):
        raise errors.MaskIntegrityError(
            f"the mask file {path} does not have the geometry stored with it"
        )
    return volume


def files_in(masks_dir: Path) -> tuple[list[str], list[str]]:
    """(mask file names, leftover temporary file names) in the masks folder."""
    masks: list[str] = []
    temporaries: list[str] = []
    if not masks_dir.is_dir():
        return masks, temporaries
    for entry in os.scandir(masks_dir):
        if not entry.is_file():
            continue
        if TEMPORARY_MARKER in entry.name:
            temporaries.append(entry.name)
        elif entry.name.endswith(MASK_SUFFIX):
            masks.append(entry.name)
    return masks, temporaries
