"""Case → Compare with prior…: pick a prior, register in the worker with a progress dialog and
Cancel, then show (and keep up to date) the follow-up window. The main window only holds one
:class:`FollowUpFlow` and asks it :meth:`~FollowUpFlow.has_priors` for its action's state."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QDialog, QProgressDialog, QWidget

from meddiag_desktop.app.follow_up_controller import ComparisonView, FollowUpController
from meddiag_desktop.app.follow_up_view import FollowUpWindow, PriorDialog
from meddiag_desktop.db.comparison_records import MatchOverride
from meddiag_desktop.db.priors import PriorCase, find_priors
from meddiag_desktop.domain import Volume
from meddiag_desktop.followup.comparison import ComparisonOutcome

if TYPE_CHECKING:
    from meddiag_desktop.db.engine import Database

log = logging.getLogger(__name__)


class FollowUpFlow(QObject):
    """Owns the follow-up controller, the progress dialog and the follow-up window."""

    def __init__(
        self,
        database: Database,
        parent: QWidget,
        show_error: Callable[[str], None],
        status: Callable[[str], None],
        changed: Callable[[], None],
    ) -> None:
        super().__init__(parent)
        self._db = database
        self._parent = parent
        self._show_error = show_error
        self._status = status
        self._changed = changed
        self.controller = FollowUpController(database, self)
        self.window: FollowUpWindow | None = None
        self.progress: QProgressDialog | None = None
        self.dialog: PriorDialog | None = None
        self._priors: dict[int, tuple[PriorCase, ...]] = {}
        c = self.controller
        c.progressed.connect(self._progressed)
        c.compared.connect(self._compared)
        c.revised.connect(self._revised)
        c.failed.connect(self._failed)
        c.cancelled.connect(self._cancelled)

    @property
    def running(self) -> bool:
        return self.controller.running

    def priors(self, case_id: int, refresh: bool = False) -> tuple[PriorCase, ...]:
        if refresh or case_id not in self._priors:
            try:
                self._priors[case_id] = find_priors(self._db, case_id)
            except Exception:  # a case gone from the database: nothing to compare with
                log.exception("could not list the priors of case %d", case_id)
                self._priors[case_id] = ()
        return self._priors[case_id]

    def has_priors(self, case_id: int) -> bool:
        return bool(self.priors(case_id))

    def ask(self, case_id: int, current: Volume | None) -> None:
        """The list of priors; the one picked is compared (the dialog is non-modal)."""
        self.dialog = PriorDialog(self.priors(case_id, refresh=True), self._parent)
        dialog = self.dialog

        def chosen(result: int) -> None:
            prior = dialog.chosen_case_id()
            if result == QDialog.DialogCode.Accepted and prior is not None:
                self.compare(case_id, prior, current, dialog.affine_box.isChecked())

        dialog.finished.connect(chosen)
        dialog.open()

    def compare(
        self, case_id: int, prior_case_id: int, current: Volume | None, affine: bool = False
    ) -> None:
        if self.running:
            return
        progress = QProgressDialog(
            f"Registering case {prior_case_id} to case {case_id} …", "Cancel", 0, 100, self._parent
        )
        progress.setWindowTitle("Compare with prior")
        progress.setWindowModality(Qt.WindowModality.WindowModal)
        progress.setAutoClose(False)
        progress.setAutoReset(False)
        progress.setMinimumDuration(0)
        progress.canceled.connect(self.controller.cancel)
        progress.show()
        self.progress = progress
        self.controller.compare(case_id, prior_case_id, current, affine)
        self._status(f"Comparing case {case_id} with case {prior_case_id} …")
        self._changed()

    def cancel(self) -> None:
        self.controller.cancel()

    def shutdown(self) -> None:
        self.controller.shutdown()
        if self.window is not None:
            self.window.close()

    def _progressed(self, fraction: float, text: str) -> None:
        if self.progress is not None:
            self.progress.setValue(round(100 * fraction))
            self.progress.setLabelText(text)

    def _end_progress(self) -> None:
        if self.progress is not None:
            self.progress.canceled.disconnect(self.controller.cancel)
            self.progress.close()
            self.progress.deleteLater()
            self.progress = None
        if self.window is not None:
            self.window.set_busy(False)
        self._changed()

    def _compared(self, shown: ComparisonView) -> None:
        self._end_progress()
        if self.window is None:
            self.window = FollowUpWindow(self._parent)
            self.window.override_requested.connect(self._override)
            self.window.targets_requested.connect(self._retarget)
            self.window.resize(1400, 900)
        self.window.show_comparison(shown)
        self.window.show()
        self.window.raise_()
        outcome = shown.outcome
        self._status(
            f"Case {outcome.case_id} compared with case {outcome.prior_case_id}: "
            f"{outcome.recist.response.value}"
        )

    def _override(self, comparison_id: int, override: MatchOverride) -> None:
        if self.running:
            return
        if self.window is not None:
            self.window.set_busy(True)
        self.controller.revise(comparison_id, override)
        self._changed()

    def _retarget(self, comparison_id: int, targets: tuple[int, ...]) -> None:
        if self.running:
            return
        if self.window is not None:
            self.window.set_busy(True)
        self.controller.retarget(comparison_id, targets)
        self._changed()

    def _revised(self, outcome: ComparisonOutcome) -> None:
        self._end_progress()
        if self.window is not None:
            self.window.show_outcome(outcome)
        self._status(f"Correction stored: {outcome.recist.response.value}")

    def _failed(self, message: str) -> None:
        self._end_progress()
        self._show_error(message)

    def _cancelled(self) -> None:
        self._end_progress()
        self._status("Comparison cancelled; nothing was stored.")
