"""Where the files that ship beside the code are: ``resources/`` and the bundled ``models/``.

The icon, style sheets, desktop entry, licence notices and demo model are not Python modules, so
they are not found through the import system. They sit in one folder whose place depends on how
the program was installed; :func:`shipped_dir` is the one place that knows the three layouts:

- a **frozen build** (PyInstaller one-folder): ``sys._MEIPASS``, the bundle's ``_internal``
  folder, where ``packaging/meddiag-desktop.spec`` puts ``resources/`` and ``models/``;
- a **source checkout** (``pip install -e .``, or running from the tree): the repository root,
  the folder above the ``meddiag_desktop`` package;
- an **installed wheel** (``pip install .``): ``<prefix>/share/meddiag-desktop``, where the
  wheel's data files go (``[tool.setuptools] data-files`` in ``pyproject.toml``), for a plain
  or a ``--user`` install.

Qt-free on purpose: the CLI and the inference core use it as much as the app does.
"""

from __future__ import annotations

import site
import sys
from pathlib import Path

PACKAGE_NAME = "meddiag-desktop"
SHIPPED_FOLDERS = ("resources", "models")


class ShippedFileError(FileNotFoundError):
    """A shipped folder is missing: the installation is incomplete (not a user error)."""


def candidate_roots() -> list[Path]:
    """The folders that may hold ``resources/`` and ``models/``, in the order they are tried.

    A frozen build looks only inside itself: a checkout or another installation on the same
    machine must never lend it files of another version.
    """
    bundle = getattr(sys, "_MEIPASS", None)
    if getattr(sys, "frozen", False) and bundle:
        return [Path(bundle)]
    roots = []
    checkout = Path(__file__).resolve().parents[1]
    # Only a real checkout: an installed package's parent is site-packages, where another
    # distribution may have left a folder called models/ or resources/.
    if (checkout / "pyproject.toml").is_file():
        roots.append(checkout)
    roots.append(Path(sys.prefix) / "share" / PACKAGE_NAME)
    user_base = site.getuserbase()
    if user_base:
        roots.append(Path(user_base) / "share" / PACKAGE_NAME)
    return roots


def shipped_dir(name: str) -> Path:
    """The ``resources`` or ``models`` folder of this installation.

    Raises ShippedFileError naming every place looked, so a broken package says what is missing
    instead of failing later on a file name.
    """
    if name not in SHIPPED_FOLDERS:
        raise ValueError(f"unknown shipped folder {name!r} (one of {', '.join(SHIPPED_FOLDERS)})")
    roots = candidate_roots()
    for root in roots:
        if (root / name).is_dir():
            return root / name
    looked = ", ".join(str(root / name) for root in roots)
    raise ShippedFileError(f"the installation has no {name}/ folder (looked in {looked})")


def resource_path(*parts: str) -> Path:
    """A file under ``resources/``, e.g. ``resource_path("styles", "dark.qss")``.

    Raises ShippedFileError naming the file when it is not there.
    """
    path = shipped_dir("resources").joinpath(*parts)
    if not path.exists():
        raise ShippedFileError(f"the installation has no {path}")
    return path
