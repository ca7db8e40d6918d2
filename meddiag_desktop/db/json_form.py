"""Records as JSON-ready dicts (``meddiag cases ... --json``, exports): one shape everywhere."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from enum import Enum
from typing import Any

from meddiag_desktop.db.records import CaseDetail, CaseSummary, WorklistPage


def to_json(value: Any) -> Any:
    """Dataclasses, enums, dates and tuples as plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value


def summary_json(summary: CaseSummary) -> dict[str, Any]:
    return to_json(summary)


def page_json(page: WorklistPage) -> dict[str, Any]:
    return {
        "total": page.total,
        "page": page.page + 1,  # as `meddiag cases list --page` counts
        "page_size": page.page_size,
        "cases": [summary_json(s) for s in page.items],
    }


def detail_json(detail: CaseDetail) -> dict[str, Any]:
    data = to_json(detail)
    current = detail.current_run
    data["current_run_id"] = current.run_id if current else None
    data["unreviewed_findings"] = [f.finding_pk for f in detail.unreviewed_findings]
    return data
