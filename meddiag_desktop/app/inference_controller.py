"""Run a model on the open scan off the GUI thread, and store the run, tagged and cancellable.

The pipeline is a generator that yields after every window; a worker thread drives it, checks a
:class:`CancelToken` between windows and, when a database is given, saves the run (findings and
mask) in the same thread straight after inference, so the GUI thread never waits on a model or a
mask write. Results come back as queued signals carrying a :class:`RunTag`: the window asks
:meth:`InferenceController.is_current` before painting, so a slow result for case A never paints
over case B.

One model runs at a time (two would halve each other's speed on a workstation): a new
:meth:`~InferenceController.run` cancels the one in flight, which stops at its next window and is
recorded as cancelled. A cancelled run keeps nothing partial: no findings, no mask.
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from meddiag_desktop.db.records import RunOutcome
from meddiag_desktop.domain import Progress, SeriesInfo, Volume
from meddiag_desktop.inference.card import CardError, ModelCard
from meddiag_desktop.inference.pipeline import (
    InferenceOptions,
    InferenceResult,
    ModelLoadError,
    ModelMismatchError,
    run_inference,
)
from meddiag_desktop.inference.sliding_window import CancelToken, InferenceCancelled

if TYPE_CHECKING:
    from meddiag_desktop.db.engine import Database

log = logging.getLogger(__name__)

# At most ~20 progress events a second: enough for a smooth bar, never a flood of queued events.
PROGRESS_INTERVAL_S = 0.05
CANCELLED_BY_USER = "cancelled by the user"


@dataclass(frozen=True)
class RunTag:
    """Identifies one run request: a counter plus the case or series it is about."""

    number: int
    case_id: int | None
    series_key: str


@dataclass(frozen=True, eq=False)
class RunRequest:
    """Everything one model run needs; ``database`` None runs without storing anything.

    With a database, the run is stored under ``case_id``, or under the case of ``series``
    (imported first when new) when ``case_id`` is None.
    """

    volume: Volume
    card: ModelCard
    series: SeriesInfo | None = None
    case_id: int | None = None
    options: InferenceOptions = field(default_factory=InferenceOptions)
    database: Database | None = None


@dataclass(frozen=True, eq=False)
class FinishedRun:
    """A successful run: the result, and where it was stored (None without a database)."""

    tag: RunTag
    result: InferenceResult
    run_id: int | None
    case_id: int | None
    elapsed_s: float


class _Events(QObject):
    """Emitted from the worker thread; Qt queues them to the controller in the GUI thread."""

    progressed = Signal(object, float, str)
    finished = Signal(object, object)
    failed = Signal(object, str)
    cancelled = Signal(object)


class _RunTask(QRunnable):
    """Drives the pipeline, stores the outcome, reports through ``_Events``; touches no widget."""

    def __init__(self, tag: RunTag, request: RunRequest, token: CancelToken, events: _Events):
        super().__init__()
        self._tag = tag
        self._request = request
        self._token = token
        self._events = events
        self._last_progress = float("-inf")

    def run(self) -> None:
        started = time.perf_counter()
        try:
            self._token.raise_if_cancelled()  # cancelled while waiting for the previous run
            result = self._infer()
            self._token.raise_if_cancelled()  # last chance: storing below is one unit
            run_id, case_id = self._store(result)
        except InferenceCancelled:
            self._record_failure(RunOutcome.CANCELLED, CANCELLED_BY_USER, started)
            self._events.cancelled.emit(self._tag)
        except ModelMismatchError as exc:  # refused before anything ran: not a run
            self._events.failed.emit(self._tag, str(exc))
        except Exception as exc:
            message = failure_message(exc)
            note = self._record_failure(RunOutcome.FAILED, message, started)
            self._events.failed.emit(self._tag, message + note)
        else:
            elapsed = time.perf_counter() - started
            self._events.finished.emit(
                self._tag, FinishedRun(self._tag, result, run_id, case_id, elapsed)
            )

    def _infer(self) -> InferenceResult:
        request = self._request
        steps = run_inference(request.volume, request.card, request.options, self._token)
        while True:
            try:
                progress = next(steps)
            except StopIteration as done:
                result: InferenceResult = done.value
                return result
            self._report(progress)
            self._token.raise_if_cancelled()

    def _report(self, progress: Progress) -> None:
        now = time.perf_counter()
        if now - self._last_progress < PROGRESS_INTERVAL_S and progress.fraction < 1.0:
            return
        self._last_progress = now
        self._events.progressed.emit(self._tag, progress.fraction, stage_text(progress))

    def _store(self, result: InferenceResult) -> tuple[int | None, int | None]:
        db = self._request.database
        if db is None:
            return None, self._request.case_id
        from meddiag_desktop.db.runs import store_inference

        case_id = self._case_id(db)
        run_id = store_inference(
            db, case_id, self._request.volume, result, parameters=run_parameters(self._request)
        )
        return run_id, case_id

    def _case_id(self, db: Database) -> int:
        if self._request.case_id is not None:
            return self._request.case_id
        from meddiag_desktop.db.importing import import_series

        assert self._request.series is not None  # checked in InferenceController.run
        return import_series(db, self._request.series).case_id

    def _record_failure(self, outcome: RunOutcome, message: str, started: float) -> str:
        """Put the attempt on file; returns a note for the user when even that failed."""
        db = self._request.database
        if db is None:
            return ""
        from meddiag_desktop.db.runs import store_failed_run

        try:
            store_failed_run(
                db,
                self._case_id(db),
                self._request.card,
                outcome,
                message,
                timings_s={"total": time.perf_counter() - started},
                parameters=run_parameters(self._request),
            )
        except Exception as exc:
            log.exception("could not record the %s run %s", outcome.value, self._tag)
            return f" (The failed attempt could not be recorded either: {exc})"
        return ""


def stage_text(progress: Progress) -> str:
    """'Running model (window 2 of 9)': the stage, capitalised, with its detail."""
    stage = progress.stage[:1].upper() + progress.stage[1:]
    return f"{stage} ({progress.message})" if progress.message else stage


def failure_message(exc: BaseException) -> str:
    """What a radiologist reads when a run fails: the cause in words, never a traceback."""
    if isinstance(exc, MemoryError):
        return "Not enough memory to run the model on this scan."
    if isinstance(exc, ModelLoadError | CardError):
        return f"The model cannot be used: {exc}"
    from meddiag_desktop.db.errors import CaseDatabaseError

    if isinstance(exc, CaseDatabaseError):
        return f"The model ran, but its results could not be saved: {exc}"
    log.error("model run failed", exc_info=exc)
    return f"The model run failed ({type(exc).__name__}): {exc}"


def run_parameters(request: RunRequest) -> dict[str, Any]:
    """The choices stored with the run beside the card's own parameters (as ``meddiag infer``)."""
    options = request.options
    return {
        "provider": options.provider or "auto",
        "overlap": options.overlap,
        "batch_size": options.batch_size,
        "allow_modality_mismatch": options.allow_modality_mismatch,
        "allow_anatomy_mismatch": options.allow_anatomy_mismatch,
        "allow_unsigned": options.allow_unsigned,
    }


class InferenceController(QObject):
    """Starts, cancels and reports model runs; one runs at a time, every event carries its tag."""

    run_started = Signal(object)  # RunTag
    progress_changed = Signal(object, float, str)  # RunTag, fraction 0..1, stage text
    run_finished = Signal(object, object)  # RunTag, FinishedRun
    run_failed = Signal(object, str)  # RunTag, readable message
    run_cancelled = Signal(object)  # RunTag

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._events = _Events(self)
        self._events.progressed.connect(self._on_progressed)
        self._events.finished.connect(self._on_finished)
        self._events.failed.connect(self._on_failed)
        self._events.cancelled.connect(self._on_cancelled)
        self._counter = itertools.count(1)
        self._current: RunTag | None = None
        self._tokens: dict[RunTag, CancelToken] = {}

    @property
    def current_tag(self) -> RunTag | None:
        """The tag of the latest request (kept after it ends, so its result still counts)."""
        return self._current

    @property
    def running(self) -> bool:
        """Whether the latest request has not ended yet."""
        return self._current is not None and self._current in self._tokens

    def is_current(self, tag: RunTag) -> bool:
        """Whether an event with ``tag`` is about the latest request (else: ignore it)."""
        return tag == self._current

    def run(self, request: RunRequest) -> RunTag:
        """Start a run (cancelling the one in flight); returns its tag."""
        if request.database is not None and request.case_id is None and request.series is None:
            raise ValueError("storing a run needs the case id or the series it belongs to")
        self.cancel()
        series_key = request.series.key if request.series is not None else ""
        tag = RunTag(next(self._counter), request.case_id, series_key)
        token = CancelToken()
        self._tokens[tag] = token
        self._current = tag
        self.run_started.emit(tag)
        self._pool.start(_RunTask(tag, request, token, self._events))
        return tag

    def cancel(self) -> None:
        """Stop the current run at its next window; ``run_cancelled`` follows."""
        if self._current is not None and self._current in self._tokens:
            self._tokens[self._current].cancel()

    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """Cancel everything and wait for the worker (on close: no thread outlives the window)."""
        for token in self._tokens.values():
            token.cancel()
        return self._pool.waitForDone(timeout_ms)

    def _on_progressed(self, tag: RunTag, fraction: float, text: str) -> None:
        if tag in self._tokens:
            self.progress_changed.emit(tag, fraction, text)

    def _on_finished(self, tag: RunTag, outcome: FinishedRun) -> None:
        self._tokens.pop(tag, None)
        self.run_finished.emit(tag, outcome)

    def _on_failed(self, tag: RunTag, message: str) -> None:
        self._tokens.pop(tag, None)
        self.run_failed.emit(tag, message)

    def _on_cancelled(self, tag: RunTag) -> None:
        self._tokens.pop(tag, None)
        self.run_cancelled.emit(tag)
