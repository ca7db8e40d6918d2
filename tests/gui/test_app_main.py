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


def test_demo_generates_and_opens_the_phantom(
    qapp: QApplication, tmp_path: Path, monkeypatch, artifacts_dir: Path
) -> None:
    ini = tmp_path / "settings.ini"
    store = QSettings(str(ini), QSettings.Format.IniFormat)
    store.setValue("database/location", str(tmp_path / "cases.sqlite3"))
    store.sync()
    monkeypatch.setattr(
        app_main, "QSettings", lambda *_: QSettings(str(ini), QSettings.Format.IniFormat)
    )
    demo_folder = tmp_path / "demo-case"
    monkeypatch.setattr(app_main, "demo_case_dir", lambda: demo_folder)
    seen: dict[str, object] = {}
    waited = {"ms": 0}

    def inspect_when_loaded() -> None:
        window = next(w for w in qapp.topLevelWidgets() if isinstance(w, MainWindow))
        volume = window.viewer.volume
        if volume is None and waited["ms"] < 120_000:
            waited["ms"] += 250
            QTimer.singleShot(250, inspect_when_loaded)
            return
        seen["message"] = window.message_bar.text()
        seen["recent"] = [action.text() for action in window.recent_menu.actions()]
        seen["volume"] = volume
        # The offscreen screen is 800x800; show it as on a reading-room display.
        window.resize(1440, 900)
        qapp.processEvents()
        window.grab().save(str(artifacts_dir / "main_window_demo.png"))
        window.close()

    QTimer.singleShot(250, inspect_when_loaded)
    assert app_main.main(["--demo"]) == 0
    assert "synthetic chest CT phantom" in str(seen["message"])
    volume = seen["volume"]
    assert volume is not None, "the demo case was not generated and opened within 2 minutes"
    assert volume.modality == "CT" and volume.array_zyx.min() <= -900
    assert (demo_folder / "ground_truth.nii.gz").is_file()
    assert seen["recent"] == [str(demo_folder / "dicom")]  # File → Open Recent opens it again
    assert pg.getConfigOption("imageAxisOrder") == "row-major"
    assert ini.exists()  # geometry was saved on close
