"""``meddiag-desktop --self-test``: prove that this installation starts and does its job.

Written for the frozen program: a one-folder build can miss a Qt plugin, a migration script,
the demo model or a library that only loads on first use, and none of that shows until a user
opens a scan. So the self-test goes the user's whole way in one process, through the real
window and its background workers: offscreen, it makes the demo case in a temporary folder,
loads it, runs the bundled demo model on the CPU, stores the run in a temporary database,
renders the main window once, prints one summary line and exits 0. Any failure exits 1 with
the reason on one line; nothing is written outside the temporary folder (its own settings and
database; the user's are never read).
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from meddiag_desktop import __version__
from meddiag_desktop.app.build_info import build_kind, component_versions

EXIT_PASSED = 0
EXIT_FAILED = 1
DEADLINE_S = 300.0  # the demo run takes ~10-30 s on two cores; a hang must still end
DEMO_MODEL = "demo-lung-nodules"
_POLL_MS = 100


class SelfTestError(RuntimeError):
    """A step of the self-test failed; the message says which and why."""


@dataclass
class _Progress:
    """What the steps have seen so far (filled from Qt signals in the GUI thread)."""

    step: str = "start"
    failure: str = ""
    run_elapsed_s: float = 0.0
    run_provider: str = ""
    run_findings: int = -1
    run_id: int | None = None
    case_id: int | None = None
    rendered: tuple[int, int] = (0, 0)
    notes: list[str] = field(default_factory=list)


def run_self_test(deadline_s: float = DEADLINE_S) -> int:
    """Run the whole check; prints the summary (stdout) or the failure (stderr)."""
    os.environ["QT_QPA_PLATFORM"] = "offscreen"  # before the QApplication: no screen needed
    logging.getLogger().setLevel(logging.WARNING)  # one line of output, not the app's log
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="meddiag-self-test-") as scratch:
            line = _run(Path(scratch), deadline_s)
    except SelfTestError as exc:
        print(f"meddiag-desktop {__version__} self-test FAILED: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:  # a frozen build missing a module fails here: say it, exit 1
        print(
            f"meddiag-desktop {__version__} self-test FAILED: {type(exc).__name__}: {exc}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    print(f"{line}; total {time.monotonic() - started:.1f} s", flush=True)
    return EXIT_PASSED


def _run(scratch: Path, deadline_s: float) -> str:
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from meddiag_desktop.app.main import application_icon, build_window, configure_pyqtgraph
    from meddiag_desktop.app.theme import apply_theme
    from meddiag_desktop.inference.registry import ModelRegistry, bundled_models_dir

    if __version__ == "0+unknown" and build_kind() == "frozen":
        raise SelfTestError("the build carries no package metadata, so it has no version")
    card = ModelRegistry([(bundled_models_dir(), "bundled")]).find(DEMO_MODEL)
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication([sys.argv[0]])
    configure_pyqtgraph()
    apply_theme(app, "dark")  # reads the shipped style sheet
    app.setWindowIcon(application_icon())  # and the shipped icons
    settings = QSettings(str(scratch / "settings.ini"), QSettings.Format.IniFormat)
    database_file = scratch / "cases.sqlite3"
    settings.setValue("database/location", str(database_file))
    settings.setValue("inference/provider", "cpu")
    settings.setValue("models/folder", str(scratch / "user-models"))
    window = build_window(settings)
    state = _Progress()
    window.inference.run_failed.connect(lambda _tag, message: _fail(state, f"model run: {message}"))
    window.cases.case_failed.connect(lambda message: _fail(state, f"opening the case: {message}"))
    window.review.review_failed.connect(lambda message: _fail(state, f"case: {message}"))
    window.worklist.load_failed.connect(lambda message: _fail(state, f"worklist: {message}"))

    def finished(_tag: object, outcome) -> None:
        state.run_elapsed_s = outcome.elapsed_s
        state.run_provider = outcome.result.provider.short_name.upper()
        state.run_findings = len(outcome.result.findings)
        state.run_id = outcome.run_id
        state.case_id = outcome.case_id

    window.inference.run_finished.connect(finished)
    window.resize(1280, 800)
    window.show()
    window.open_demo(scratch / "demo-case")
    state.step = "make and load the demo case"
    began = time.monotonic()

    def tick() -> None:
        if state.failure:
            app.exit(EXIT_FAILED)
        elif time.monotonic() - began > deadline_s:
            _fail(state, f"no result within {deadline_s:g} s")
            app.exit(EXIT_FAILED)
        elif state.step.startswith("make") and window.case is not None:
            if window.run_action.isEnabled():
                state.step = "run the demo model on the CPU"
                if window.run_model(card) is None:
                    _fail(state, "the window refused to run the demo model")
        elif state.step.startswith("run") and state.run_id is not None:
            case = window.case
            if case is not None and case.current_run is not None:
                state.step = "render the main window"
                image = window.grab().toImage()
                state.rendered = (image.width(), image.height())
                if image.isNull() or image.width() == 0:
                    _fail(state, "the main window rendered an empty image")
                app.exit(EXIT_PASSED)

    timer = QTimer()
    timer.setInterval(_POLL_MS)
    timer.timeout.connect(tick)
    timer.start()
    try:
        code = app.exec()
    finally:
        timer.stop()
        window.close()  # waits for the background workers
        window.database.close()
    if state.failure or code != EXIT_PASSED:
        raise SelfTestError(state.failure or f"the event loop ended with code {code}")
    return _summary(state, card.name, card.version, database_file)


def _fail(state: _Progress, reason: str) -> None:
    if not state.failure:
        state.failure = f"{state.step}: {reason}"


def _summary(state: _Progress, model: str, model_version: str, database_file: Path) -> str:
    """The one line, checked against what the database holds (the run must be stored)."""
    from meddiag_desktop.db.cases import get_case
    from meddiag_desktop.db.engine import Database, DatabaseSettings

    if state.run_findings < 1 or state.case_id is None:
        raise SelfTestError("the demo model found nothing on the demo phantom (it has nodules)")
    database = Database.open(DatabaseSettings(url=str(database_file)))
    try:
        detail = get_case(database, state.case_id)
    finally:
        database.close()
    stored = detail.current_run
    if stored is None or stored.run_id != state.run_id:
        raise SelfTestError(f"the run was not stored in the database {database_file}")
    if len(stored.findings) != state.run_findings:
        raise SelfTestError(
            f"the database holds {len(stored.findings)} findings, the run gave {state.run_findings}"
        )
    versions = ", ".join(f"{k} {v}" for k, v in component_versions().items())
    width, height = state.rendered
    return (
        f"meddiag-desktop {__version__} self-test passed ({build_kind()}): {versions}; "
        f"model {model} {model_version} on {state.run_provider} in {state.run_elapsed_s:.1f} s, "
        f"{state.run_findings} finding(s) stored; window rendered {width}x{height}"
    )
