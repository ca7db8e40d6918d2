"""The workstation's preferences: where models and cases are, which hardware runs models, theme.

A plain dataclass read from and written to a ``QSettings`` the caller gives (no global settings
object), so tests use a throwaway INI file and the app its per-user store. Values that no longer
make sense (a provider this build lacks, a theme renamed) fall back to the defaults instead of
failing at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from PySide6.QtCore import QSettings

from meddiag_desktop.db.engine import DatabaseSettings
from meddiag_desktop.inference.pipeline import InferenceOptions
from meddiag_desktop.inference.registry import ModelRegistry, bundled_models_dir
from meddiag_desktop.inference.session import SHORT_NAMES
from meddiag_desktop.user_folders import user_models_dir

AUTO_PROVIDER = "auto"
PROVIDERS = (AUTO_PROVIDER, *SHORT_NAMES)  # auto first: the best available, CPU as last resort

_MODEL_FOLDER_KEY = "models/folder"
_DATABASE_KEY = "database/location"
_PROVIDER_KEY = "inference/provider"
_THEME_KEY = "appearance/theme"
_ALLOW_UNSIGNED_KEY = "models/allow_unsigned"


class Theme(StrEnum):
    DARK = "dark"  # reading rooms are dim; the default
    LIGHT = "light"


@dataclass(frozen=True)
class AppSettings:
    """``""`` means the default: the user's models folder, ``$MEDDIAG_DB`` or the user database."""

    model_folder: str = ""
    database: str = ""  # a file path or a URL (sqlite:///..., postgresql+psycopg://...)
    provider: str = AUTO_PROVIDER
    theme: Theme = Theme.DARK
    # An admin's choice to run models whose signature cannot be checked here; every such run
    # records it (its "allow_unsigned" override in the audit trail). Off unless set.
    allow_unsigned_models: bool = False

    @classmethod
    def load(cls, store: QSettings) -> AppSettings:
        provider = _text(store, _PROVIDER_KEY, AUTO_PROVIDER).lower()
        theme = _text(store, _THEME_KEY, Theme.DARK.value).lower()
        return cls(
            model_folder=_text(store, _MODEL_FOLDER_KEY, ""),
            database=_text(store, _DATABASE_KEY, ""),
            provider=provider if provider in PROVIDERS else AUTO_PROVIDER,
            theme=Theme(theme) if theme in {t.value for t in Theme} else Theme.DARK,
            allow_unsigned_models=_text(store, _ALLOW_UNSIGNED_KEY, "false").lower() == "true",
        )

    def save(self, store: QSettings) -> None:
        store.setValue(_MODEL_FOLDER_KEY, self.model_folder)
        store.setValue(_DATABASE_KEY, self.database)
        store.setValue(_PROVIDER_KEY, self.provider)
        store.setValue(_THEME_KEY, self.theme.value)
        store.setValue(_ALLOW_UNSIGNED_KEY, "true" if self.allow_unsigned_models else "false")
        store.sync()

    @property
    def models_path(self) -> Path:
        """The folder user models are installed in and read from."""
        return Path(self.model_folder).expanduser() if self.model_folder else user_models_dir()

    def model_registry(self) -> ModelRegistry:
        """Bundled models, then the configured models folder (whose models take precedence)."""
        return ModelRegistry([(bundled_models_dir(), "bundled"), (self.models_path, "user")])

    def database_settings(self, actor: str | None = None) -> DatabaseSettings:
        return DatabaseSettings(url=self.database or None, actor=actor)

    def inference_options(
        self, allow_modality_mismatch: bool = False, allow_anatomy_mismatch: bool = False
    ) -> InferenceOptions:
        provider = None if self.provider == AUTO_PROVIDER else self.provider
        return InferenceOptions(
            provider=provider,
            allow_modality_mismatch=allow_modality_mismatch,
            allow_anatomy_mismatch=allow_anatomy_mismatch,
            allow_unsigned=self.allow_unsigned_models,
        )


def _text(store: QSettings, key: str, default: str) -> str:
    value = store.value(key, default)
    return value.strip() if isinstance(value, str) else default
