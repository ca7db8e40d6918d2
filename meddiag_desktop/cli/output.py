"""What every command shares: the user-error types, terminal progress, and safe output."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from meddiag_desktop.domain import Progress
from meddiag_desktop.inference.card import CardError
from meddiag_desktop.inference.pipeline import ModelMismatchError
from meddiag_desktop.inference.session import ModelLoadError
from meddiag_desktop.safe_text import printable
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


class PrintableStream:
    """A text stream that passes on only printable text (:func:`printable`).

    Every command prints series descriptions, patient names, file names and database rows that
    an outsider wrote; wrapping ``sys.stdout``/``sys.stderr`` once neutralises all of them,
    including text an earlier version stored raw, without each ``print`` having to remember.
    Newlines, tabs and carriage returns (the progress bar) pass: they are our own layout.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(printable(text, keep_lines=True))
        return len(text)

    def __getattr__(self, name: str) -> object:  # flush, isatty, encoding, fileno...
        return getattr(self._stream, name)


@contextmanager
def printable_output() -> Iterator[None]:
    """Standard output and error wrapped in :class:`PrintableStream` while a command runs."""
    saved = sys.stdout, sys.stderr
    sys.stdout = PrintableStream(saved[0])
    sys.stderr = PrintableStream(saved[1])
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
