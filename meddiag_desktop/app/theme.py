"""Dark theme for dim reading rooms: Fusion (looks the same on every OS) and a muted palette.

Bright chrome next to a greyscale image changes how the image is perceived, so the interface
stays dark grey and the image area black; amber is kept for warnings and the clinical notice.
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import QApplication

from meddiag_desktop.resource_files import resource_path

_ACTIVE = {
    QPalette.ColorRole.Window: "#1e1f22",
    QPalette.ColorRole.WindowText: "#d8dadf",
    QPalette.ColorRole.Base: "#16171a",
    QPalette.ColorRole.AlternateBase: "#1c1e21",
    QPalette.ColorRole.ToolTipBase: "#2b2d31",
    QPalette.ColorRole.ToolTipText: "#e6e8eb",
    QPalette.ColorRole.PlaceholderText: "#7d8590",
    QPalette.ColorRole.Text: "#d8dadf",
    QPalette.ColorRole.Button: "#2b2d31",
    QPalette.ColorRole.ButtonText: "#d8dadf",
    QPalette.ColorRole.BrightText: "#ff6b6b",
    QPalette.ColorRole.Highlight: "#2f5d8a",
    QPalette.ColorRole.HighlightedText: "#ffffff",
    QPalette.ColorRole.Link: "#6aa6e0",
    QPalette.ColorRole.Light: "#3a3d43",
    QPalette.ColorRole.Midlight: "#303338",
    QPalette.ColorRole.Mid: "#26282c",
    QPalette.ColorRole.Dark: "#141518",
    QPalette.ColorRole.Shadow: "#000000",
}
_DISABLED = {
    QPalette.ColorRole.WindowText: "#6b7078",
    QPalette.ColorRole.Text: "#6b7078",
    QPalette.ColorRole.ButtonText: "#6b7078",
    QPalette.ColorRole.Highlight: "#3a3d43",
}
_FONT_POINTS = 10


def dark_palette() -> QPalette:
    palette = QPalette()
    for role, colour in _ACTIVE.items():
        palette.setColor(role, QColor(colour))
    for role, colour in _DISABLED.items():
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(colour))
    return palette


def style_sheet() -> str:
    """The widget styles shipped in ``resources/styles/dark.qss`` (found by resource_files)."""
    return resource_path("styles", "dark.qss").read_text(encoding="utf-8")


def apply_dark_theme(app: QApplication) -> None:
    app.setStyle("Fusion")
    app.setPalette(dark_palette())
    font = QFont(app.font())
    font.setPointSize(max(font.pointSize(), _FONT_POINTS))
    app.setFont(font)
    app.setStyleSheet(style_sheet())


# The light theme keeps the platform-neutral Fusion palette; only the safety notice is styled.
_LIGHT_STYLE = """
#clinicalNotice { background: #ffd866; color: #3b2b00; font-weight: bold; padding: 2px 10px; }
#volumeWarnings { background: #fff1c2; color: #4a3800; padding: 4px 8px; }
"""


def apply_theme(app: QApplication, theme: str) -> None:
    """``"dark"`` (the default, for reading rooms) or ``"light"`` (bright offices)."""
    if theme != "light":
        apply_dark_theme(app)
        return
    app.setStyle("Fusion")
    app.setPalette(app.style().standardPalette())
    app.setStyleSheet(_LIGHT_STYLE)
