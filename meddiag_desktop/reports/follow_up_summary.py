"""A case's follow-up comparison as the report prints it: plain values, no database rows.

Built by ``meddiag_desktop.export`` from the case's newest stored comparison (its summary is
what ``meddiag compare --json`` printed), with each lesion's earlier time points gathered from
the comparisons of the prior studies, so a lesion's plot shows its whole history.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TimePoint:
    study_date: str  # ISO date, "" when unknown
    volume_ml: float | None
    long_axis_mm: float | None


@dataclass(frozen=True)
class FollowUpLesion:
    track_id: str
    status: str  # matched, new, gone
    prior_finding: str | None  # "#2" in the prior case
    current_finding: str | None  # "#3" in this case
    volume_ml: tuple[float | None, float | None]
    long_axis_mm: tuple[float | None, float | None]
    volume_change_pct: float | None
    doubling_time_days: float | None
    target: bool
    tracking_uid: str
    history: tuple[TimePoint, ...] = ()  # oldest first, this case last

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FollowUpLesion:
        return cls(
            track_id=str(data.get("track_id", "")),
            status=str(data.get("status", "")),
            prior_finding=data.get("prior_finding"),
            current_finding=data.get("current_finding"),
            volume_ml=_pair(data.get("volume_ml")),
            long_axis_mm=_pair(data.get("long_axis_mm")),
            volume_change_pct=_number(data.get("volume_change_pct")),
            doubling_time_days=_number(data.get("doubling_time_days")),
            target=bool(data.get("target")),
            tracking_uid=str(data.get("tracking_uid", "")),
        )


@dataclass(frozen=True)
class FollowUpSummary:
    comparison_id: int
    prior_case_id: int
    prior_study_date: str
    current_study_date: str
    days_between: int | None
    response: str  # CR, PR, SD or PD
    rule: str
    sum_of_diameters_mm: tuple[float | None, float | None]
    registration_type: str
    registration_metric: float | None
    lesions: tuple[FollowUpLesion, ...]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FollowUpSummary:
        registration = data.get("registration") or {}
        days = data.get("days_between")
        return cls(
            comparison_id=int(data.get("comparison_id") or 0),
            prior_case_id=int(data.get("prior_case_id") or 0),
            prior_study_date=str(data.get("prior_study_date") or ""),
            current_study_date=str(data.get("current_study_date") or ""),
            days_between=int(days) if days is not None else None,
            response=str(data.get("response", "")),
            rule=str(data.get("rule", "")),
            sum_of_diameters_mm=_pair(data.get("sum_of_diameters_mm")),
            registration_type=str(registration.get("type", "")),
            registration_metric=_number(registration.get("metric")),
            lesions=tuple(FollowUpLesion.from_json(item) for item in data.get("lesions", ())),
        )


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _pair(values: Any) -> tuple[float | None, float | None]:
    items = [*list(values or (None, None))[:2], None, None]
    return (_number(items[0]), _number(items[1]))
