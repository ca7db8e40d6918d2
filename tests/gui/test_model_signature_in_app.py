"""The app refuses an unsigned model with the reason, runs it when an admin allows unsigned
models (recorded with the run), and shows who signed the model of every run in the history."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from meddiag_desktop.app.app_settings import AppSettings
from meddiag_desktop.app.case_history import history_entries
from meddiag_desktop.app.inference_controller import InferenceController, RunRequest
from meddiag_desktop.db.cases import find_case_for_series, get_case
from meddiag_desktop.db.engine import Database
from meddiag_desktop.db.records import RunOutcome
from meddiag_desktop.inference.card import read_card

from .case_data import open_database
from .test_inference_controller import TIMEOUT_MS, scan

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "inference"))
from model_signing import TEST_KEY_ID, TEST_SIGNER
from tiny_models import make_model_folder

pytestmark = pytest.mark.gui


@pytest.fixture
def db(tmp_path: Path):
    database = open_database(tmp_path)
    yield database
    database.close()


def test_unsigned_model_is_refused_unless_allowed(qtbot, tmp_path: Path, db: Database) -> None:
    card = read_card(make_model_folder(tmp_path / "model", signed=False))
    controller = InferenceController()
    volume, series = scan(5)
    with qtbot.waitSignal(controller.run_failed, timeout=TIMEOUT_MS) as failed:
        controller.run(RunRequest(volume, card, series, options=AppSettings().inference_options(),
                                  database=db))
    assert "the package is unsigned" in failed.args[1] and "--allow-unsigned" in failed.args[1]

    allowing = AppSettings(allow_unsigned_models=True).inference_options()
    with qtbot.waitSignal(controller.run_finished, timeout=TIMEOUT_MS) as finished:
        controller.run(RunRequest(volume, card, series, options=allowing, database=db))
    outcome = finished.args[1]
    assert outcome.result.signature is not None and not outcome.result.signature.signed
    case = get_case(db, outcome.case_id)
    refused, ran = sorted(case.runs, key=lambda run: run.run_id)
    assert refused.outcome is RunOutcome.FAILED and "unsigned" in refused.error
    assert ran.parameters["options"]["allow_unsigned"] is True
    assert ran.parameters["signature"]["status"] == "unsigned"
    assert any("UNSIGNED model" in entry.why for entry in history_entries(case))


def test_history_names_the_signer(qtbot, tmp_path: Path, db: Database) -> None:
    card = read_card(make_model_folder(tmp_path / "model"))
    controller = InferenceController()
    volume, series = scan(6)
    with qtbot.waitSignal(controller.run_finished, timeout=TIMEOUT_MS):
        controller.run(RunRequest(volume, card, series, database=db))
    case_id = find_case_for_series(db, series.uid)
    assert case_id is not None
    [entry] = [e for e in history_entries(get_case(db, case_id)) if e.what.startswith("Model")]
    assert f"signed by {TEST_SIGNER} (key {TEST_KEY_ID})" in entry.why


def test_allow_unsigned_setting_survives_a_restart(settings: QSettings) -> None:
    assert AppSettings.load(settings).allow_unsigned_models is False
    AppSettings(allow_unsigned_models=True).save(settings)
    reopened = QSettings(settings.fileName(), QSettings.Format.IniFormat)
    loaded = AppSettings.load(reopened)
    assert loaded.allow_unsigned_models is True
    assert loaded.inference_options().allow_unsigned is True
