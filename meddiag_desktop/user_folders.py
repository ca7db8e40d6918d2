"""Where the app keeps per-user data (models, the demo case, the database), owner-only."""

from __future__ import annotations

from pathlib import Path

import platformdirs

from meddiag_desktop.private_files import ModeFix, owner_only_folder

APP_NAME = "MedDiag Desktop"
APP_AUTHOR = "MedDiag"


def user_data_dir() -> Path:
    return platformdirs.user_data_path(APP_NAME, APP_AUTHOR)


def secure_user_data_dir() -> list[ModeFix]:
    """Create the user data folder 0700, or take group and other permissions off an existing
    one (it holds the case database and masks); the fixes made, each logged as a warning."""
    return owner_only_folder(user_data_dir())


def user_models_dir() -> Path:
    return user_data_dir() / "models"


def demo_case_dir() -> Path:
    return user_data_dir() / "demo-case"


def user_exports_dir() -> Path:
    """Where exports go unless the user picks a folder: beside their own documents, where a
    person looks for a report to file, not hidden in the app's data folder."""
    return platformdirs.user_documents_path() / APP_NAME / "exports"
