"""``labels.nii.gz``: the kept findings' label map for research tools (Slicer, ITK-SNAP, nnU-Net).

Written with SimpleITK on the scan's exact grid (size, spacing, origin, direction as loaded) as
uint8 label values, holding the kept findings only (:meth:`ReviewOutcome.kept_labels_zyx`):
rejected and unreviewed lesions are zero. NIfTI has no place for label names; they are in
``findings.json`` (``labels``), the file written beside it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from meddiag_desktop.reports.review_outcome import ReviewOutcome
from meddiag_desktop.scans import write_label_map


def write_label_map_file(outcome: ReviewOutcome, path: Path) -> Path:
    labels = outcome.kept_labels_zyx().astype(np.uint8, copy=False)
    return write_label_map(outcome.scan, labels, path)
