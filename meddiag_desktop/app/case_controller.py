"""Turn an opened series into a case: import it (idempotent), read its runs and label map.

The label map shown is the radiologist's latest saved edit when it was made on the current
run's mask (or the case has no run), else the current run's mask: a model run stored after an
edit brings new findings to review on its own mask, with the case's manual lesions drawn in
from the older edit, which stays on file (``CaseDetail.current_reviewed_mask``). Hashing the
series' files and reading a compressed mask take longer than a frame, so this runs on the
background runner; only the answer for the series opened last is delivered.

A DICOM SEG opened over its series (:func:`open_series` with a ``SegLabelMap``) is stored as
a new mask version of the case first (:mod:`meddiag_desktop.db.imported_masks`), so it is what
the case then shows; the answer's ``notice`` names where it came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from PySide6.QtCore import QObject, Signal

from meddiag_desktop.app.background import BackgroundRunner
from meddiag_desktop.db.audit import log_event
from meddiag_desktop.db.case_label_map import case_label_map
from meddiag_desktop.db.cases import get_case
from meddiag_desktop.db.engine import Database
from meddiag_desktop.db.imported_masks import add_imported_mask
from meddiag_desktop.db.importing import import_series
from meddiag_desktop.db.records import AuditAction, CaseDetail
from meddiag_desktop.domain import Progress, SeriesInfo
from meddiag_desktop.scans.seg_reading import SegLabelMap


@dataclass(frozen=True)
class OpenedCase:
    """A case ready to review: its record and the label map to show (if any)."""

    series_key: str
    detail: CaseDetail
    labels_zyx: np.ndarray | None  # uint8, on the series' grid; editable in place
    label_names: dict[int, str] = field(default_factory=dict)  # stored with that map
    notice: str = ""  # what the reader is told on opening (a DICOM SEG brought in)


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

    def open_series(self, series: SeriesInfo, seg: SegLabelMap | None = None) -> None:
        """Import ``series`` if new and read its case; answers with ``case_opened``. With
        ``seg`` (a DICOM SEG read onto this series) its label map is stored as the case's
        newest mask version first."""
        self._runner.forget(self._request)
        db = self._db

        def job(progress) -> OpenedCase:
            progress(Progress(0.0, "opening the case", series.description or series.key))
            case_id = import_series(db, series).case_id
            log_event(db, AuditAction.CASE_VIEWED, case_id)  # who opened it: the case history
            if seg is not None:
                return _with_seg(db, series.key, case_id, seg)
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
    shown = case_label_map(db, detail)  # the same map an export writes
    if shown is None:
        return OpenedCase(series_key, detail, None)
    return OpenedCase(series_key, detail, shown.labels_zyx, shown.label_names)


def _with_seg(db: Database, series_key: str, case_id: int, seg: SegLabelMap) -> OpenedCase:
    """The case with ``seg``'s labels stored as its newest mask version (not again when they
    already are its map; not at all on a signed case, which shows them unsaved and says so)."""
    before = _read_case(db, series_key, case_id)
    labels = np.ascontiguousarray(seg.labels.array_zyx, dtype=np.uint8)
    shown = ", ".join(f"{n} {name}" for n, name in sorted(seg.label_names.items()))
    warnings = "".join(f" Note: {w}." for w in seg.warnings)
    if before.detail.signed_at is not None:
        notice = (
            f"Shown {seg.source_note}, not stored: case {case_id} is signed and its masks "
            f"are final.{warnings}"
        )
        return replace(before, labels_zyx=labels, label_names=dict(seg.label_names), notice=notice)
    if before.labels_zyx is not None and np.array_equal(before.labels_zyx, labels):
        notice = f"Opened {seg.source_note}: already the case's current mask ({shown})."
        return replace(before, notice=notice + warnings)
    source = {
        "source": seg.source_note,
        "seg_file": str(seg.seg_path),
        "seg_sop_instance_uid": seg.sop_instance_uid,
        "frames_placed_by": seg.mapped_by,
    }
    version = add_imported_mask(db, case_id, seg.scan, labels, seg.label_names, source)
    notice = (
        f"Opened {seg.source_note} as the overlay ({shown}); stored as mask version "
        f"{version} of case {case_id}.{warnings}"
    )
    return replace(_read_case(db, series_key, case_id), notice=notice)
