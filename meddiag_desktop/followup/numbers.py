"""The numbers of one lesion across two studies: size at each, change, doubling time.

Volumes (mL) and the RECIST long and short axes (mm) are the findings' own, as stored. The
volume doubling time is ``t ln 2 / ln(V2 / V1)`` with ``t`` the days between the study dates:
negative for a shrinking lesion (its halving time), none when either volume or the interval is
missing or the volume did not change at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from meddiag_desktop.domain import Finding

Pair = tuple[float | None, float | None]  # (prior, current)


@dataclass(frozen=True)
class LesionNumbers:
    volume_ml: Pair
    long_axis_mm: Pair
    short_axis_mm: Pair
    volume_change_ml: float | None
    volume_change_pct: float | None
    long_axis_change_mm: float | None
    long_axis_change_pct: float | None
    doubling_time_days: float | None


def lesion_numbers(
    prior: Finding | None, current: Finding | None, days: int | None
) -> LesionNumbers:
    """The numbers of the lesion seen as ``prior`` and ``current`` (either may be absent),
    ``days`` apart."""
    volume = (_get(prior, "volume_ml"), _get(current, "volume_ml"))
    long_axis = (_get(prior, "long_axis_mm"), _get(current, "long_axis_mm"))
    short_axis = (_get(prior, "short_axis_mm"), _get(current, "short_axis_mm"))
    return LesionNumbers(
        volume_ml=volume,
        long_axis_mm=long_axis,
        short_axis_mm=short_axis,
        volume_change_ml=_difference(volume),
        volume_change_pct=_percent(volume),
        long_axis_change_mm=_difference(long_axis),
        long_axis_change_pct=_percent(long_axis),
        doubling_time_days=doubling_time_days(volume[0], volume[1], days),
    )


def doubling_time_days(
    first_ml: float | None, second_ml: float | None, days: int | None
) -> float | None:
    """Volume doubling time in days (module docstring); None where it is not defined."""
    if first_ml is None or second_ml is None or days is None or days <= 0:
        return None
    if first_ml <= 0 or second_ml <= 0 or first_ml == second_ml:
        return None
    return days * math.log(2.0) / math.log(second_ml / first_ml)


def _get(finding: Finding | None, name: str) -> float | None:
    return None if finding is None else float(getattr(finding, name))


def _difference(pair: Pair) -> float | None:
    first, second = pair
    return None if first is None or second is None else second - first


def _percent(pair: Pair) -> float | None:
    first, second = pair
    if first is None or second is None or first == 0:
        return None
    return 100.0 * (second - first) / first
