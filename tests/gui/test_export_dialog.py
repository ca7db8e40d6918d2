"""Case → Export…: the dialog's choices, and the controller that runs the real exporter off the
GUI thread (its refusals as one readable message, Cancel, the folder named and opened at the
end). The whole path through the window, after a real review, is in
``test_review_export_end_to_end.py``."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from meddiag_desktop.app.export_controller import ExportController, ExportRequest
from meddiag_desktop.app.export_dialog import (
    DRAFT_WARNING,
    OUTPUT_TEXT,
    ExportChoices,
    ExportDialog,
    ExportFinishedBox,
    default_export_dir,
    finished_text,
)
from meddiag_desktop.db.cases import get_case
from meddiag_desktop.db.engine import Database
from meddiag_desktop.db.importing import import_series
from meddiag_desktop.db.records import ReviewStatus
from meddiag_desktop.db.reviews import add_manual_finding, review_finding, sign_case
from meddiag_desktop.db.runs import store_inference
from meddiag_desktop.demo.case import write_demo_case
from meddiag_desktop.domain import FindingSource
from meddiag_desktop.export.write_outputs import FILE_NAMES, OUTPUTS, ExportResult
from meddiag_desktop.inference.pipeline import InferenceOptions, run_inference, run_to_end
from meddiag_desktop.inference.registry import ModelRegistry
from meddiag_desktop.scans import discover, load
from meddiag_desktop.user_folders import user_exports_dir

from .case_data import analysed_case, finding, import_case, open_database

pytestmark = pytest.mark.gui
EXPORT_MS = 120_000


@pytest.fixture
def db(tmp_path: Path):
    database = open_database(tmp_path)
    yield database
    database.close()


def _reviewed_case(db: Database, sign: bool = False) -> int:
    """Three findings: accepted, rejected, edited; plus a manual one (a fake run, no scan)."""
    case_id = analysed_case(db, 4, findings=3)
    first, second, third = get_case(db, case_id).current_run.findings
    review_finding(db, first.finding_pk, ReviewStatus.ACCEPTED)
    review_finding(db, second.finding_pk, ReviewStatus.REJECTED, reason="vessel")
    review_finding(
        db, third.finding_pk, ReviewStatus.EDITED, edited=replace(third.finding, volume_ml=2.0)
    )
    add_manual_finding(db, case_id, finding(9, FindingSource.MANUAL))
    if sign:
        sign_case(db, case_id)
    return case_id


def test_the_dialog_offers_all_six_outputs_for_a_draft(
    qtbot, db: Database, artifacts_dir: Path
) -> None:
    case = get_case(db, _reviewed_case(db))
    dialog = ExportDialog(case)
    qtbot.addWidget(dialog)
    assert list(OUTPUT_TEXT) == list(OUTPUTS)  # every output the exporter has, in its order
    assert {name: text[1] for name, text in OUTPUT_TEXT.items()} == dict(FILE_NAMES)
    assert list(dialog.output_boxes) == list(OUTPUTS)
    assert all(box.isChecked() for box in dialog.output_boxes.values())
    assert dialog.draft_warning.isVisibleTo(dialog) and dialog.draft_warning.text() == DRAFT_WARNING
    assert "3 kept findings" in dialog.contents.text() and "1 rejected" in dialog.contents.text()
    choices = dialog.choices()
    assert choices == ExportChoices(default_export_dir(case.case_id), OUTPUTS, "A4")
    assert choices.out_dir.parent == user_exports_dir()  # one folder per case
    assert dialog.export_button.isEnabled() and dialog.export_button.isDefault()
    dialog.show()
    qtbot.waitExposed(dialog)
    dialog.grab().save(str(artifacts_dir / "export_dialog_draft.png"))


def test_choices_follow_the_ticks_and_nothing_ticked_cannot_export(
    qtbot, db: Database, tmp_path: Path
) -> None:
    dialog = ExportDialog(get_case(db, _reviewed_case(db, sign=True)), tmp_path / "out")
    qtbot.addWidget(dialog)
    assert not dialog.draft_warning.isVisibleTo(dialog)  # signed: nothing is a draft
    dialog.output_boxes["seg"].setChecked(False)
    dialog.page_size.setCurrentText("Letter")
    assert dialog.choices() == ExportChoices(
        tmp_path / "out", ("pdf", "sr", "nifti", "csv", "json"), "Letter"
    )
    dialog.output_boxes["pdf"].setChecked(False)
    assert not dialog.page_size.isEnabled()  # paper only matters for the PDF
    for box in dialog.output_boxes.values():
        box.setChecked(False)
    assert not dialog.export_button.isEnabled()
    dialog.output_boxes["json"].setChecked(True)
    dialog.set_folder("  ")
    assert not dialog.export_button.isEnabled()  # no folder, no export


def test_files_an_export_would_replace_are_named(qtbot, db: Database, tmp_path: Path) -> None:
    (tmp_path / "report.pdf").write_bytes(b"%PDF-1.4 an older report")
    (tmp_path / "findings.csv").write_text("older\n")
    dialog = ExportDialog(get_case(db, _reviewed_case(db)), tmp_path)
    qtbot.addWidget(dialog)
    assert dialog.replace_note.text() == (
        "Already in this folder, will be replaced: report.pdf, findings.csv."
    )
    dialog.output_boxes["pdf"].setChecked(False)
    assert dialog.replace_note.text() == "Already in this folder, will be replaced: findings.csv."
    dialog.set_folder(tmp_path / "new")
    assert not dialog.replace_note.isVisibleTo(dialog)


def _export(qtbot, controller: ExportController, request: ExportRequest) -> list[object]:
    """Start ``request`` and wait for whichever ending comes; returns [signal name, *args]."""
    ended: list[object] = []
    controller.export_finished.connect(lambda result: ended.extend(["finished", result]))
    controller.export_failed.connect(lambda *args: ended.extend(["failed", *args]))
    controller.export_cancelled.connect(lambda *args: ended.extend(["cancelled", *args]))
    assert controller.export(request)
    qtbot.waitUntil(lambda: bool(ended), timeout=EXPORT_MS)
    assert not controller.running
    return ended


def test_a_case_without_a_model_run_is_refused_in_words(
    qtbot, db: Database, tmp_path: Path
) -> None:
    case_id = import_case(db, 2)
    controller = ExportController()
    choices = ExportChoices(tmp_path / "out", OUTPUTS)
    ended = _export(qtbot, controller, ExportRequest(db, case_id, choices))
    assert ended[:2] == ["failed", case_id]
    message = str(ended[2])
    assert message == (
        f"Not exported. Case {case_id} has no successful model run and no manual finding: "
        "nothing to export."
    )
    assert "\n" not in message and "Traceback" not in message and "Unexpected" not in message
    assert not any((tmp_path / "out").glob("*"))


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory):
    """A small demo case with a real model run stored; its first finding accepted."""
    folder = tmp_path_factory.mktemp("export-demo")
    demo = write_demo_case(
        folder / "case", seed=7, shape_zyx=(32, 96, 96), spacing_xyz_mm=(1.6, 1.6, 2.5)
    )
    [series] = discover(demo.dicom_folder)
    volume = load(series)
    database = open_database(folder)
    case_id = import_series(database, series).case_id
    card = ModelRegistry().find("demo-lung-nodules")
    result = run_to_end(run_inference(volume, card, InferenceOptions(provider="cpu")))
    store_inference(database, case_id, volume, result)
    first = get_case(database, case_id).current_run.findings[0]
    review_finding(database, first.finding_pk, ReviewStatus.ACCEPTED)
    yield database, case_id
    database.close()


def test_an_export_names_its_folder_and_opens_it_on_request(
    qtbot, demo_db: tuple[Database, int], tmp_path: Path
) -> None:
    database, case_id = demo_db
    controller = ExportController()
    progress: list[str] = []
    controller.progress_changed.connect(lambda _fraction, text: progress.append(text))
    out = tmp_path / "out"
    choices = ExportChoices(out, ("csv", "json"))
    ended = _export(qtbot, controller, ExportRequest(database, case_id, choices))
    assert ended[0] == "finished", ended
    result = ended[1]
    assert isinstance(result, ExportResult) and result.draft  # the case is not signed
    assert [p.name for p in result.files] == ["findings.csv", "findings.json"]
    assert sorted(p.name for p in out.iterdir()) == ["findings.csv", "findings.json"]
    assert progress, "the exporter's progress reaches the GUI thread"

    opened: list[Path] = []
    box = ExportFinishedBox(result, opened.append)
    qtbot.addWidget(box)
    assert finished_text(result) == (
        f"Case {case_id}: 2 files written to {out} (marked DRAFT: the case is not signed)."
    )
    assert box.text() == f"Case {case_id}: 2 files written (marked DRAFT: the case is not signed)."
    assert box.informativeText() == f"In {out}:\nfindings.csv\nfindings.json"
    box.open_button.click()
    assert opened == [out]


def test_a_file_in_place_of_the_folder_is_refused_in_words(
    qtbot, demo_db: tuple[Database, int], tmp_path: Path
) -> None:
    database, case_id = demo_db
    a_file = tmp_path / "a file"
    a_file.write_text("not a folder")
    request = ExportRequest(database, case_id, ExportChoices(a_file, OUTPUTS))
    ended = _export(qtbot, ExportController(), request)
    assert ended == [
        "failed",
        case_id,
        f"Case {case_id} was not exported. {a_file} is not a folder: choose a folder for the "
        "export.",
    ]
    assert a_file.read_text() == "not a folder"


def test_cancel_stops_the_export_and_leaves_no_file(
    qtbot, demo_db: tuple[Database, int], tmp_path: Path
) -> None:
    database, case_id = demo_db
    controller = ExportController()
    out = tmp_path / "out"
    started: list[int] = []
    controller.export_started.connect(lambda *_: (started.append(1), controller.cancel()))
    ended = _export(
        qtbot, controller, ExportRequest(database, case_id, ExportChoices(out, OUTPUTS))
    )
    assert started and ended == ["cancelled", case_id]
    assert not out.exists() or not any(out.iterdir())  # no output, no temporary file


def test_cancel_while_writing_removes_what_was_written(
    qtbot, demo_db: tuple[Database, int], tmp_path: Path
) -> None:
    database, case_id = demo_db
    controller = ExportController()
    out = tmp_path / "out"
    seen: list[str] = []

    def cancel_at_the_report(_fraction: float, text: str) -> None:
        seen.append(text)
        if "report.pdf" in text:  # the folder exists; the PDF's key images take a while
            controller.cancel()

    controller.progress_changed.connect(cancel_at_the_report)
    ended = _export(
        qtbot, controller, ExportRequest(database, case_id, ExportChoices(out, OUTPUTS))
    )
    assert ended == ["cancelled", case_id], seen
    assert out.is_dir() and not any(out.iterdir())  # no output, no temporary file


def test_the_window_shows_why_an_export_was_refused(
    qtbot, main_window, phantom_path: Path, tmp_path: Path
) -> None:
    window = main_window
    window.open_path(phantom_path)
    qtbot.waitUntil(lambda: window.case is not None, timeout=EXPORT_MS)
    assert window.export_action.isEnabled()
    window.export_action.trigger()
    dialog = window.export_dialog
    assert dialog is not None and dialog.isVisible()
    assert dialog.draft_warning.isVisibleTo(dialog)
    dialog.set_folder(tmp_path / "out")
    dialog.export_button.click()
    qtbot.waitUntil(lambda: not window.exports.running, timeout=EXPORT_MS)
    case_id = window.case.case_id
    message = window.message_bar.text()
    assert message.startswith(f"✖  Not exported. Case {case_id} has no successful"), message
    assert "Unexpected" not in message and window.export_box is None
    assert window.export_action.isEnabled()  # ready to try again
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
