"""Turn an opened series into a case: import it (idempotent), read its runs and label map.

The label map shown is the radiologist's latest saved edit when it was made on the current
run's mask (or the case has no run), else the current run's mask: a model run stored after an
edit brings new findings to review on its own mask, with the case's manual lesions drawn in
from the older edit, which stays on file (``CaseDetail.current_reviewed_mask``). Hashing the
series' files and reading a compressed mask take longer than a frame, so this runs on the
background runner; only the answer for the series opened last is delivered.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PySide6.QtCore import QObject, Signal

from meddiag_desktop.app.background import BackgroundRunner
from meddiag_desktop.db.cases import get_case
from meddiag_desktop.db.engine import Database
from meddiag_desktop.db.importing import import_series
from meddiag_desktop.db.records import CaseDetail
from meddiag_desktop.db.reviewed_masks import load_reviewed_mask, with_manual_lesions
from meddiag_desktop.db.runs import load_mask
from meddiag_desktop.domain import Progress, SeriesInfo


@dataclass(frozen=True)
class OpenedCase:
    """A case ready to review: its record and the label map to show (if any)."""

    series_key: str
    detail: CaseDetail
    labels_zyx: np.ndarray | None  # uint8, on the series' grid; editable in place
    label_names: dict[int, str] = field(default_factory=dict)  # stored with that map


class CaseController(QObject):
    """Cases for series: one current request; failures are readable messages."""

    case_opened = Signal(object)  # OpenedCase
    case_failed = Signal(str)

    def __init__(
        self,
        database: Database,
        runner: BackgroundRunner | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._db = database
        self._runner = runner or BackgroundRunner(self, max_threads=1)
        self._request = 0

    @property
    def database(self) -> Database:
        return self._db

    def open_series(self, series: SeriesInfo) -> None:
        """Import ``series`` if new and read its case; answers with ``case_opened``."""
        self._runner.forget(self._request)
        db = self._db

        def job(progress) -> OpenedCase:
            progress(Progress(0.0, "opening the case", series.description or series.key))
            case_id = import_series(db, series).case_id
            return _read_case(db, series.key, case_id)

        self._request = self._runner.submit(job, self.case_opened.emit, self.case_failed.emit)

    def reopen(self, series_key: str, case_id: int) -> None:
        """Read an already imported case again (after a model run was stored)."""
        self._runner.forget(self._request)
        db = self._db
        self._request = self._runner.submit(
            lambda _progress: _read_case(db, series_key, case_id),
            self.case_opened.emit,
            self.case_failed.emit,
        )

    def shutdown(self, timeout_ms: int = 10_000) -> None:
        self._runner.forget(self._request)
        self._runner.wait(timeout_ms)


def _read_case(db: Database, series_key: str, case_id: int) -> OpenedCase:
    """The case and its label map: the current saved edit, else the current run's mask; both
    are verified against their sha256 on the way in."""
    detail = get_case(db, case_id)
    edit, run = detail.current_reviewed_mask, detail.current_run
    if edit is not None:
        mask, names = load_reviewed_mask(db, edit.reviewed_mask_id), edit.mask.label_names
        labels = np.ascontiguousarray(mask.array_zyx, dtype=np.uint8)
    elif run is not None and run.mask is not None:
        mask, names = load_mask(db, run.run_id), run.mask.label_names
        labels = np.ascontiguousarray(mask.array_zyx, dtype=np.uint8)
        earlier = detail.reviewed_mask  # an edit made before this run
        if earlier is not None and detail.manual_findings:
            kept = load_reviewed_mask(db, earlier.reviewed_mask_id).array_zyx
            with_manual_lesions(labels, kept, detail.manual_findings)
    else:
        return OpenedCase(series_key, detail, None)
    return OpenedCase(series_key, detail, labels, dict(names))
