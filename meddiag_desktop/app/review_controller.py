"""The radiologist's decisions on one case, written through ``db.reviews`` as the acting user.

Widgets only emit requests (accept this finding, sign off); this controller turns them into
database writes and answers with the case as it now is, so every view shows what was saved, not
what it assumed. Each write takes milliseconds (PITFALLS.md), so it runs on the GUI thread.
Refusals the user can cause (unreviewed findings at sign-off, a signed case, a user who may not
sign) come back as ``review_failed`` with the database's one-line reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from PySide6.QtCore import QObject, Signal

from meddiag_desktop.db import cases, reviews
from meddiag_desktop.db.engine import Database
from meddiag_desktop.db.errors import CaseDatabaseError
from meddiag_desktop.db.records import CaseDetail, MaskEdit, ReviewStatus
from meddiag_desktop.domain import Finding, FindingSource

NO_CASE = "Open a case first."


def readable(exc: BaseException) -> str:
    """The database's message as a sentence: capitalised, ending with a full stop."""
    text = str(exc).strip() or type(exc).__name__
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


class ReviewController(QObject):
    """Loads a case and records accept/reject/edit/manual/sign-off decisions on it."""

    case_loaded = Signal(object)  # CaseDetail: a different case is now open
    case_changed = Signal(object)  # CaseDetail: the open case after a decision was saved
    review_failed = Signal(str)  # why a request was refused or could not be saved

    def __init__(self, database: Database, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._db = database
        self._case: CaseDetail | None = None

    @property
    def database(self) -> Database:
        return self._db

    @property
    def actor(self) -> str:
        return self._db.actor

    @property
    def case(self) -> CaseDetail | None:
        return self._case

    def set_actor(self, username: str) -> None:
        """Work as another user from now on (after a log-in)."""
        self._db = self._db.acting_as(username)

    def load_case(self, case_id: int) -> bool:
        """Open a case; ``case_loaded`` on success, ``review_failed`` otherwise."""
        try:
            detail = cases.get_case(self._db, case_id)
        except CaseDatabaseError as exc:
            self.review_failed.emit(readable(exc))
            return False
        self._case = detail
        self.case_loaded.emit(detail)
        return True

    def reload(self) -> bool:
        """Read the open case again (a model run or another window may have changed it)."""
        return self._change(lambda _case_id: None)

    def accept(self, finding_pk: int) -> bool:
        return self._change(
            lambda _case_id: reviews.review_finding(self._db, finding_pk, ReviewStatus.ACCEPTED)
        )

    def reject(self, finding_pk: int, reason: str = "") -> bool:
        return self._change(
            lambda _case_id: reviews.review_finding(
                self._db, finding_pk, ReviewStatus.REJECTED, reason=reason.strip()
            )
        )

    def edit(
        self, finding_pk: int, finding: Finding, reason: str = "", mask: MaskEdit | None = None
    ) -> bool:
        """Replace a finding's measurements (after the lesion was re-drawn); ``mask``, the
        edited label map, is saved with them as a new mask version."""
        return self._change(
            lambda _case_id: reviews.review_finding(
                self._db,
                finding_pk,
                ReviewStatus.EDITED,
                reason=reason.strip(),
                edited=finding,
                mask=mask,
            )
        )

    def add_manual(self, finding: Finding, mask: MaskEdit | None = None) -> bool:
        """Add a lesion the radiologist marked; it is stored as manual and accepted, with the
        label map it was painted in (``mask``) as a new mask version."""
        manual = replace(finding, source=FindingSource.MANUAL)
        return self._change(
            lambda case_id: reviews.add_manual_finding(self._db, case_id, manual, mask)
        )

    def sign_off(self) -> bool:
        return self._change(lambda case_id: reviews.sign_case(self._db, case_id))

    def _change(self, write: Callable[[int], object]) -> bool:
        """Apply ``write`` to the open case, then re-read it and announce what is saved.

        After a refusal the case is re-read too: the refusal may come from another window's
        change (a sign-off elsewhere), and the panels should show that state, not the old one.
        """
        if self._case is None:
            self.review_failed.emit(NO_CASE)
            return False
        case_id = self._case.case_id
        try:
            write(case_id)
        except CaseDatabaseError as exc:
            self.review_failed.emit(readable(exc))
            self._refresh(case_id)
            return False
        return self._refresh(case_id)

    def _refresh(self, case_id: int) -> bool:
        try:
            detail = cases.get_case(self._db, case_id)
        except CaseDatabaseError as exc:
            self.review_failed.emit(readable(exc))
            return False
        self._case = detail
        self.case_changed.emit(detail)
        return True
