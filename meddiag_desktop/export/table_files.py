"""``findings.csv`` and ``findings.json``: the PDF's findings table for spreadsheets and scripts.

Both take their rows from :func:`~meddiag_desktop.reports.finding_table.finding_rows`, the
function the PDF's table is made from, so the three cannot list different findings or values.
Numbers stay numbers (no units in the cells: the CSV header and the JSON's ``columns`` carry
them). An unsigned review is a draft in both: the JSON says ``"status": "DRAFT"``, and the CSV
has a last column ``status`` holding ``DRAFT`` on every row (a comment line would break CSV
readers).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from meddiag_desktop import __version__
from meddiag_desktop.reports.finding_table import COLUMNS, finding_rows, intensity_unit
from meddiag_desktop.reports.review_outcome import NOT_A_MEDICAL_DEVICE, ReviewOutcome

DRAFT, SIGNED = "DRAFT", "signed"


def review_status(outcome: ReviewOutcome) -> str:
    return DRAFT if outcome.draft else SIGNED


def column_units(outcome: ReviewOutcome) -> dict[str, str]:
    """Each column's unit; the mean intensity's is HU for CT, a.u. otherwise."""
    return {
        c.key: intensity_unit(outcome) if c.key == "mean_intensity" else c.unit for c in COLUMNS
    }


def write_findings_csv(outcome: ReviewOutcome, path: Path) -> Path:
    """One row per kept finding under the :data:`COLUMNS` keys, then ``status``."""
    status = review_status(outcome)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*(c.key for c in COLUMNS), "status"])
        writer.writeheader()
        for row in finding_rows(outcome):
            writer.writerow({**row, "status": status})
    return path


def findings_document(outcome: ReviewOutcome) -> dict[str, Any]:
    """What ``findings.json`` holds: the table's rows with the case, scan, model and review."""
    meta, model = outcome.scan.metadata, outcome.model
    return {
        "status": review_status(outcome),
        "statement": NOT_A_MEDICAL_DEVICE,
        "case_id": outcome.case_id,
        "signed_by": outcome.signed_by,
        "signed_at": outcome.signed_at.isoformat() if outcome.signed_at else None,
        "exported_by": outcome.exported_by,
        "exported_at": outcome.exported_at.isoformat(),
        "software": f"MedDiag Desktop {__version__}",
        "scan": {
            "patient_name": meta.patient_name,
            "patient_id": meta.patient_id,
            "study_uid": meta.study_uid,
            "series_uid": meta.series_uid,
            "study_date": meta.study_date,
            "modality": meta.modality,
            "series_description": meta.series_description,
            "size_xyz": list(outcome.scan.size_xyz),
            "spacing_xyz_mm": list(outcome.scan.spacing_xyz_mm),
        },
        "model": None
        if model is None
        else {
            "name": model.name,
            "version": model.version,
            "sha256": model.sha256,
            "provider": model.provider,
            "intended_use": model.intended_use,
            "run_id": model.run_id,
        },
        "labels": {str(value): name for value, name in sorted(outcome.label_names.items())},
        "columns": [
            {"key": c.key, "title": c.title, "unit": column_units(outcome)[c.key]}
            for c in COLUMNS
        ],
        "findings": finding_rows(outcome),
        "warnings": list(outcome.warnings),
    }


def write_findings_json(outcome: ReviewOutcome, path: Path) -> Path:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(findings_document(outcome), handle, indent=2, ensure_ascii=False)
        handle.write("\n")
    return path
