"""Case → History: who did what to this case, when, and why, inside the app.

Before, only ``meddiag cases show`` told a reader who rejected a finding and why. The history
is built from the database layer's domain records only: the :class:`CaseDetail` (model runs,
every review decision with its reviewer, time and reason, the sign-off) and the case's audit
events (:func:`meddiag_desktop.db.audit.case_history`: the import, every opening, the manual
findings, whose rows carry no author, saved outline edits and every export). Oldest first, as it
happened.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from meddiag_desktop.app.findings_panel import REVIEW_COLOURS, REVIEW_TEXT
from meddiag_desktop.db.records import AuditAction, AuditEvent, CaseDetail, ReviewStatus
from meddiag_desktop.domain import Finding
from meddiag_desktop.inference.cpu_runtime import runtime_label

HISTORY_COLUMNS = ("When", "Who", "What", "Finding", "Why / details")


@dataclass(frozen=True)
class HistoryEntry:
    """One thing that happened to the case."""

    when: datetime
    who: str
    what: str
    finding: str  # "#2", "M1" or "" when about the whole case
    why: str
    decision: ReviewStatus | None = None  # for review decisions: colours the row like the panel


def _runtime_text(runtime: object) -> str:
    """' (OpenVINO, float32)' from a run's stored provenance ('' for older runs)."""
    label = runtime_label(runtime)
    return f" ({label})" if label else ""


def _signer_text(signature: object) -> str:
    """Who signed the model of a run, from its stored provenance ('' for older runs)."""
    if not isinstance(signature, dict):
        return ""
    if signature.get("status") == "signed":
        return f"; signed by {signature.get('signer')} (key {signature.get('key_id')})"
    return "; UNSIGNED model (allowed by an admin)"


def history_entries(case: CaseDetail, events: Sequence[AuditEvent] = ()) -> list[HistoryEntry]:
    """Every model run, review decision, manual finding and the sign-off of ``case``."""
    numbers: dict[int, str] = {}
    for run in case.runs:
        for stored in run.findings:
            numbers[stored.finding_pk] = f"#{stored.finding.finding_id}"
    for stored in case.manual_findings:
        numbers[stored.finding_pk] = f"M{stored.finding.finding_id}"

    entries = [
        HistoryEntry(
            run.finished_at,
            run.actor,
            f"Model run {run.outcome.value}",
            "",
            f"{run.model_name} {run.model_version} on {run.provider.upper() or '?'}"
            + _runtime_text(run.parameters.get("runtime"))
            + ": "
            f"{len(run.findings)} finding(s)" + (f"; {run.error}" if run.error else "")
            + _signer_text(run.parameters.get("signature")),
        )
        for run in case.runs
    ]
    for review in case.reviews:
        why = review.reason
        if review.decision is ReviewStatus.EDITED:
            why = _edit_text(review.previous_finding, review.edited_finding) + (
                f"; {review.reason}" if review.reason else ""
            )
        entries.append(
            HistoryEntry(
                review.decided_at,
                review.reviewer,
                f"{REVIEW_TEXT[review.decision]} (was {REVIEW_TEXT[review.previous_status]})",
                numbers.get(review.finding_pk, f"finding {review.finding_pk}"),
                why,
                review.decision,
            )
        )
    for event in events:
        logged = _logged_entry(event)
        if logged is not None:
            entries.append(logged)
        elif event.action is AuditAction.FINDING_ADDED:
            volume = event.details.get("volume_ml")
            size = f", {volume:.2f} mL" if isinstance(volume, int | float) else ""
            entries.append(
                HistoryEntry(
                    event.occurred_at,
                    event.actor,
                    "Added by hand",
                    numbers.get(_int(event.object_id), ""),
                    f"{event.details.get('label', 'lesion')}{size}",
                )
            )
    if case.signed_at is not None:
        entries.append(
            HistoryEntry(case.signed_at, case.signed_by or "?", "Signed off; case locked", "", "")
        )
    return sorted(entries, key=lambda entry: entry.when)


def _logged_entry(event: AuditEvent) -> HistoryEntry | None:
    """Import, opening, saved outline and export: known only from the audit log."""
    details = event.details
    if event.action is AuditAction.CASE_IMPORTED:
        why = str(details.get("location") or "")
    elif event.action is AuditAction.CASE_VIEWED:
        why = ""
    elif event.action is AuditAction.MASK_EDIT_SAVED:
        why = f"{details.get('labelled_voxels', '?')} labelled voxel(s)"
    elif event.action is AuditAction.REPORT_EXPORTED:
        files = details.get("files") or ()
        names = ", ".join(Path(str(f.get("name", "?"))).name for f in files if isinstance(f, dict))
        draft = " (DRAFT)" if details.get("draft") else ""
        why = f"{names or 'nothing'}{draft} to {details.get('folder', '?')}"
    else:
        return None
    return HistoryEntry(event.occurred_at, event.actor, _LOGGED_TEXT[event.action], "", why)


_LOGGED_TEXT = {
    AuditAction.CASE_IMPORTED: "Imported",
    AuditAction.CASE_VIEWED: "Opened",
    AuditAction.MASK_EDIT_SAVED: "Outline edit saved",
    AuditAction.REPORT_EXPORTED: "Exported",
}


def _edit_text(before: Finding | None, after: Finding | None) -> str:
    if before is None or after is None:
        return "outline edited"
    return (
        f"outline edited: {before.volume_ml:.2f} → {after.volume_ml:.2f} mL, "
        f"{before.long_axis_mm:.1f} → {after.long_axis_mm:.1f} mm"
    )


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return -1


class CaseHistoryDialog(QDialog):
    """The history as a table, newest at the bottom; non-modal, refreshed by :meth:`show_case`."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Case history")
        self.title = QLabel()
        self.table = QTableWidget(0, len(HISTORY_COLUMNS))
        self.table.setObjectName("caseHistory")
        self.table.setHorizontalHeaderLabels(HISTORY_COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)
        self.entries: list[HistoryEntry] = []
        self.resize(860, 420)

    def show_case(self, case: CaseDetail, events: Sequence[AuditEvent] = ()) -> None:
        s = case.summary
        name = s.patient_name.replace("^", ", ").strip(", ") or "unnamed"
        self.title.setText(
            f"<b>Case {case.case_id}</b>: {name} ({s.patient_id or 'no ID'}), "
            f"{s.study_date or 'no date'}, {s.series_description or s.modality or 'series'}"
        )
        self.entries = history_entries(case, events)
        self.table.setRowCount(len(self.entries))
        for row, entry in enumerate(self.entries):
            cells = (
                f"{entry.when.astimezone():%Y-%m-%d %H:%M:%S}",
                entry.who,
                entry.what,
                entry.finding,
                entry.why,
            )
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if column == 2 and entry.decision is not None:
                    item.setForeground(REVIEW_COLOURS[entry.decision])
                self.table.setItem(row, column, item)

    def cell(self, row: int, column: int) -> str:
        """The text shown at (row, column), for tests and screen readers."""
        item = self.table.item(row, column)
        return item.text() if item is not None else ""
