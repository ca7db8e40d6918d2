"""Edit :class:`AppSettings`, saying what is wrong with a location before it is saved.

A database path that cannot work (a folder, a file that is not a database, a read-only place)
is explained beside the field and OK stays disabled: finding out at the next start-up, with the
reading room waiting, is worse. PostgreSQL URLs are only checked for form here; whether the
server answers is learnt when connecting.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from meddiag_desktop.app.app_settings import PROVIDERS, AppSettings, Theme
from meddiag_desktop.db.engine import (
    DEFAULT_FILE_NAME,
    default_database_path,
    resolve_url,
    sqlite_file,
)
from meddiag_desktop.db.errors import CaseDatabaseError
from meddiag_desktop.user_folders import user_models_dir

SQLITE_HEADER = b"SQLite format 3\x00"
PROVIDER_TEXT = {
    "auto": "Automatic (best available, else CPU)",
    "cpu": "CPU",
    "cuda": "NVIDIA GPU (CUDA)",
    "tensorrt": "NVIDIA GPU (TensorRT)",
    "directml": "GPU (DirectML, Windows)",
    "coreml": "Apple (Core ML)",
}
THEME_TEXT = {Theme.DARK: "Dark (reading room)", Theme.LIGHT: "Light"}


def database_problem(location: str) -> str:
    """Why ``location`` cannot hold the case database; "" when it can (or is the default)."""
    if not location.strip():
        return ""
    try:
        url = resolve_url(location.strip())
    except CaseDatabaseError as exc:
        return str(exc)
    path = sqlite_file(url)
    if path is None:
        return ""  # PostgreSQL: its server says more when connecting
    if path.is_dir():
        return f"{path} is a folder: give a file name, e.g. {path / DEFAULT_FILE_NAME}"
    if path.exists():
        try:
            with path.open("rb") as handle:
                header = handle.read(len(SQLITE_HEADER))
        except OSError as exc:
            return f"{path} cannot be read ({exc.strerror or exc})"
        if header and header != SQLITE_HEADER:
            return f"{path} is not a SQLite database; choose another file name"
        if not os.access(path, os.W_OK):
            return f"{path} is read-only: cases could not be saved"
        return ""
    folder = _nearest_existing(path.parent)
    if not folder.is_dir():
        return f"{folder} is a file, so {path.parent} cannot be created"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"{folder} cannot be written: the database could not be created there"
    return ""


def model_folder_problem(location: str) -> str:
    """Why ``location`` cannot be the models folder; "" when it can (or is the default)."""
    if not location.strip():
        return ""
    path = Path(location.strip()).expanduser()
    if not path.exists():
        return f"{path} does not exist"
    if not path.is_dir():
        return f"{path} is a file, not a folder"
    return ""


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


class SettingsDialog(QDialog):
    """Model folder, database location, execution provider and theme; OK only when valid."""

    def __init__(self, settings: AppSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setMinimumWidth(620)

        self.model_folder = QLineEdit(settings.model_folder)
        self.model_folder.setPlaceholderText(f"Default: {user_models_dir()}")
        self.model_folder_problem = _problem_label()
        browse_models = QPushButton("Browse…")
        browse_models.clicked.connect(self._browse_models)

        self.database = QLineEdit(settings.database)
        self.database.setPlaceholderText(f"Default: {default_database_path()}")
        self.database.setToolTip(
            "A SQLite file path, or a URL such as postgresql+psycopg://user@server/meddiag "
            "for a database shared by several workstations"
        )
        self.database_problem = _problem_label()
        browse_database = QPushButton("Browse…")
        browse_database.clicked.connect(self._browse_database)

        self.provider = QComboBox()
        for name in PROVIDERS:
            self.provider.addItem(PROVIDER_TEXT.get(name, name), name)
        self.provider.setCurrentIndex(max(self.provider.findData(settings.provider), 0))
        self.provider.setToolTip(
            "Hardware that runs models; when it is not available, the CPU is used and the run "
            "says so"
        )
        self.theme = QComboBox()
        for theme in Theme:
            self.theme.addItem(THEME_TEXT[theme], theme.value)
        self.theme.setCurrentIndex(max(self.theme.findData(settings.theme.value), 0))
        self.allow_unsigned = QCheckBox("Run models whose signature cannot be checked (admins)")
        self.allow_unsigned.setChecked(settings.allow_unsigned_models)
        self.allow_unsigned.setToolTip(
            "Unsigned models, or models signed with a key this workstation does not trust, are "
            "refused unless this is on; every such run is recorded with the case. A model whose "
            "signature fails (changed since signing) is refused even so."
        )

        form = QFormLayout()
        form.addRow(
            "Models folder", _row(self.model_folder, browse_models, self.model_folder_problem)
        )
        form.addRow("Case database", _row(self.database, browse_database, self.database_problem))
        form.addRow("Run models on", self.provider)
        form.addRow("Theme", self.theme)
        form.addRow("Model signatures", self.allow_unsigned)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addStretch(1)
        layout.addWidget(self.buttons)

        self.model_folder.textChanged.connect(self._validate)
        self.database.textChanged.connect(self._validate)
        self._validate()

    def settings(self) -> AppSettings:
        """The settings as edited (meaningful once the dialog is accepted)."""
        return AppSettings(
            model_folder=self.model_folder.text().strip(),
            database=self.database.text().strip(),
            provider=str(self.provider.currentData()),
            theme=Theme(self.theme.currentData()),
            allow_unsigned_models=self.allow_unsigned.isChecked(),
        )

    def problems(self) -> list[str]:
        return [
            p
            for p in (
                model_folder_problem(self.model_folder.text()),
                database_problem(self.database.text()),
            )
            if p
        ]

    def accept(self) -> None:
        if self._validate():
            super().accept()

    @classmethod
    def edit(cls, settings: AppSettings, parent: QWidget | None = None) -> AppSettings | None:
        """Show the dialog; the new settings, or None when cancelled."""
        dialog = cls(settings, parent)
        return dialog.settings() if dialog.exec() == QDialog.DialogCode.Accepted else None

    def _validate(self) -> bool:
        ok = True
        for label, problem in (
            (self.model_folder_problem, model_folder_problem(self.model_folder.text())),
            (self.database_problem, database_problem(self.database.text())),
        ):
            label.setText(problem)
            label.setVisible(bool(problem))
            ok = ok and not problem
        self.ok_button.setEnabled(ok)
        return ok

    def _browse_models(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Models folder", self.model_folder.text() or str(user_models_dir())
        )
        if folder:
            self.model_folder.setText(folder)

    def _browse_database(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self,
            "Case database file",
            self.database.text() or str(default_database_path()),
            "SQLite database (*.sqlite3 *.sqlite *.db);;All files (*)",
            options=QFileDialog.Option.DontConfirmOverwrite,  # an existing database is reused
        )
        if path:
            self.database.setText(path)


def _row(field: QLineEdit, button: QPushButton, problem: QLabel) -> QWidget:
    """The field with its Browse button, and what is wrong with it underneath."""
    row = QWidget()
    line = QHBoxLayout()
    line.addWidget(field, 1)
    line.addWidget(button)
    layout = QVBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(2)
    layout.addLayout(line)
    layout.addWidget(problem)
    return row


def _problem_label() -> QLabel:
    label = QLabel()
    label.setWordWrap(True)
    palette = label.palette()
    palette.setColor(QPalette.ColorRole.WindowText, palette.color(QPalette.ColorRole.BrightText))
    label.setPalette(palette)
    label.hide()
    return label
