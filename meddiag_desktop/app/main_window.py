"""The workstation window: worklist and series on the left, the MPR viewer, findings on the right.

The window turns user actions into controller calls and controller events into widgets; reading
files, importing cases and running models happen off the GUI thread in the controllers. Every
answer that comes back is checked against what is open now, so a slow result for case A never
paints over case B.

Every key comes from :mod:`meddiag_desktop.viewer.keymap` (Help → Keyboard Shortcuts lists
them); the review keys work wherever the focus is. Painting is possible only in Edit and
Add-manual modes, so the overlay always shows what is stored or an edit Save/Discard can act on.
Signing asks first (:attr:`MainWindow.confirm_sign_off`, a dialog listing what is signed).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QByteArray, QSettings, Qt
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from meddiag_desktop import __version__
from meddiag_desktop.app.app_settings import AppSettings
from meddiag_desktop.app.case_controller import CaseController, OpenedCase
from meddiag_desktop.app.case_history import CaseHistoryDialog
from meddiag_desktop.app.export_controller import ExportController, ExportRequest
from meddiag_desktop.app.export_dialog import ExportDialog, ExportFinishedBox, finished_text
from meddiag_desktop.app.findings_panel import (
    FindingsPanel,
    case_findings,
    run_label_colours,
    sign_off_state,
)
from meddiag_desktop.app.follow_up_flow import FollowUpFlow
from meddiag_desktop.app.inference_controller import (
    FinishedRun,
    InferenceController,
    RunRequest,
    RunTag,
)
from meddiag_desktop.app.login_dialog import sentence, user_status_text
from meddiag_desktop.app.message_bar import MessageBar, MessageLevel
from meddiag_desktop.app.model_picker import ModelPickerDialog
from meddiag_desktop.app.provider_details import ProviderDetailsBox
from meddiag_desktop.app.review_controller import ReviewController
from meddiag_desktop.app.scan_controller import ScanController
from meddiag_desktop.app.series_details import SeriesDetails
from meddiag_desktop.app.series_table import SeriesTable
from meddiag_desktop.app.settings_dialog import SettingsDialog
from meddiag_desktop.app.shortcut_sheet import ShortcutSheet
from meddiag_desktop.app.sign_off_dialog import SignOffConfirm, ask_to_sign_off
from meddiag_desktop.app.theme import apply_theme
from meddiag_desktop.app.viewer_tools import ViewerTools
from meddiag_desktop.app.worklist_panel import WorklistPanel
from meddiag_desktop.db.engine import Database
from meddiag_desktop.db.records import CaseDetail, MaskEdit, ReviewStatus, StoredFinding
from meddiag_desktop.db.roles import Permission, refusals
from meddiag_desktop.demo.case import DICOM_FOLDER as DEMO_DICOM_FOLDER
from meddiag_desktop.domain import SeriesInfo, SeriesKind, Volume
from meddiag_desktop.inference.card import ModelCard
from meddiag_desktop.inference.cpu_runtime import RuntimeChoice
from meddiag_desktop.inference.provider_reason import fell_back, plain_reason
from meddiag_desktop.inference.session import ProviderReport
from meddiag_desktop.safe_text import printable
from meddiag_desktop.scans.seg_reading import SegLabelMap
from meddiag_desktop.viewer.keymap import bind_action, key_names
from meddiag_desktop.viewer.mpr_viewer import MprViewer

if TYPE_CHECKING:
    from meddiag_desktop.app.screen_lock import ScreenLock
    from meddiag_desktop.export.write_outputs import ExportResult

APP_NAME = "MedDiag Desktop"
CLINICAL_NOTICE = "Not for clinical use"
_FILE_FILTER = "Scans (*.dcm *.nii *.nii.gz *.mha *.mhd *.nrrd *.nhdr *.ima *.img);;All files (*)"
_RECENT_KEY = "paths/recent"
_RECENT_COUNT = 8


def about_text() -> str:
    """The Help → About text: version, what the build is made of, the regulatory statement."""
    from meddiag_desktop.app.build_info import build_kind, component_versions

    parts = [f"{k} {v}" for k, v in component_versions().items() if k != "meddiag-desktop"]
    return (
        f"<h3>{APP_NAME} {__version__}</h3>"
        "<p>An offline review workstation for radiology scans.</p>"
        f"<p><small>{', '.join(parts)} ({build_kind()} build)</small></p>"
        "<p><b>MedDiag Desktop is not a medical device.</b> It is not cleared or approved for "
        "diagnosis, treatment or any other clinical decision. Do not use it for patient care.</p>"
    )


class MainWindow(QMainWindow):
    """Menus and toolbar, worklist/series tabs, viewer, findings panel, status bar."""

    def __init__(
        self,
        controller: ScanController,
        settings: QSettings,
        database: Database,
        app_settings: AppSettings | None = None,
    ) -> None:
        super().__init__()
        self._controller = controller
        self._settings = settings
        self._db = database
        self._app_settings = app_settings or AppSettings.load(settings)
        self._current_key = ""
        self._wanted_key = ""  # a series to select when its folder has been listed
        self._series: SeriesInfo | None = None
        self._volume: Volume | None = None
        self._case: CaseDetail | None = None
        self._labels: np.ndarray | None = None
        self._label_names: dict[int, str] = {}
        self._labels_run_id: int | None = None  # the run whose mask the label map started from
        self._editing: StoredFinding | None = None  # the finding the brush is editing
        self._adding_manual = False
        self._select_first_finding = False  # after a run: its first finding, when it is shown
        self._provider: ProviderReport | None = None  # of the last run shown
        # Asked before a sign-off (parent, case, signer -> sign?); a test may pass its own.
        self.confirm_sign_off: SignOffConfirm = ask_to_sign_off
        self.history_dialog: CaseHistoryDialog | None = None
        self.shortcut_sheet: ShortcutSheet | None = None
        self.provider_box: ProviderDetailsBox | None = None
        self.export_dialog: ExportDialog | None = None
        self.export_offer: QMessageBox | None = None  # "Export now?" after a sign-off
        self.export_box: ExportFinishedBox | None = None  # where an export's files went
        self.cases = CaseController(database, parent=self)
        self.inference = InferenceController(self)
        self.review = ReviewController(database, self)
        self.exports = ExportController(self)
        self.follow_up = FollowUpFlow(
            database, self, self.show_error, self._status, lambda: self._update_actions()
        )
        # What the signed-in user's role forbids (as a sentence; "" where it allows): those
        # actions stay greyed out, their tooltips saying why. The core refuses them anyway.
        self.refusals = {p: sentence(why) if why else "" for p, why in refusals(database).items()}
        self.screen_lock: ScreenLock | None = None  # with login on (build_window adds it)
        self.setWindowTitle(f"{APP_NAME} — {CLINICAL_NOTICE}")
        self.setAcceptDrops(True)
        self._build_central()
        self.tools = ViewerTools(self.viewer, self)
        self._build_menus_and_toolbar()
        self._apply_role_limits()
        self._build_status_bar()
        self._connect()
        self._restore_settings()
        self._update_actions()

    # ---- building ----------------------------------------------------------------------------
    def _build_central(self) -> None:
        self.message_bar = MessageBar()
        self.worklist = WorklistPanel(self._db)
        self.series_table = SeriesTable()
        self.series_details = SeriesDetails()
        series_page = QWidget()
        series_layout = QVBoxLayout(series_page)
        series_layout.setContentsMargins(0, 0, 0, 0)
        series_layout.addWidget(self.series_table, 1)
        series_layout.addWidget(self.series_details)
        self.left_tabs = QTabWidget()
        self.left_tabs.addTab(self.worklist, "Worklist")
        self.left_tabs.addTab(series_page, "Series")
        self.viewer = MprViewer()
        self.findings = FindingsPanel()

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        for widget in (self.left_tabs, self.viewer, self.findings):
            self.splitter.addWidget(widget)
        self.splitter.setStretchFactor(0, 2)
        self.splitter.setStretchFactor(1, 5)
        self.splitter.setStretchFactor(2, 2)
        self.splitter.setChildrenCollapsible(False)

        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(6, 6, 6, 0)
        layout.addWidget(self.message_bar)
        layout.addWidget(self.splitter, 1)
        self.setCentralWidget(central)

    def _build_menus_and_toolbar(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.open_folder_action = self._action(
            "Open &Folder…", "file.open_folder", self._ask_folder
        )
        self.open_file_action = self._action("Open F&ile…", "file.open_file", self._ask_file)
        file_menu.addAction(self.open_folder_action)
        file_menu.addAction(self.open_file_action)
        self.recent_menu = file_menu.addMenu("Open &Recent")
        file_menu.addSeparator()
        file_menu.addAction(self._action("&Settings…", "file.settings", self._edit_settings))
        file_menu.addSeparator()
        file_menu.addAction(self._action("&Quit", "file.quit", self.close))

        case_menu = self.menuBar().addMenu("&Case")
        self.run_action = self._action("&Run Model…", "case.run_model", self._ask_model_and_run)
        self.cancel_action = self._action("&Cancel Run", "case.cancel_run", self.inference.cancel)
        self.save_edit_action = self._action("&Save Edit", "case.save_edit", self.save_edit)
        self.discard_edit_action = self._action(
            "&Discard Edit", "case.discard_edit", self.discard_edit
        )
        self.history_action = self._action("&History…", "case.history", self.show_history)
        self.compare_action = self._action("Compare with &Prior…", None, self.compare_with_prior)
        self.export_action = self._action("&Export…", None, self.show_export_dialog)
        self.refresh_action = self._action(
            "Refresh &Worklist", "case.refresh_worklist", self.worklist.refresh
        )
        for action in (
            self.run_action,
            self.cancel_action,
            None,
            self.save_edit_action,
            self.discard_edit_action,
            None,
            self.export_action,
            self.history_action,
            self.compare_action,
            self.refresh_action,
        ):
            if action is None:
                case_menu.addSeparator()
            else:
                case_menu.addAction(action)

        # The panel's own actions, in a menu: the same keys, window-wide (the keymap's context).
        review_menu = self.menuBar().addMenu("&Review")
        f = self.findings
        review_menu.addActions([f.accept_action, f.reject_action, f.edit_action])
        review_menu.addSeparator()
        review_menu.addActions([f.next_action, f.previous_action])
        review_menu.addSeparator()
        review_menu.addActions([f.add_action, f.sign_action])

        tools_menu = self.menuBar().addMenu("&Tools")
        tools_menu.addActions(self.tools.tool_actions)
        tools_menu.addSeparator()
        tools_menu.addActions([*self.tools.edit_actions, self.tools.clear_action])

        view_menu = self.menuBar().addMenu("&View")
        maximise = self._action(
            "&Maximise View", "view.maximise", lambda: self.viewer.toggle_maximise()
        )
        reset = self._action("Reset &Zoom", "view.reset", self.viewer.reset_views)
        crosshair = self._action("&Crosshair On/Off", "view.crosshair", self._toggle_crosshair)
        self.show_rejected_action: QAction = self._action(
            "Show &Rejected Findings", "view.show_rejected", self._rejected_toggled
        )
        self.show_rejected_action.setCheckable(True)
        self.show_rejected_action.setChecked(self.viewer.overlay_style.rejected_visible)
        view_menu.addActions([maximise, reset, crosshair])
        view_menu.addSeparator()
        view_menu.addAction(self.show_rejected_action)

        help_menu = self.menuBar().addMenu("&Help")
        self.shortcuts_action = self._action(
            "&Keyboard Shortcuts", "help.shortcuts", self.show_shortcuts
        )
        help_menu.addAction(self.shortcuts_action)
        help_menu.addAction(self._action("&About MedDiag Desktop", None, self._show_about))

        toolbar = QToolBar("Main")
        toolbar.setObjectName("mainToolbar")
        toolbar.setMovable(False)
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        toolbar.addActions([self.open_folder_action, self.open_file_action])
        toolbar.addSeparator()
        toolbar.addActions([self.run_action, self.cancel_action])
        toolbar.addSeparator()
        toolbar.addActions(self.tools.tool_actions)
        toolbar.addSeparator()
        toolbar.addActions(
            [
                self.tools.undo_action,
                self.tools.redo_action,
                self.save_edit_action,
                self.discard_edit_action,
            ]
        )
        self.addToolBar(toolbar)
        self._fill_recent_menu()

    def _action(self, text: str, command: str | None, slot) -> QAction:
        """A window action; ``command`` names its keys in the keymap (None: no key)."""
        action = QAction(text, self)
        if command is not None:
            bind_action(action, command)
        action.triggered.connect(lambda _checked=False: slot())
        return action

    def _build_status_bar(self) -> None:
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 100)
        self.progress_bar.setFixedWidth(180)
        self.progress_bar.setTextVisible(False)
        self.progress_bar.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.inference.cancel)
        # The button stops the model run when one is running (its own slot above), else an export.
        self.cancel_button.clicked.connect(
            lambda: None if self.inference.running else self.exports.cancel()
        )
        self.cancel_button.hide()
        self.provider_label = QLabel()
        self.provider_label.setObjectName("providerLabel")
        self.provider_button = QPushButton("Details…")
        self.provider_button.setObjectName("providerDetails")
        self.provider_button.setToolTip("Why the model did not run on the GPU, in full")
        self.provider_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.provider_button.clicked.connect(self.show_provider_details)
        self.provider_button.hide()
        self.runtime_label = QLabel()  # "OpenVINO, float32": the library and precision
        self.runtime_label.setObjectName("runtimeLabel")
        self.clinical_notice = QLabel(CLINICAL_NOTICE.upper())
        self.clinical_notice.setObjectName("clinicalNotice")
        self.clinical_notice.setToolTip("MedDiag Desktop is not a medical device (Help → About)")
        self.user_label = QLabel(user_status_text(self._db))
        self.user_label.setObjectName("signedInUser")
        self.user_label.setToolTip("Who is working: everything saved is recorded in this name")
        status = self.statusBar()
        status.addPermanentWidget(self.user_label)
        status.addPermanentWidget(self.provider_label)
        status.addPermanentWidget(self.provider_button)
        status.addPermanentWidget(self.runtime_label)
        status.addPermanentWidget(self.progress_bar)
        status.addPermanentWidget(self.cancel_button)
        status.addPermanentWidget(self.clinical_notice)
        status.showMessage(
            "Open a case from the worklist, a folder (Ctrl+O) or a file, or drop one."
        )

    def _connect(self) -> None:
        c = self._controller
        c.discovery_started.connect(self._discovery_started)
        c.series_found.connect(self._series_found)
        c.loading_started.connect(self._loading_started)
        c.volume_loaded.connect(self._volume_loaded)
        c.segmentation_loaded.connect(self._segmentation_loaded)
        c.scan_failed.connect(self._scan_failed)
        c.progress_changed.connect(self._progress_changed)
        c.busy_changed.connect(self._busy_changed)
        self.series_table.series_chosen.connect(self._series_chosen)
        self.series_table.series_hovered.connect(self.series_details.show_hovered)
        self.worklist.case_open_requested.connect(self.open_case)
        self.worklist.load_failed.connect(self.show_error)
        self.cases.case_opened.connect(self._case_opened)
        self.cases.case_failed.connect(self.show_error)
        self.inference.run_started.connect(self._run_started)
        self.inference.progress_changed.connect(self._run_progressed)
        self.inference.run_finished.connect(self._run_finished)
        self.inference.run_failed.connect(self._run_failed)
        self.inference.run_cancelled.connect(self._run_cancelled)
        self.review.case_loaded.connect(self._case_changed)
        self.review.case_changed.connect(self._case_changed)
        self.review.review_failed.connect(self.show_error)
        self.findings.finding_selected.connect(self._finding_selected)
        self.findings.accept_requested.connect(self.review.accept)
        self.findings.reject_requested.connect(self.review.reject)
        self.findings.sign_off_requested.connect(self.sign_off)
        self.findings.history_requested.connect(self.show_history)
        self.findings.edit_requested.connect(self.edit_finding)
        self.findings.add_manual_requested.connect(self.add_manual_finding)
        self.viewer.hover_info_changed.connect(self._hover_info)
        self.viewer.rejected_visibility_changed.connect(self.show_rejected_action.setChecked)
        self.tools.mask_edited.connect(self._update_actions)
        self.exports.export_started.connect(self._export_started)
        self.exports.progress_changed.connect(self._export_progressed)
        self.exports.export_finished.connect(self._export_finished)
        self.exports.export_failed.connect(self._export_failed)
        self.exports.export_cancelled.connect(self._export_cancelled)

    # ---- public API --------------------------------------------------------------------------
    @property
    def database(self) -> Database:
        return self._db

    @property
    def case(self) -> CaseDetail | None:
        return self._case

    @property
    def volume(self) -> Volume | None:
        return self._volume

    @property
    def labels(self) -> np.ndarray | None:
        """The label map over the viewer: the saved edit or the latest run's mask, as edited."""
        return self._labels

    def open_path(self, path: Path | str, series_key: str = "") -> None:
        """Open a folder or file: list its series, and load it when there is just one."""
        target = Path(path).expanduser()
        self._settings.setValue("paths/last_open", str(target.parent))
        self._remember_recent(target)
        self._wanted_key = series_key
        self._controller.open_path(target)

    def open_demo(self, folder: Path) -> None:
        """Open (making it first if needed) the synthetic demo case kept in ``folder``; its
        DICOM folder goes into Open Recent like any folder opened."""
        self._wanted_key = ""
        self._remember_recent(folder / DEMO_DICOM_FOLDER)
        self._controller.open_demo(folder)

    def open_case(self, case_id: int) -> None:
        """Open a worklist case: its series from where it was imported."""
        try:
            from meddiag_desktop.db.cases import get_case

            detail = get_case(self._db, case_id)
        except ValueError as exc:
            self.show_error(str(exc))
            return
        location = Path(detail.series.location)
        if not location.exists():
            self.show_error(
                f"The scan of case {case_id} is no longer at {location}: it was moved or "
                "deleted. Its findings and reviews are kept in the database."
            )
            return
        self.open_path(location, detail.series.key)

    def run_model(
        self,
        card: ModelCard,
        allow_modality_mismatch: bool = False,
        allow_anatomy_mismatch: bool = False,
    ) -> RunTag | None:
        """Run ``card`` on the open scan in the background; the run is stored with the case."""
        if self._volume is None or self._series is None or self._case is None:
            self.show_error("Open a scan first: the model runs on the scan in the viewer.")
            return None
        if self._case.signed_at is not None:
            self.show_error("This case is signed; a signed case does not take new model runs.")
            return None
        self.discard_edit()
        options = self._app_settings.inference_options(
            allow_modality_mismatch, allow_anatomy_mismatch
        )
        return self.inference.run(
            RunRequest(self._volume, card, self._series, self._case.case_id, options, self._db)
        )

    def edit_finding(self, finding_pk: int) -> None:
        """Hand the finding's lesion to the brush; Save Edit stores the re-measured finding."""
        stored = self._stored_finding(finding_pk)
        if stored is None or self._labels is None:
            self.show_error("This finding has no mask to edit in this case's latest run.")
            return
        self._editing, self._adding_manual = stored, False
        self.viewer.highlight_label_region(stored.finding, jump=True)
        self.tools.set_painting_allowed(True)
        self.tools.activate(self.tools.brush)
        self.show_notice(
            f"Editing finding #{stored.finding.finding_id}: paint with the brush "
            f"({key_names('tool.brush')}), erase ({key_names('tool.eraser')}), undo "
            f"({key_names('tool.undo')}); Save Edit ({key_names('case.save_edit')}) stores the "
            f"new measurements, Discard Edit ({key_names('case.discard_edit')}) drops them."
        )
        self._update_actions()

    def add_manual_finding(self) -> None:
        """Paint a lesion the model missed; Save Edit stores it as a manual finding."""
        if self._volume is None or self._case is None:
            self.show_error("Open a scan first.")
            return
        if self._labels is None:
            empty = np.zeros(self._volume.shape_zyx, dtype=np.uint8)
            self._set_labels(empty, {1: "#ffd24a"}, {1: "lesion"})
        self._editing, self._adding_manual = None, True
        self.tools.set_painting_allowed(True)
        self.tools.activate(self.tools.brush)
        self.show_notice(
            f"Paint the lesion with the brush ({key_names('tool.brush')}; "
            f"{key_names('tool.smaller_brush')} and {key_names('tool.larger_brush')} change its "
            f"size), then Save Edit ({key_names('case.save_edit')}) to add it as a manual finding."
        )
        self._update_actions()

    def save_edit(self) -> None:
        """Store the edited or painted lesion's measurements as a review / manual finding, with
        the whole label map as a new mask version, so reopening the case shows the edit."""
        editor = self.tools.editor
        if editor is None or self._volume is None or not (self._editing or self._adding_manual):
            return
        names = self._label_names or {1: "lesion"}
        mask = MaskEdit(self._volume, editor.labels_zyx, names, self._labels_run_id)
        if self._editing is not None:
            edited = editor.edited_finding(self._editing.finding)
            if edited is None:
                self.show_error("The lesion was erased completely: reject the finding instead.")
                return
            saved = self.review.edit(self._editing.finding_pk, edited, mask=mask)
        else:
            seed = editor.last_painted_voxel
            if seed is None:
                self.show_error("Nothing was painted: paint the lesion first.")
                return
            finding = editor.finding_for(
                seed, label_names=names, finding_id=self._next_manual_number()
            )
            if finding is None:
                self.show_error("Nothing was painted at that place: paint the lesion first.")
                return
            saved = self.review.add_manual(finding, mask=mask)
        if saved:
            self._end_edit()
            self.tools.set_labels(self._labels, self._volume)  # saved: nothing left to undo
            self.show_notice("Saved with the case.")

    def discard_edit(self) -> None:
        """Leave editing; unsaved strokes are undone so the overlay shows what is stored."""
        editor = self.tools.editor
        if editor is not None:
            while editor.is_dirty and editor.undo():
                pass
            self.viewer.refresh_overlay()
        self._end_edit()

    def sign_off(self) -> bool:
        """Sign the open case after the reader confirmed what is signed; False when they
        cancelled or the database refused (its reason is shown)."""
        case = self._case
        if case is None:
            self.show_error("Open a case first.")
            return False
        if self._editing is not None or self._adding_manual:
            self.show_error("Save or discard the edit first: it would not be part of the case.")
            return False
        can_sign, why = sign_off_state(case)
        if not can_sign:  # nothing to confirm: say why instead of asking
            self.show_error(why)
            return False
        if not self.confirm_sign_off(self, case, self.review.actor):
            self._status("Not signed; the case is unchanged.")
            return False
        signed = self.review.sign_off()
        if signed:
            self.show_notice("Signed off; the case is locked.")
            self.offer_export()
        return signed

    def offer_export(self) -> QMessageBox:
        """After a sign-off: export now? (window-modal, without blocking the event loop)."""
        box = QMessageBox(QMessageBox.Icon.Question, "Export this case?", "", parent=self)
        box.setText("Signed off. Export the report and the DICOM objects now?")
        export_now = box.addButton("Export…", QMessageBox.ButtonRole.AcceptRole)
        box.addButton("Not now", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(export_now)
        export_now.clicked.connect(self.show_export_dialog)
        self.export_offer = box
        box.open()
        return box

    def show_export_dialog(self) -> ExportDialog | None:
        """Case → Export…: the choices, then the export in the background."""
        case = self._case
        if case is None:
            self.show_error("Open a case first: an export is a case's.")
            return None
        if self.refusals[Permission.EXPORT]:
            self.show_error(self.refusals[Permission.EXPORT])
            return None
        dialog = ExportDialog(case, parent=self)
        dialog.accepted.connect(
            lambda: self.exports.export(
                ExportRequest(self.review.database, case.case_id, dialog.choices())
            )
        )
        self.export_dialog = dialog
        dialog.open()
        return dialog

    def show_history(self) -> CaseHistoryDialog | None:
        """Case → History: every run and decision with who, when and why (non-modal)."""
        if self._case is None:
            self.show_error("Open a case first: the history is a case's.")
            return None
        from meddiag_desktop.db.audit import case_history

        if self.history_dialog is None:
            self.history_dialog = CaseHistoryDialog(self)
        self.history_dialog.show_case(self._case, case_history(self._db, self._case.case_id))
        self.history_dialog.show()
        self.history_dialog.raise_()
        return self.history_dialog

    def compare_with_prior(self, prior_case_id: int | None = None) -> None:
        """Case → Compare with prior…: the list of priors, or ``prior_case_id`` at once."""
        if self._case is None:
            return
        if prior_case_id is None:
            self.follow_up.ask(self._case.case_id, self._volume)
        else:
            self.follow_up.compare(self._case.case_id, prior_case_id, self._volume)

    def show_shortcuts(self) -> ShortcutSheet:
        """Help → Keyboard Shortcuts (non-modal: keep it open beside the images)."""
        if self.shortcut_sheet is None:
            self.shortcut_sheet = ShortcutSheet(self)
        self.shortcut_sheet.show()
        self.shortcut_sheet.raise_()
        return self.shortcut_sheet

    def show_provider_details(self) -> ProviderDetailsBox | None:
        """Where the last run ran and why not on the GPU, onnxruntime's text under Details."""
        if self._provider is None:
            return None
        self.provider_box = ProviderDetailsBox(self._provider, self)
        self.provider_box.open()  # window-modal, without blocking the event loop
        return self.provider_box

    def show_error(self, message: str) -> None:
        """Non-modal, so it never blocks reading (or a test); stays until dismissed."""
        self.message_bar.show_message(message, MessageLevel.ERROR)

    def show_notice(self, message: str, level: MessageLevel = MessageLevel.INFO) -> None:
        self.message_bar.show_message(message, level)

    def _status(self, text: str, timeout_ms: int = 0) -> None:
        """The status line; paths and series keys in it are file names nobody here chose."""
        self.statusBar().showMessage(printable(text), timeout_ms)

    # ---- scans -------------------------------------------------------------------------------
    def _discovery_started(self, path: str) -> None:
        self._current_key = ""
        self.message_bar.dismiss()
        self.series_table.set_series([])
        self.series_details.set_series([])
        self._close_scan()
        self.setWindowTitle(f"{printable(Path(path).name)} — {APP_NAME} — {CLINICAL_NOTICE}")
        self._status(f"Reading {path} …")

    def _series_found(self, found: list[SeriesInfo]) -> None:
        self.series_table.set_series(found)
        self.series_details.set_series(found)
        loadable = [s for s in found if s.loadable]
        self._status(f"{len(found)} series found, {len(loadable)} can be opened.")
        if not loadable and len(found) == 1 and found[0].kind is SeriesKind.SEGMENTATION:
            self._controller.open_segmentation(found[0])  # a SEG file: over its series
            return
        wanted = [s for s in loadable if s.key == self._wanted_key]
        if wanted or len(loadable) == 1:
            self.series_table.select_series((wanted or loadable)[0].key)
        elif loadable:
            self.left_tabs.setCurrentIndex(1)
            self.show_notice(f"{len(loadable)} series can be opened: choose one in the list.")
        else:
            self.left_tabs.setCurrentIndex(1)
            self.show_notice(
                "None of these series can be opened as a 3-D scan; the list says why.",
                MessageLevel.WARNING,
            )

    def _series_chosen(self, series: SeriesInfo) -> None:
        if series.key == self._current_key:
            return
        if series.kind is SeriesKind.SEGMENTATION:
            self._controller.open_segmentation(series)
        else:
            self._controller.load_series(series)

    def _loading_started(self, series: SeriesInfo) -> None:
        self._current_key = series.key
        self._close_scan()
        self._status(f"Loading {series.description or series.key} …")

    def _segmentation_loaded(self, seg: SegLabelMap) -> None:
        """A DICOM SEG read onto its series: show the series; its case stores the SEG's labels
        as a new mask version and shows them (the notice names the SEG)."""
        self._volume_loaded(seg.scan, seg.reference, seg)

    def _volume_loaded(
        self, volume: Volume, series: SeriesInfo, seg: SegLabelMap | None = None
    ) -> None:
        self._volume, self._series = volume, series
        self.viewer.set_volume(volume)
        self.series_details.set_opened(series)
        x, y, z = volume.size_xyz
        name = series.description or Path(volume.source).name or series.key
        self._status(f"{name}: {x} × {y} × {z} voxels, {volume.modality or '?'}")
        self.cases.open_series(series, seg)
        self._update_actions()

    def _scan_failed(self, message: str) -> None:
        self._current_key = ""  # picking the same series again retries it
        self.show_error(message)
        self._status("Could not open the scan: see the message above.")

    def _close_scan(self) -> None:
        if self.inference.running:
            self.inference.cancel()
        self.discard_edit()
        self._volume = self._series = self._case = None
        self.viewer.clear()
        self.tools.clear()
        self.tools.set_labels(None, None)
        self._labels, self._label_names, self._labels_run_id = None, {}, None
        self.findings.set_case(None)
        self._update_actions()

    # ---- cases and runs ----------------------------------------------------------------------
    def _case_opened(self, opened: OpenedCase) -> None:
        if self._series is None or opened.series_key != self._series.key:
            return  # the reader has moved on to another scan
        self._case = opened.detail
        self.follow_up.priors(opened.detail.case_id, refresh=True)  # a new prior may be in
        self.review.load_case(opened.detail.case_id)  # decisions are saved against this case
        self.findings.set_case(opened.detail)
        run = opened.detail.current_run
        self._labels_run_id = run.run_id if run is not None else None
        self._set_labels(opened.labels_zyx, run_label_colours(run), opened.label_names)
        self._show_rejected()
        self.worklist.refresh()
        self.worklist.select_case(opened.detail.case_id)
        if self._select_first_finding:  # the run just stored: go to its first finding
            self._select_first_finding = False
            self.findings.select_first()
        if opened.notice:
            self.show_notice(opened.notice)
        self._update_actions()

    def _case_changed(self, detail: CaseDetail) -> None:
        if self._case is None or detail.case_id != self._case.case_id:
            return
        self._case = detail
        self.findings.set_case(detail)
        self._show_rejected()
        self.worklist.refresh()
        if self.history_dialog is not None and self.history_dialog.isVisible():
            self.show_history()  # an open history follows the decisions
        self._update_actions()

    def _show_rejected(self) -> None:
        """Rejected findings are drawn grey and dotted (or hidden), never like kept ones."""
        if self._case is None or self._labels is None:
            return
        rejected = [
            f.finding for f in case_findings(self._case) if f.review_status is ReviewStatus.REJECTED
        ]
        self.viewer.set_rejected_findings(rejected)

    def _set_labels(
        self, labels: np.ndarray | None, colours: dict[int, str], names: dict[int, str]
    ) -> None:
        self._labels, self._label_names = labels, names
        if self._volume is None:
            return
        self.viewer.set_overlay(labels, colours, names)
        self.tools.set_labels(labels, self._volume if labels is not None else None)

    def _run_started(self, tag: RunTag) -> None:
        self.progress_bar.setValue(0)
        self.progress_bar.show()
        self.cancel_button.show()
        self._status("Starting the model …")
        self._update_actions()

    def _run_progressed(self, tag: RunTag, fraction: float, text: str) -> None:
        if not self.inference.is_current(tag):
            return
        self.progress_bar.setValue(round(100 * fraction))
        self._status(text)

    def _run_finished(self, tag: RunTag, outcome: FinishedRun) -> None:
        self._run_ended()
        self.worklist.refresh()
        if self._case is None or outcome.case_id != self._case.case_id:
            return  # stored with its own case; the reader has opened another one since
        result = outcome.result
        self._show_provider(result.provider, result.runtime)
        self._status(
            f"{result.card.name}: {len(result.findings)} finding(s) in {outcome.elapsed_s:.0f} s "
            f"on {result.provider.short_name.upper()}; saved with the case."
            + (f" Model {result.signature.describe()}." if result.signature else "")
        )
        if self._series is not None:
            self._select_first_finding = True
            self.cases.reopen(self._series.key, self._case.case_id)

    def _show_provider(self, report: ProviderReport, runtime: RuntimeChoice | None = None) -> None:
        """'Model ran on CPU' and, when a GPU was tried, why not in words, with Details…;
        beside it the runtime and precision ('OpenVINO, float32'), its tooltip saying why
        nothing faster was used (a precision the card does not list, an automatic fallback)."""
        self._provider = report
        self.provider_label.setText(f"Model ran on {report.short_name.upper()}")
        self.provider_label.setToolTip(plain_reason(report))
        self.runtime_label.setText(runtime.label if runtime is not None else "")
        self.runtime_label.setToolTip(runtime.describe() if runtime is not None else "")
        self.provider_button.setVisible(fell_back(report))

    def _run_failed(self, tag: RunTag, message: str) -> None:
        self._run_ended()
        self.worklist.refresh()
        self.show_error(f"The model run failed: {message} The case is unchanged.")

    def _run_cancelled(self, tag: RunTag) -> None:
        self._run_ended()
        self.worklist.refresh()
        self._status("Run cancelled; nothing from it was kept.")

    def _run_ended(self) -> None:
        self.progress_bar.hide()
        self.cancel_button.hide()
        self._update_actions()

    def _export_started(self, case_id: int) -> None:
        if not self.inference.running:
            self.progress_bar.setValue(0)
            self.progress_bar.show()
            self.cancel_button.show()
        self._status(f"Exporting case {case_id} …")
        self._update_actions()

    def _export_progressed(self, fraction: float, text: str) -> None:
        if not self.inference.running:
            self.progress_bar.setValue(round(100 * fraction))
            self._status(f"Exporting case {self.exports.case_id}: {text}")

    def _export_finished(self, result: ExportResult) -> None:
        self._export_ended()
        self.export_box = ExportFinishedBox(result, self.exports.open_folder, self)
        done = finished_text(result)  # the folder stays named after the box closes
        self.show_notice(done, MessageLevel.WARNING if result.skipped else MessageLevel.INFO)
        self._status(done)
        self.export_box.open()

    def _export_failed(self, case_id: int, message: str) -> None:
        self._export_ended()
        self.show_error(message)
        self._status(f"Case {case_id} was not exported: see the message above.")

    def _export_cancelled(self, case_id: int) -> None:
        self._export_ended()
        self._status(f"Export of case {case_id} cancelled; no file was left half-written.")

    def _export_ended(self) -> None:
        if not self.inference.running:
            self.progress_bar.hide()
            self.cancel_button.hide()
        self._update_actions()

    # ---- review ------------------------------------------------------------------------------
    def _finding_selected(self, stored: StoredFinding) -> None:
        if self._volume is not None:
            self.viewer.highlight_label_region(stored.finding, jump=True)

    def _stored_finding(self, finding_pk: int) -> StoredFinding | None:
        if self._case is None:
            return None
        run = self._case.current_run
        candidates = [*(run.findings if run else ()), *self._case.manual_findings]
        return next((f for f in candidates if f.finding_pk == finding_pk), None)

    def _next_manual_number(self) -> int:
        if self._case is None:
            return 1
        return 1 + max((f.finding.finding_id for f in self._case.manual_findings), default=0)

    def _end_edit(self) -> None:
        self._editing, self._adding_manual = None, False
        self.tools.set_painting_allowed(False)  # no stroke outside Edit / Add manual
        if self.tools.editor is not None:
            self.tools.activate(None)
        self._update_actions()

    # ---- state of the actions ----------------------------------------------------------------
    def _update_actions(self) -> None:
        running = self.inference.running
        case_open = self._case is not None and self._volume is not None
        signed = case_open and self._case is not None and self._case.signed_at is not None
        self.run_action.setEnabled(case_open and not running and not signed)
        self.cancel_action.setEnabled(running)
        editing = self._editing is not None or self._adding_manual
        self.save_edit_action.setEnabled(editing)
        self.discard_edit_action.setEnabled(editing)
        self.compare_action.setEnabled(
            case_open
            and self._case is not None
            and not self.follow_up.running
            and not self.refusals[Permission.REVIEW]
            and self.follow_up.has_priors(self._case.case_id)
        )
        self.export_action.setEnabled(
            self._case is not None
            and not editing
            and not self.exports.running
            and not self.refusals[Permission.EXPORT]
        )

    def _apply_role_limits(self) -> None:
        self.findings.set_refusals(
            self.refusals[Permission.REVIEW], self.refusals[Permission.SIGN]
        )
        if self.refusals[Permission.EXPORT]:
            self.export_action.setToolTip(self.refusals[Permission.EXPORT])

    def _busy_changed(self, busy: bool) -> None:
        if not self.inference.running:
            self.progress_bar.setVisible(busy)

    def _progress_changed(self, fraction: float, text: str) -> None:
        if not self.inference.running:
            self.progress_bar.setValue(round(100 * fraction))
            self.progress_bar.setToolTip(text)

    def _hover_info(self, text: str) -> None:
        if text:
            self._status(text)

    # ---- user actions ------------------------------------------------------------------------
    def _ask_model_and_run(self) -> None:
        if self._volume is None:
            self.show_error("Open a scan first: the model runs on the scan in the viewer.")
            return
        chosen = ModelPickerDialog.choose(
            self._app_settings.model_registry(),
            self._volume.modality,
            scan=self._volume,
            parent=self,
        )
        if chosen is not None:
            self.run_model(*chosen)

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

    def _edit_settings(self) -> None:
        edited = SettingsDialog.edit(self._app_settings, self)
        models_refused = self.refusals[Permission.MANAGE_MODELS]
        unchanged = self._app_settings.allow_unsigned_models
        if edited is not None and models_refused and edited.allow_unsigned_models != unchanged:
            self.show_error(f"{models_refused} Unsigned models stay as they were.")
            edited = replace(edited, allow_unsigned_models=unchanged)
        if edited is not None and edited != self._app_settings:
            edited.save(self._settings)
            restart = edited.database != self._app_settings.database
            if edited.theme != self._app_settings.theme:
                app = QApplication.instance()
                if isinstance(app, QApplication):
                    apply_theme(app, edited.theme.value)
            self._app_settings = edited
            if restart:
                self.show_notice("The new database location is used from the next start.")

    def _remember_recent(self, path: Path) -> None:
        recent = [str(path), *(p for p in self._recent_paths() if p != str(path))]
        self._settings.setValue(_RECENT_KEY, recent[:_RECENT_COUNT])
        self._fill_recent_menu()

    def _recent_paths(self) -> list[str]:
        value = self._settings.value(_RECENT_KEY, [])
        if isinstance(value, str):
            return [value]
        return [str(v) for v in value] if isinstance(value, list) else []

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        paths = self._recent_paths()
        for path in paths:
            action = self.recent_menu.addAction(path)
            action.triggered.connect(lambda _checked=False, p=path: self.open_path(p))
        self.recent_menu.setEnabled(bool(paths))

    def _rejected_toggled(self) -> None:
        self.viewer.set_rejected_visible(self.show_rejected_action.isChecked())

    def _toggle_crosshair(self) -> None:
        self.viewer.set_crosshair_visible(not self.viewer.panel.crosshair_box.isChecked())

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
        self._settings.setValue("window/state", self.saveState())
        self._settings.setValue("window/splitter", self.splitter.saveState())
        self._settings.sync()
        self.inference.cancel()
        self.inference.shutdown()
        self.exports.shutdown()
        self.follow_up.shutdown()
        self.cases.shutdown()
        self._controller.shutdown()
        super().closeEvent(event)

    def _restore_settings(self) -> None:
        geometry = self._settings.value("window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            available = self.screen().availableGeometry()
            self.resize(min(1600, available.width()), min(960, available.height()))
        state = self._settings.value("window/state")
        if isinstance(state, QByteArray) and not state.isEmpty():
            self.restoreState(state)
        splitter = self._settings.value("window/splitter")
        if isinstance(splitter, QByteArray) and not splitter.isEmpty():
            self.splitter.restoreState(splitter)
        else:
            # The findings table shows all its columns (the review decision last) at 1440 px.
            self.splitter.setSizes([320, 740, 500])
