"""The findings of the open case and the reader's decisions on them, one key press each.

The panel shows what the database holds (a :class:`CaseDetail`) and only *asks* for changes:
accept, reject, edit, add and sign off are signals the window passes to the review controller,
which saves them and hands the panel the updated case. So the panel never shows a decision that
was not saved. After an accept or reject the next pending finding is selected, so a reader can
go through a case with A and R alone; the viewer follows ``finding_selected``.

The review keys (from :mod:`meddiag_desktop.viewer.keymap`) work anywhere in the window the
panel sits in, not only while the panel has the focus: a reader looks at the image, not at the
table. Text fields still take plain letters as typing.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum
from functools import partial

from PySide6.QtCore import QItemSelection, QModelIndex, QObject, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QAction, QColor, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QSizePolicy,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from meddiag_desktop.app.record_table_model import RIGHT, RecordTableModel, TableColumn
from meddiag_desktop.db.records import CaseDetail, ModelRun, ReviewStatus, StoredFinding
from meddiag_desktop.domain import FindingSource
from meddiag_desktop.viewer.keymap import bind_action

AnyIndex = QModelIndex | QPersistentModelIndex
ReasonPrompt = Callable[[QWidget, StoredFinding], str | None]  # None: the reader cancelled

CLINICAL_HINT = "Not for clinical use: AI findings are suggestions for a qualified reader to check."
NO_CASE_TEXT = "Open a case to review its findings."


class Column(IntEnum):
    NUMBER = 0
    LABEL = 1
    VOLUME = 2
    AXES = 3
    MEAN = 4
    CONFIDENCE = 5
    REVIEW = 6


# Short headers: the panel sits beside the images and is ~450 px wide; tooltips say the rest.
HEADERS = ("#", "Label", "mL", "Axes (mm)", "HU", "Conf.", "Review")
HEADER_TIPS = (
    "Finding number (M: marked by hand)",
    "What the model calls it, in its overlay colour",
    "Volume in millilitres",
    "Longest axial diameter × the longest diameter perpendicular to it (RECIST), in mm",
    "Mean intensity inside the lesion",
    "The model's highest probability inside the lesion",
    "Review state",
)
REVIEW_TEXT = {
    ReviewStatus.PENDING: "Pending",
    ReviewStatus.ACCEPTED: "Accepted",
    ReviewStatus.REJECTED: "Rejected",
    ReviewStatus.EDITED: "Edited",
}
REVIEW_COLOURS = {
    ReviewStatus.PENDING: QColor("#e3b341"),
    ReviewStatus.ACCEPTED: QColor("#6cc283"),
    ReviewStatus.REJECTED: QColor("#ff7b72"),
    ReviewStatus.EDITED: QColor("#6aa6e0"),
}
_REJECTED_TEXT = QColor("#7d8590")


def case_findings(case: CaseDetail) -> list[StoredFinding]:
    """What the reader reviews: the current run's AI findings, then the manual ones."""
    run = case.current_run
    return [*(run.findings if run is not None else ()), *case.manual_findings]


def run_label_colours(run: ModelRun | None) -> dict[int, str]:
    """Label colours from the card stored with the run (``parameters['output']['labels']``)."""
    if run is None:
        return {}
    output = run.parameters.get("output")
    labels = output.get("labels", []) if isinstance(output, dict) else []
    colours = {}
    for label in labels:
        if isinstance(label, dict) and "value" in label and "colour" in label:
            colours[int(label["value"])] = str(label["colour"])
    return colours


def finding_number(stored: StoredFinding) -> str:
    prefix = "M" if stored.finding.source is FindingSource.MANUAL else ""
    return f"{prefix}{stored.finding.finding_id}"


def cell_text(stored: StoredFinding, column: Column) -> str:
    finding = stored.finding
    if column is Column.NUMBER:
        return finding_number(stored)
    if column is Column.LABEL:
        return finding.label_name
    if column is Column.VOLUME:
        return f"{finding.volume_ml:.2f}"
    if column is Column.AXES:
        return f"{finding.long_axis_mm:.1f} × {finding.short_axis_mm:.1f}"
    if column is Column.MEAN:
        return f"{finding.mean_intensity:.0f}"
    if column is Column.CONFIDENCE:
        manual = finding.source is FindingSource.MANUAL
        return "—" if manual else f"{finding.max_probability:.0%}"
    return REVIEW_TEXT[stored.review_status]


def sign_off_state(case: CaseDetail | None) -> tuple[bool, str]:
    """Whether the case can be signed now and, either way, a sentence saying why."""
    if case is None:
        return False, NO_CASE_TEXT
    if case.signed_at is not None:
        when = case.signed_at.astimezone().strftime("%Y-%m-%d %H:%M")
        return False, f"Signed by {case.signed_by or 'unknown'} on {when}; the case is locked."
    if case.current_run is None:
        return False, "Run a model on this case before signing it off."
    pending = case.unreviewed_findings
    if pending:
        numbers = ", ".join(f"#{f.finding.finding_id}" for f in pending[:8])
        more = ", …" if len(pending) > 8 else ""
        noun = "finding is" if len(pending) == 1 else "findings are"
        return False, (
            f"{len(pending)} AI {noun} not reviewed yet ({numbers}{more}): accept, reject or "
            "edit each before signing off."
        )
    return True, "Every AI finding is reviewed: the case can be signed off."


def ask_reject_reason(parent: QWidget, stored: StoredFinding) -> str | None:
    """A small dialog for an optional reason; None when the reader changes their mind."""
    text, ok = QInputDialog.getText(
        parent,
        f"Reject finding #{finding_number(stored)}",
        "Why is this not a lesion? (optional, kept in the case history)",
    )
    return text if ok else None


class FindingsTableModel(RecordTableModel[StoredFinding]):
    """Read-only rows of stored findings with their review state."""

    def __init__(self, parent: QObject | None = None) -> None:
        self._colours: dict[int, QColor] = {}
        self._intensity_header = HEADERS[Column.MEAN]
        columns = [
            TableColumn[StoredFinding](
                header,
                partial(cell_text, column=column),
                header_tip=HEADER_TIPS[column],
                alignment=RIGHT if column in _NUMERIC else None,
                foreground=_review_colour if column is Column.REVIEW else None,
                decoration=self._swatch if column is Column.LABEL else None,
            )
            for column, header in zip(Column, HEADERS, strict=True)
        ]
        super().__init__(columns, key=lambda stored: stored.finding_pk, parent=parent)

    def set_findings(
        self, findings: list[StoredFinding], colours: dict[int, str], modality: str
    ) -> None:
        self._colours = {label: QColor(colour) for label, colour in colours.items()}
        self._intensity_header = "HU" if modality.upper() in ("CT", "") else "Mean"
        self.set_records(findings)

    def finding_at(self, row: int) -> StoredFinding:
        return self.record_at(row)

    def header_text(self, section: int) -> str:
        return self._intensity_header if section == Column.MEAN else HEADERS[section]

    def record_tooltip(self, record: StoredFinding) -> str:
        return _tooltip(record)

    def record_foreground(self, record: StoredFinding) -> QColor | None:
        return _REJECTED_TEXT if record.review_status is ReviewStatus.REJECTED else None

    def _swatch(self, stored: StoredFinding) -> QColor | None:
        return self._colours.get(stored.finding.label)  # a swatch, when the card says


_NUMERIC = (Column.NUMBER, Column.VOLUME, Column.AXES, Column.MEAN, Column.CONFIDENCE)


def _review_colour(stored: StoredFinding) -> QColor:
    return REVIEW_COLOURS[stored.review_status]


def _tooltip(stored: StoredFinding) -> str:
    finding = stored.finding
    x, y, z = finding.centroid_lps_mm
    source = "manual" if finding.source is FindingSource.MANUAL else "AI"
    lines = [
        f"Finding #{finding_number(stored)} ({source}): {finding.label_name}",
        f"{finding.volume_ml:.3f} mL, {finding.voxel_count} voxels",
        f"Centre (LPS): {x:.1f}, {y:.1f}, {z:.1f} mm",
        f"Intensity: mean {finding.mean_intensity:.0f}, max {finding.max_intensity:.0f}",
    ]
    if finding.source is FindingSource.AI:
        lines.append(
            f"Model probability: max {finding.max_probability:.2f}, "
            f"mean {finding.mean_probability:.2f}"
        )
    return "\n".join(lines)


class FindingsPanel(QWidget):
    """Findings table, review buttons (A / R / E), sign-off with its reason, clinical notice."""

    finding_selected = Signal(object)  # StoredFinding: the viewer jumps to it
    accept_requested = Signal(int)  # finding_pk
    reject_requested = Signal(int, str)  # finding_pk, reason ("" when none given)
    edit_requested = Signal(int)  # finding_pk: the window hands the lesion to the brush
    add_manual_requested = Signal()
    sign_off_requested = Signal()
    history_requested = Signal()

    def __init__(
        self, reason_prompt: ReasonPrompt = ask_reject_reason, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.reason_prompt = reason_prompt
        self._case: CaseDetail | None = None
        self._advance_after_review = False
        self._review_refused = ""  # what the user's role forbids (set_refusals); "": allowed
        self._sign_refused = ""

        self.title = QLabel("Findings")
        self.title.setObjectName("panelTitle")
        self.run_label = QLabel()
        self.run_label.setObjectName("findingsRun")
        # Two short lines, not word wrap: a wrapped label in a splitter pane gets one line's
        # height and is clipped. A long model name is cut at the pane's edge (full text in the
        # tooltip) rather than widening the pane.
        self.run_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        _dim(self.run_label)

        self.model = FindingsTableModel(self)
        self.table = QTableView()
        self.table.setObjectName("findingsTable")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        self.table.clicked.connect(self._clicked)

        self.accept_action = self._action("Accept", "review.accept", "Accept the selected finding")
        self.reject_action = self._action(
            "Reject", "review.reject", "Reject the selected finding (asks for an optional reason)"
        )
        self.edit_action = self._action("Edit", "review.edit", "Correct the lesion's outline")
        self.add_action = self._action(
            "Add manual", "review.add_manual", "Mark a lesion the model missed"
        )
        self.next_action = self._action("Next finding", "review.next", "Select the next finding")
        self.previous_action = self._action(
            "Previous finding", "review.previous", "Select the previous finding"
        )
        self.sign_action = self._action(
            "Sign off", "review.sign_off", "Sign the case off (asks first; locks it)"
        )
        self.history_action = QAction("History…", self)
        self.history_action.setToolTip("Every decision on this case: who, when, why")
        self.accept_action.triggered.connect(self._accept)
        self.reject_action.triggered.connect(self._reject)
        self.edit_action.triggered.connect(self._edit)
        self.add_action.triggered.connect(self.add_manual_requested)
        self.next_action.triggered.connect(lambda: self.select_step(1))
        self.previous_action.triggered.connect(lambda: self.select_step(-1))
        self.sign_action.triggered.connect(self.sign_off_requested)
        self.history_action.triggered.connect(self.history_requested)

        self.sign_reason = QLabel()
        self.sign_reason.setObjectName("signOffReason")
        self.sign_reason.setWordWrap(True)
        _dim(self.sign_reason)
        self.clinical_hint = QLabel(CLINICAL_HINT)
        self.clinical_hint.setObjectName("clinicalNotice")
        self.clinical_hint.setWordWrap(True)

        review_row = QHBoxLayout()
        for action in (self.accept_action, self.reject_action, self.edit_action):
            review_row.addWidget(self._button(action))
        review_row.addStretch(1)
        review_row.addWidget(self._button(self.add_action))
        sign_row = QHBoxLayout()
        self.sign_button = self._button(self.sign_action)
        sign_row.addWidget(self.sign_reason, 1)
        sign_row.addWidget(self._button(self.history_action), 0, Qt.AlignmentFlag.AlignTop)
        sign_row.addWidget(self.sign_button, 0, Qt.AlignmentFlag.AlignTop)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.title)
        layout.addWidget(self.run_label)
        layout.addWidget(self.table, 1)
        layout.addLayout(review_row)
        layout.addLayout(sign_row)
        layout.addWidget(self.clinical_hint)
        self.set_case(None)

    @property
    def case(self) -> CaseDetail | None:
        return self._case

    def selected_finding(self) -> StoredFinding | None:
        rows = self.table.selectionModel().selectedRows()
        return self.model.finding_at(rows[0].row()) if rows else None

    def select_finding(self, finding_pk: int) -> bool:
        """Select a finding (e.g. one clicked in the viewer); emits ``finding_selected``."""
        row = self.model.row_of(finding_pk)
        if row >= 0:
            self.table.selectRow(row)
        return row >= 0

    def select_first(self) -> bool:
        """Select the first finding still pending (else the first one); emits
        ``finding_selected``, so the viewer jumps to it. False when there is none."""
        rows = range(self.model.rowCount())
        pending = [
            r for r in rows if self.model.finding_at(r).review_status is ReviewStatus.PENDING
        ]
        first = pending[0] if pending else 0
        if first >= self.model.rowCount():
            return False
        self.table.selectRow(first)
        return True

    def select_step(self, step: int) -> bool:
        """Select the finding ``step`` rows on (negative: back), wrapping around; from nothing
        selected, the first (or last) one."""
        count = self.model.rowCount()
        if count == 0:
            return False
        selected = self.selected_finding()
        if selected is None:
            row = 0 if step > 0 else count - 1
        else:
            row = (self.model.row_of(selected.finding_pk) + step) % count
        self.table.selectRow(row)
        return True

    def set_case(self, case: CaseDetail | None) -> None:
        """Show a case as saved; keeps the selection, or moves on after a review."""
        previous = self.selected_finding()
        advance = self._advance_after_review
        self._advance_after_review = False
        self._case = case
        findings = case_findings(case) if case is not None else []
        run = case.current_run if case is not None else None
        modality = case.summary.modality if case is not None else ""
        self.table.selectionModel().blockSignals(True)
        self.model.set_findings(findings, run_label_colours(run), modality)
        self.table.selectionModel().blockSignals(False)
        self.run_label.setText(_run_text(case))
        self.run_label.setToolTip(self.run_label.text())
        if previous is not None and case is not None:
            self._reselect(previous, advance)
        self._update_actions()

    def set_refusals(self, review: str, sign: str) -> None:
        """Why the signed-in user may not review or sign ("" where they may): those actions
        stay disabled, and their tooltips say why."""
        self._review_refused, self._sign_refused = review, sign
        for action in (self.accept_action, self.reject_action, self.edit_action, self.add_action):
            tip = action.property("allowedTip") or action.toolTip()
            action.setProperty("allowedTip", tip)
            action.setToolTip(review or tip)
        self._update_actions()

    def _reselect(self, previous: StoredFinding, advance: bool) -> None:
        row = self.model.row_of(previous.finding_pk)
        if row < 0:
            return
        now = self.model.finding_at(row)
        if advance and now.review_status is not ReviewStatus.PENDING:
            following = [*range(row + 1, self.model.rowCount()), *range(row)]
            pending = [
                r
                for r in following
                if self.model.finding_at(r).review_status is ReviewStatus.PENDING
            ]
            if pending:
                self.table.selectRow(pending[0])  # announces the new finding to the viewer
                return
        self.table.selectionModel().blockSignals(True)
        self.table.selectRow(row)  # the same finding: the viewer is already there
        self.table.selectionModel().blockSignals(False)

    def _action(self, text: str, command: str, tip: str) -> QAction:
        action = QAction(text, self)
        action.setToolTip(tip)
        # Window-wide: the focus is usually in an image. A line edit elsewhere still takes a
        # plain letter as typing (Qt asks the focus widget first), so a search is never a review.
        bind_action(action, command)
        action.setIconText(f"{text} ({action.shortcut().toString()})")  # the button's text
        self.addAction(action)
        return action

    def _button(self, action: QAction) -> QToolButton:
        button = QToolButton()
        button.setDefaultAction(action)
        button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        return button

    def _update_actions(self) -> None:
        case = self._case
        editable = case is not None and case.signed_at is None and not self._review_refused
        selected = self.selected_finding()
        status = selected.review_status if selected is not None else None
        self.accept_action.setEnabled(
            editable and selected is not None and status is not ReviewStatus.ACCEPTED
        )
        self.reject_action.setEnabled(
            editable and selected is not None and status is not ReviewStatus.REJECTED
        )
        self.edit_action.setEnabled(editable and selected is not None)
        self.add_action.setEnabled(editable)
        self.next_action.setEnabled(self.model.rowCount() > 0)
        self.previous_action.setEnabled(self.model.rowCount() > 0)
        self.history_action.setEnabled(case is not None)
        can_sign, why = sign_off_state(case)
        if self._sign_refused:
            can_sign, why = False, self._sign_refused
        self.sign_action.setEnabled(can_sign)
        self.sign_reason.setText(why)
        self.sign_button.setToolTip(why)

    def _selection_changed(self, _selected: QItemSelection, _deselected: QItemSelection) -> None:
        self._update_actions()
        finding = self.selected_finding()
        if finding is not None:
            self.finding_selected.emit(finding)

    def _clicked(self, index: QModelIndex) -> None:
        """A click on the selected row jumps the viewer back to it (after the reader scrolled)."""
        finding = self.selected_finding()
        if finding is not None and index.row() == self.model.row_of(finding.finding_pk):
            self.finding_selected.emit(finding)

    def _accept(self) -> None:
        finding = self.selected_finding()
        if finding is not None and self.accept_action.isEnabled():
            self._advance_after_review = True
            self.accept_requested.emit(finding.finding_pk)

    def _reject(self) -> None:
        finding = self.selected_finding()
        if finding is None or not self.reject_action.isEnabled():
            return
        reason = self.reason_prompt(self, finding)
        if reason is None:
            return
        self._advance_after_review = True
        self.reject_requested.emit(finding.finding_pk, reason.strip())

    def _edit(self) -> None:
        finding = self.selected_finding()
        if finding is not None and self.edit_action.isEnabled():
            self.edit_requested.emit(finding.finding_pk)


def _run_text(case: CaseDetail | None) -> str:
    if case is None:
        return NO_CASE_TEXT
    run = case.current_run
    manual = len(case.manual_findings)
    if run is None:
        return "No model has run on this case yet." + (f" {manual} manual." if manual else "")
    count = len(run.findings)
    text = (
        f"{run.model_name} {run.model_version} on {run.provider.upper() or '?'}, "
        f"{run.finished_at.astimezone():%Y-%m-%d %H:%M}\n"
        f"{count} finding{'s' if count != 1 else ''}"
    )
    return text + (f", {manual} manual" if manual else "")


def _dim(label: QLabel) -> None:
    palette = label.palette()
    palette.setColor(
        QPalette.ColorRole.WindowText, palette.color(QPalette.ColorRole.PlaceholderText)
    )
    label.setPalette(palette)
