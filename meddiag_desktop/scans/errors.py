"""The one exception the scan layer raises for problems a user can cause."""

from __future__ import annotations

from pathlib import Path


class ScanError(Exception):
    """A file or series cannot be read as a scan; the message names the file and the reason."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class NotDicomError(ScanError):
    """The file is not DICOM at all; discovery skips such files quietly."""
