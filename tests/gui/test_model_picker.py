"""The model picker lists usable and broken models, shows their cards, warns on modality."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication

from meddiag_desktop.app.model_picker import ModelPickerDialog, validation_figures
from meddiag_desktop.inference.registry import ModelRegistry, bundled_models_dir

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "inference"))
from tiny_models import make_model_folder  # a helper of the pipeline tests

pytestmark = pytest.mark.gui
DEMO = "demo-lung-nodules"


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    user = tmp_path / "user-models"
    make_model_folder(user / "threshold", name="threshold-test")
    broken = user / "broken-model"
    broken.mkdir()
    (broken / "card.toml").write_text('schema = 1\nname = "broken"\n')
    return ModelRegistry([(bundled_models_dir(), "bundled"), (user, "user")])


def _dialog(
    qtbot, registry: ModelRegistry, modality: str, preferred: str = ""
) -> ModelPickerDialog:
    dialog = ModelPickerDialog(registry, modality, preferred)
    qtbot.addWidget(dialog)
    return dialog


def test_lists_models_and_their_cards(qtbot, registry: ModelRegistry, artifacts_dir: Path) -> None:
    dialog = _dialog(qtbot, registry, "CT", preferred=DEMO)
    names = [e.card.name if e.card else e.folder.name for e in dialog.entries]
    assert DEMO in names and "threshold-test" in names and "broken-model" in names

    card = dialog.chosen_card()
    assert card is not None and card.name == DEMO
    details = dialog.details.text()
    assert "Intended use." in details and "synthetic chest CT phantoms" in details
    assert "dice" in details and f"{card.validation['dice']:.3f}" in details
    assert "Not for clinical use" in details and "<b>Anatomy:</b> chest" in details
    assert not dialog.warning.isVisibleTo(dialog) and not dialog.modality_mismatch
    assert dialog.run_button.isEnabled()

    row = next(i for i, e in enumerate(dialog.entries) if e.card is None)
    item = dialog.model_list.item(row)
    assert item.flags() == Qt.ItemFlag.NoItemFlags  # listed, greyed, not choosable
    assert "cannot be used" in item.text() and "Invalid model card" in item.toolTip()

    dialog.show()
    qtbot.wait(20)
    dialog.grab().save(str(artifacts_dir / "model_picker.png"))


def test_warns_when_the_modality_differs(
    qtbot, registry: ModelRegistry, artifacts_dir: Path
) -> None:
    dialog = _dialog(qtbot, registry, "MR", preferred=DEMO)
    assert dialog.warning.isVisibleTo(dialog)
    assert "is for CT scans, but the open scan is MR" in dialog.warning.text()
    assert dialog.modality_mismatch and dialog.run_button.isEnabled()  # warned, not refused
    dialog.show()
    qtbot.wait(20)
    dialog.grab().save(str(artifacts_dir / "model_picker_mismatch.png"))

    unknown = _dialog(qtbot, registry, "")
    assert "modality is unknown" in unknown.warning.text()
    assert not unknown.modality_mismatch


def test_choose_returns_the_card(qtbot, registry: ModelRegistry) -> None:
    def accept_when_shown() -> None:
        dialog = QApplication.activeModalWidget()
        assert isinstance(dialog, ModelPickerDialog)
        dialog.select_model("threshold-test")
        dialog.run_button.click()

    QTimer.singleShot(0, accept_when_shown)
    chosen = ModelPickerDialog.choose(registry, "MR")
    assert chosen is not None
    card, mismatch, anatomy_mismatch = chosen
    assert card.name == "threshold-test" and mismatch and not anatomy_mismatch

    QTimer.singleShot(0, lambda: QApplication.activeModalWidget().reject())
    assert ModelPickerDialog.choose(registry, "CT") is None


def test_validation_figures_skip_text_and_flags() -> None:
    card = ModelRegistry([(bundled_models_dir(), "bundled")]).find(DEMO)
    figures = dict(validation_figures(card))
    assert figures["dice"] == f"{card.validation['dice']:.3f}"
    assert figures["cases"] == str(card.validation["cases"])
    assert "data" not in figures


def _head_ct(sample_data: Path):
    from meddiag_desktop.scans import discover, load

    folder = sample_data / "dicom" / "ct_philips_mixed_folder"
    [series] = [s for s in discover(folder) if s.loadable and s.kind.value == "volume"]
    return load(series)


def test_chest_model_on_a_head_ct_asks_before_running(
    qtbot, registry: ModelRegistry, sample_data: Path, artifacts_dir: Path
) -> None:
    head = _head_ct(sample_data)
    dialog = ModelPickerDialog(registry, head.modality, DEMO, scan=head)
    qtbot.addWidget(dialog)
    assert dialog.warning.isVisibleTo(dialog)
    text = dialog.warning.text()
    assert "'demo-lung-nodules' is for the chest, but this scan is of the head" in text
    assert "Run anyway only to test" in text
    assert dialog.anatomy_mismatch and not dialog.modality_mismatch
    assert dialog.run_button.text() == "Run anyway" and dialog.run_button.isEnabled()
    dialog.show()
    qtbot.wait(20)
    dialog.grab().save(str(artifacts_dir / "model_picker_anatomy.png"))

    def run_anyway() -> None:
        shown = QApplication.activeModalWidget()
        assert isinstance(shown, ModelPickerDialog)
        shown.run_button.click()

    QTimer.singleShot(0, run_anyway)
    chosen = ModelPickerDialog.choose(registry, head.modality, DEMO, scan=head)
    assert chosen is not None
    card, modality_mismatch, anatomy_mismatch = chosen
    assert card.name == DEMO and anatomy_mismatch and not modality_mismatch


def test_a_matching_scan_runs_without_asking(
    qtbot, registry: ModelRegistry, tmp_path: Path
) -> None:
    from meddiag_desktop.demo.case import write_demo_case
    from meddiag_desktop.scans import load

    case = write_demo_case(tmp_path / "demo", seed=3, shape_zyx=(24, 64, 64))
    phantom = load(case.dicom_folder)
    dialog = ModelPickerDialog(registry, phantom.modality, DEMO, scan=phantom)
    qtbot.addWidget(dialog)
    assert not dialog.warning.isVisibleTo(dialog) and not dialog.anatomy_mismatch
    assert dialog.run_button.text() == "Run model"
