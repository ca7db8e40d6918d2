"""Model runs off the GUI thread: real ONNX models, stored runs, cancel, stale tags, a live GUI."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Generator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt, QTimer

from meddiag_desktop.app import inference_controller
from meddiag_desktop.app.inference_controller import (
    CANCELLED_BY_USER,
    FinishedRun,
    InferenceController,
    RunRequest,
    RunTag,
)
from meddiag_desktop.db.cases import find_case_for_series, get_case
from meddiag_desktop.db.engine import Database
from meddiag_desktop.db.records import CaseStatus, RunOutcome
from meddiag_desktop.db.runs import load_mask
from meddiag_desktop.domain import Progress, ScanMetadata, SeriesInfo, SeriesKind, Volume
from meddiag_desktop.inference.card import ModelCard, read_card
from meddiag_desktop.inference.pipeline import InferenceOptions, InferenceResult
from meddiag_desktop.inference.registry import ModelRegistry

from .case_data import open_database

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "inference"))
from test_pipeline import phantom
from tiny_models import make_model_folder

pytestmark = pytest.mark.gui
TIMEOUT_MS = 60_000
MAX_GUI_GAP_S = 0.100


@pytest.fixture
def card(tmp_path: Path) -> ModelCard:
    return read_card(make_model_folder(tmp_path / "model", min_volume=10.0))


@pytest.fixture
def db(tmp_path: Path):
    database = open_database(tmp_path)
    yield database
    database.close()


def scan(index: int = 1, modality: str = "CT") -> tuple[Volume, SeriesInfo]:
    """The pipeline tests' two-sphere phantom, with an identity so it can become a case."""
    meta = ScanMetadata(
        modality=modality,
        patient_name=f"SPHERES^PHANTOM{index}",
        patient_id=f"SPH{index}",
        study_uid=f"9.8.7.{index}",
        series_uid=f"9.8.7.{index}.1",
        study_date="20250102",
        series_description="two spheres",
    )
    volume = replace(phantom(modality), metadata=meta)
    return volume, series_info(volume)


def series_info(volume: Volume) -> SeriesInfo:
    return SeriesInfo(
        key=volume.metadata.series_uid,
        kind=SeriesKind.VOLUME,
        metadata=volume.metadata,
        files=(),
        size_xyz=volume.size_xyz,
        spacing_xyz_mm=volume.spacing_xyz_mm,
        loadable=True,
    )


class Recorder:
    """Every event of a controller, with whether its tag was current when it arrived."""

    def __init__(self, controller: InferenceController) -> None:
        self.controller = controller
        self.events: list[tuple[str, RunTag, bool, tuple]] = []
        controller.run_started.connect(lambda tag: self._add("started", tag))
        controller.progress_changed.connect(
            lambda tag, f, text: self._add("progress", tag, f, text)
        )
        controller.run_finished.connect(lambda tag, outcome: self._add("finished", tag, outcome))
        controller.run_failed.connect(lambda tag, message: self._add("failed", tag, message))
        controller.run_cancelled.connect(lambda tag: self._add("cancelled", tag))

    def _add(self, kind: str, tag: RunTag, *args: object) -> None:
        self.events.append((kind, tag, self.controller.is_current(tag), args))

    def of(self, tag: RunTag, kind: str | None = None) -> list[tuple[str, RunTag, bool, tuple]]:
        return [e for e in self.events if e[1] == tag and (kind is None or e[0] == kind)]

    def ended(self, tag: RunTag) -> bool:
        return any(e[0] in ("finished", "failed", "cancelled") for e in self.of(tag))


def slowed(delay_s: float, windows: list[float], only: Volume | None = None) -> Callable:
    """``run_inference`` taking ``delay_s`` per window (on ``only``, if given), noting when each
    window ended."""
    real = inference_controller.run_inference

    def run(
        volume: Volume, *args: object, **kwargs: object
    ) -> Generator[Progress, None, InferenceResult]:
        steps = real(volume, *args, **kwargs)
        slow = only is None or volume is only
        while True:
            try:
                progress = next(steps)
            except StopIteration as done:
                return done.value
            if slow and progress.stage == "running model":
                time.sleep(delay_s)
                windows.append(time.perf_counter())
            yield progress

    return run


def test_run_is_stored_with_progress(qtbot, card: ModelCard, db: Database) -> None:
    controller = InferenceController()
    recorder = Recorder(controller)
    volume, series = scan()
    started = time.perf_counter()
    with qtbot.waitSignal(controller.run_finished, timeout=TIMEOUT_MS) as finished:
        tag = controller.run(
            RunRequest(volume, card, series, options=InferenceOptions(provider="cpu"), database=db)
        )
        assert controller.running and controller.current_tag == tag
    elapsed = time.perf_counter() - started
    outcome: FinishedRun = finished.args[1]
    assert finished.args[0] == tag and controller.is_current(tag) and not controller.running
    assert len(outcome.result.findings) == 2
    assert outcome.run_id is not None and outcome.case_id is not None

    case = get_case(db, outcome.case_id)
    assert case.summary.status is CaseStatus.ANALYSED
    [run] = case.runs
    assert (run.run_id, run.outcome, run.model_name) == (
        outcome.run_id,
        RunOutcome.SUCCEEDED,
        card.name,
    )
    assert run.parameters["options"]["provider"] == "cpu"
    assert len(run.findings) == 2 and run.mask is not None
    mask = load_mask(db, outcome.run_id)
    assert np.array_equal(mask.array_zyx, outcome.result.segmentation.labels_zyx)

    progress = recorder.of(tag, "progress")
    fractions = [e[3][0] for e in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert progress[0][3][1] == "Loading model (threshold-test)"
    assert len(progress) <= elapsed * 20 + 3  # throttled to ~20 a second
    assert recorder.of(tag)[0][0] == "started"


def test_run_without_database_stores_nothing(qtbot, card: ModelCard) -> None:
    controller = InferenceController()
    volume, _series = scan()
    with qtbot.waitSignal(controller.run_finished, timeout=TIMEOUT_MS) as finished:
        controller.run(RunRequest(volume, card, case_id=None))
    outcome: FinishedRun = finished.args[1]
    assert outcome.run_id is None and outcome.case_id is None
    assert len(outcome.result.findings) == 2


def test_cancel_stops_within_a_window_and_keeps_nothing(
    qtbot, monkeypatch: pytest.MonkeyPatch, card: ModelCard, db: Database
) -> None:
    windows: list[float] = []
    monkeypatch.setattr(inference_controller, "run_inference", slowed(0.02, windows))
    controller = InferenceController()
    recorder = Recorder(controller)
    volume, series = scan()
    request = RunRequest(volume, card, series, options=InferenceOptions(batch_size=1), database=db)
    tag = controller.run(request)
    qtbot.waitUntil(lambda: len(windows) >= 3, timeout=TIMEOUT_MS)
    cancelled_at = time.perf_counter()
    with qtbot.waitSignal(controller.run_cancelled, timeout=TIMEOUT_MS):
        controller.cancel()
    assert sum(1 for t in windows if t > cancelled_at) <= 1  # at most the window in flight
    assert not recorder.of(tag, "finished") and not recorder.of(tag, "failed")

    case = get_case(db, db_case_id(db, series))
    [run] = case.runs
    assert run.outcome is RunOutcome.CANCELLED and run.error == CANCELLED_BY_USER
    assert run.findings == () and run.mask is None
    assert case.current_run is None and not case.manual_findings
    assert not db.masks_dir.exists() or not any(p.is_file() for p in db.masks_dir.rglob("*"))


def db_case_id(db: Database, series: SeriesInfo) -> int:
    case_id = find_case_for_series(db, series.uid)
    assert case_id is not None
    return case_id


def test_a_newer_run_makes_the_older_one_stale(
    qtbot, monkeypatch: pytest.MonkeyPatch, card: ModelCard, db: Database
) -> None:
    windows: list[float] = []
    volume_a, series_a = scan(1)
    volume_b, series_b = scan(2)
    monkeypatch.setattr(inference_controller, "run_inference", slowed(0.02, windows, volume_a))
    controller = InferenceController()
    recorder = Recorder(controller)
    options = InferenceOptions(batch_size=1)
    tag_a = controller.run(RunRequest(volume_a, card, series_a, options=options, database=db))
    qtbot.waitUntil(lambda: len(windows) >= 2, timeout=TIMEOUT_MS)
    switched = len(recorder.events)
    with qtbot.waitSignal(controller.run_finished, timeout=TIMEOUT_MS) as finished:
        tag_b = controller.run(RunRequest(volume_b, card, series_b, database=db))
    assert tag_b.number > tag_a.number and tag_b.series_key == series_b.key
    assert finished.args[0] == tag_b and recorder.of(tag_b, "finished")[0][2]
    qtbot.waitUntil(lambda: recorder.ended(tag_a), timeout=TIMEOUT_MS)
    # Whatever run A still said after B started, none of it counted as current.
    late_a = [e for e in recorder.events[switched:] if e[1] == tag_a]
    assert late_a and not any(current for _kind, _tag, current, _args in late_a)
    assert recorder.of(tag_a, "cancelled")  # starting B cancelled A
    assert get_case(db, db_case_id(db, series_a)).runs[0].outcome is RunOutcome.CANCELLED
    assert get_case(db, db_case_id(db, series_b)).runs[0].outcome is RunOutcome.SUCCEEDED


def test_failures_are_readable_and_recorded(qtbot, card: ModelCard, db: Database) -> None:
    controller = InferenceController()
    mr_volume, mr_series = scan(3, modality="MR")
    with qtbot.waitSignal(controller.run_failed, timeout=TIMEOUT_MS) as failed:
        controller.run(RunRequest(mr_volume, card, mr_series, database=db))
    assert "is for CT scans, but this scan is MR" in failed.args[1]
    assert find_case_for_series(db, mr_series.uid) is None  # refused before running: no run

    card.onnx_path.write_bytes(card.onnx_path.read_bytes() + b"tampered")
    volume, series = scan(4)
    with qtbot.waitSignal(controller.run_failed, timeout=TIMEOUT_MS) as failed:
        controller.run(RunRequest(volume, card, series, database=db))
    message = failed.args[1]
    assert message.startswith("The model cannot be used:") and "damaged" in message
    case = get_case(db, db_case_id(db, series))
    [run] = case.runs
    assert run.outcome is RunOutcome.FAILED and "damaged" in run.error
    assert case.summary.status is CaseStatus.FAILED


def test_storing_needs_a_case_or_series(card: ModelCard, db: Database) -> None:
    volume, _series = scan()
    with pytest.raises(ValueError, match="case id or the series"):
        InferenceController().run(RunRequest(volume, card, database=db))


@pytest.fixture(scope="module")
def demo_scan() -> tuple[Volume, SeriesInfo]:
    from meddiag_desktop.demo.phantom import make_phantom

    volume = make_phantom(5, shape_zyx=(48, 128, 128), spacing_xyz_mm=(1.2, 1.2, 2.0)).volume
    return volume, series_info(volume)


@pytest.mark.slow
def test_demo_model_keeps_the_gui_responsive(
    qtbot, demo_scan: tuple[Volume, SeriesInfo], db: Database, artifacts_dir: Path
) -> None:
    card = ModelRegistry().find("demo-lung-nodules")
    volume, series = demo_scan
    ticks: list[float] = []
    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    controller = InferenceController()
    recorder = Recorder(controller)
    timer.start()
    qtbot.wait(50)  # the timer's own rhythm before the run starts
    with qtbot.waitSignal(controller.run_finished, timeout=TIMEOUT_MS) as finished:
        controller.run(
            RunRequest(volume, card, series, options=InferenceOptions(provider="cpu"), database=db)
        )
    timer.stop()
    gaps = np.diff(ticks)
    worst_ms = float(gaps.max() * 1000)
    report = (
        f"demo model on a 48x128x128 phantom: {finished.args[1].elapsed_s:.2f} s, "
        f"{len(ticks)} timer ticks, GUI event loop max gap {worst_ms:.1f} ms, "
        f"median {float(np.median(gaps) * 1000):.1f} ms"
    )
    (artifacts_dir / "inference_responsiveness.txt").write_text(report + "\n")
    print(report)
    assert worst_ms < MAX_GUI_GAP_S * 1000, report

    outcome: FinishedRun = finished.args[1]
    assert outcome.result.findings, "the demo model finds the phantom's nodules"
    case = get_case(db, outcome.case_id)
    assert case.current_run is not None
    assert len(case.current_run.findings) == len(outcome.result.findings)
    assert case.current_run.model_name == "demo-lung-nodules"
    assert np.array_equal(
        load_mask(db, outcome.run_id).array_zyx, outcome.result.segmentation.labels_zyx
    )
    assert len(recorder.of(outcome.tag, "progress")) <= outcome.elapsed_s * 20 + 3
