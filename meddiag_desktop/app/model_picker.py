"""Choose the model to run: what each is for and how well it did, before it touches a scan.

Every model folder found is listed; a folder with a broken card is listed greyed with what is
wrong, so a user who installed a model learns why it is not usable instead of wondering where it
went. A model made for another modality, or for another body region than the open scan shows
(a chest model on a head CT), is not silently run: the reason is shown in plain sight and the
Run button becomes "Run anyway", so running is a choice made knowing why (a blocking box would
be clicked away). The window passes that choice on as ``allow_modality_mismatch`` and
``allow_anatomy_mismatch``, and the run records it.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from meddiag_desktop.domain import Volume
from meddiag_desktop.inference.anatomy import AnatomyCheck, AnatomyVerdict, check_volume
from meddiag_desktop.inference.card import ModelCard
from meddiag_desktop.inference.model_signature import signature_summary
from meddiag_desktop.inference.registry import ModelEntry, ModelRegistry
from meddiag_desktop.inference.trusted_keys import TrustStore

_ERROR_PREVIEW_CHARS = 90
_MAX_FIGURES = 8


def modality_warning(card: ModelCard, scan_modality: str) -> str:
    """A sentence when the card's modality does not fit the open scan's; "" when it does."""
    if not card.modality:
        return ""
    if not scan_modality:
        return f"The open scan's modality is unknown; this model expects {card.modality} scans."
    if scan_modality.upper() != card.modality.upper():
        return (
            f"This model is for {card.modality} scans, but the open scan is {scan_modality}: "
            "its findings would be meaningless. Run it only to test."
        )
    return ""


def anatomy_warning(check: AnatomyCheck) -> str:
    """A sentence when the scan shows another region than the card's, or nothing says which."""
    if check.refused:
        return f"{check.message} Run anyway only to test."
    return check.message if check.verdict is AnatomyVerdict.UNKNOWN else ""


def validation_figures(card: ModelCard) -> list[tuple[str, str]]:
    """The card's numeric validation results as (name, value) pairs, in card order."""
    figures = []
    for key, value in card.validation.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if isinstance(value, int):
            text = str(value)
        else:  # fractions (Dice, sensitivity) to three decimals; other figures to 3 digits
            text = f"{value:.3f}" if abs(value) <= 1 else f"{value:.3g}"
        figures.append((key.replace("_", " "), text))
    return figures[:_MAX_FIGURES]


def card_details_html(card: ModelCard, origin: str) -> str:
    """The card as the details pane shows it (escaped: card text is not trusted markup)."""

    def e(text: object) -> str:
        return html.escape(str(text))

    labels = ", ".join(label.name for label in card.output.labels)
    region = card.anatomy.region if card.anatomy else "any"
    parts = [
        f"<h3>{e(card.name)} <span style='font-weight:normal'>{e(card.version)}</span></h3>",
        f"<p><b>Modality:</b> {e(card.modality or 'any')} &nbsp; <b>Task:</b> {e(card.task)}"
        f" &nbsp; <b>Anatomy:</b> {e(region)}"
        f" &nbsp; <b>Finds:</b> {e(labels)}<br><b>Licence:</b> {e(card.licence)} &nbsp; "
        f"<b>From:</b> {e(origin)} models</p>",
        f"<p><b>Intended use.</b> {e(card.intended_use)}</p>",
        # What signature.json claims; the files are verified when the model runs.
        f"<p><b>Signature:</b> {e(signature_summary(card.folder, TrustStore()))}</p>",
    ]
    figures = validation_figures(card)
    if figures:
        rows = "".join(
            f"<tr><td>{e(name)}</td><td align='right'>&nbsp;&nbsp;{e(value)}</td></tr>"
            for name, value in figures
        )
        parts.append(f"<p><b>Validation</b></p><table>{rows}</table>")
        data = card.validation.get("data")
        if isinstance(data, str):
            parts.append(f"<p><i>Validated on:</i> {e(data)}</p>")
    else:
        parts.append("<p><b>Validation:</b> the card reports no figures.</p>")
    trained = card.training.get("data")
    if isinstance(trained, str):
        parts.append(f"<p><i>Trained on:</i> {e(trained)}</p>")
    if card.not_for_clinical_use:
        parts.append("<p><b>Not for clinical use.</b></p>")
    return "".join(parts)


class ModelPickerDialog(QDialog):
    """Lists the registry's models with their cards; :meth:`chosen_card` after ``exec()``."""

    def __init__(
        self,
        registry: ModelRegistry,
        scan_modality: str = "",
        preferred: str = "",
        parent: QWidget | None = None,
        scan: Volume | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Run a model")
        self._scan_modality = scan_modality
        self._scan = scan
        self.entries: list[ModelEntry] = registry.entries()

        self.model_list = QListWidget()
        self.model_list.setObjectName("modelList")
        self.model_list.setWordWrap(True)
        self.model_list.setMinimumWidth(240)
        self.model_list.setSpacing(3)
        self.details = QLabel()
        self.details.setObjectName("modelDetails")
        self.details.setWordWrap(True)
        self.details.setTextFormat(Qt.TextFormat.RichText)
        self.details.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setContentsMargins(8, 4, 8, 4)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.details)
        self.warning = QLabel()
        self.warning.setObjectName("volumeWarnings")  # the theme's amber warning box
        self.warning.setWordWrap(True)
        self.warning.hide()
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.run_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.run_button.setText("Run model")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        panes = QHBoxLayout()
        panes.addWidget(self.model_list, 2)
        panes.addWidget(scroll, 3)
        layout = QVBoxLayout(self)
        layout.addLayout(panes, 1)
        layout.addWidget(self.warning)
        layout.addWidget(self.buttons)
        self.resize(760, 460)

        self._fill()
        self.model_list.currentRowChanged.connect(self._show_entry)
        self.model_list.itemDoubleClicked.connect(self._double_clicked)
        self._select_first(preferred)

    def chosen_card(self) -> ModelCard | None:
        """The card of the selected usable model (None when none is)."""
        row = self.model_list.currentRow()
        if 0 <= row < len(self.entries):
            return self.entries[row].card
        return None

    @property
    def modality_mismatch(self) -> bool:
        """Whether the chosen model was made for another modality than the open scan's."""
        card = self.chosen_card()
        if card is None or not card.modality or not self._scan_modality:
            return False  # unknown is warned about, not a mismatch (the pipeline agrees)
        return card.modality.upper() != self._scan_modality.upper()

    @property
    def anatomy_mismatch(self) -> bool:
        """Whether the open scan shows another body region than the chosen model's card names."""
        return self.anatomy_check().refused

    def anatomy_check(self) -> AnatomyCheck:
        card = self.chosen_card()
        if card is None or self._scan is None:
            return AnatomyCheck(AnatomyVerdict.NOT_STATED, "")
        return check_volume(self._scan, card)

    def warning_text(self) -> str:
        card = self.chosen_card()
        if card is None:
            return ""
        warnings = [
            modality_warning(card, self._scan_modality),
            anatomy_warning(self.anatomy_check()),
        ]
        return "\n".join(w for w in warnings if w)

    def select_model(self, name: str) -> bool:
        for row, entry in enumerate(self.entries):
            if entry.card is not None and entry.card.name == name:
                self.model_list.setCurrentRow(row)
                return True
        return False

    @classmethod
    def choose(
        cls,
        registry: ModelRegistry,
        scan_modality: str = "",
        preferred: str = "",
        parent: QWidget | None = None,
        scan: Volume | None = None,
    ) -> tuple[ModelCard, bool, bool] | None:
        """Ask; the card and whether the user chose to run it despite a modality mismatch and
        despite an anatomy mismatch (a refusal overridden), or None if cancelled."""
        dialog = cls(registry, scan_modality, preferred, parent, scan)
        card = dialog.chosen_card() if dialog.exec() == QDialog.DialogCode.Accepted else None
        if card is None:
            return None
        return card, dialog.modality_mismatch, dialog.anatomy_mismatch

    def _fill(self) -> None:
        for entry in self.entries:
            item = QListWidgetItem()
            if entry.card is not None:
                card = entry.card
                item.setText(
                    f"{card.name}  {card.version}\n{card.modality or 'any modality'} · "
                    f"{card.task} · {entry.origin}"
                )
                item.setToolTip(str(entry.folder))
            else:
                error = entry.error
                if len(error) > _ERROR_PREVIEW_CHARS:
                    error = error[:_ERROR_PREVIEW_CHARS] + "…"
                item.setText(f"{entry.folder.name}  (cannot be used)\n{error}")
                item.setToolTip(f"{entry.folder}\nInvalid model card: {entry.error}")
                item.setFlags(Qt.ItemFlag.NoItemFlags)  # listed, greyed, not selectable
            self.model_list.addItem(item)
        if not self.entries:
            self.details.setText(
                "<p>No models are installed. Add one with <code>meddiag models add "
                "FOLDER</code>; the bundled demo model comes with the application.</p>"
            )

    def _select_first(self, preferred: str) -> None:
        if preferred and self.select_model(preferred):
            return
        usable = [row for row, entry in enumerate(self.entries) if entry.card is not None]
        if usable:
            self.model_list.setCurrentRow(usable[0])
        else:
            self._show_entry(-1)

    def _show_entry(self, row: int) -> None:
        entry = self.entries[row] if 0 <= row < len(self.entries) else None
        if entry is not None and entry.card is not None:
            self.details.setText(card_details_html(entry.card, entry.origin))
        elif self.entries:
            self.details.setText("<p>Choose a model on the left.</p>")
        warning = self.warning_text()
        self.warning.setText(f"⚠  {warning}")
        self.warning.setVisible(bool(warning))
        self.run_button.setEnabled(self.chosen_card() is not None)
        overriding = self.modality_mismatch or self.anatomy_mismatch
        self.run_button.setText("Run anyway" if overriding else "Run model")

    def _double_clicked(self, item: QListWidgetItem) -> None:
        if item.flags() & Qt.ItemFlag.ItemIsEnabled:
            self.accept()
