"""Login in the app (offscreen): nothing shows before someone signs in, a wrong password is
refused, a viewer's review, sign and export actions are greyed out saying why, and the idle lock
covers the window, swallows review keys and unlocks with the same password, the case still open.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import shared_fakes
from PySide6.QtCore import QSettings, Qt

from meddiag_desktop.app.findings_panel import FindingsPanel
from meddiag_desktop.app.login_dialog import LoginDialog, SignInCancelled
from meddiag_desktop.app.main import build_window
from meddiag_desktop.app.main_window import MainWindow
from meddiag_desktop.db.audit import recent_events
from meddiag_desktop.db.cases import get_case
from meddiag_desktop.db.engine import NOT_SIGNED_IN, Database, DatabaseSettings
from meddiag_desktop.db.login import set_login, sign_in
from meddiag_desktop.db.records import AuditAction, ReviewStatus, UserRole
from meddiag_desktop.db.reviews import review_finding
from meddiag_desktop.db.runs import store_inference
from meddiag_desktop.db.users import add_user
from meddiag_desktop.domain import Segmentation, Volume

from .case_data import analysed_case

pytestmark = pytest.mark.gui
PASSWORD = "correct horse battery"


@pytest.fixture
def login_db(settings: QSettings) -> Path:
    """The settings' database with an admin, a radiologist and a viewer, and login on."""
    path = Path(str(settings.value("database/location")))
    with Database.open(DatabaseSettings(url=str(path), actor="setup")) as db:
        add_user(db, "ada", UserRole.ADMIN, password=PASSWORD)
        add_user(db, "rita", UserRole.RADIOLOGIST, "Dr Rita Ray", password=PASSWORD)
        add_user(db, "vic", UserRole.VIEWER, password=PASSWORD)
        set_login(db, True, idle_lock_minutes=1)
    return path


def _window_as(qtbot, settings: QSettings, name: str) -> MainWindow:
    window = build_window(settings, sign_in=lambda db: sign_in(db, name, PASSWORD))
    qtbot.addWidget(window)
    window.resize(1280, 800)
    window.show()
    qtbot.waitExposed(window)
    return window


def test_login_is_asked_before_the_window_and_a_wrong_password_is_refused(
    qtbot, settings: QSettings, login_db: Path, artifacts_dir: Path
) -> None:
    asked: list[str] = []

    def nobody(db: Database) -> Database | None:
        asked.append(db.actor)
        return None

    with pytest.raises(SignInCancelled):
        build_window(settings, sign_in=nobody)
    assert asked == [NOT_SIGNED_IN]  # the prompt came first, with nobody acting yet

    with Database.open(DatabaseSettings(url=str(login_db))) as db:
        dialog = LoginDialog(db)
        qtbot.addWidget(dialog)
        dialog.show()
        qtbot.waitExposed(dialog)
        dialog.form.username.setText("rita")
        dialog.form.password.setText("not her password")
        assert dialog.form.try_sign_in() is None
        assert dialog.form.error.isVisible()
        assert dialog.form.error.text() == "Wrong user name or password."
        assert dialog.form.password.text() == ""  # never left in the widget
        assert dialog.result() == 0 and dialog.database is None
        dialog.form.password.setText("typed again")  # the picture shows a filled-in form
        dialog.grab().save(str(artifacts_dir / "login_dialog.png"))
        dialog.form.password.setText(PASSWORD)
        qtbot.keyClick(dialog.form.password, Qt.Key.Key_Return)
        assert dialog.database is not None and dialog.database.actor == "rita"
        assert dialog.result() == 1
        failed = [e for e in recent_events(db) if e.action is AuditAction.LOGIN_FAILED]
        assert len(failed) == 1 and "not her password" not in str(failed[0].details)


def test_a_viewer_sees_review_sign_and_export_disabled_with_the_reason(
    qtbot, settings: QSettings, login_db: Path
) -> None:
    with Database.open(DatabaseSettings(url=str(login_db))) as db:
        rita = sign_in(db, "rita", PASSWORD)
        case_id = analysed_case(rita, 1, findings=2)
        for stored in get_case(rita, case_id).current_run.findings:
            review_finding(rita, stored.finding_pk, ReviewStatus.ACCEPTED)
        reviewed = get_case(rita, case_id)
    window = _window_as(qtbot, settings, "vic")
    try:
        assert window.database.actor == "vic"
        assert window.user_label.text() == "Signed in: vic (viewer)"
        panel = window.findings
        panel.set_case(reviewed)
        panel.select_first()
        assert not panel.sign_action.isEnabled()
        assert "only a radiologist can sign" in panel.sign_button.toolTip()
        assert panel.sign_reason.text() == (
            "'vic' is a viewer; only a radiologist can sign a case."
        )
        assert not panel.accept_action.isEnabled() and not panel.add_action.isEnabled()
        assert "viewers can look at cases but not review" in panel.accept_action.toolTip()
        window._case = reviewed  # as if opened: export is then only held back by the role
        window._update_actions()
        assert not window.export_action.isEnabled()
        assert "not export" in window.export_action.toolTip()
        assert window.show_export_dialog() is None
        # The core refuses too, whatever the buttons show.
        window.review.load_case(case_id)
        assert not window.review.sign_off()
        assert get_case(window.database, case_id).signed_at is None
    finally:
        window.close()
        window.database.close()
    # The same reviewed case can be signed by someone allowed to: the panel, unrestricted.
    other = FindingsPanel()
    qtbot.addWidget(other)
    other.set_case(reviewed)
    assert other.sign_action.isEnabled()


def _case_with_findings(qtbot, window: MainWindow, phantom_path: Path) -> int:
    """Open the phantom and give its case a stored run of two pending findings."""
    window.open_path(phantom_path)
    qtbot.waitUntil(lambda: window.case is not None, timeout=60_000)
    volume: Volume = window.volume
    labels = np.zeros(volume.shape_zyx, np.uint8)
    labels[10:14, 20:26, 20:26] = 1
    result = shared_fakes.FakeResult(
        Segmentation(labels, {1: "nodule"}, {1: "#ff5050"}),
        (shared_fakes.finding(1), shared_fakes.finding(2)),
    )
    case_id = window.case.case_id
    store_inference(window.database, case_id, volume, result)
    window.review.load_case(case_id)
    qtbot.waitUntil(lambda: window.findings.model.rowCount() == 2, timeout=5_000)
    return case_id


def test_idle_lock_covers_the_window_and_unlocks_with_the_case_still_open(
    qtbot, settings: QSettings, login_db: Path, phantom_path: Path, artifacts_dir: Path
) -> None:
    window = _window_as(qtbot, settings, "rita")
    try:
        lock = window.screen_lock
        assert lock is not None and lock.idle_minutes == 1 and lock.timer.isActive()
        assert window.user_label.text() == "Signed in: Dr Rita Ray (radiologist)"
        case_id = _case_with_findings(qtbot, window, phantom_path)
        window.findings.select_first()
        first = window.findings.selected_finding()
        assert first is not None

        lock.timer.setInterval(200)  # a minute is long for a test: the same timer, shorter
        lock.timer.start()
        qtbot.waitUntil(lambda: lock.locked, timeout=5_000)
        assert lock.panel.isVisible() and lock.panel.geometry() == window.rect()
        assert not window.centralWidget().isEnabled() and not window.menuBar().isEnabled()
        window.grab().save(str(artifacts_dir / "screen_locked.png"))

        window.activateWindow()
        qtbot.keyClick(window, Qt.Key.Key_A)  # "accept" while locked: swallowed
        assert _status(window, first.finding_pk) is ReviewStatus.PENDING

        lock.panel.form.password.setText("wrong guess!")
        lock.panel.unlock_button.click()
        assert lock.locked and "Wrong user name or password" in lock.panel.form.error.text()
        lock.panel.form.password.setText(PASSWORD)
        lock.panel.unlock_button.click()
        assert not lock.locked and not lock.panel.isVisible()
        assert window.centralWidget().isEnabled()
        assert window.case is not None and window.case.case_id == case_id  # work kept
        assert window.volume is not None and window.findings.model.rowCount() == 2

        window.findings.select_finding(first.finding_pk)
        window.activateWindow()
        qtbot.keyClick(window, Qt.Key.Key_A)  # unlocked: the same key reviews again
        assert _status(window, first.finding_pk) is ReviewStatus.ACCEPTED
        events = recent_events(window.database, limit=50)
        locks = [e for e in events if e.action in (AuditAction.SCREEN_LOCKED,
                                                   AuditAction.SCREEN_UNLOCKED)]
        assert [(e.action, e.actor) for e in locks] == [
            (AuditAction.SCREEN_UNLOCKED, "rita"), (AuditAction.SCREEN_LOCKED, "rita"),
        ]
        assert locks[1].details == {"idle_minutes": 1}
    finally:
        window.close()
        window.database.close()


def _status(window: MainWindow, finding_pk: int) -> ReviewStatus:
    case = get_case(window.database, window.case.case_id)
    return next(f.review_status for f in case.current_run.findings if f.finding_pk == finding_pk)
