"""RECIST 1.1 targets and response, and the per-lesion numbers (change, doubling time)."""

from __future__ import annotations

import math

import pytest
from lesion_fakes import track

from meddiag_desktop.db.comparison_records import Response
from meddiag_desktop.followup.errors import FollowUpError
from meddiag_desktop.followup.numbers import doubling_time_days, lesion_numbers
from meddiag_desktop.followup.recist import assess, propose_targets


def test_targets_are_the_largest_measurable_two_per_organ_five_in_all() -> None:
    tracks = [
        track("T1", 30.0, 30.0),
        track("T2", 25.0, 25.0),
        track("T3", 40.0, 40.0),  # lung: the third lung lesion is not a target
        track("T4", 9.0, 9.0, organ="liver"),  # not measurable (< 10 mm)
        track("T5", 22.0, 22.0, organ="liver"),
        track("T6", 21.0, 21.0, organ="liver"),
        track("T7", 20.0, 20.0, organ="kidney"),
        track("T8", 19.0, 19.0, organ="adrenal"),
        track("T9", None, 50.0),  # new: never a target
    ]
    assert propose_targets(tracks) == ("T3", "T1", "T5", "T6", "T7")


@pytest.mark.parametrize(
    ("prior", "current", "response", "words"),
    [
        ((30.0, 20.0), (20.0, 14.0), Response.PR, "fell by 30%"),  # 50 -> 34: -32%
        ((30.0, 20.0), (25.0, 20.0), Response.SD, "neither"),  # -10%
        ((30.0, 20.0), (36.0, 25.0), Response.PD, "grew by 20%"),  # 50 -> 61: +22%, +11 mm
        ((10.0, 10.0), (12.0, 12.0), Response.SD, "neither"),  # +20% but only +4 mm
        ((30.0, 20.0), (None, None), Response.CR, "every lesion disappeared"),
    ],
)
def test_the_response_follows_the_sum_of_diameters(prior, current, response, words) -> None:  # type: ignore[no-untyped-def]
    tracks = [track("T1", prior[0], current[0]), track("T2", prior[1], current[1])]
    result = assess(tracks, ("T1", "T2"))
    assert result.response is response
    assert result.rule.startswith(f"{response.value}: ") and words in result.rule
    assert result.sum_prior_mm == pytest.approx(sum(prior))


def test_a_new_lesion_is_progression_whatever_the_sum_does() -> None:
    tracks = [track("T1", 30.0, 10.0), track("T2", None, 6.0)]
    result = assess(tracks, ("T1",))
    assert result.response is Response.PD and "new lesion(s) T2" in result.rule
    assert result.change_pct == pytest.approx(-66.667, abs=0.01)


def test_targets_gone_while_other_lesions_remain_is_a_partial_response() -> None:
    tracks = [track("T1", 30.0, None), track("T2", 8.0, 8.0)]
    result = assess(tracks, ("T1",))
    assert result.response is Response.PR and "non-target" in result.rule


def test_only_prior_lesions_can_be_targets_and_at_most_five() -> None:
    tracks = [track(f"T{i}", 15.0, 15.0) for i in range(1, 7)] + [track("T7", None, 12.0)]
    with pytest.raises(FollowUpError, match="prior"):
        assess(tracks, ("T7",))
    with pytest.raises(FollowUpError, match="at most 5"):
        assess(tracks, tuple(f"T{i}" for i in range(1, 7)))
    with pytest.raises(FollowUpError, match="no lesion T9"):
        assess(tracks, ("T9",))


def test_volume_doubling_time_and_changes() -> None:
    assert doubling_time_days(0.5, 1.0, 90) == pytest.approx(90.0)
    assert doubling_time_days(1.0, 0.5, 90) == pytest.approx(-90.0)
    assert doubling_time_days(1.0, 1.0, 90) is None
    assert doubling_time_days(1.0, 2.0, None) is None
    assert doubling_time_days(None, 2.0, 30) is None
    numbers = track("T1", 10.0, 12.6).numbers
    assert numbers.volume_change_pct == pytest.approx(100.0 * (1.26**3 - 1), rel=1e-6)
    assert numbers.long_axis_change_mm == pytest.approx(2.6)
    assert numbers.doubling_time_days == pytest.approx(90 * math.log(2) / math.log(1.26**3))
    gone = lesion_numbers(track("T2", 10.0, None).prior.finding, None, 90)  # type: ignore[union-attr]
    assert gone.volume_ml[1] is None and gone.volume_change_pct is None
