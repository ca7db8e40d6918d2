"""The app's model runs on a scan of another region: refused with the reason unless the user
chose Run anyway, and that choice is stored with the run and in the audit."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest

from meddiag_desktop.app.inference_controller import InferenceController, RunRequest
from meddiag_desktop.db.audit import case_history
from meddiag_desktop.db.records import AuditAction
from meddiag_desktop.db.runs import get_run
from meddiag_desktop.inference.card import read_card
from meddiag_desktop.inference.pipeline import InferenceOptions

from .test_inference_controller import TIMEOUT_MS, Recorder, db, scan  # noqa: F401 (fixture)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "inference"))
from tiny_models import make_model_folder

pytestmark = pytest.mark.gui


def head_scan():
    volume, series = scan()
    meta = replace(volume.metadata, body_part_examined="HEAD", study_description="CT HEAD")
    volume = replace(volume, metadata=meta)
    return volume, replace(series, metadata=meta)


def test_head_scan_is_refused_with_the_reason(qtbot, tmp_path: Path, db) -> None:  # noqa: F811
    card = read_card(make_model_folder(tmp_path / "model", min_volume=10.0))  # a chest card
    controller = InferenceController()
    recorder = Recorder(controller)
    volume, series = head_scan()
    with qtbot.waitSignal(controller.run_failed, timeout=TIMEOUT_MS):
        tag = controller.run(RunRequest(volume, card, series, options=InferenceOptions(),
                                        database=db))
    [(_, _, _, (message,))] = recorder.of(tag, "failed")
    assert "is for the chest, but this scan is of the head" in message
    assert "BodyPartExamined 'HEAD'" in message and "\n" not in message

    overridden = InferenceOptions(allow_anatomy_mismatch=True)
    with qtbot.waitSignal(controller.run_finished, timeout=TIMEOUT_MS) as finished:
        controller.run(RunRequest(volume, card, series, options=overridden, database=db))
    outcome = finished.args[1]
    assert any("is of the head" in w for w in outcome.result.warnings)
    run = get_run(db, outcome.run_id)
    assert run.parameters["options"]["allow_anatomy_mismatch"] is True
    assert any("Run anyway on request" in w for w in run.warnings)
    saved = [e for e in case_history(db, outcome.case_id) if e.action is AuditAction.RUN_SAVED]
    assert [e.details["overrides"] for e in saved] == [["allow_anatomy_mismatch"]]
    controller.shutdown()
