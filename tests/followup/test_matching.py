"""Lesion matching: overlap first, then size-scaled distance, one to one; the reader's
corrections on top."""

from __future__ import annotations

from lesion_fakes import stored, study

from meddiag_desktop.db.comparison_records import (
    MatchBasis,
    MatchOverride,
    OverrideAction,
    TrackStatus,
)
from meddiag_desktop.followup.matching import apply_overrides, match_lesions
from meddiag_desktop.followup.transform import StoredTransform, TransformType

# current point -> prior point: the prior study is shifted by (5, -3, 2) mm.
SHIFT = StoredTransform(TransformType.RIGID, (0, 0, 0, 5.0, -3.0, 2.0), (0, 0, 0, 0))


def _moved(point: tuple[float, float, float]) -> tuple[float, float, float]:
    """Where a current-study point lies in the prior study."""
    return (point[0] + 5.0, point[1] - 3.0, point[2] + 2.0)


def _by_prior(matches):  # type: ignore[no-untyped-def]
    return {m.prior_finding_pk: m for m in matches if m.prior_finding_pk is not None}


def test_overlapping_lesions_match_through_the_transform_and_the_rest_are_new_or_gone() -> None:
    prior = study(
        [
            stored(1, _moved((20.0, 20.0, 20.0)), 10.0),  # grows
            stored(2, _moved((55.0, 30.0, 30.0)), 8.0),  # gone
            stored(3, _moved((40.0, 60.0, 40.0)), 12.0),  # shrinks
        ]
    )
    current = study(
        [
            stored(11, (20.5, 19.5, 20.0), 13.0),
            stored(13, (40.0, 60.5, 40.0), 7.0),
            stored(14, (60.0, 60.0, 15.0), 9.0),  # new
        ]
    )
    matches = match_lesions(prior, current, SHIFT)
    found = _by_prior(matches)
    assert found[1].current_finding_pk == 11 and found[1].basis is MatchBasis.OVERLAP
    assert found[1].dice is not None and found[1].dice > 0.4
    assert found[3].current_finding_pk == 13 and found[3].status is TrackStatus.MATCHED
    assert found[2].status is TrackStatus.GONE and found[2].current_finding_pk is None
    [new] = [m for m in matches if m.status is TrackStatus.NEW]
    assert new.current_finding_pk == 14
    # Without the transform the shifted lesions would not all overlap: the transform is used.
    assert match_lesions(prior, current, StoredTransform.identity()) != matches


def test_without_masks_centres_within_a_size_scaled_tolerance_match() -> None:
    prior = study(
        [stored(1, _moved((20.0, 20.0, 20.0)), 20.0), stored(2, _moved((50.0, 50.0, 30.0)), 6.0)],
        masks=False,
    )
    current = study(
        [
            stored(11, (32.0, 20.0, 20.0), 20.0),  # 12 mm off, 20 mm lesion: same
            stored(12, (50.0, 58.0, 30.0), 6.0),
        ],
        masks=False,
    )  # 8 mm off, 6 mm: not
    found = _by_prior(match_lesions(prior, current, SHIFT))
    assert found[1].current_finding_pk == 11 and found[1].basis is MatchBasis.DISTANCE
    assert found[1].distance_mm is not None and abs(found[1].distance_mm - 12.0) < 0.01
    assert found[2].status is TrackStatus.GONE


def test_matching_is_one_to_one_and_prefers_the_best_overlap() -> None:
    prior = study(
        [stored(1, _moved((30.0, 30.0, 30.0)), 10.0), stored(2, _moved((38.0, 30.0, 30.0)), 10.0)]
    )
    current = study([stored(11, (31.0, 30.0, 30.0), 10.0)])
    matches = match_lesions(prior, current, SHIFT)
    found = _by_prior(matches)
    assert found[1].current_finding_pk == 11
    assert found[2].status is TrackStatus.GONE
    assert sum(1 for m in matches if m.current_finding_pk == 11) == 1


def test_the_readers_links_unlinks_and_marks_apply_in_order() -> None:
    prior = study(
        [stored(1, _moved((20.0, 20.0, 20.0)), 10.0), stored(2, _moved((50.0, 50.0, 30.0)), 10.0)]
    )
    current = study([stored(11, (20.0, 20.0, 20.0), 10.0), stored(12, (60.0, 20.0, 40.0), 10.0)])
    automatic = match_lesions(prior, current, SHIFT)
    assert _by_prior(automatic)[2].status is TrackStatus.GONE

    linked, applied = apply_overrides(automatic, [MatchOverride(OverrideAction.LINK, 2, 12)])
    assert _by_prior(linked)[2].current_finding_pk == 12
    assert _by_prior(linked)[2].basis is MatchBasis.MANUAL and len(applied) == 1

    unlinked, _ = apply_overrides(automatic, [MatchOverride(OverrideAction.UNLINK, 1, 11)])
    assert _by_prior(unlinked)[1].status is TrackStatus.GONE
    assert any(m.current_finding_pk == 11 and m.status is TrackStatus.NEW for m in unlinked)

    # Linking 2 to 11 takes 11 from 1: 1 is gone then. Marking 12 new changes nothing.
    moved, _ = apply_overrides(
        automatic,
        [
            MatchOverride(OverrideAction.LINK, 2, 11),
            MatchOverride(OverrideAction.MARK_NEW, None, 12),
        ],
    )
    assert _by_prior(moved)[2].current_finding_pk == 11
    assert _by_prior(moved)[1].status is TrackStatus.GONE
    assert len([m for m in moved if m.current_finding_pk == 11]) == 1

    gone, _ = apply_overrides(automatic, [MatchOverride(OverrideAction.MARK_GONE, 1, None)])
    assert _by_prior(gone)[1].status is TrackStatus.GONE

    # An override naming a finding this comparison does not hold (an older run's) is dropped.
    same, applied = apply_overrides(automatic, [MatchOverride(OverrideAction.LINK, 99, 11)])
    assert applied == () and sorted(map(str, same)) == sorted(map(str, automatic))


def test_an_override_needs_the_findings_its_action_names() -> None:
    import pytest

    with pytest.raises(ValueError, match="needs a prior and a current"):
        MatchOverride(OverrideAction.LINK, 1, None)
    with pytest.raises(ValueError, match="needs a current"):
        MatchOverride(OverrideAction.MARK_NEW, 1, 2)
