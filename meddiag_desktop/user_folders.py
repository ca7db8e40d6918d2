"""Where the app keeps per-user data (models, the demo case; later the database)."""

from __future__ import annotations

from pathlib import Path

import platformdirs

APP_NAME = "MedDiag Desktop"
APP_AUTHOR = "MedDiag"


def user_data_dir() -> Path:
    return platformdirs.user_data_path(APP_NAME, APP_AUTHOR)


def user_models_dir() -> Path:
    return user_data_dir() / "models"


def demo_case_dir() -> Path:
    return user_data_dir() / "demo-case"
