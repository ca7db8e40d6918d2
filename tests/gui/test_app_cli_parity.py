"""The app's worker opens and runs a model exactly as ``meddiag infer`` does (issue 17, item 3).

bench/app_vs_cli.py measures the two front ends side by side; this checks the mechanism
without timing anything: the same run options reach the pipeline, the same onnxruntime session
options (threads, execution mode, graph optimisation, arena, config entries) and the same CPU
runtime, precision and thread count, although the app's run happens in a worker thread.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings

from meddiag_desktop.app.app_settings import AppSettings
from meddiag_desktop.app.inference_controller import FinishedRun, InferenceController, RunRequest
from meddiag_desktop.cli import main
from meddiag_desktop.inference import cpu_runtime, pipeline, session
from meddiag_desktop.inference.card import read_card
from meddiag_desktop.inference.session import SessionCache
from meddiag_desktop.scans import write_volume

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "inference"))
from test_pipeline import phantom
from tiny_models import make_model_folder

pytestmark = pytest.mark.gui
TIMEOUT_MS = 60_000
CONFIG_KEYS = (
    "session.intra_op.allow_spinning",
    "session.inter_op.allow_spinning",
    "session.set_denormal_as_zero",
)


def describe(options: Any) -> dict[str, Any]:
    """What of an ``ort.SessionOptions`` decides how a model runs on the CPU."""
    entries = {}
    for key in CONFIG_KEYS:
        try:
            entries[key] = options.get_session_config_entry(key)
        except Exception:  # onnxruntime raises when the entry is not set
            entries[key] = None
    return {
        "intra_op_num_threads": options.intra_op_num_threads,
        "inter_op_num_threads": options.inter_op_num_threads,
        "execution_mode": options.execution_mode,
        "graph_optimization_level": options.graph_optimization_level,
        "enable_cpu_mem_arena": options.enable_cpu_mem_arena,
        "config": entries,
    }


class Recorder:
    """Sessions, CPU thread counts, pipeline options and runtimes, with the thread of each."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sessions: list[tuple[dict[str, Any], list]] = []
        self.threads: list[int] = []
        self.options: list[Any] = []
        self.runtimes: list[Any] = []
        self.worker_thread_used = False
        real_session = session.ort.InferenceSession
        real_threads = session.cpu_threads
        real_run = pipeline.run_inference

        def spy_session(path: str, options: Any = None, providers: Any = None, **kwargs: Any):
            self._note_thread()
            self.sessions.append((describe(options), list(providers or [])))
            return real_session(path, options, providers=providers, **kwargs)

        def spy_threads() -> int:
            count = real_threads()
            self.threads.append(count)
            return count

        def spy_run(volume: Any, card: Any, options: Any = None, *args: Any, **kwargs: Any):
            self.options.append(options)
            result = yield from real_run(volume, card, options, *args, **kwargs)
            self.runtimes.append(result.runtime)
            return result

        monkeypatch.setattr(session.ort, "InferenceSession", spy_session)
        monkeypatch.setattr(session, "cpu_threads", spy_threads)
        monkeypatch.setattr(cpu_runtime, "cpu_threads", spy_threads)
        monkeypatch.setattr(pipeline, "run_inference", spy_run)
        # Each front end creates its sessions afresh (the cache would hide the second).
        monkeypatch.setattr(pipeline, "_DEFAULT_SESSIONS", SessionCache())

    def _note_thread(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            self.worker_thread_used = True

    def take(self) -> tuple[list, list, list, list]:
        taken = (self.sessions, self.threads, self.options, self.runtimes)
        self.sessions, self.threads, self.options, self.runtimes = [], [], [], []
        pipeline._DEFAULT_SESSIONS.clear()
        return taken


def test_app_worker_runs_the_model_as_the_cli_does(
    qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from meddiag_desktop.app import inference_controller
    from meddiag_desktop.cli import model_commands

    recorder = Recorder(monkeypatch)
    # Both front ends look the pipeline up by name in their own module.
    monkeypatch.setattr(model_commands, "run_inference", pipeline.run_inference)
    monkeypatch.setattr(inference_controller, "run_inference", pipeline.run_inference)
    model = make_model_folder(tmp_path / "model", min_volume=10.0)
    volume = phantom()
    scan = write_volume(volume, tmp_path / "scan.mha")

    assert main(["infer", str(scan), "--model", str(model), "--out", str(tmp_path / "out")]) == 0
    cli_sessions, cli_threads, cli_options, cli_runtimes = recorder.take()
    assert not recorder.worker_thread_used

    store = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    options = AppSettings.load(store).inference_options()  # the app's defaults
    controller = InferenceController()
    with qtbot.waitSignal(controller.run_finished, timeout=TIMEOUT_MS) as finished:
        controller.run(RunRequest(volume, read_card(model), options=options))
    outcome: FinishedRun = finished.args[1]
    app_sessions, app_threads, app_options, app_runtimes = recorder.take()

    assert recorder.worker_thread_used, "the app's sessions are made in its worker thread"
    assert cli_sessions and app_sessions == cli_sessions
    assert cli_threads and app_threads == cli_threads
    assert app_runtimes == cli_runtimes and outcome.result.runtime == cli_runtimes[0]
    fields = ("provider", "runtime", "precision", "large_tiles", "overlap", "batch_size")
    for name in fields:
        assert getattr(app_options[0], name) == getattr(cli_options[0], name), name
