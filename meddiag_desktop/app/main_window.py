"""The workstation window: series list on the left, slice view on the right, notices around.

The window only turns user actions into controller calls and controller events into widgets;
reading files happens in :class:`ScanController` off the GUI thread.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, Qt
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from meddiag_desktop import __version__
from meddiag_desktop.app.message_bar import MessageBar, MessageLevel
from meddiag_desktop.app.scan_controller import ScanController
from meddiag_desktop.app.series_details import SeriesDetails
from meddiag_desktop.app.series_table import SeriesTable
from meddiag_desktop.domain import SeriesInfo, Volume
from meddiag_desktop.viewer.slice_view import SliceView

APP_NAME = "MedDiag Desktop"
CLINICAL_NOTICE = "Not for clinical use"
_FILE_FILTER = "Scans (*.dcm *.nii *.nii.gz *.mha *.mhd *.nrrd *.nhdr *.ima *.img);;All files (*)"


def about_text() -> str:
    """The Help → About text: version and the regulatory statement."""
    return (
        f"<h3>{APP_NAME} {__version__}</h3>"
        "<p>An offline review workstation for radiology scans.</p>"
        "<p><b>MedDiag Desktop is not a medical device.</b> It is not cleared or approved for "
        "diagnosis, treatment or any other clinical decision. Do not use it for patient care.</p>"
    )


class MainWindow(QMainWindow):
    """Menus, series table, slice view, message strip and status bar."""

    def __init__(self, controller: ScanController, settings: QSettings) -> None:
        super().__init__()
        self._controller = controller
        self._settings = settings
        self._current_key = ""
        self.setWindowTitle(f"{APP_NAME} — {CLINICAL_NOTICE}")
        self.setAcceptDrops(True)
        self._build_central()
        self._build_menus()
        self._build_status_bar()
        self._connect_controller()
        self._restore_settings()

    # ---- building ----------------------------------------------------------------------------
    def _build_central(self) -> None:
        self.message_bar = MessageBar()
        self.series_table = SeriesTable()
        self.series_table.series_chosen.connect(self._series_chosen)
        self.series_details = SeriesDetails()
        self.series_table.series_hovered.connect(self.series_details.show_hovered)
        self.slice_view = SliceView()

        title = QLabel("Series")
        title.setObjectName("panelTitle")
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(title)
        left_layout.addWidget(self.series_table, 1)
        left_layout.addWidget(self.series_details)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(self.slice_view)
        self.splitter.setStretchFactor(0, 2)
        self.splitter.setStretchFactor(1, 3)
        self.splitter.setChildrenCollapsible(False)

        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(6, 6, 6, 0)
        layout.addWidget(self.message_bar)
        layout.addWidget(self.splitter, 1)
        self.setCentralWidget(central)

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self._add_action(file_menu, "Open &Folder…", QKeySequence("Ctrl+O"), self._ask_folder)
        self._add_action(file_menu, "Open F&ile…", QKeySequence("Ctrl+Shift+O"), self._ask_file)
        file_menu.addSeparator()
        self._add_action(
            file_menu, "&Quit", QKeySequence(QKeySequence.StandardKey.Quit), self.close
        )
        help_menu = self.menuBar().addMenu("&Help")
        self._add_action(help_menu, "&About MedDiag Desktop", None, self._show_about)

    def _add_action(self, menu, text: str, shortcut: QKeySequence | None, slot) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(shortcut)
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _build_status_bar(self) -> None:
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 100)
        self.progress_bar.setFixedWidth(180)
        self.progress_bar.setTextVisible(False)
        self.progress_bar.hide()
        self.clinical_notice = QLabel(CLINICAL_NOTICE.upper())
        self.clinical_notice.setObjectName("clinicalNotice")
        self.clinical_notice.setToolTip("MedDiag Desktop is not a medical device (Help → About)")
        status = self.statusBar()
        status.addPermanentWidget(self.progress_bar)
        status.addPermanentWidget(self.clinical_notice)
        status.showMessage("Open a folder (Ctrl+O) or a file (Ctrl+Shift+O), or drop one here.")

    def _connect_controller(self) -> None:
        c = self._controller
        c.discovery_started.connect(self._discovery_started)
        c.series_found.connect(self._series_found)
        c.loading_started.connect(self._loading_started)
        c.volume_loaded.connect(self._volume_loaded)
        c.scan_failed.connect(self._scan_failed)
        c.progress_changed.connect(self._progress_changed)
        c.busy_changed.connect(self.progress_bar.setVisible)

    # ---- public API --------------------------------------------------------------------------
    def open_path(self, path: Path | str) -> None:
        """Open a folder or file: list its series, and load it when there is just one."""
        self._settings.setValue("paths/last_open", str(Path(path).expanduser().parent))
        self._controller.open_path(path)

    def open_demo(self, folder: Path) -> None:
        """Open (making it first if needed) the synthetic demo case kept in ``folder``."""
        self._controller.open_demo(folder)

    def show_error(self, message: str) -> None:
        """Non-modal, so it never blocks reading (or a test); stays until dismissed."""
        self.message_bar.show_message(message, MessageLevel.ERROR)
        self.statusBar().showMessage("Could not open the scan: see the message above.")

    def show_notice(self, message: str, level: MessageLevel = MessageLevel.INFO) -> None:
        self.message_bar.show_message(message, level)

    # ---- controller events -------------------------------------------------------------------
    def _discovery_started(self, path: str) -> None:
        self._current_key = ""
        self.message_bar.dismiss()
        self.series_table.set_series([])
        self.series_details.set_series([])
        self.slice_view.clear()
        self.setWindowTitle(f"{Path(path).name} — {APP_NAME} — {CLINICAL_NOTICE}")
        self.statusBar().showMessage(f"Reading {path} …")

    def _series_found(self, found: list[SeriesInfo]) -> None:
        self.series_table.set_series(found)
        self.series_details.set_series(found)
        loadable = [s for s in found if s.loadable]
        self.statusBar().showMessage(f"{len(found)} series found, {len(loadable)} can be opened.")
        if len(loadable) == 1:
            self.series_table.select_series(loadable[0].key)
        elif loadable:
            self.show_notice(f"{len(loadable)} series can be opened: choose one in the list.")
        else:
            self.show_notice(
                "None of these series can be opened as a 3-D scan; the list says why.",
                MessageLevel.WARNING,
            )

    def _series_chosen(self, series: SeriesInfo) -> None:
        if series.key != self._current_key:
            self._controller.load_series(series)

    def _loading_started(self, series: SeriesInfo) -> None:
        self._current_key = series.key
        self.statusBar().showMessage(f"Loading {series.description or series.key} …")

    def _volume_loaded(self, volume: Volume, series: SeriesInfo) -> None:
        self.slice_view.set_volume(volume)
        self.series_details.set_opened(series)
        x, y, z = volume.size_xyz
        name = series.description or Path(volume.source).name or series.key
        self.statusBar().showMessage(f"{name}: {x} × {y} × {z} voxels, {volume.modality or '?'}")

    def _scan_failed(self, message: str) -> None:
        self._current_key = ""  # picking the same series again retries it
        self.show_error(message)

    def _progress_changed(self, fraction: float, text: str) -> None:
        self.progress_bar.setValue(round(100 * fraction))
        self.progress_bar.setToolTip(text)

    # ---- user actions ------------------------------------------------------------------------
    def _start_dir(self) -> str:
        return str(self._settings.value("paths/last_open", str(Path.home())))

    def _ask_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open folder", self._start_dir())
        if folder:
            self.open_path(folder)

    def _ask_file(self) -> None:
        file, _ = QFileDialog.getOpenFileName(self, "Open file", self._start_dir(), _FILE_FILTER)
        if file:
            self.open_path(file)

    def _show_about(self) -> None:
        QMessageBox.about(self, f"About {APP_NAME}", about_text())

    # ---- Qt events ---------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.open_path(paths[0])

    def closeEvent(self, event: QCloseEvent) -> None:
        self._settings.setValue("window/geometry", self.saveGeometry())
        self._settings.setValue("window/splitter", self.splitter.saveState())
        self._settings.sync()
        self._controller.shutdown()
        super().closeEvent(event)

    def _restore_settings(self) -> None:
        geometry = self._settings.value("window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            available = self.screen().availableGeometry()
            self.resize(min(1440, available.width()), min(900, available.height()))
        splitter = self._settings.value("window/splitter")
        if isinstance(splitter, QByteArray) and not splitter.isEmpty():
            self.splitter.restoreState(splitter)
        else:
            self.splitter.setSizes([580, 860])
