"""MedDiag Desktop: an offline AI-assisted review workstation (not a medical device)."""

from meddiag_desktop.offline import switch_off_telemetry

# First of all: no library may phone home (see meddiag_desktop/offline.py for why here).
switch_off_telemetry()

from importlib.metadata import PackageNotFoundError, version  # noqa: E402

try:
    __version__ = version("meddiag-desktop")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
