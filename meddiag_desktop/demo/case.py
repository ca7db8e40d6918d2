"""Write a demo case to disk: the phantom as a DICOM series, its ground truth and nodule list.

Layout of a demo case folder::

    dicom/IM0001.dcm ...     the CT series (one uncompressed int16 file per slice)
    ground_truth.nii.gz      nodule mask (1 = nodule) on the series' grid
    nodules.json             the nodules: centre (LPS mm), diameter, kind, mean HU

A folder is only ever written when it is empty or holds a previous demo case (recognised by its
``nodules.json``), so pointing the generator at the wrong folder cannot delete anyone's files.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from meddiag_desktop.demo.phantom import (
    DEFAULT_SHAPE_ZYX,
    DEFAULT_SPACING_XYZ_MM,
    Nodule,
    Phantom,
    make_phantom,
)
from meddiag_desktop.scans import write_label_map
from meddiag_desktop.scans.dicom_series_writer import write_dicom_series

DICOM_FOLDER = "dicom"
GROUND_TRUTH_FILE = "ground_truth.nii.gz"
NODULES_FILE = "nodules.json"
GENERATOR = "meddiag-desktop demo phantom"
_FORMAT_VERSION = 1


class DemoCaseError(Exception):
    """The demo case cannot be written where it was asked to go."""


@dataclass(frozen=True)
class DemoCase:
    folder: Path
    dicom_folder: Path
    dicom_files: tuple[Path, ...]
    ground_truth: Path
    nodules_json: Path
    nodules: tuple[Nodule, ...]


def write_demo_case(
    folder: Path | str,
    seed: int = 7,
    shape_zyx: tuple[int, int, int] = DEFAULT_SHAPE_ZYX,
    spacing_xyz_mm: tuple[float, float, float] = DEFAULT_SPACING_XYZ_MM,
) -> DemoCase:
    """Generate the phantom for ``seed`` and write it into ``folder`` (created if missing).

    Raises :class:`DemoCaseError` when ``folder`` holds anything other than a previous demo case
    (which is replaced).
    """
    target = Path(folder)
    _prepare(target)
    phantom = make_phantom(seed, shape_zyx, spacing_xyz_mm)
    volume = phantom.volume
    uid_seed = f"meddiag-demo-phantom/{seed}/{volume.shape_zyx}/{volume.spacing_xyz_mm}"
    return write_phantom_case(target, phantom, seed, uid_seed)


def write_phantom_case(target: Path, phantom: Phantom, seed: int, uid_seed: str) -> DemoCase:
    """Write ``phantom`` as a demo case into the prepared, empty folder ``target``."""
    volume = phantom.volume
    dicom_folder = target / DICOM_FOLDER
    files = write_dicom_series(
        volume,
        dicom_folder,
        series_description=volume.metadata.series_description,
        uid_seed=uid_seed,
    )
    ground_truth = write_label_map(volume, phantom.mask_zyx, target / GROUND_TRUTH_FILE)
    description = {
        "generator": GENERATOR,
        "format_version": _FORMAT_VERSION,
        "seed": seed,
        "note": "Synthetic phantom, not a patient. Coordinates are LPS millimetres.",
        "shape_zyx": list(volume.shape_zyx),
        "spacing_xyz_mm": list(volume.spacing_xyz_mm),
        "origin_lps_mm": list(volume.origin_lps_mm),
        "series_uid": volume.metadata.series_uid,
        "nodules": [
            {"id": index + 1, **asdict(nodule), "centre_lps_mm": list(nodule.centre_lps_mm)}
            for index, nodule in enumerate(phantom.nodules)
        ],
    }
    nodules_json = target / NODULES_FILE
    partial = target / f".{NODULES_FILE}.partial"
    partial.write_text(json.dumps(description, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, nodules_json)
    return DemoCase(
        folder=target,
        dicom_folder=dicom_folder,
        dicom_files=tuple(files),
        ground_truth=ground_truth,
        nodules_json=nodules_json,
        nodules=tuple(phantom.nodules),
    )


def ensure_demo_case(folder: Path | str, seed: int = 7) -> Path:
    """The DICOM folder of the demo case kept in ``folder``, writing the case first if missing.

    A complete previous case is reused as it is (opening the demo stays instant after the first
    time); an incomplete one is rewritten; a folder holding anything else raises
    :class:`DemoCaseError`.
    """
    target = Path(folder)
    dicom = target / DICOM_FOLDER
    if target.is_dir() and _is_complete(target):
        return dicom
    return write_demo_case(target, seed=seed).dicom_folder


def _is_complete(target: Path) -> bool:
    entries = {entry.name for entry in target.iterdir()}
    if entries != {DICOM_FOLDER, GROUND_TRUTH_FILE, NODULES_FILE} or not _is_demo_case(
        target, entries
    ):
        return False
    description = json.loads((target / NODULES_FILE).read_text(encoding="utf-8"))
    slices = description.get("shape_zyx", [0])[0]
    return len(list((target / DICOM_FOLDER).glob("*.dcm"))) == slices


def prepare_folder(target: Path) -> None:
    """:func:`_prepare` for other demo writers: empty, or a previous demo case, cleared."""
    _prepare(target)


def _prepare(target: Path) -> None:
    """Make ``target`` ready: create it, or clear a previous demo case; refuse anything else."""
    if target.exists() and not target.is_dir():
        raise DemoCaseError(f"{target} is a file, not a folder: choose an empty folder")
    target.mkdir(parents=True, exist_ok=True)
    entries = {entry.name for entry in target.iterdir()}
    if not entries:
        return
    if not _is_demo_case(target, entries):
        raise DemoCaseError(
            f"{target} is not empty and does not hold a previous demo case: choose an empty "
            "folder (nothing was written or deleted)"
        )
    dicom = target / DICOM_FOLDER
    if dicom.is_dir():
        for path in dicom.iterdir():
            path.unlink()
        dicom.rmdir()
    for name in (GROUND_TRUTH_FILE, NODULES_FILE):
        (target / name).unlink(missing_ok=True)


def _is_demo_case(target: Path, entries: set[str]) -> bool:
    if NODULES_FILE not in entries or not entries <= {
        DICOM_FOLDER,
        GROUND_TRUTH_FILE,
        NODULES_FILE,
    }:
        return False
    try:
        description = json.loads((target / NODULES_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(description, dict) or description.get("generator") != GENERATOR:
        return False
    dicom = target / DICOM_FOLDER
    if dicom.exists():
        if not dicom.is_dir():
            return False
        return all(p.is_file() and p.suffix == ".dcm" for p in dicom.iterdir())
    return True
