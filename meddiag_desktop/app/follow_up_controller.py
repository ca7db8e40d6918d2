"""Compare the open case with a prior study off the GUI thread, with progress and Cancel.

The worker runs :func:`~meddiag_desktop.followup.comparison.compare_cases` (register, match,
measure, store), then reads the prior scan and resamples it onto the current grid for the
checkerboard; the GUI thread only receives a :class:`ComparisonView` to show. A cancelled
registration stores nothing and answers :data:`CANCELLED`. The reader's corrections
(:func:`~meddiag_desktop.followup.comparison.add_override`) also run in the worker.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, Signal

from meddiag_desktop.app.background import BackgroundRunner
from meddiag_desktop.db.cases import get_case
from meddiag_desktop.db.comparison_records import MatchOverride
from meddiag_desktop.domain import Progress, Volume
from meddiag_desktop.export.outcome_from_case import load_case_scan
from meddiag_desktop.followup.comparison import (
    CompareOptions,
    ComparisonOutcome,
    add_override,
    compare_cases,
    revise_comparison,
)
from meddiag_desktop.followup.errors import FollowUpError, RegistrationCancelled

if TYPE_CHECKING:
    from meddiag_desktop.db.engine import Database

PROGRESS_INTERVAL_S = 0.05
CANCELLED = "cancelled"


@dataclass(frozen=True, eq=False)
class ComparisonView:
    """What the follow-up window shows: the outcome, both scans, the prior on the current grid."""

    outcome: ComparisonOutcome
    current: Volume
    prior: Volume
    prior_on_current: np.ndarray  # the prior scan resampled onto ``current``'s grid


def _throttled(report: Callable[[Progress], None]) -> Callable[[Progress], None]:
    last = [float("-inf")]

    def forward(progress: Progress) -> None:
        now = time.perf_counter()
        if now - last[0] >= PROGRESS_INTERVAL_S or progress.fraction >= 1.0:
            last[0] = now
            report(progress)

    return forward


def build_view(db: Database, outcome: ComparisonOutcome, current: Volume | None) -> ComparisonView:
    """Read the scans of an outcome (the current one when not given) and resample the prior."""
    try:
        if current is None:
            current, _ = load_case_scan(get_case(db, outcome.case_id))
        prior, _ = load_case_scan(get_case(db, outcome.prior_case_id))
    except Exception as exc:  # moved or changed files: said in one line
        raise ValueError(f"The scans of the comparison cannot be read: {exc}") from exc
    return ComparisonView(outcome, current, prior, prior_on_current_grid(outcome, prior, current))


def prior_on_current_grid(outcome: ComparisonOutcome, prior: Volume, current: Volume) -> np.ndarray:
    """The prior scan on the current grid, outside the prior filled with its lowest value (air
    for CT, not 0 HU, which would show as bright squares at the edges of a checkerboard)."""
    values = prior.array_zyx
    wide = np.float32 if np.issubdtype(values.dtype, np.floating) else np.int32
    low = values.min()
    shifted = values.astype(wide) - wide(low)
    resampled = outcome.transform.resample_to_current(shifted, prior, current) + wide(low)
    return resampled.astype(current.array_zyx.dtype)


class FollowUpController(QObject):
    """Runs one comparison (or correction) at a time; ``cancel`` stops a registration."""

    started = Signal(int, int)  # case id, prior case id
    progressed = Signal(float, str)
    compared = Signal(object)  # ComparisonView
    revised = Signal(object)  # ComparisonOutcome
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, database: Database, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._db = database
        self._runner = BackgroundRunner(self, max_threads=1)
        self._cancel = threading.Event()
        self._request: int | None = None

    @property
    def running(self) -> bool:
        return self._request is not None and self._runner.is_pending(self._request)

    def compare(
        self, case_id: int, prior_case_id: int, current: Volume | None = None, affine: bool = False
    ) -> None:
        """Register the prior to ``case_id``'s scan (``current``, already open, when given)."""
        if self.running:
            return
        self._cancel = threading.Event()
        cancel = self._cancel
        db = self._db
        options = CompareOptions()
        if affine:
            from meddiag_desktop.followup.registration import RegistrationOptions

            options = CompareOptions(registration=RegistrationOptions(affine=True))

        def job(report: Callable[[Progress], None]) -> ComparisonView | str:
            try:
                outcome = compare_cases(
                    db, case_id, prior_case_id, options, _throttled(report), cancel.is_set
                )
            except RegistrationCancelled:
                return CANCELLED
            except FollowUpError as exc:
                raise ValueError(str(exc)) from exc
            return build_view(db, outcome, current)

        self.started.emit(case_id, prior_case_id)
        self._request = self._runner.submit(
            job, self._on_compared, self._on_failed, self.progressed.emit
        )

    def revise(self, comparison_id: int, override: MatchOverride) -> None:
        """Apply one correction by the reader (no new registration)."""
        if self.running:
            return
        db = self._db

        def job(_report: Callable[[Progress], None]) -> ComparisonOutcome:
            try:
                return add_override(db, comparison_id, override)
            except FollowUpError as exc:
                raise ValueError(str(exc)) from exc

        self._request = self._runner.submit(job, self.revised.emit, self._on_failed)

    def retarget(self, comparison_id: int, targets: tuple[int, ...]) -> None:
        """The reader's own RECIST target lesions (prior finding ids; empty: none)."""
        if self.running:
            return
        db = self._db

        def job(_report: Callable[[Progress], None]) -> ComparisonOutcome:
            try:
                return revise_comparison(db, comparison_id, targets=targets)
            except FollowUpError as exc:
                raise ValueError(str(exc)) from exc

        self._request = self._runner.submit(job, self.revised.emit, self._on_failed)

    def cancel(self) -> None:
        self._cancel.set()

    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        self._cancel.set()
        return self._runner.wait(timeout_ms)

    def _on_compared(self, result: ComparisonView | str) -> None:
        if isinstance(result, str):
            self.cancelled.emit()
        else:
            self.compared.emit(result)

    def _on_failed(self, message: str) -> None:
        self.failed.emit(message)
