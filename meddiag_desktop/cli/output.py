"""What every command shares: the user-error types and terminal progress."""

from __future__ import annotations

import sys

from meddiag_desktop.domain import Progress
from meddiag_desktop.inference.card import CardError
from meddiag_desktop.inference.pipeline import ModelMismatchError
from meddiag_desktop.inference.session import ModelLoadError
from meddiag_desktop.scans.errors import ScanError

NOT_A_DEVICE = "MedDiag Desktop is not a medical device and is not for clinical use."

# Exceptions whose message is meant for the user: printed as one line, exit code 2.
USER_ERRORS: tuple[type[Exception], ...] = (
    ScanError,
    CardError,
    ModelLoadError,
    ModelMismatchError,
    ValueError,
    OSError,
)


class ProgressBar:
    """A one-line progress bar on stderr, only when stderr is a terminal."""

    def __init__(self, enabled: bool | None = None, width: int = 30) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.width = width

    def __call__(self, progress: Progress) -> None:
        if not self.enabled:
            return
        filled = int(self.width * max(0.0, min(1.0, progress.fraction)))
        bar = "#" * filled + "-" * (self.width - filled)
        line = f"\r[{bar}] {progress.fraction:4.0%} {progress.stage}: {progress.message}"
        print(f"{line[:100]:100}", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.enabled:
            print("\r" + " " * 100 + "\r", end="", file=sys.stderr, flush=True)
