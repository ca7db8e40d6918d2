"""Render the application icon's PNG sizes (and the Windows .ico) from the one SVG.

The PNGs are committed under ``resources/icons/`` so a build needs no SVG renderer; run this
again after changing ``resources/icons/meddiag-desktop.svg``:

    .venv/bin/python packaging/render_icons.py

Qt's own SVG renderer draws them (offscreen), Pillow packs the .ico; both are already
dependencies of the app (Pillow comes with matplotlib).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ICONS = REPO / "resources" / "icons"
SVG = ICONS / "meddiag-desktop.svg"
# The hicolor sizes desktops look up, plus 512 for software centres and the macOS .icns.
PNG_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)


def png_path(size: int) -> Path:
    return ICONS / f"meddiag-desktop-{size}.png"


def render() -> list[Path]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PIL import Image
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    renderer = QSvgRenderer(str(SVG))
    if not renderer.isValid():
        raise SystemExit(f"{SVG}: not a valid SVG")
    written = []
    for size in PNG_SIZES:
        image = QImage(size, size, QImage.Format.Format_ARGB32)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        if not image.save(str(png_path(size))):
            raise SystemExit(f"{png_path(size)}: could not be written")
        written.append(png_path(size))
    ico = ICONS / "meddiag-desktop.ico"
    Image.open(png_path(256)).save(ico, sizes=[(s, s) for s in ICO_SIZES])
    written.append(ico)
    del app
    return written


if __name__ == "__main__":
    for path in render():
        print(path.relative_to(REPO))
