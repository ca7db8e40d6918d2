"""The main window end to end: open a scan, page through it, survive bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtTest import QTest

from meddiag_desktop.app import scan_controller
from meddiag_desktop.app.main_window import CLINICAL_NOTICE, MainWindow, about_text
from meddiag_desktop.app.message_bar import MessageLevel
from meddiag_desktop.app.series_table import COLUMNS
from meddiag_desktop.scans import ScanError
from meddiag_desktop.viewer.plane_geometry import Plane

pytestmark = pytest.mark.gui
TIMEOUT_MS = 20_000


def _wait_for_volume(qtbot, window: MainWindow) -> None:
    qtbot.waitUntil(lambda: window.viewer.volume is not None, timeout=TIMEOUT_MS)


def test_open_nifti_fills_table_and_view_and_scrolls(
    qtbot, main_window: MainWindow, phantom_path: Path, artifacts_dir: Path
) -> None:
    main_window.open_path(phantom_path)
    model = main_window.series_table.series_model
    qtbot.waitUntil(lambda: model.rowCount() == 1, timeout=TIMEOUT_MS)
    _wait_for_volume(qtbot, main_window)

    viewer = main_window.viewer
    axial = viewer.plane_view(Plane.AXIAL)
    assert axial.mapping is not None and axial.mapping.slice_count == 40
    assert axial.slice_index == 20
    assert viewer.window_level is not None and viewer.window_level.name.startswith("Soft")
    assert model.index(0, COLUMNS.index("Loadable")).data() == "yes"

    start = axial.slice_index
    axial.setFocus()
    QTest.keyClick(axial, Qt.Key.Key_Down)
    assert axial.slice_index != start
    viewer.jump_to_voxel((39, 32, 32))
    assert axial.slice_index in (0, 39)  # slice numbers grow toward S; this volume's z is S

    main_window.grab().save(str(artifacts_dir / "main_window.png"))
    assert CLINICAL_NOTICE.upper() in main_window.clinical_notice.text()
    assert main_window.clinical_notice.isVisible()


def test_missing_path_shows_a_message_not_a_crash(
    qtbot, main_window: MainWindow, tmp_path: Path
) -> None:
    main_window.open_path(tmp_path / "no-such-folder")
    qtbot.waitUntil(main_window.message_bar.isVisible, timeout=TIMEOUT_MS)
    assert main_window.message_bar.level is MessageLevel.ERROR
    assert "does not exist" in main_window.message_bar.text()
    assert "Traceback" not in main_window.message_bar.text()
    assert main_window.viewer.volume is None


def test_file_that_is_not_a_scan_shows_a_message(
    qtbot, main_window: MainWindow, tmp_path: Path
) -> None:
    junk = tmp_path / "notes.dcm"
    junk.write_bytes(b"this is not a DICOM file" * 40)
    main_window.open_path(junk)
    qtbot.waitUntil(main_window.message_bar.isVisible, timeout=TIMEOUT_MS)
    assert main_window.message_bar.level is MessageLevel.ERROR
    assert "notes.dcm: is named as a DICOM file but is not one" in main_window.message_bar.text()


def test_a_file_name_with_terminal_escapes_is_shown_without_them(
    qtbot, main_window: MainWindow, tmp_path: Path
) -> None:
    junk = tmp_path / "evil\x1b]0;owned\x07\x1b[2J.dcm"
    junk.write_bytes(b"this is not a DICOM file" * 40)
    main_window.open_path(junk)
    qtbot.waitUntil(main_window.message_bar.isVisible, timeout=TIMEOUT_MS)
    shown = [main_window.windowTitle(), main_window.message_bar.text()]
    shown.append(main_window.statusBar().currentMessage())
    assert "evil" in main_window.windowTitle()
    for text in shown:
        assert "\x1b" not in text and "\x07" not in text, text


def test_damaged_nifti_is_listed_greyed_with_its_reason(
    qtbot, main_window: MainWindow, tmp_path: Path
) -> None:
    damaged = tmp_path / "damaged.nii.gz"
    damaged.write_bytes(b"\x1f\x8b" + b"garbage" * 100)
    main_window.open_path(damaged)
    model = main_window.series_table.series_model
    qtbot.waitUntil(lambda: model.rowCount() == 1, timeout=TIMEOUT_MS)
    assert main_window.message_bar.level is MessageLevel.WARNING
    assert model.index(0, COLUMNS.index("Loadable")).data() == "no"
    assert "damaged" in model.index(0, COLUMNS.index("Notes")).data()
    assert "damaged" in main_window.series_details.text()
    assert main_window.viewer.volume is None


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (ScanError("scan.nii.gz", "pixel data is truncated"), "pixel data is truncated"),
        (RuntimeError("boom"), "Unexpected error (RuntimeError): boom"),
    ],
)
def test_load_failure_shows_a_message_not_a_traceback(
    qtbot, main_window: MainWindow, phantom_path: Path, monkeypatch, raised, expected
) -> None:
    def failing_load(series, progress=None):
        raise raised

    monkeypatch.setattr(scan_controller.scans, "load", failing_load)
    main_window.open_path(phantom_path)
    qtbot.waitUntil(main_window.message_bar.isVisible, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: not main_window.progress_bar.isVisible(), timeout=TIMEOUT_MS)
    assert main_window.message_bar.level is MessageLevel.ERROR
    assert expected in main_window.message_bar.text()
    assert "Traceback" not in main_window.message_bar.text()
    assert main_window.viewer.volume is None


def test_dropping_a_file_opens_it(qtbot, main_window: MainWindow, phantom_path: Path) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(phantom_path))])
    drop = QDropEvent(
        QPointF(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    main_window.dropEvent(drop)
    _wait_for_volume(qtbot, main_window)
    assert main_window.viewer.volume is not None
    assert main_window.viewer.volume.shape_zyx[0] == 40


def test_window_geometry_is_remembered(qtbot, settings) -> None:
    from meddiag_desktop.app.main import build_window

    first = build_window(settings)
    qtbot.addWidget(first)
    first.resize(790, 560)  # smaller than the offscreen screen (800 x 800)
    first.show()
    qtbot.waitExposed(first)
    first.close()
    second = build_window(settings)
    qtbot.addWidget(second)
    assert (second.width(), second.height()) == (790, 560)
    second.close()


def test_about_names_version_and_regulatory_status() -> None:
    from meddiag_desktop import __version__

    text = about_text()
    assert __version__ in text
    assert "not a medical device" in text


def test_ct_folder_with_mixed_series(
    qtbot, main_window: MainWindow, sample_data: Path, artifacts_dir: Path
) -> None:
    folder = sample_data / "dicom" / "ct_philips_mixed_folder"
    if not folder.is_dir():
        pytest.skip(f"{folder} not present")
    main_window.open_path(folder)
    _wait_for_volume(qtbot, main_window)
    model = main_window.series_table.series_model
    rows = [model.series_at(r) for r in range(model.rowCount())]
    assert sum(s.loadable for s in rows) == 1
    assert len(rows) > 1
    for row, series in enumerate(rows):
        selectable = bool(model.flags(model.index(row, 0)) & Qt.ItemFlag.ItemIsSelectable)
        assert selectable == series.loadable
        if not series.loadable:
            assert model.index(row, COLUMNS.index("Notes")).data() == series.reason
    volume = main_window.viewer.volume
    assert volume is not None and volume.modality == "CT"
    main_window.grab().save(str(artifacts_dir / "main_window_ct.png"))
