"""Run times that ``meddiag infer`` wrote into ``findings.json`` (``timings_s``: stage -> s)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from meddiag_desktop.scans.errors import ScanError

TOTAL = "total"


def read_timings(findings_json: Path | None) -> Mapping[str, float] | None:
    """The ``timings_s`` of a findings file, or ``None`` when there is no file or no timings."""
    if findings_json is None or not findings_json.is_file():
        return None
    try:
        content = json.loads(findings_json.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ScanError(findings_json, f"cannot be read as JSON ({exc})") from exc
    timings = content.get("timings_s") if isinstance(content, dict) else None
    if timings is None:
        return None
    if not isinstance(timings, dict) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in timings.values()
    ):
        raise ScanError(findings_json, "'timings_s' must map stage names to seconds")
    return {str(stage): float(seconds) for stage, seconds in timings.items()}


def mean_timings(per_case: Sequence[Mapping[str, float] | None]) -> dict[str, float] | None:
    """Mean seconds per stage over the cases that timed it; ``None`` when none did."""
    totals: dict[str, list[float]] = {}
    for timings in per_case:
        for stage, seconds in (timings or {}).items():
            totals.setdefault(stage, []).append(seconds)
    if not totals:
        return None
    return {stage: sum(values) / len(values) for stage, values in totals.items()}
