"""What this build is made of: the versions the About box, the self-test and bug reports show.

One version number, the project's (``pyproject.toml`` via the package metadata, which the frozen
build carries too), plus the libraries that decide how the program behaves.
"""

from __future__ import annotations

import sys

from meddiag_desktop import __version__


def component_versions() -> dict[str, str]:
    """This program's version first, then Python, Qt, PySide6, onnxruntime and SimpleITK."""
    import onnxruntime
    import PySide6
    import SimpleITK
    from PySide6.QtCore import qVersion

    return {
        "meddiag-desktop": __version__,
        "Python": ".".join(str(n) for n in sys.version_info[:3]),
        "Qt": qVersion(),
        "PySide6": PySide6.__version__,
        "onnxruntime": onnxruntime.__version__,
        "SimpleITK": SimpleITK.Version.VersionString(),
    }


def build_kind() -> str:
    """``frozen`` for the packaged (PyInstaller) build, ``source`` for a checkout or a wheel."""
    return "frozen" if getattr(sys, "frozen", False) else "source"
