"""Write one case's review outputs off the GUI thread: PDF, SEG, SR, NIfTI, CSV, JSON.

:func:`meddiag_desktop.export.write_outputs.export_case` renders key images and builds DICOM
objects, which takes seconds on a large CT, so it runs on the app's
:class:`~meddiag_desktop.app.background.BackgroundRunner` and reports its
:class:`~meddiag_desktop.domain.Progress` back as queued signals; the window shows them in the
status bar like a model run. One export runs at a time. Cancel is checked at each progress step
and stops the exporter there by raising from its progress callback; the exporter writes every
file under a temporary name first, so a stopped or failed export leaves no half-written file.

The exporter's refusals (:class:`ExportError`: a case without a run, a folder that cannot be
written) come back as ``export_failed`` with its one-line reason, never a traceback. One refusal
is a question instead: a de-identified export of images whose pixels may show the patient's
name (burned-in annotation) is asked about (``confirm_burned_in``), and runs again confirmed
when the reader says yes. The audit
event (who, which files, their sha256) is the exporter's own; the user it names is the one the
request's database acts as, so the window passes the review controller's database.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QMessageBox

from meddiag_desktop.app.background import BackgroundRunner
from meddiag_desktop.app.export_dialog import ExportChoices
from meddiag_desktop.db.engine import Database
from meddiag_desktop.domain import Progress

if TYPE_CHECKING:
    from meddiag_desktop.export.write_outputs import ExportResult


@dataclass(frozen=True, eq=False)
class ExportRequest:
    """One export: which case, as whom (``database``'s actor), and the dialog's choices."""

    database: Database
    case_id: int
    choices: ExportChoices
    allow_burned_in: bool = False  # the reader confirmed images with burned-in text


class ExportCancelled(Exception):
    """Raised from the exporter's progress callback when the reader pressed Cancel."""


@dataclass(frozen=True)
class _Refused:
    """The exporter's own refusal, carried back as a result so its words reach the reader."""

    message: str
    burned_in: bool = False  # a de-identified export refused for burned-in text: ask


def ask_about_burned_in(message: str) -> bool:
    """The reader's answer to exporting images whose pixels may show identifying text."""
    answer = QMessageBox.question(
        None,
        "Burned-in annotation",
        f"{message}\n\nExport these images anyway?",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.No,
    )
    return answer == QMessageBox.StandardButton.Yes


def open_in_file_manager(folder: Path) -> bool:
    """Show ``folder`` in the desktop's file manager; False when the desktop could not."""
    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))


def failure_message(case_id: int, reason: str) -> str:
    """'Case 12 was not exported. <Reason>.' as one line (the case named once, not twice)."""
    reason = " ".join(reason.split()) or "no reason was given"
    reason = reason[:1].upper() + reason[1:]
    if not reason.endswith((".", "!", "?")):
        reason += "."
    if f"case {case_id} " in reason.lower():
        return f"Not exported. {reason}"
    return f"Case {case_id} was not exported. {reason}"


class ExportController(QObject):
    """Starts, cancels and reports exports; one at a time."""

    export_started = Signal(int)  # case id
    progress_changed = Signal(float, str)  # fraction 0..1, what is being written
    export_finished = Signal(object)  # ExportResult
    export_failed = Signal(int, str)  # case id, readable message
    export_cancelled = Signal(int)  # case id

    def __init__(self, parent: QObject | None = None, runner: BackgroundRunner | None = None):
        super().__init__(parent)
        self._runner = runner or BackgroundRunner(self, max_threads=1)
        self._busy = False
        self._case_id: int | None = None
        self._cancel = threading.Event()
        # Opens the folder named at the end; a test replaces it to see the request.
        self.open_folder: Callable[[Path], object] = open_in_file_manager
        # Asks whether to export images with burned-in text anyway; a test replaces it.
        self.confirm_burned_in: Callable[[str], bool] = ask_about_burned_in
        self._request: ExportRequest | None = None

    @property
    def running(self) -> bool:
        return self._busy

    @property
    def case_id(self) -> int | None:
        """The case of the export in flight (or of the last one)."""
        return self._case_id

    def export(self, request: ExportRequest) -> bool:
        """Start ``request``; False (and nothing started) while another export runs."""
        if self.running:
            return False
        cancel = threading.Event()
        self._cancel, self._case_id, self._request = cancel, request.case_id, request
        choices = request.choices

        def job(progress: Callable[[Progress], None]) -> ExportResult | _Refused | ExportCancelled:
            def report(step: Progress) -> None:
                if cancel.is_set():
                    raise ExportCancelled
                progress(step)

            # Imported here: reportlab, highdicom and matplotlib load on the first export, not
            # every time the window opens.
            from meddiag_desktop.deid import DeidError, parse_options
            from meddiag_desktop.export.deidentified import BurnedInRefused, DeidRequest
            from meddiag_desktop.export.write_outputs import ExportError, export_case

            try:
                deidentify = DeidRequest(
                    options=parse_options(choices.deid_options),
                    images=choices.include_images,
                    allow_burned_in=request.allow_burned_in,
                ) if choices.deidentify else None
                return export_case(
                    request.database,
                    request.case_id,
                    choices.out_dir,
                    outputs=choices.outputs,
                    progress=report,
                    page_size=choices.page_size,
                    deidentify=deidentify,
                )
            except BurnedInRefused as exc:
                return _Refused(str(exc), burned_in=True)
            except (ExportError, DeidError) as exc:
                return _Refused(str(exc))
            except ExportCancelled as exc:
                return exc

        case_id = request.case_id
        self._busy = True
        self.export_started.emit(case_id)  # before the job starts: a Cancel here stops it first
        self._runner.submit(
            job,
            lambda outcome: self._ended(case_id, outcome),
            lambda message: self._ended(case_id, _Refused(message)),
            self.progress_changed.emit,
        )
        return True

    def cancel(self) -> None:
        """Stop the export in flight at its next step; ``export_cancelled`` follows. (The flag
        belongs to the latest export only, so setting it after that one ended changes nothing.)"""
        self._cancel.set()

    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """Stop and wait (on close: no thread outlives the window, no file is left half-done)."""
        self._cancel.set()
        return self._runner.wait(timeout_ms)

    def _ended(self, case_id: int, outcome: object) -> None:
        self._busy = False
        request = self._request
        if (
            isinstance(outcome, _Refused)
            and outcome.burned_in
            and request is not None
            and not request.allow_burned_in
            and self.confirm_burned_in(outcome.message)
        ):
            self.export(replace(request, allow_burned_in=True))
            return
        if isinstance(outcome, _Refused):
            self.export_failed.emit(case_id, failure_message(case_id, outcome.message))
        elif isinstance(outcome, ExportCancelled):
            self.export_cancelled.emit(case_id)
        else:
            self.export_finished.emit(outcome)
