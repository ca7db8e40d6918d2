"""Where the model ran and why not on the GPU: plain words first, onnxruntime's text on request.

The status bar used to carry onnxruntime's raw message ("Failed to load library
.../libonnxruntime_providers_cuda.so with error: libcublasLt.so.13 ..."). Now it says it in
words (:func:`~meddiag_desktop.inference.provider_reason.plain_reason`) and this box keeps the
raw text behind its "Show Details…" button, for whoever installs the GPU libraries.
"""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget

from meddiag_desktop.inference.provider_reason import plain_reason, technical_details
from meddiag_desktop.inference.session import ProviderReport

GPU_HELP = (
    "The results are the same on the CPU, only slower. To use an NVIDIA GPU, install its "
    "driver and the CUDA 13 and cuDNN 9 libraries, then run the model again."
)


class ProviderDetailsBox(QMessageBox):
    """The plain reason, what to do about it, and the raw onnxruntime text under Details."""

    def __init__(self, report: ProviderReport, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.report = report
        self.setWindowTitle("Where the model ran")
        self.setIcon(QMessageBox.Icon.Information)
        self.setText(plain_reason(report))
        self.setInformativeText(GPU_HELP)
        self.setDetailedText(technical_details(report))
        self.setStandardButtons(QMessageBox.StandardButton.Close)
