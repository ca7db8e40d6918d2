"""Every keyboard shortcut of the workstation, in one table: menus, review, tools and views.

Before this table the keys were spread over the window, the findings panel, the tool actions and
the viewer, and two of them collided unseen (``E`` was both Edit and Eraser, so Qt fired
neither; ``R`` rejected a finding in the panel but reset the zoom in an image). Now each action
takes its key from here (:func:`bind_action`), the viewer reads its own keys from here
(:func:`command_for_key`), the Help → Keyboard Shortcuts sheet and the user guide are generated
from here, and :func:`conflicts` (run by a test) finds any key given twice.

It lives in ``viewer`` rather than ``app`` because the viewer's keys (paging, presets) must come
from the same table, and ``viewer`` may not import ``app``.

Contexts: a :attr:`KeyContext.WINDOW` key works wherever the focus is in the main window (Qt's
``WindowShortcut``); text fields still take plain letters as typing (Qt lets a line edit claim a
printable key before any shortcut). A :attr:`KeyContext.VIEWER` key works while an image view
has the focus. A window key is seen before a view's own keys, so a window key must differ from
every viewer key, and keys within one context must differ.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeyEvent, QKeySequence


class KeyContext(StrEnum):
    WINDOW = "window"  # anywhere in the main window
    VIEWER = "viewer"  # while an image view has the keyboard focus


@dataclass(frozen=True)
class KeyBinding:
    """One command, the keys that run it (the first is shown in menus) and where they work."""

    command: str
    keys: tuple[str, ...]  # QKeySequence portable text: "A", "Ctrl+Shift+O", "PgUp"
    title: str  # what the sheet and the guide call it
    group: str
    context: KeyContext = KeyContext.WINDOW

    @property
    def shown_keys(self) -> str:
        """The keys as a reader types them: ``Ctrl+Shift+O``, ``1 … 9``."""
        names = [
            QKeySequence(k).toString(QKeySequence.SequenceFormat.NativeText) for k in self.keys
        ]
        if len(names) > 3:
            return f"{names[0]} … {names[-1]}"
        return " or ".join(names)


_W, _V = KeyContext.WINDOW, KeyContext.VIEWER

KEYMAP: tuple[KeyBinding, ...] = (
    # File
    KeyBinding("file.open_folder", ("Ctrl+O",), "Open a folder", "File"),
    KeyBinding("file.open_file", ("Ctrl+Shift+O",), "Open a file", "File"),
    KeyBinding("file.settings", ("Ctrl+,",), "Settings", "File"),
    KeyBinding("file.quit", ("Ctrl+Q",), "Quit", "File"),
    # Case
    KeyBinding("case.run_model", ("Ctrl+R",), "Run a model on the open scan", "Case"),
    KeyBinding("case.cancel_run", ("Ctrl+.",), "Cancel the model run", "Case"),
    KeyBinding("case.save_edit", ("Ctrl+S",), "Save the edit (stores the new outline)", "Case"),
    KeyBinding("case.discard_edit", ("Ctrl+D",), "Discard the edit", "Case"),
    KeyBinding("case.history", ("Ctrl+H",), "Case history (every decision)", "Case"),
    KeyBinding("case.refresh_worklist", ("F5",), "Refresh the worklist", "Case"),
    # Review: window-wide, so they work with the focus in an image, the worklist or the table
    KeyBinding("review.accept", ("A",), "Accept the selected finding", "Review"),
    KeyBinding("review.reject", ("R",), "Reject the selected finding (asks why)", "Review"),
    KeyBinding("review.edit", ("E",), "Edit the selected finding's outline", "Review"),
    KeyBinding("review.add_manual", ("M",), "Add a finding the model missed", "Review"),
    KeyBinding("review.next", ("N",), "Next finding", "Review"),
    KeyBinding("review.previous", ("P",), "Previous finding", "Review"),
    KeyBinding("review.sign_off", ("Ctrl+Shift+S",), "Sign the case off (asks first)", "Review"),
    # Tools
    KeyBinding("tool.navigate", ("Esc",), "Navigate (left button moves the crosshair)", "Tools"),
    KeyBinding("tool.ruler", ("L",), "Ruler", "Tools"),
    KeyBinding("tool.rectangle", ("O",), "Rectangle ROI", "Tools"),
    KeyBinding("tool.ellipse", ("Shift+O",), "Ellipse ROI", "Tools"),
    KeyBinding("tool.brush", ("B",), "Brush (while editing or adding)", "Tools"),
    KeyBinding("tool.eraser", ("X",), "Eraser (while editing or adding)", "Tools"),
    KeyBinding("tool.smaller_brush", ("[",), "Smaller brush", "Tools"),
    KeyBinding("tool.larger_brush", ("]",), "Larger brush", "Tools"),
    KeyBinding("tool.undo", ("Ctrl+Z",), "Undo a brush stroke", "Tools"),
    KeyBinding("tool.redo", ("Ctrl+Shift+Z",), "Redo a brush stroke", "Tools"),
    KeyBinding("tool.clear_measurements", ("Shift+Del",), "Clear rulers and ROIs", "Tools"),
    # View
    KeyBinding("view.maximise", ("F",), "Maximise the active view / back to four", "View"),
    KeyBinding("view.reset", ("Ctrl+0",), "Reset zoom and pan", "View"),
    KeyBinding("view.crosshair", ("C",), "Crosshair on/off", "View"),
    KeyBinding("view.show_rejected", ("H",), "Show rejected findings (grey, dotted)", "View"),
    # Help
    KeyBinding("help.shortcuts", ("F1",), "This list of keys", "Help"),
    # In an image view (click into one first)
    KeyBinding("viewer.previous_slice", ("Up",), "Previous slice", "Image view", _V),
    KeyBinding("viewer.next_slice", ("Down",), "Next slice", "Image view", _V),
    KeyBinding("viewer.back_10", ("PgUp",), "10 slices back", "Image view", _V),
    KeyBinding("viewer.forward_10", ("PgDown",), "10 slices on", "Image view", _V),
    KeyBinding("viewer.first_slice", ("Home",), "First slice", "Image view", _V),
    KeyBinding("viewer.last_slice", ("End",), "Last slice", "Image view", _V),
    KeyBinding(
        "viewer.preset", tuple(str(n) for n in range(1, 10)), "Window preset 1-9", "Image view", _V
    ),
)

# The mouse, for the sheet and the guide (not keys, so not checked for conflicts).
MOUSE: tuple[tuple[str, str], ...] = (
    ("Left click / drag", "Move the crosshair (or use the active tool)"),
    ("Wheel", "Page through slices"),
    ("Ctrl+wheel", "Zoom"),
    ("Middle drag", "Pan"),
    ("Right drag", "Window (left-right: width) and level (up-down)"),
    ("Double click", "Maximise the view / back to four"),
)

_BY_COMMAND = {binding.command: binding for binding in KEYMAP}


def binding(command: str) -> KeyBinding:
    """The binding of ``command``; a KeyError names a command missing from the table."""
    try:
        return _BY_COMMAND[command]
    except KeyError:
        raise KeyError(f"no key binding for '{command}' in the keymap") from None


def normalised(key: str) -> str:
    """One spelling per key ("ctrl+o" and "Ctrl+O" are the same key)."""
    return QKeySequence(key).toString(QKeySequence.SequenceFormat.PortableText)


def conflicts(bindings: Iterable[KeyBinding] = KEYMAP) -> list[str]:
    """Sentences naming every key given to two commands where both can fire, or unreadable."""
    problems: list[str] = []
    owners: dict[tuple[KeyContext, str], str] = {}
    for item in bindings:
        for key in item.keys:
            spelled = normalised(key)
            if not spelled or QKeySequence(key).count() != 1:
                problems.append(f"{item.command}: '{key}' is not one key")
                continue
            # a window key is also live while a view has the focus, and is seen first there
            clashing = (_W, _V) if item.context is _W else (item.context, _W)
            for context in clashing:
                other = owners.get((context, spelled))
                if other is not None and other != item.command:
                    problems.append(f"'{spelled}' is both {other} and {item.command}")
            owners.setdefault((item.context, spelled), item.command)
    return problems


def bind_action(action: QAction, command: str, window_wide: bool = True) -> QAction:
    """Give ``action`` the command's keys and a tooltip that names them.

    ``window_wide``: the keys work anywhere in the action's window (the review keys must work
    with the focus in an image), not only while the widget holding the action has the focus.
    """
    item = binding(command)
    action.setShortcuts([QKeySequence(k) for k in item.keys])
    if window_wide:
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    tip = action.toolTip() or action.text().replace("&", "").rstrip("…")
    action.setToolTip(f"{tip} ({item.shown_keys})")
    return action


def command_for_key(event: QKeyEvent, context: KeyContext = KeyContext.VIEWER) -> str:
    """The command a key press means in ``context`` (a viewer's own keys), "" for none."""
    modifiers = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
    pressed = QKeySequence(event.keyCombination().key().value | modifiers.value)
    spelled = pressed.toString(QKeySequence.SequenceFormat.PortableText)
    for item in KEYMAP:
        if item.context is context and any(normalised(k) == spelled for k in item.keys):
            return item.command
    return ""


def key_names(command: str) -> str:
    """The first key of ``command`` as shown to a reader (for hints and tooltips)."""
    return binding(command).shown_keys


def groups() -> list[tuple[str, list[KeyBinding]]]:
    """The bindings by group, in table order (for the sheet and the guide)."""
    grouped: dict[str, list[KeyBinding]] = {}
    for item in KEYMAP:
        grouped.setdefault(item.group, []).append(item)
    return list(grouped.items())


def markdown() -> str:
    """The key tables of the user guide (``docs/user-guide.md`` holds exactly this text)."""
    lines: list[str] = []
    for group, items in groups():
        lines += [f"**{group}**", "", "| key | does |", "|---|---|"]
        lines += [f"| {_md_key(item)} | {item.title} |" for item in items]
        lines.append("")
    lines += ["**Mouse** (in an image view)", "", "| mouse | does |", "|---|---|"]
    lines += [f"| {gesture} | {meaning} |" for gesture, meaning in MOUSE]
    return "\n".join(lines) + "\n"


def _md_key(item: KeyBinding) -> str:
    # portable spelling: the guide is read on any system; "|" would break the table
    shown = item.shown_keys if len(item.keys) > 3 else " or ".join(normalised(k) for k in item.keys)
    return f"`{shown}`".replace("|", "\\|")


if __name__ == "__main__":  # the key tables for docs/user-guide.md
    print(markdown(), end="")
