"""Errors of the review outputs: one base class, so the exporter can skip an output and say why."""

from __future__ import annotations


class ReportError(Exception):
    """An output cannot be written from this review; the message says why, in words."""
