"""Case → Export…: which outputs of one review to write, where, on which paper.

The same six outputs as ``meddiag export`` (``meddiag_desktop.export.write_outputs.OUTPUTS``), all
ticked by default, because a review is filed whole. The folder defaults to one per case
under the user's documents (:func:`meddiag_desktop.user_folders.user_exports_dir`), so two
cases never overwrite each other's ``report.pdf``; files already in the chosen folder that an
export would replace are named before anyone clicks Export. An unsigned case says, in the
theme's amber box, that every output will be marked DRAFT: the exporter marks them, the dialog
makes sure nobody is surprised by it.

"De-identify" makes the export a DICOM PS3.15 de-identified one (``meddiag export
--deidentify``): the patient's pseudonym instead of name, ID and birth date in every output,
with the options ticked below it and, on request, de-identified copies of the source images.

The dialog only collects choices (:class:`ExportChoices`); the export itself runs off the GUI
thread in :class:`meddiag_desktop.app.export_controller.ExportController`.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from meddiag_desktop.app.findings_panel import case_findings
from meddiag_desktop.db.records import CaseDetail, ReviewStatus
from meddiag_desktop.safe_text import printable
from meddiag_desktop.user_folders import user_exports_dir

if TYPE_CHECKING:  # the exporter pulls in reportlab and highdicom: loaded on the first export
    from meddiag_desktop.export.write_outputs import ExportResult

# What each output is, in words, and the file it is written to (the names `meddiag export` uses),
# in the exporter's order (``write_outputs.OUTPUTS``; a test keeps the two the same).
OUTPUT_TEXT: dict[str, tuple[str, str]] = {
    "pdf": ("PDF report", "report.pdf"),
    "seg": ("DICOM Segmentation", "seg.dcm"),
    "sr": ("DICOM Structured Report (TID 1500)", "sr.dcm"),
    "nifti": ("Label map (NIfTI)", "labels.nii.gz"),
    "csv": ("Findings table (CSV)", "findings.csv"),
    "json": ("Findings (JSON)", "findings.json"),
}
PAGE_SIZES = ("A4", "Letter")
# The PS3.15 options (``meddiag_desktop.deid.DeidOption`` values) as the dialog names them.
DEID_OPTION_TEXT: dict[str, str] = {
    "retain-dates": "Keep time intervals (every date moved by the patient's one offset)",
    "retain-patient-characteristics": "Keep patient characteristics (sex, age, size, weight)",
    "clean-descriptors": "Keep descriptions, cleaned of identifying words",
}
DRAFT_WARNING = (
    "This case is not signed off: every output will be marked DRAFT. Sign off first for a "
    "final report."
)


@dataclass(frozen=True)
class ExportChoices:
    """What the reader asked for: the outputs (in the exporter's order), folder, paper."""

    out_dir: Path
    outputs: tuple[str, ...]
    page_size: str = "A4"
    deidentify: bool = False  # DICOM PS3.15 de-identification (the options below with it)
    deid_options: tuple[str, ...] = ()  # DEID_OPTION_TEXT keys
    include_images: bool = False  # de-identified copies of the source images (images/)


def default_export_dir(case_id: int) -> Path:
    """One folder per case, so exporting another case never replaces this one's files."""
    return user_exports_dir() / f"case-{case_id}"


def kept_counts(case: CaseDetail) -> tuple[int, int, int]:
    """(kept, rejected, unreviewed) findings: only the kept ones reach an output."""
    statuses = [f.review_status for f in case_findings(case)]
    kept = sum(s in (ReviewStatus.ACCEPTED, ReviewStatus.EDITED) for s in statuses)
    rejected = sum(s is ReviewStatus.REJECTED for s in statuses)
    return kept, rejected, len(statuses) - kept - rejected


def case_line(case: CaseDetail) -> str:
    """'Case 12 · DOE, JANE · CT · CT CHEST': which case is being exported, at a glance."""
    s = case.summary
    name = s.patient_name.replace("^", ", ").strip(", ") or "unnamed"
    parts = [f"Case {case.case_id}", name, s.modality or "?", s.study_description]
    return printable("  ·  ".join(part for part in parts if part))


class ExportDialog(QDialog):
    """Choices for one case's export; Export accepts (disabled with nothing to write)."""

    def __init__(
        self, case: CaseDetail, out_dir: Path | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.case = case
        self.setWindowTitle(f"Export case {case.case_id}")
        heading = QLabel(f"<b>{html.escape(case_line(case))}</b>")
        kept, rejected, pending = kept_counts(case)
        left_out = f"{rejected} rejected" + (f" and {pending} unreviewed" if pending else "")
        self.contents = QLabel(
            f"{kept} kept finding{'' if kept == 1 else 's'} (accepted, edited, added by hand) "
            f"go into the outputs; {left_out} are left out."
        )
        self.contents.setWordWrap(True)

        self.draft_warning = QLabel(DRAFT_WARNING)
        self.draft_warning.setObjectName("volumeWarnings")  # the theme's amber warning box
        self.draft_warning.setWordWrap(True)
        self.draft_warning.setVisible(case.signed_at is None)

        self.output_boxes: dict[str, QCheckBox] = {}
        outputs = QGroupBox("Outputs")
        grid = QGridLayout(outputs)
        for row, name in enumerate(OUTPUT_TEXT):
            text, file_name = OUTPUT_TEXT[name]
            box = QCheckBox(text)
            box.setChecked(True)
            box.setToolTip(f"Written as {file_name}")
            box.toggled.connect(self._update)
            file_label = QLabel(file_name)
            file_label.setEnabled(False)  # greyed: a detail, not a choice
            grid.addWidget(box, row, 0)
            grid.addWidget(file_label, row, 1)
            self.output_boxes[name] = box
        grid.setColumnStretch(0, 1)

        self.folder_edit = QLineEdit(str(out_dir or default_export_dir(case.case_id)))
        self.folder_edit.setMinimumWidth(360)
        self.folder_edit.textChanged.connect(self._update)
        self.browse_button = QPushButton("Browse…")
        self.browse_button.clicked.connect(self._browse)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(self.browse_button)
        deidentify = self._deidentify_box()
        self.page_size = QComboBox()
        self.page_size.addItems(PAGE_SIZES)
        form = QFormLayout()
        form.addRow("Folder:", folder_row)
        form.addRow("PDF page size:", self.page_size)

        self.replace_note = QLabel()
        self.replace_note.setObjectName("exportReplaceNote")
        self.replace_note.setWordWrap(True)

        self.buttons = QDialogButtonBox()
        self.export_button = QPushButton("Export")
        self.export_button.setDefault(True)
        self.buttons.addButton(self.export_button, QDialogButtonBox.ButtonRole.AcceptRole)
        self.cancel_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(heading)
        layout.addWidget(self.contents)
        layout.addWidget(self.draft_warning)
        layout.addWidget(outputs)
        layout.addWidget(deidentify)
        layout.addLayout(form)
        layout.addWidget(self.replace_note)
        layout.addStretch(1)
        layout.addWidget(self.buttons)
        self._update()

    def _deidentify_box(self) -> QGroupBox:
        group = QGroupBox("Privacy")
        column = QVBoxLayout(group)
        self.deidentify_box = QCheckBox(
            "De-identify (DICOM PS3.15 basic profile): the patient's pseudonym instead of "
            "name, ID and birth date"
        )
        self.deidentify_box.toggled.connect(self._update)
        column.addWidget(self.deidentify_box)
        self.deid_option_boxes: dict[str, QCheckBox] = {}
        for name, text in DEID_OPTION_TEXT.items():
            box = QCheckBox(text)
            box.setContentsMargins(20, 0, 0, 0)
            self.deid_option_boxes[name] = box
            column.addWidget(box)
        self.images_box = QCheckBox("Include the de-identified source images (images/)")
        column.addWidget(self.images_box)
        return group

    def choices(self) -> ExportChoices:
        """The ticked outputs, the folder (``~`` expanded), the paper size and privacy."""
        chosen = tuple(name for name, box in self.output_boxes.items() if box.isChecked())
        folder = Path(self.folder_edit.text().strip()).expanduser()
        deidentify = self.deidentify_box.isChecked()
        return ExportChoices(
            folder,
            chosen,
            self.page_size.currentText(),
            deidentify=deidentify,
            deid_options=tuple(
                name for name, box in self.deid_option_boxes.items()
                if deidentify and box.isChecked()
            ),
            include_images=deidentify and self.images_box.isChecked(),
        )

    def set_folder(self, folder: Path | str) -> None:
        self.folder_edit.setText(str(folder))

    def _browse(self) -> None:
        start = self.folder_edit.text().strip() or str(user_exports_dir())
        folder = QFileDialog.getExistingDirectory(self, "Export to folder", start)
        if folder:
            self.set_folder(folder)

    def _update(self) -> None:
        """Export needs an output and a folder; the page size only matters for the PDF; name
        the files an export would replace."""
        choices = self.choices()
        has_folder = bool(self.folder_edit.text().strip())
        self.export_button.setEnabled(bool(choices.outputs) and has_folder)
        self.page_size.setEnabled("pdf" in choices.outputs)
        for box in (*self.deid_option_boxes.values(), self.images_box):
            box.setEnabled(choices.deidentify)
        existing = [
            OUTPUT_TEXT[name][1]
            for name in choices.outputs
            if has_folder and (choices.out_dir / OUTPUT_TEXT[name][1]).exists()
        ]
        self.replace_note.setText(
            f"Already in this folder, will be replaced: {', '.join(existing)}." if existing else ""
        )
        self.replace_note.setVisible(bool(existing))


def finished_text(result: ExportResult, folder: bool = True) -> str:
    """'Case 12: 6 files written to /path (marked DRAFT: the case is not signed).'; without
    ``folder`` the path is left out (the box shows it on a line of its own)."""
    count = len(result.files)
    text = f"Case {result.case_id}: {count} file{'' if count == 1 else 's'} written"
    if folder:
        text += f" to {result.out_dir}"
    if result.pseudonym:
        text += f", de-identified: the patient is {result.pseudonym}"
    if result.draft:
        text += " (marked DRAFT: the case is not signed)"
    return text + "."


def skipped_text(result: ExportResult) -> str:
    """One line per output that was not written, with the exporter's reason."""
    return "\n".join(
        f"{OUTPUT_TEXT.get(name, (name, ''))[0]} not written: {reason}"
        for name, reason in result.skipped.items()
    )


class ExportFinishedBox(QMessageBox):
    """The end of an export: where the files are, which ones, and a button to open the folder
    (``open_folder`` does the opening, so a test can see the request without a file manager)."""

    def __init__(
        self,
        result: ExportResult,
        open_folder: Callable[[Path], object],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.export_result = result  # not `result`: QDialog.result() is the dialog code
        skipped = skipped_text(result)
        self.setIcon(QMessageBox.Icon.Warning if skipped else QMessageBox.Icon.Information)
        self.setWindowTitle("Export finished")
        self.setText(printable(finished_text(result, folder=False)))
        # The folder on a line of its own: a long path then wraps at its own spaces only.
        files = "\n".join(path.name for path in result.files)
        if result.images is not None:
            files += f"\n{result.images.name}/ (de-identified source images)"
        shown = f"In {result.out_dir}:\n{files}" + (f"\n\n{skipped}" if skipped else "")
        self.setInformativeText(printable(shown, keep_lines=True))
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # Room for a documents-folder path (Qt's names for the box's two text labels).
        self.setStyleSheet(
            "QLabel#qt_msgbox_label, QLabel#qt_msgbox_informativelabel { min-width: 420px; }"
        )
        self.open_button = self.addButton("Open Folder", QMessageBox.ButtonRole.ActionRole)
        self.close_button = self.addButton(QMessageBox.StandardButton.Close)
        self.setDefaultButton(self.close_button)
        self.open_button.clicked.connect(lambda: open_folder(result.out_dir))  # then it closes
