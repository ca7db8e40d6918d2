"""GUI fixtures: a themed offscreen application, throwaway settings and a synthetic CT phantom."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from meddiag_desktop.app.main import build_window, configure_pyqtgraph
from meddiag_desktop.app.main_window import MainWindow
from meddiag_desktop.app.theme import apply_dark_theme
from meddiag_desktop.domain import ScanMetadata, Volume
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


def phantom_volume() -> Volume:
    """40 x 64 x 64 CT-like block: air, a soft-tissue cylinder and a bright sphere."""
    z, y, x = np.mgrid[0:40, 0:64, 0:64]
    array = np.full((40, 64, 64), -1000, dtype=np.int16)
    array[(y - 32) ** 2 + (x - 32) ** 2 < 26**2] = 40
    array[((z - 20) * 2.5) ** 2 + ((y - 28) * 0.8) ** 2 + ((x - 36) * 0.8) ** 2 < 12**2] = 300
    return Volume(
        array_zyx=array,
        spacing_xyz_mm=(0.8, 0.8, 2.5),
        origin_lps_mm=(0.0, 0.0, 0.0),
        metadata=ScanMetadata(modality="CT", series_description="phantom"),
    )


@pytest.fixture
def phantom() -> Volume:
    return phantom_volume()


@pytest.fixture
def phantom_path(tmp_path: Path, phantom: Volume) -> Path:
    return write_volume(phantom, tmp_path / "phantom.nii.gz")
