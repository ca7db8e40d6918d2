"""Case → Export…'s "De-identify" choice: its options, and the question about burned-in text.

The exporter's own de-identification is tested in ``tests/deid``; here the dialog's choices and
the controller's question: an export refused because the images may show the patient's name
asks the reader, and runs again confirmed only when the reader says yes.
"""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

from meddiag_desktop.app.export_controller import ExportController, ExportRequest
from meddiag_desktop.app.export_dialog import (
    DEID_OPTION_TEXT,
    ExportChoices,
    ExportDialog,
    finished_text,
)
from meddiag_desktop.db.cases import get_case
from meddiag_desktop.db.importing import import_series
from meddiag_desktop.db.runs import store_inference
from meddiag_desktop.deid import DeidOption
from meddiag_desktop.demo.case import write_demo_case
from meddiag_desktop.inference.pipeline import InferenceOptions, run_inference, run_to_end
from meddiag_desktop.inference.registry import ModelRegistry
from meddiag_desktop.scans import discover, load

from .case_data import analysed_case, open_database

pytestmark = pytest.mark.gui
EXPORT_MS = 120_000


def test_the_options_follow_the_deidentify_tick(qtbot, tmp_path: Path) -> None:
    db = open_database(tmp_path)
    try:
        dialog = ExportDialog(get_case(db, analysed_case(db, 3)), tmp_path / "out")
    finally:
        db.close()
    qtbot.addWidget(dialog)
    assert set(DEID_OPTION_TEXT) == {option.value for option in DeidOption}
    assert not dialog.deidentify_box.isChecked()
    assert not any(box.isEnabled() for box in dialog.deid_option_boxes.values())
    assert not dialog.images_box.isEnabled()
    assert not dialog.choices().deidentify
    dialog.deid_option_boxes["retain-dates"].setChecked(True)
    assert dialog.choices().deid_options == ()  # an option alone does not de-identify
    dialog.deidentify_box.setChecked(True)
    dialog.images_box.setChecked(True)
    dialog.deid_option_boxes["clean-descriptors"].setChecked(True)
    choices = dialog.choices()
    assert choices.deidentify and choices.include_images
    assert choices.deid_options == ("retain-dates", "clean-descriptors")
    assert all(box.isEnabled() for box in dialog.deid_option_boxes.values())


@pytest.fixture(scope="module")
def burned_in_case(tmp_path_factory: pytest.TempPathFactory):
    """A small demo case whose images say Burned In Annotation YES, with a real model run."""
    folder = tmp_path_factory.mktemp("burned-in")
    demo = write_demo_case(
        folder / "case", seed=9, shape_zyx=(32, 96, 96), spacing_xyz_mm=(1.6, 1.6, 2.5)
    )
    for path in demo.dicom_folder.glob("*.dcm"):
        dataset = pydicom.dcmread(path)
        dataset.BurnedInAnnotation = "YES"
        dataset.save_as(path, enforce_file_format=True)
    [series] = discover(demo.dicom_folder)
    volume = load(series)
    database = open_database(folder)
    case_id = import_series(database, series).case_id
    card = ModelRegistry().find("demo-lung-nodules")
    result = run_to_end(run_inference(volume, card, InferenceOptions(provider="cpu")))
    store_inference(database, case_id, volume, result)
    yield database, case_id
    database.close()


def _export(qtbot, controller: ExportController, request: ExportRequest) -> list[object]:
    ended: list[object] = []
    controller.export_finished.connect(lambda result: ended.extend(["finished", result]))
    controller.export_failed.connect(lambda *args: ended.extend(["failed", *args]))
    assert controller.export(request)
    qtbot.waitUntil(lambda: bool(ended), timeout=EXPORT_MS)
    return ended


@pytest.mark.parametrize("answer", [False, True], ids=["declined", "confirmed"])
def test_burned_in_text_is_asked_about(qtbot, burned_in_case, tmp_path: Path, answer) -> None:
    database, case_id = burned_in_case
    controller = ExportController()
    asked: list[str] = []
    controller.confirm_burned_in = lambda message: asked.append(message) or answer
    choices = ExportChoices(tmp_path / "out", ("csv", "json"), deidentify=True)
    ended = _export(qtbot, controller, ExportRequest(database, case_id, choices))
    assert len(asked) == 1 and "Burned In Annotation is YES" in asked[0]
    if not answer:
        assert ended[:2] == ["failed", case_id]
        assert "Burned In Annotation" in str(ended[2])
        assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
        return
    assert ended[0] == "finished", ended
    result = ended[1]
    assert result.pseudonym and result.pseudonym.startswith("ANON-")
    assert f"de-identified: the patient is {result.pseudonym}" in finished_text(result)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "findings.csv", "findings.json"
    ]
