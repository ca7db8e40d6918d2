"""Start the workstation (placeholder window until the GUI issue lands)."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from PySide6.QtWidgets import QApplication, QLabel

    app = QApplication.instance() or QApplication(list(argv or sys.argv))
    label = QLabel("MedDiag Desktop — not for clinical use")
    label.show()
    return app.exec()
