"""MedDiag Desktop: an offline AI-assisted review workstation (not a medical device)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("meddiag-desktop")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
