"""The ``meddiag-desktop`` entry point: command line, start-up and the --demo notice."""

from __future__ import annotations

from pathlib import Path

import pyqtgraph as pg
import pytest
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication

from meddiag_desktop.app import main as app_main
from meddiag_desktop.app.main_window import MainWindow

pytestmark = pytest.mark.gui


def test_parse_args_keeps_qt_options_for_qt() -> None:
    args, qt_args = app_main.parse_args(["scan.nii.gz", "--demo", "-platform", "offscreen"])
    assert args.path == "scan.nii.gz" and args.demo
    assert qt_args == ["-platform", "offscreen"]


def test_main_with_demo_says_it_is_not_available_and_keeps_running(
    qapp: QApplication, tmp_path: Path, monkeypatch
) -> None:
    ini = tmp_path / "settings.ini"
    monkeypatch.setattr(
        app_main, "QSettings", lambda *_: QSettings(str(ini), QSettings.Format.IniFormat)
    )
    seen: dict[str, str] = {}

    def inspect_and_close() -> None:
        window = next(w for w in qapp.topLevelWidgets() if isinstance(w, MainWindow))
        seen["message"] = window.message_bar.text()
        seen["status"] = window.statusBar().currentMessage()
        window.close()

    QTimer.singleShot(200, inspect_and_close)
    assert app_main.main(["--demo"]) == 0
    assert "demo case is not available yet" in seen["message"]
    assert "Demo" in seen["status"]
    assert pg.getConfigOption("imageAxisOrder") == "row-major"
    assert ini.exists()  # geometry was saved on close
