"""A new user's first start: no display or a missing xcb library is named as such, a fresh
database is made without Alembic's narration in the terminal, and the worklist fits the window.

The start-up checks run ``meddiag-desktop`` in a subprocess: Qt's xcb plugin aborts the whole
process when it cannot start, so only a separate process can show what a user would see.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QLibraryInfo
from PySide6.QtWidgets import QApplication

from meddiag_desktop.app.display_check import (
    XCB_PLUGIN,
    XCB_QPA_LIBRARY,
    debian_package,
    elf_needed,
    xcb_plugin_libraries,
)
from meddiag_desktop.app.main_window import MainWindow
from meddiag_desktop.app.worklist_panel import Column, WorklistPanel

from .case_data import analysed_case, import_case, open_database

pytestmark = pytest.mark.gui
QT_ABORT_TEXT = "xcb-cursor0 or libxcb-cursor0 is needed"
ALEMBIC_LINE = re.compile(r"alembic|Context impl|transactional DDL|Running upgrade")
PLUGINS = Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath))
QT_LIBS = Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.LibrariesPath))


def _user_env(tmp_path: Path, **changes: str | None) -> dict[str, str]:
    """The environment of a user whose home, settings and cases live in ``tmp_path``."""
    env = {
        **os.environ,
        "HOME": str(tmp_path / "home"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "MEDDIAG_DB": str(tmp_path / "cases.sqlite3"),
    }
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def _start(tmp_path: Path, *args: str, **env: str | None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "meddiag_desktop", *args],
        env=_user_env(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=120,
    )


# ---- no display, missing libraries ------------------------------------------------------------
def test_without_a_display_the_app_says_so_and_how_to_run_offscreen(tmp_path: Path) -> None:
    done = _start(tmp_path, "--demo", DISPLAY=None, WAYLAND_DISPLAY=None, QT_QPA_PLATFORM=None)
    assert done.returncode == 2, done.stderr
    assert "no display found" in done.stderr
    assert "QT_QPA_PLATFORM=offscreen" in done.stderr
    assert QT_ABORT_TEXT not in done.stderr  # Qt was never asked to open a window
    assert not (tmp_path / "cases.sqlite3").exists()  # nothing was made on the way out


def _ldd_not_found(*paths: Path) -> list[str]:
    """What the dynamic loader cannot find, as ``ldd`` reports it (the reference to meet)."""
    ldd = shutil.which("ldd")
    if ldd is None:
        pytest.skip("ldd is not installed: no reference for the missing libraries")
    found: list[str] = []
    for path in paths:
        out = subprocess.run([ldd, str(path)], capture_output=True, text=True).stdout
        found += re.findall(r"^\s*(\S+) => not found", out, flags=re.MULTILINE)
    return list(dict.fromkeys(found))


def test_with_a_display_the_really_missing_xcb_libraries_are_named(tmp_path: Path) -> None:
    """On this machine libxcb-cursor0 is present and others are not: Qt would still blame
    libxcb-cursor0. The app names what ldd names, with the Debian packages to install."""
    missing = _ldd_not_found(PLUGINS / "platforms" / XCB_PLUGIN, QT_LIBS / XCB_QPA_LIBRARY)
    done = _start(tmp_path, DISPLAY=":97", WAYLAND_DISPLAY=None, QT_QPA_PLATFORM="xcb")
    assert done.returncode == 2, done.stderr
    assert QT_ABORT_TEXT not in done.stderr
    if missing:
        assert "cannot start: this system lacks" in done.stderr
        for soname in missing:
            assert soname in done.stderr and debian_package(soname) in done.stderr
    else:  # every library is there: the display :97 itself is what is missing
        assert "cannot connect to the X display ':97'" in done.stderr


def test_the_library_check_names_only_what_the_loader_cannot_open(tmp_path: Path) -> None:
    """In a subprocess: the check really opens libraries, which a test process should not keep."""
    probe = (
        "import json; from meddiag_desktop.app.display_check import missing_libraries\n"
        "found = missing_libraries(['libc.so.6', 'libmeddiag-absent-xcb.so.3', 'libm.so.6'])\n"
        "print(json.dumps([[m.soname, m.debian_package, m.reason] for m in found]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    [(soname, package, reason)] = json.loads(done.stdout)
    assert (soname, package) == ("libmeddiag-absent-xcb.so.3", "libmeddiag-absent-xcb3")
    assert "libmeddiag-absent-xcb.so.3" in reason


def test_debian_package_names_follow_debians_rule() -> None:
    assert debian_package("libxcb-icccm.so.4") == "libxcb-icccm4"
    assert debian_package("libxcb-cursor.so.0") == "libxcb-cursor0"
    assert debian_package("libxkbcommon-x11.so.0") == "libxkbcommon-x11-0"
    assert debian_package("libX11-xcb.so.1") == "libx11-xcb1"


def test_the_plugins_libraries_are_read_from_the_plugin_as_readelf_reads_them() -> None:
    readelf = shutil.which("readelf")
    if readelf is None:
        pytest.skip("readelf is not installed: no reference for the plugin's needed libraries")
    plugin = PLUGINS / "platforms" / XCB_PLUGIN
    out = subprocess.run([readelf, "-d", str(plugin)], capture_output=True, text=True).stdout
    assert elf_needed(plugin) == re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", out)
    needed = xcb_plugin_libraries(PLUGINS, QT_LIBS)
    assert "libxcb-icccm.so.4" in needed and "libxcb-cursor.so.0" in needed
    assert not any(name.startswith("libQt6") for name in needed)  # Qt ships those itself


# ---- a quiet first start ----------------------------------------------------------------------
def test_a_first_start_of_the_app_keeps_alembic_out_of_the_terminal(tmp_path: Path) -> None:
    """A fresh database is migrated on the first start; the terminal shows no migration log."""
    quit_soon = (
        "import sys\n"
        "from PySide6.QtCore import QTimer\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication(['meddiag-desktop'])\n"
        "QTimer.singleShot(1500, app.quit)\n"
        "from meddiag_desktop.app.main import main\n"
        "sys.exit(main([]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", quit_soon],
        env=_user_env(tmp_path, QT_QPA_PLATFORM="offscreen"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "cases.sqlite3").is_file()  # the migrations did run
    assert not [line for line in done.stderr.splitlines() if ALEMBIC_LINE.search(line)]


def test_a_first_cli_command_keeps_alembic_out_of_the_terminal(tmp_path: Path) -> None:
    database = tmp_path / "x.sqlite3"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "meddiag_desktop.cli",
            "cases",
            "list",
            "--db",
            f"sqlite:///{database}",
        ],
        env=_user_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert database.is_file()
    assert not [line for line in done.stderr.splitlines() if ALEMBIC_LINE.search(line)]


# ---- the worklist at the window's default size ------------------------------------------------
def test_the_worklist_columns_fit_at_the_default_window_size(
    qtbot, main_window: MainWindow, artifacts_dir: Path
) -> None:
    """The window as a first start sizes it (no saved geometry), with a realistic worklist:
    every column shows without scrolling sideways."""
    for index in range(1, 9):
        analysed_case(main_window.database, index)
    import_case(
        main_window.database,
        20,
        patient_name="VAN DER BERG-OSTERHAUS^MAXIMILIANA^JOHANNA",
        study_description="CT THORAX ABDOMEN PELVIS WITH CONTRAST",
        series_description="AXIAL 1.25 MM SOFT TISSUE",
    )
    main_window.resize(1600, 960)  # what _restore_settings gives a first start on a large screen
    main_window.worklist.refresh()
    QApplication.processEvents()
    table = main_window.worklist.table
    assert main_window.left_tabs.currentWidget() is main_window.worklist
    main_window.grab().save(str(artifacts_dir / "main_window_default_size_worklist.png"))
    header = table.horizontalHeader()
    assert header.length() <= table.viewport().width(), (header.length(), table.viewport().width())
    assert table.horizontalScrollBar().maximum() == 0
    shown = {c for c in Column if not table.isColumnHidden(c)}
    assert {Column.PATIENT, Column.PATIENT_ID, Column.STATUS} <= shown  # who, and what state
    assert "hidden" in main_window.worklist.count_label.text()  # and the list says so


def test_a_wide_worklist_shows_every_column_without_scrolling(qtbot, tmp_path: Path) -> None:
    db = open_database(tmp_path)
    try:
        for index in range(1, 4):
            analysed_case(db, index)
        panel = WorklistPanel(db)
        qtbot.addWidget(panel)
        panel.resize(1100, 400)
        with qtbot.waitExposed(panel):
            panel.show()
        header = panel.table.horizontalHeader()
        assert panel.hidden_columns() == []
        assert header.length() <= panel.table.viewport().width()
        assert "hidden" not in panel.count_label.text()
        panel.resize(330, 400)  # narrowed by hand: columns leave, no sideways scroll bar
        qtbot.waitUntil(lambda: bool(panel.hidden_columns()), timeout=2000)
        assert header.length() <= panel.table.viewport().width()
        assert panel.table.horizontalScrollBar().maximum() == 0
    finally:
        db.close()
