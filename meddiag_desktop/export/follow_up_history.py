"""A case's follow-up for its report: the newest comparison, each lesion's whole history.

The comparison of this case with its prior gives two time points per lesion; the prior's own
newest comparison (with a study before it) gives the one before, and so on back, following the
finding each lesion continues, so a lesion's plot shows every study it was seen on.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from meddiag_desktop.db.comparisons import latest_comparison
from meddiag_desktop.db.engine import Database
from meddiag_desktop.reports.follow_up_summary import FollowUpSummary, TimePoint

_MAX_STUDIES = 20  # a cycle cannot happen (priors are earlier), but stop anyway


def follow_up_summary(db: Database, case_id: int) -> FollowUpSummary | None:
    """The case's newest comparison as the report shows it; None when it has none."""
    record = latest_comparison(db, case_id)
    if record is None:
        return None
    data = {**record.summary, "comparison_id": record.comparison_id}
    summary = FollowUpSummary.from_json(data)
    lesions = tuple(
        replace(lesion, history=_history(db, record.prior_case_id, data, item))
        for lesion, item in zip(summary.lesions, data.get("lesions", ()), strict=False)
    )
    return replace(summary, lesions=lesions)


def _history(
    db: Database, prior_case_id: int, data: dict[str, Any], item: dict[str, Any]
) -> tuple[TimePoint, ...]:
    volumes, axes = item.get("volume_ml") or [None, None], item.get("long_axis_mm") or [None, None]
    points = [TimePoint(str(data.get("current_study_date") or ""), volumes[1], axes[1])]
    if volumes[0] is None:
        return tuple(points)
    points.insert(0, TimePoint(str(data.get("prior_study_date") or ""), volumes[0], axes[0]))
    case_id, finding_pk = prior_case_id, item.get("prior_finding_pk")
    for _ in range(_MAX_STUDIES):
        earlier = latest_comparison(db, case_id) if finding_pk is not None else None
        if earlier is None:
            break
        match = next(
            (
                lesion
                for lesion in earlier.summary.get("lesions", ())
                if lesion.get("current_finding_pk") == finding_pk
                and lesion.get("prior_finding_pk") is not None
            ),
            None,
        )
        if match is None:
            break
        before = (match.get("volume_ml") or [None])[0]
        axis = (match.get("long_axis_mm") or [None])[0]
        points.insert(
            0, TimePoint(str(earlier.summary.get("prior_study_date") or ""), before, axis)
        )
        case_id, finding_pk = earlier.prior_case_id, match.get("prior_finding_pk")
    return tuple(points)
