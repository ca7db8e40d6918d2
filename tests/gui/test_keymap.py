"""One keymap, no key given twice: checked on the table and on the live window; the shortcut
sheet and the user guide are generated from it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QAbstractButton, QToolButton

from meddiag_desktop.app.main_window import MainWindow
from meddiag_desktop.app.shortcut_sheet import ShortcutSheet
from meddiag_desktop.domain import Volume
from meddiag_desktop.viewer.keymap import (
    KEYMAP,
    MOUSE,
    KeyBinding,
    KeyContext,
    conflicts,
    markdown,
    normalised,
)
from meddiag_desktop.viewer.mpr_viewer import MprViewer
from meddiag_desktop.viewer.plane_geometry import Plane

pytestmark = pytest.mark.gui
REPO_ROOT = Path(__file__).resolve().parents[2]


def test_no_two_commands_share_a_key_in_the_same_context() -> None:
    assert conflicts() == []
    commands = [b.command for b in KEYMAP]
    assert len(commands) == len(set(commands))


def test_a_shared_key_is_found() -> None:
    """The check itself: the clashes this keymap once had are reported."""
    window, viewer = KeyContext.WINDOW, KeyContext.VIEWER
    edit = KeyBinding("review.edit", ("E",), "Edit", "Review")
    eraser = KeyBinding("tool.eraser", ("e",), "Eraser", "Tools")  # spelling does not matter
    reset = KeyBinding("viewer.reset", ("R",), "Reset", "View", viewer)
    reject = KeyBinding("review.reject", ("R",), "Reject", "Review", window)
    assert conflicts([edit, eraser]) == ["'E' is both review.edit and tool.eraser"]
    assert conflicts([reset, reject]) == ["'R' is both viewer.reset and review.reject"]
    assert conflicts([reject, reset]) == ["'R' is both review.reject and viewer.reset"]
    assert conflicts([KeyBinding("x.y", ("Ctrl+",), "broken", "X")]) != []


def _live_shortcuts(window: MainWindow) -> dict[str, list[str]]:
    """Every key an action or button of the window answers to, with who answers."""
    owners: dict[str, list[str]] = {}
    for action in window.findChildren(QAction):
        for sequence in action.shortcuts():
            owners.setdefault(sequence.toString(), []).append(f"action {action.text()!r}")
    for button in window.findChildren(QAbstractButton):
        action = button.defaultAction() if isinstance(button, QToolButton) else None
        if not button.shortcut().isEmpty() and action is None:  # else counted as the action
            owners.setdefault(button.shortcut().toString(), []).append(f"button {button.text()!r}")
    return owners


def test_the_window_answers_each_key_once_and_only_keys_of_the_keymap(
    main_window: MainWindow,
) -> None:
    owners = _live_shortcuts(main_window)
    shared = {key: who for key, who in owners.items() if len(who) > 1}
    assert shared == {}, "Qt fires none of the actions that share a key"
    window_keys = {normalised(k) for b in KEYMAP if b.context is KeyContext.WINDOW for k in b.keys}
    assert set(owners) - window_keys == set()
    assert window_keys - set(owners) == set()  # and every key the sheet lists is live


def test_review_keys_are_window_wide(main_window: MainWindow) -> None:
    panel = main_window.findings
    for action in (
        panel.accept_action,
        panel.reject_action,
        panel.edit_action,
        panel.next_action,
        panel.previous_action,
        panel.add_action,
        panel.sign_action,
    ):
        assert action.shortcutContext() is Qt.ShortcutContext.WindowShortcut, action.text()


def test_the_shortcut_sheet_lists_every_key(
    qtbot, main_window: MainWindow, artifacts_dir: Path
) -> None:
    qtbot.keyClick(main_window, Qt.Key.Key_F1)
    sheet = main_window.shortcut_sheet
    assert isinstance(sheet, ShortcutSheet) and sheet.isVisible()
    text = sheet.browser.toPlainText()
    for item in KEYMAP:
        assert item.title in text and item.shown_keys in text, item.command
    for gesture, meaning in MOUSE:
        assert gesture in text and meaning in text
    sheet.resize(560, 1500)  # the whole list in one picture
    qtbot.wait(20)
    sheet.grab().save(str(artifacts_dir / "keymap_sheet.png"))


def test_the_user_guide_holds_the_keymap() -> None:
    guide = (REPO_ROOT / "docs" / "user-guide.md").read_text(encoding="utf-8")
    assert markdown() in guide, "regenerate the key tables: python -m meddiag_desktop.viewer.keymap"
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/user-guide.md" in readme


def _ct_volume() -> Volume:
    z, y, x = np.mgrid[0:20, 0:32, 0:32]
    return Volume(((x + y + z) * 10 - 500).astype(np.int16), (1.0, 1.0, 2.0), (0.0, 0.0, 0.0))


def test_r_no_longer_resets_a_view_ctrl_0_does(qtbot) -> None:
    viewer = MprViewer()
    qtbot.addWidget(viewer)
    viewer.resize(600, 600)
    viewer.show()
    qtbot.waitExposed(viewer)
    viewer.set_volume(_ct_volume())
    axial = viewer.plane_view(Plane.AXIAL)
    fitted = np.array(axial.view_box.viewRange())
    axial.view_box.scaleBy((0.5, 0.5))
    zoomed = np.array(axial.view_box.viewRange())
    assert not np.allclose(zoomed, fitted)
    axial.setFocus()
    qtbot.keyClick(axial, Qt.Key.Key_R)  # R rejects a finding in the workstation
    assert np.allclose(axial.view_box.viewRange(), zoomed)
    qtbot.keyClick(axial, Qt.Key.Key_0, Qt.KeyboardModifier.ControlModifier)
    assert np.allclose(axial.view_box.viewRange(), fitted)
    assert "Ctrl+0: reset view" in viewer.panel.hint_label.text()


def test_viewer_keys_come_from_the_keymap() -> None:
    viewer_keys = {normalised(k) for b in KEYMAP if b.context is KeyContext.VIEWER for k in b.keys}
    assert {"Up", "Down", "PgUp", "PgDown", "Home", "End", "1", "9"} <= viewer_keys
    assert normalised("R") not in viewer_keys and QKeySequence("R").count() == 1
