"""Write the follow-up demo pair to disk: two demo cases of one patient and the ground truth.

Layout::

    baseline/dicom/...           the first visit (a demo case: ground_truth.nii.gz, nodules.json)
    follow-up/dicom/...          the second visit, 90 days later, the patient moved
    follow_up_truth.json         what ``meddiag compare --json`` should say about the pair

As with a single demo case, a folder is only written when it is empty or holds a previous pair,
so pointing the generator at the wrong folder cannot delete anyone's files.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from meddiag_desktop.demo.case import DemoCase, DemoCaseError, prepare_folder, write_phantom_case
from meddiag_desktop.demo.follow_up import TRUTH_GENERATOR, make_follow_up_pair
from meddiag_desktop.demo.phantom import DEFAULT_SHAPE_ZYX, DEFAULT_SPACING_XYZ_MM

BASELINE_FOLDER = "baseline"
FOLLOW_UP_FOLDER = "follow-up"
TRUTH_FILE = "follow_up_truth.json"
_ENTRIES = {BASELINE_FOLDER, FOLLOW_UP_FOLDER, TRUTH_FILE}


@dataclass(frozen=True)
class FollowUpCase:
    folder: Path
    baseline: DemoCase
    follow_up: DemoCase
    truth_json: Path


def write_follow_up_case(
    folder: Path | str,
    seed: int = 7,
    shape_zyx: tuple[int, int, int] = DEFAULT_SHAPE_ZYX,
    spacing_xyz_mm: tuple[float, float, float] = DEFAULT_SPACING_XYZ_MM,
) -> FollowUpCase:
    """Generate the pair for ``seed`` and write it into ``folder`` (created if missing).

    Raises :class:`DemoCaseError` when ``folder`` holds anything but a previous pair, or when
    the field of view is too small for the pair's nodules.
    """
    target = Path(folder)
    _prepare(target)
    try:
        pair = make_follow_up_pair(seed, shape_zyx, spacing_xyz_mm)
    except ValueError as exc:
        raise DemoCaseError(str(exc)) from exc
    cases = []
    for name, phantom in ((BASELINE_FOLDER, pair.baseline), (FOLLOW_UP_FOLDER, pair.follow_up)):
        volume = phantom.volume
        uid_seed = (
            f"meddiag-demo-follow-up/{seed}/{name}/{volume.shape_zyx}/{volume.spacing_xyz_mm}"
        )
        (target / name).mkdir(exist_ok=True)
        cases.append(write_phantom_case(target / name, phantom, seed, uid_seed))
    truth = target / TRUTH_FILE
    partial = target / f".{TRUTH_FILE}.partial"
    partial.write_text(json.dumps(pair.truth, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, truth)
    return FollowUpCase(target, cases[0], cases[1], truth)


def _prepare(target: Path) -> None:
    if target.exists() and not target.is_dir():
        raise DemoCaseError(f"{target} is a file, not a folder: choose an empty folder")
    target.mkdir(parents=True, exist_ok=True)
    entries = {entry.name for entry in target.iterdir()}
    if not entries:
        return
    if not entries <= _ENTRIES or not _is_pair(target, entries):
        raise DemoCaseError(
            f"{target} is not empty and does not hold a previous follow-up demo pair: choose an "
            "empty folder (nothing was written or deleted)"
        )
    for name in (BASELINE_FOLDER, FOLLOW_UP_FOLDER):
        if (target / name).exists():
            prepare_folder(target / name)  # refuses anything but a demo case
    (target / TRUTH_FILE).unlink(missing_ok=True)


def _is_pair(target: Path, entries: set[str]) -> bool:
    if TRUTH_FILE not in entries:
        return False
    try:
        truth = json.loads((target / TRUTH_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(truth, dict) and truth.get("generator") == TRUTH_GENERATOR
