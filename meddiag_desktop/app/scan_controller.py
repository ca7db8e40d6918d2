"""Open a path, list its series and load the chosen one, off the GUI thread.

The window only listens to events; this keeps the flow testable and means a newer request
(another folder, another series) always wins over an older, slower one.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from meddiag_desktop import scans
from meddiag_desktop.app.background import BackgroundRunner
from meddiag_desktop.demo.case import ensure_demo_case
from meddiag_desktop.domain import Progress, SeriesInfo, Volume
from meddiag_desktop.scans.seg_reading import SegLabelMap, read_seg


class ScanController(QObject):
    """Discovery and loading of scans, one current request of each kind."""

    discovery_started = Signal(str)
    series_found = Signal(object)  # list[SeriesInfo]
    loading_started = Signal(object)  # SeriesInfo
    volume_loaded = Signal(object, object)  # Volume, SeriesInfo
    segmentation_loaded = Signal(object)  # SegLabelMap: a DICOM SEG on its loaded series
    scan_failed = Signal(str)
    progress_changed = Signal(float, str)
    busy_changed = Signal(bool)

    def __init__(self, runner: BackgroundRunner | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self._runner = runner or BackgroundRunner(self)
        self._discovery = 0
        self._loading = 0
        self._busy = False

    @property
    def busy(self) -> bool:
        return self._busy

    def open_path(self, path: Path | str) -> None:
        """List the series in a folder or file; a newer call cancels interest in older ones."""
        target = Path(path).expanduser()
        self._runner.forget(self._discovery)
        self._runner.forget(self._loading)
        self.discovery_started.emit(str(target))
        self._discovery = self._runner.submit(
            lambda progress: scans.discover(target, progress),
            self._on_series_found,
            self._on_failed,
            self._on_progress,
        )
        self._update_busy()

    def open_demo(self, folder: Path) -> None:
        """Open the synthetic demo case, generating it first (a few seconds) when missing."""
        self._runner.forget(self._discovery)
        self._runner.forget(self._loading)
        self.discovery_started.emit(str(folder))

        def job(progress):
            progress(Progress(0.0, "preparing the demo case", "synthetic chest CT phantom"))
            return scans.discover(ensure_demo_case(folder), progress)

        self._discovery = self._runner.submit(
            job, self._on_series_found, self._on_failed, self._on_progress
        )
        self._update_busy()

    def load_series(self, series: SeriesInfo) -> None:
        """Read one series into a Volume; a newer call wins over a slower older one."""
        self._runner.forget(self._loading)
        self.loading_started.emit(series)
        self._loading = self._runner.submit(
            lambda progress: (scans.load(series, progress), series),
            self._on_volume_loaded,
            self._on_failed,
            self._on_progress,
        )
        self._update_busy()

    def open_segmentation(self, series: SeriesInfo) -> None:
        """Read a DICOM SEG (listed by discovery) onto the series it labels, found in its own
        folder, and load that series; shares the load request, so a newer load wins."""
        self._runner.forget(self._loading)
        self.loading_started.emit(series)
        self._loading = self._runner.submit(
            lambda progress: read_seg(series.files[0], progress=progress),
            self._on_segmentation_loaded,
            self._on_failed,
            self._on_progress,
        )
        self._update_busy()

    def shutdown(self, timeout_ms: int = 10_000) -> None:
        """Forget pending answers and wait for running reads, so no thread outlives the window."""
        self._runner.forget(self._discovery)
        self._runner.forget(self._loading)
        self._runner.wait(timeout_ms)
        self._update_busy()

    def _on_series_found(self, found: list[SeriesInfo]) -> None:
        self._update_busy()
        self.series_found.emit(found)

    def _on_volume_loaded(self, result: tuple[Volume, SeriesInfo]) -> None:
        self._update_busy()
        self.volume_loaded.emit(*result)

    def _on_segmentation_loaded(self, result: SegLabelMap) -> None:
        self._update_busy()
        self.segmentation_loaded.emit(result)

    def _on_failed(self, message: str) -> None:
        self._update_busy()
        self.scan_failed.emit(message)

    def _on_progress(self, fraction: float, text: str) -> None:
        self.progress_changed.emit(fraction, text)

    def _update_busy(self) -> None:
        busy = self._runner.is_pending(self._discovery) or self._runner.is_pending(self._loading)
        if busy != self._busy:
            self._busy = busy
            self.busy_changed.emit(busy)
