"""Run the real ``meddiag-desktop --demo`` entry point through a whole review, then linger.

Used by ``test_no_network.py`` as a child process under ``strace``: it opens the demo case the
way a user's first start does, runs the demo model, accepts the first finding, rejects the rest,
and keeps the event loop alive for ``LINGER_S`` seconds after the run (onnxruntime's telemetry,
when on, looks its host up about ten seconds after the first session). Exit code 0 only when the
review happened; 3 when it did not within the deadline.
"""

from __future__ import annotations

import sys
import time

from meddiag_desktop.app import main as app_main

DEADLINE_S = 420.0


def drive(linger_s: float) -> int:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from meddiag_desktop.app.main_window import MainWindow
    from meddiag_desktop.inference.registry import ModelRegistry

    QApplication([sys.argv[0]])  # main() takes this one over; the timer needs it first
    card = ModelRegistry().find("demo-lung-nodules")
    started = time.monotonic()
    state = {"step": "open", "reviewed_at": 0.0, "ok": False}

    def window() -> MainWindow | None:
        return next((w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow)), None)

    def tick() -> None:
        app = QApplication.instance()
        main = window()
        if time.monotonic() - started > DEADLINE_S:
            print(f"driver: stuck at step {state['step']}", file=sys.stderr)
            assert app is not None
            app.exit(3)
            return
        if main is None:
            return
        if state["step"] == "open" and main.case is not None and main.run_action.isEnabled():
            if main.run_model(card) is not None:
                state["step"] = "run"
        elif state["step"] == "run" and main.case is not None and main.case.current_run:
            findings = main.case.current_run.findings
            if findings:
                main.findings.select_finding(findings[0].finding_pk)
                main.findings.accept_action.trigger()
            state["step"], state["reviewed_at"], state["ok"] = "linger", time.monotonic(), True
            print(f"driver: reviewed {len(findings)} findings", flush=True)
        elif state["step"] == "linger" and time.monotonic() - state["reviewed_at"] > linger_s:
            assert app is not None
            main.close()
            app.quit()

    timer = QTimer()
    timer.setInterval(200)
    timer.timeout.connect(tick)
    timer.start()
    code = app_main.main(["--demo"])
    return code if state["ok"] or code else 3


if __name__ == "__main__":
    sys.exit(drive(float(sys.argv[1]) if len(sys.argv) > 1 else 15.0))
