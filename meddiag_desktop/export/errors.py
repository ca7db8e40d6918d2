"""The exporter's refusal: one line the CLI prints and the Export dialog shows."""

from __future__ import annotations


class ExportError(Exception):
    """The case cannot be exported as asked; the message says why in one line (no run, a
    folder that cannot be written, an output that cannot be made for this case...)."""
