"""Preferences survive a restart through QSettings, and nonsense in the file falls back."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from meddiag_desktop.app.app_settings import AUTO_PROVIDER, PROVIDERS, AppSettings, Theme
from meddiag_desktop.user_folders import user_models_dir

pytestmark = pytest.mark.gui


def test_defaults_and_round_trip(settings: QSettings, tmp_path: Path) -> None:
    settings.remove("database/location")  # the fixture points tests at a throwaway database
    assert AppSettings.load(settings) == AppSettings()
    chosen = AppSettings(
        model_folder=str(tmp_path / "models"),
        database=str(tmp_path / "cases.sqlite3"),
        provider="cpu",
        theme=Theme.LIGHT,
    )
    chosen.save(settings)
    reopened = QSettings(settings.fileName(), QSettings.Format.IniFormat)
    assert AppSettings.load(reopened) == chosen


def test_unknown_values_fall_back(settings: QSettings) -> None:
    settings.setValue("inference/provider", "quantum")
    settings.setValue("appearance/theme", "neon")
    settings.setValue("database/location", 42)
    loaded = AppSettings.load(settings)
    assert (loaded.provider, loaded.theme, loaded.database) == (AUTO_PROVIDER, Theme.DARK, "")
    assert PROVIDERS[0] == AUTO_PROVIDER and "cpu" in PROVIDERS


def test_what_the_settings_build(tmp_path: Path) -> None:
    assert AppSettings().models_path == user_models_dir()
    assert AppSettings().database_settings().url is None  # $MEDDIAG_DB or the user database
    assert AppSettings().inference_options().provider is None  # auto: the best available
    custom = AppSettings(model_folder=str(tmp_path), database="x.sqlite3", provider="cuda")
    assert custom.database_settings(actor="reader").url == "x.sqlite3"
    assert custom.database_settings(actor="reader").actor == "reader"
    options = custom.inference_options(allow_modality_mismatch=True)
    assert options.provider == "cuda" and options.allow_modality_mismatch
    assert (tmp_path, "user") in custom.model_registry().folders


def test_light_and_dark_themes_apply(qapp) -> None:
    from PySide6.QtGui import QPalette

    from meddiag_desktop.app.theme import apply_theme

    apply_theme(qapp, "light")
    light = qapp.palette().color(QPalette.ColorRole.Window).lightness()
    apply_theme(qapp, "dark")
    dark = qapp.palette().color(QPalette.ColorRole.Window).lightness()
    assert light > 180 > 60 > dark
