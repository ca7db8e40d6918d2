"""The exception evaluation raises for problems a user can cause (unpaired cases, other grids)."""

from __future__ import annotations


class EvaluationError(ValueError):
    """Predictions and references cannot be compared; the one-line message says why and where."""
