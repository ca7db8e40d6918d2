"""Run core functions on a thread pool and hand results back to the GUI thread, tagged.

Every request gets a number; the GUI thread only acts on the answer to the latest request of its
kind, so a slow load of series A can never paint over series B chosen later. Results travel as
queued signals of one QObject that lives in the GUI thread: worker threads never touch widgets.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from meddiag_desktop.domain import Progress
from meddiag_desktop.scans import ScanError

log = logging.getLogger(__name__)

Job = Callable[[Callable[[Progress], None]], Any]


class _Events(QObject):
    """Signals emitted from worker threads; Qt queues them to the GUI thread."""

    succeeded = Signal(int, object)
    failed = Signal(int, str)
    progressed = Signal(int, float, str)


class _Task(QRunnable):
    def __init__(self, request_id: int, job: Job, events: _Events) -> None:
        super().__init__()
        self._request_id = request_id
        self._job = job
        self._events = events

    def run(self) -> None:
        try:
            result = self._job(self._report)
        except (ScanError, ValueError, OSError) as exc:  # the user's file, disk or database
            self._events.failed.emit(self._request_id, str(exc))
        except MemoryError:
            self._events.failed.emit(self._request_id, "Not enough memory to open this scan.")
        except Exception as exc:  # a bug or an unexpected file: log it, tell the user plainly
            log.exception("background request %d failed", self._request_id)
            message = f"Unexpected error ({type(exc).__name__}): {exc}"
            self._events.failed.emit(self._request_id, message)
        else:
            self._events.succeeded.emit(self._request_id, result)

    def _report(self, progress: Progress) -> None:
        text = progress.message or progress.stage
        self._events.progressed.emit(self._request_id, progress.fraction, text)


class BackgroundRunner(QObject):
    """Starts jobs and forwards only the latest request's events to the given callbacks."""

    def __init__(self, parent: QObject | None = None, max_threads: int = 2) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(max_threads)
        self._events = _Events(self)
        self._events.succeeded.connect(self._on_succeeded)
        self._events.failed.connect(self._on_failed)
        self._events.progressed.connect(self._on_progressed)
        self._next_id = 0
        self._handlers: dict[int, tuple[Callable[[Any], None], Callable[[str], None]]] = {}
        self._progress_handlers: dict[int, Callable[[float, str], None]] = {}

    def submit(
        self,
        job: Job,
        on_success: Callable[[Any], None],
        on_failure: Callable[[str], None],
        on_progress: Callable[[float, str], None] | None = None,
    ) -> int:
        """Run ``job(progress)`` in the pool; returns the request id."""
        self._next_id += 1
        request_id = self._next_id
        self._handlers[request_id] = (on_success, on_failure)
        if on_progress is not None:
            self._progress_handlers[request_id] = on_progress
        self._pool.start(_Task(request_id, job, self._events))
        return request_id

    def forget(self, request_id: int) -> None:
        """Drop a request's callbacks: its answer, when it comes, is ignored."""
        self._handlers.pop(request_id, None)
        self._progress_handlers.pop(request_id, None)

    def is_pending(self, request_id: int) -> bool:
        return request_id in self._handlers

    def wait(self, timeout_ms: int = 10_000) -> bool:
        """Block until running jobs end (on close, so no thread outlives its window)."""
        self._pool.clear()
        return self._pool.waitForDone(timeout_ms)

    def _on_succeeded(self, request_id: int, result: object) -> None:
        handlers = self._handlers.get(request_id)
        self.forget(request_id)
        if handlers is not None:
            handlers[0](result)

    def _on_failed(self, request_id: int, message: str) -> None:
        handlers = self._handlers.get(request_id)
        self.forget(request_id)
        if handlers is not None:
            handlers[1](message)

    def _on_progressed(self, request_id: int, fraction: float, text: str) -> None:
        handler = self._progress_handlers.get(request_id)
        if handler is not None:
            handler(fraction, text)
