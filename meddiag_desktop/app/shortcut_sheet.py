"""Help → Keyboard Shortcuts: every key of the workstation, generated from the keymap.

Written out of :data:`~meddiag_desktop.viewer.keymap.KEYMAP` each time it opens, so the sheet
can never list a key the window does not have (or miss one it has).
"""

from __future__ import annotations

import html

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

from meddiag_desktop.viewer.keymap import MOUSE, groups

_STYLE = (
    "table { border-collapse: collapse; margin-bottom: 10px; }"
    "td { padding: 2px 10px 2px 0; }"
    "td.key { font-family: monospace; font-weight: bold; white-space: nowrap; }"
    "h3 { margin: 8px 0 2px 0; }"
)
_KEY_COLUMN_PX = 150  # one key column for every table, so the sheet reads as one list


def sheet_html() -> str:
    """The sheet as rich text: one two-column table per group, the mouse last."""
    parts = [f"<html><head><style>{_STYLE}</style></head><body>"]
    parts.append(
        "<p>Review keys work wherever the focus is in the window, except while typing in a "
        "text field. Image-view keys work after a click into a view.</p>"
    )
    sections = [
        (group, [(item.shown_keys, item.title) for item in items]) for group, items in groups()
    ]
    sections.append(("Mouse (in an image view)", list(MOUSE)))
    for title, rows in sections:
        parts.append(f"<h3>{html.escape(title)}</h3><table>")
        parts += [
            f'<tr><td class="key" width="{_KEY_COLUMN_PX}">{html.escape(key)}</td>'
            f"<td>{html.escape(does)}</td></tr>"
            for key, does in rows
        ]
        parts.append("</table>")
    parts.append("</body></html>")
    return "".join(parts)


class ShortcutSheet(QDialog):
    """A non-modal window with the keys, to keep open beside the images while learning them."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        self.browser = QTextBrowser()
        self.browser.setObjectName("shortcutSheet")
        self.browser.setHtml(sheet_html())
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser, 1)
        layout.addWidget(buttons)
        self.resize(560, 720)
