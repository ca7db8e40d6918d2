"""Files on disk -> :class:`~meddiag_desktop.domain.Volume`, and label maps back to disk."""

from meddiag_desktop.scans.discovery import discover
from meddiag_desktop.scans.errors import ScanError
from meddiag_desktop.scans.loading import choose_series, load
from meddiag_desktop.scans.writing import write_label_map, write_volume

__all__ = ["ScanError", "choose_series", "discover", "load", "write_label_map", "write_volume"]
