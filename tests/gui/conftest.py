"""GUI fixtures: a themed offscreen application, throwaway settings and a synthetic CT phantom."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication
from shared_fakes import phantom_volume

from meddiag_desktop.app.main import build_window, configure_pyqtgraph
from meddiag_desktop.app.main_window import MainWindow
from meddiag_desktop.app.theme import apply_dark_theme
from meddiag_desktop.domain import Volume
from meddiag_desktop.scans import write_volume


@pytest.fixture(autouse=True)
def themed_app(qapp: QApplication) -> QApplication:
    """The same start-up configuration as ``main`` (row-major images, dark theme)."""
    configure_pyqtgraph()
    apply_dark_theme(qapp)
    return qapp


@pytest.fixture
def settings(tmp_path: Path) -> QSettings:
    """An INI file per test, so tests never read or write the user's real settings or cases."""
    store = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    store.setValue("database/location", str(tmp_path / "cases.sqlite3"))
    return store


@pytest.fixture
def main_window(qtbot, settings: QSettings) -> Iterator[MainWindow]:
    window = build_window(settings)
    qtbot.addWidget(window)
    window.resize(1440, 900)  # a desktop size for screenshots; the offscreen screen is smaller
    window.show()
    qtbot.waitExposed(window)
    yield window
    window.close()  # saves settings and waits for background reads
    window.database.close()


@pytest.fixture
def phantom() -> Volume:
    return phantom_volume()


@pytest.fixture
def phantom_path(tmp_path: Path, phantom: Volume) -> Path:
    return write_volume(phantom, tmp_path / "phantom.nii.gz")
