"""The findings table: one row per kept finding, the same columns in the PDF, CSV and JSON.

One function makes the rows so the three outputs cannot drift apart; the PDF formats the values
for reading, CSV and JSON keep them as numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from meddiag_desktop.reports.review_outcome import ReportedFinding, ReviewOutcome


@dataclass(frozen=True)
class Column:
    key: str  # the CSV header and JSON field
    title: str  # the PDF's column heading
    unit: str = ""


COLUMNS: tuple[Column, ...] = (
    Column("number", "#"),
    Column("label", "Label"),
    Column("slice", "Slice"),  # 1-based axial slice through the centroid, as the viewer shows it
    Column("x_mm", "x", "mm"),
    Column("y_mm", "y", "mm"),
    Column("z_mm", "z", "mm"),
    Column("volume_ml", "Volume", "mL"),
    Column("long_axis_mm", "Long axis", "mm"),
    Column("short_axis_mm", "Short axis", "mm"),
    Column("mean_intensity", "Mean"),  # HU for CT (the unit is filled in per scan)
    Column("confidence", "Confidence"),  # the model's mean lesion probability; None if manual
    Column("decision", "Decision"),
    Column("decided_by", "By"),
    Column("decided_at", "When"),
    Column("tracking_uid", "Tracking UID"),
)


def intensity_unit(outcome: ReviewOutcome) -> str:
    """HU for CT (calibrated), otherwise the scanner's arbitrary units."""
    return "HU" if outcome.scan.metadata.modality.upper() == "CT" else "a.u."


def axial_slice_number(outcome: ReviewOutcome, reported: ReportedFinding) -> int:
    """The 1-based index along the array's slice (z) axis through the finding's centroid."""
    return round(reported.finding.centroid_index_xyz[2]) + 1


def finding_row(outcome: ReviewOutcome, reported: ReportedFinding) -> dict[str, Any]:
    """One finding's values under :data:`COLUMNS` keys: numbers as numbers, times as ISO text."""
    f = reported.finding
    x, y, z = f.centroid_lps_mm
    return {
        "number": reported.number,
        "label": f.label_name,
        "slice": axial_slice_number(outcome, reported),
        "x_mm": round(float(x), 2),
        "y_mm": round(float(y), 2),
        "z_mm": round(float(z), 2),
        "volume_ml": round(f.volume_ml, 4),
        "long_axis_mm": round(f.long_axis_mm, 2),
        "short_axis_mm": round(f.short_axis_mm, 2),
        "mean_intensity": round(f.mean_intensity, 1),
        "confidence": None if reported.manual else round(f.mean_probability, 3),
        "decision": reported.decision.value,
        "decided_by": reported.decided_by,
        "decided_at": reported.decided_at.isoformat() if reported.decided_at else None,
        "tracking_uid": reported.tracking_uid,
    }


def finding_rows(outcome: ReviewOutcome) -> list[dict[str, Any]]:
    return [finding_row(outcome, reported) for reported in outcome.findings]
