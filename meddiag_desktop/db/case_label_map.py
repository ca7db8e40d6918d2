"""The label map a case stands for: what the viewer shows and what an export writes.

One function, so the workstation and ``meddiag export`` can never disagree about which voxels a
case's findings have. The map is the radiologist's latest saved edit when it was made on the
current run's mask (or the case has no run), else the current run's mask, with the case's
manual lesions drawn in from an older edit (a model run stored after an edit brings new findings
to review on its own mask; the older edit stays on file). Both files are verified against their
sha256 on the way in (:func:`~meddiag_desktop.db.masks.read_verified`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from meddiag_desktop.db.engine import Database
from meddiag_desktop.db.records import CaseDetail
from meddiag_desktop.db.reviewed_masks import load_reviewed_mask, with_manual_lesions
from meddiag_desktop.db.runs import load_mask


@dataclass(frozen=True, eq=False)
class CaseLabelMap:
    """The case's current label map and where it came from."""

    labels_zyx: np.ndarray  # uint8, C-contiguous, on the series' grid; the caller's own copy
    label_names: dict[int, str]
    reviewed_mask_id: int | None  # the saved edit it is, or None: the run's mask
    run_id: int | None  # the run whose mask it is (or the edit started from)


def case_label_map(db: Database, detail: CaseDetail) -> CaseLabelMap | None:
    """The label map ``detail`` stands for (module docstring); None when it has none."""
    edit, run = detail.current_reviewed_mask, detail.current_run
    if edit is not None:
        mask = load_reviewed_mask(db, edit.reviewed_mask_id)
        labels = np.ascontiguousarray(mask.array_zyx, dtype=np.uint8)
        return CaseLabelMap(labels, dict(edit.mask.label_names), edit.reviewed_mask_id, edit.run_id)
    if run is None or run.mask is None:
        return None
    mask = load_mask(db, run.run_id)
    labels = np.ascontiguousarray(mask.array_zyx, dtype=np.uint8)
    earlier = detail.reviewed_mask  # an edit made before this run
    if earlier is not None and detail.manual_findings:
        kept = load_reviewed_mask(db, earlier.reviewed_mask_id).array_zyx
        with_manual_lesions(labels, kept, detail.manual_findings)
    return CaseLabelMap(labels, dict(run.mask.label_names), None, run.run_id)
