"""The question before a sign-off: this patient, this study and series, these decisions?

Signing locks a case for good, and it used to happen in one click. Now the reader sees what
they are about to sign (patient, study, series, the model run, every finding with its decision
and reason) and confirms; Cancel (the default button, so a stray Enter signs nothing) leaves
the case as it was. :func:`sign_off_summary` builds what is shown from the saved
:class:`CaseDetail`, so the dialog lists what the database holds, not what a widget assumed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from meddiag_desktop.app.findings_panel import REVIEW_COLOURS, REVIEW_TEXT, case_findings
from meddiag_desktop.db.records import CaseDetail, Review, ReviewStatus
from meddiag_desktop.domain import FindingSource
from meddiag_desktop.viewer.mpr_viewer import dicom_date_text

SignOffConfirm = Callable[[QWidget, CaseDetail, str], bool]  # parent, case, signer -> sign?
FINDING_COLUMNS = ("#", "Finding", "Size", "Decision", "By", "Reason")


@dataclass(frozen=True)
class SignedFinding:
    """One row of the confirmation: a finding and the decision the signature makes final."""

    number: str
    label: str
    size: str
    decision: ReviewStatus
    reviewer: str
    reason: str


@dataclass(frozen=True)
class SignOffSummary:
    """Everything the confirmation lists, as text."""

    patient: str
    study: str
    series: str
    model_run: str
    findings: tuple[SignedFinding, ...]
    signer: str

    @property
    def counts(self) -> str:
        """'3 findings: 1 accepted, 1 rejected, 1 edited' (and how many were added by hand)."""
        total = len(self.findings)
        by_decision = [
            f"{sum(f.decision is status for f in self.findings)} {REVIEW_TEXT[status].lower()}"
            for status in (ReviewStatus.ACCEPTED, ReviewStatus.REJECTED, ReviewStatus.EDITED)
            if any(f.decision is status for f in self.findings)
        ]
        noun = "finding" if total == 1 else "findings"
        return f"{total} {noun}" + (f": {', '.join(by_decision)}" if by_decision else "")


def sign_off_summary(case: CaseDetail, signer: str) -> SignOffSummary:
    """What signing ``case`` as ``signer`` makes final."""
    s = case.summary
    name = s.patient_name.replace("^", ", ").strip(", ") or "unnamed"
    patient = f"{name}  ·  ID {s.patient_id or '—'}"
    born = f"born {dicom_date_text(s.patient_birth_date)}" if s.patient_birth_date else ""
    sex = f"sex {s.patient_sex}" if s.patient_sex else ""
    extras = [part for part in (born, sex) if part]
    if extras:
        patient += "  ·  " + ", ".join(extras)
    study = f"{s.study_date or 'no date'}  ·  {s.study_description or 'no description'}"
    series = f"{s.modality or '?'}  ·  {s.series_description or 'no description'}"
    run = case.current_run
    model_run = (
        "none"
        if run is None
        else f"{run.model_name} {run.model_version}, {run.finished_at.astimezone():%Y-%m-%d %H:%M}"
    )
    latest: dict[int, Review] = {}
    for decision in case.reviews:  # oldest first: the last one per finding is in force
        latest[decision.finding_pk] = decision
    rows = []
    for stored in case_findings(case):
        f = stored.finding
        manual = f.source is FindingSource.MANUAL
        review = latest.get(stored.finding_pk)
        rows.append(
            SignedFinding(
                number=("M" if manual else "") + str(f.finding_id),
                label=f.label_name + (" (added by hand)" if manual else ""),
                size=f"{f.volume_ml:.2f} mL, {f.long_axis_mm:.1f} × {f.short_axis_mm:.1f} mm",
                decision=stored.review_status,
                reviewer=review.reviewer if review is not None else "",
                reason=review.reason if review is not None else "",
            )
        )
    return SignOffSummary(patient, study, series, model_run, tuple(rows), signer)


class SignOffDialog(QDialog):
    """Lists what is being signed; ``Sign off`` accepts, ``Cancel`` (the default) rejects."""

    def __init__(self, summary: SignOffSummary, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.summary = summary
        self.setWindowTitle("Sign off this case?")
        heading = QLabel(f"<b>Sign off as {summary.signer}?</b>")
        form = QFormLayout()
        for label, value in (
            ("Patient", summary.patient),
            ("Study", summary.study),
            ("Series", summary.series),
            ("Model run", summary.model_run),
            ("Findings", summary.counts),
        ):
            shown = QLabel(value)
            shown.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            form.addRow(f"{label}:", shown)

        self.table = QTableWidget(len(summary.findings), len(FINDING_COLUMNS))
        self.table.setObjectName("signOffFindings")
        self.table.setHorizontalHeaderLabels(FINDING_COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setWordWrap(False)
        for row, finding in enumerate(summary.findings):
            cells = (
                finding.number,
                finding.label,
                finding.size,
                REVIEW_TEXT[finding.decision],
                finding.reviewer,
                finding.reason,
            )
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if column == 3:
                    item.setForeground(REVIEW_COLOURS[finding.decision])
                self.table.setItem(row, column, item)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)

        warning = QLabel(
            "Signing locks the case: no decision can be changed and no model can run on it "
            "afterwards. Not for clinical use."
        )
        warning.setObjectName("signOffWarning")
        warning.setWordWrap(True)

        self.buttons = QDialogButtonBox()
        self.sign_button = QPushButton("Sign off")
        self.cancel_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.buttons.addButton(self.sign_button, QDialogButtonBox.ButtonRole.AcceptRole)
        self.sign_button.setAutoDefault(False)
        self.cancel_button.setDefault(True)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(heading)
        layout.addLayout(form)
        layout.addWidget(self.table, 1)
        layout.addWidget(warning)
        layout.addWidget(self.buttons)
        self.resize(720, 260 + 30 * min(len(summary.findings), 12))


def ask_to_sign_off(parent: QWidget, case: CaseDetail, signer: str) -> bool:
    """The default confirmation: the dialog, modal; True only when the reader chose Sign off."""
    dialog = SignOffDialog(sign_off_summary(case, signer), parent)
    return dialog.exec() == QDialog.DialogCode.Accepted
