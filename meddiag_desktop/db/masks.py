"""Mask files: compressed NIfTI label maps in the masks folder, checked against the database.

Order of a save, and why no crash can leave a committed row without its file:

1. The label map is written under a fresh random name (``write_label_map`` writes a temporary
   file, fsyncs it and renames it into place), then the folder is fsynced so the rename itself
   is durable, then the file is hashed as it lies on disk.
2. Only then is the run committed, with the file's name, sha256, size and geometry.
3. If the commit fails the file is removed again.

A crash between 1 and 2 leaves a file no row refers to (an *orphan*); a crash inside 1 leaves a
``.partial`` temporary. Both are harmless and ``meddiag db check`` reports them (and removes them
with ``--remove-orphans`` once they are old enough not to belong to a save in progress).
A committed row whose file is missing or whose bytes changed is reported too, and
:func:`load_mask` refuses to hand such a mask out.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from meddiag_desktop.db import errors
from meddiag_desktop.db.records import MaskGeometry, MaskRecord
from meddiag_desktop.domain import Volume
from meddiag_desktop.scans import ScanError, load, write_label_map

MASK_SUFFIX = ".nii.gz"
TEMPORARY_MARKER = ".partial"
_GEOMETRY_TOLERANCE = 1e-4


@dataclass(frozen=True)
class WrittenMask:
    relative_path: str
    sha256: str
    size_bytes: int
    geometry: MaskGeometry


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


def write_mask(
    masks_dir: Path, reference: Volume, labels_zyx: np.ndarray, saving: str = "the model run"
) -> WrittenMask:
    """Write a label map durably under a new name; raises MaskWriteError with the reason.

    ``saving`` names what the mask belongs to, for the message: it was not saved either.
    """
    try:
        if not masks_dir.is_dir():
            masks_dir.mkdir(parents=True, exist_ok=True)
            fsync_folder(masks_dir.parent)
        path = masks_dir / f"{uuid.uuid4().hex}{MASK_SUFFIX}"
        write_label_map(reference, labels_zyx, path)
        fsync_folder(masks_dir)
        return WrittenMask(
            relative_path=path.name,
            sha256=file_sha256(path),
            size_bytes=path.stat().st_size,
            geometry=geometry_of(reference),
        )
    except ScanError as exc:
        reason = _why_not_writable(masks_dir) or exc.reason
        raise errors.MaskWriteError(
            f"the mask could not be saved in {masks_dir} ({reason}); {saving} was not saved, "
            "earlier work is intact"
        ) from exc
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise errors.MaskWriteError(
            f"the mask could not be saved in {masks_dir} ({reason}); {saving} was not saved, "
            "earlier work is intact"
        ) from exc


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
    """Delete a mask file; False when it is still there (db check reports it as an orphan)."""
    try:
        (masks_dir / relative_path).unlink()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    fsync_folder(masks_dir)
    return True


def verify_file(masks_dir: Path, record: MaskRecord) -> str | None:
    """None when the file is there with the stored sha256; else what is wrong."""
    path = masks_dir / record.relative_path
    if not path.is_file():
        return "missing"
    if file_sha256(path) != record.sha256:
        return "sha256 mismatch"
    return None


def read_verified(masks_dir: Path, record: MaskRecord) -> Volume:
    """The stored label map as a Volume, after checking its bytes and geometry."""
    path = masks_dir / record.relative_path
    problem = verify_file(masks_dir, record)
    if problem == "missing":
        raise errors.MaskIntegrityError(f"the mask file {path} is missing")
    if problem is not None:
        raise errors.MaskIntegrityError(
            f"the mask file {path} has changed since it was saved (sha256 differs)"
        )
    try:
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
