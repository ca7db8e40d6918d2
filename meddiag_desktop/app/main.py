"""Start the workstation: parse the command line, build the application and its window.

Everything the window needs (settings, controller) is built here and passed in: no singletons,
so tests can build the same window with their own settings file.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import QSettings
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QMessageBox

from meddiag_desktop import __version__
from meddiag_desktop.app.app_settings import AppSettings
from meddiag_desktop.app.display_check import check_display
from meddiag_desktop.app.login_dialog import SignInCancelled, SignInPrompt, ask_to_sign_in
from meddiag_desktop.app.main_window import APP_NAME, MainWindow
from meddiag_desktop.app.message_bar import MessageLevel
from meddiag_desktop.app.scan_controller import ScanController
from meddiag_desktop.app.scheduling import use_own_scheduling_group
from meddiag_desktop.app.screen_lock import ScreenLock
from meddiag_desktop.app.theme import apply_theme
from meddiag_desktop.db.engine import Database
from meddiag_desktop.db.login import policy as login_policy
from meddiag_desktop.db.records import UserRole
from meddiag_desktop.db.users import ensure_user
from meddiag_desktop.resource_files import resource_path
from meddiag_desktop.safe_text import install_log_sanitiser
from meddiag_desktop.user_folders import demo_case_dir, secure_user_data_dir

ORGANIZATION = "MedDiag"
DEMO_NOTICE = (
    "Demo case: a synthetic chest CT phantom (not a patient), made on this computer the first "
    "time. Run the bundled demo model with Case → Run Model (Ctrl+R), then review its findings "
    "on the right."
)


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    """Our options, and whatever is left for Qt (such as ``-platform offscreen``)."""
    parser = argparse.ArgumentParser(
        prog="meddiag-desktop",
        description=f"{APP_NAME}: offline radiology review workstation (not a medical device).",
    )
    parser.add_argument("path", nargs="?", help="DICOM folder or image file to open")
    parser.add_argument("--demo", action="store_true", help="open the bundled demo case")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="check this installation offscreen (demo case, demo model on the CPU, a temporary "
        "database, one render), print one summary line and exit (0: passed)",
    )
    return parser.parse_known_args(list(argv))


def application_icon() -> QIcon:
    """The window and taskbar icon: the shipped PNG sizes (no SVG plugin needed)."""
    icon = QIcon()
    for png in sorted(resource_path("icons").glob("meddiag-desktop-*.png")):
        icon.addFile(str(png))
    return icon


def configure_pyqtgraph() -> None:
    """Row-major images match numpy's ``[y, x]`` slices (pyqtgraph defaults to column-major)."""
    pg.setConfigOptions(imageAxisOrder="row-major")


def build_window(
    settings: QSettings,
    ask_passphrase: Callable[[Path], str | None] | None = None,
    sign_in: SignInPrompt = ask_to_sign_in,
) -> MainWindow:
    """The main window with its controllers and the case database the settings name.

    Used by :func:`main` and the GUI tests. Raises ValueError/OSError with a readable message
    when the database cannot be opened (locked, read-only, newer than this app, encrypted and
    no passphrase given). ``ask_passphrase`` asks an encrypted database's passphrase when
    nothing else gives it (None: cancelled). With login on, ``sign_in`` asks who is working
    before the window (and any case) shows, and the window locks when idle; nobody signing in
    raises SignInCancelled.
    """
    app_settings = AppSettings.load(settings)
    database_settings = app_settings.database_settings()
    if ask_passphrase is not None:
        from meddiag_desktop.db.encryption_keys import passphrase_needed
        from meddiag_desktop.db.engine import resolve_url, sqlite_file

        path = sqlite_file(resolve_url(database_settings.url))
        if passphrase_needed(path) and path is not None:
            passphrase = ask_passphrase(path)
            if passphrase is not None:
                database_settings = dataclasses.replace(database_settings, passphrase=passphrase)
    database = Database.open(database_settings)
    try:
        policy = login_policy(database)
        if policy.required:
            signed = sign_in(database)
            if signed is None:
                raise SignInCancelled("nobody signed in")
            database = signed
        else:
            ensure_user(database, database.actor, UserRole.RADIOLOGIST)
        window = MainWindow(ScanController(), settings, database, app_settings)
        if policy.required:
            window.screen_lock = ScreenLock(window, database, policy.idle_lock_minutes)
        return window
    except BaseException:
        database.close()
        raise


def main(argv: Sequence[str] | None = None) -> int:
    args, qt_args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    install_log_sanitiser()  # file names and DICOM text reach the log
    configure_pyqtgraph()
    if args.self_test:
        from meddiag_desktop.app.self_test import run_self_test

        return run_self_test()
    existing = QApplication.instance()
    if not isinstance(existing, QApplication):
        # A fresh app process: its own share of a busy CPU, as the CLI gets from its terminal.
        use_own_scheduling_group()
        # Qt's xcb plugin aborts the process with a misleading message when it cannot start
        # (no display, a missing library): say what is really wrong first.
        code = check_display(qt_args)
        if code is not None:
            return code
    app = existing if isinstance(existing, QApplication) else QApplication([sys.argv[0], *qt_args])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APP_NAME)
    app.setApplicationVersion(__version__)
    app.setDesktopFileName("meddiag-desktop")  # matches the installed .desktop entry (Wayland)
    app.setWindowIcon(application_icon())
    settings = QSettings(ORGANIZATION, APP_NAME)
    apply_theme(app, AppSettings.load(settings).theme.value)
    try:
        from meddiag_desktop.app.passphrase_dialog import ask_database_passphrase

        fixed = secure_user_data_dir()  # 0700: it holds the cases (the database opens there)
        window = build_window(settings, ask_database_passphrase)
    except SignInCancelled:
        return 1
    except (ValueError, OSError) as exc:
        QMessageBox.critical(
            None,
            APP_NAME,
            f"The case database could not be opened:\n\n{exc}\n\nNothing was changed.",
        )
        return 2
    window.show()
    fixed += window.database.permission_fixes
    if fixed:  # each is in the log too
        more = f" (and {len(fixed) - 1} more, listed in the log)" if len(fixed) > 1 else ""
        window.show_notice(
            f"Only you can read your cases now: {fixed[0].message}{more}", MessageLevel.WARNING
        )
    if args.demo:
        window.open_demo(demo_case_dir())
        window.show_notice(DEMO_NOTICE, MessageLevel.INFO)
    elif args.path:
        window.open_path(args.path)
    code = app.exec()
    window.database.close()
    return code
