"""Registration of the demo pair: it finds the known move, reports progress and can be
cancelled; the stored transform round-trips and maps points both ways."""

from __future__ import annotations

import numpy as np
import pytest

from meddiag_desktop.demo.follow_up import FOLLOW_UP_POSE, FollowUpPair, current_to_prior
from meddiag_desktop.domain import Progress
from meddiag_desktop.followup.errors import RegistrationCancelled
from meddiag_desktop.followup.registration import RegistrationOptions, register
from meddiag_desktop.followup.transform import StoredTransform, TransformType


def _errors(pair: FollowUpPair, transform: StoredTransform) -> tuple[float, float]:
    """Rotation error (deg) and the largest displacement error (mm) over the nodules' centres
    and the middle of the scan, against the phantom's true move."""
    truth_matrix, truth_offset = current_to_prior(FOLLOW_UP_POSE)
    matrix, offset = transform.matrix_and_translation()
    u, _s, vt = np.linalg.svd(matrix @ truth_matrix.T)
    angle = np.degrees(np.arccos(np.clip((np.trace(u @ vt) - 1) / 2, -1, 1)))
    current = pair.follow_up.volume
    points = [
        np.asarray(lesion["centre_lps_mm"][1])
        for lesion in pair.truth["lesions"]
        if lesion["centre_lps_mm"][1] is not None
    ]
    points.append(np.asarray(current.index_to_lps(tuple((np.asarray(current.size_xyz) - 1) / 2))))
    shift = max(
        np.linalg.norm(matrix @ p + offset - (truth_matrix @ p + truth_offset)) for p in points
    )
    return float(angle), float(shift)


def test_rigid_registration_recovers_the_known_move(pair: FollowUpPair) -> None:
    steps: list[Progress] = []
    result = register(pair.follow_up.volume, pair.baseline.volume, progress=steps.append)
    angle, shift = _errors(pair, result.transform)
    assert angle < 1.0 and shift < 2.0, (angle, shift)
    assert result.kind is TransformType.RIGID
    assert abs(result.transform.rotation_deg() - FOLLOW_UP_POSE.rotation_deg) < 1.0
    assert result.seconds < 30.0  # the budget on 2 cores (bench/registration.py)
    quality = result.quality
    assert quality.ncc_after > 0.95 > quality.ncc_before
    assert quality.body_dice_after > quality.body_dice_before
    assert quality.metric < 0  # Mattes MI: lower is better
    fractions = [p.fraction for p in steps]
    assert all(0.0 <= f <= 1.0 for f in fractions) and fractions[-1] == 1.0
    assert sum(1 for p in steps if "iteration" in p.message) == result.iterations


def test_affine_registration_on_request(pair: FollowUpPair) -> None:
    result = register(pair.follow_up.volume, pair.baseline.volume, RegistrationOptions(affine=True))
    assert result.kind is TransformType.AFFINE
    angle, shift = _errors(pair, result.transform)
    assert angle < 1.0 and shift < 2.0, (angle, shift)


def test_cancel_stops_within_an_iteration(pair: FollowUpPair) -> None:
    seen: list[Progress] = []

    def cancelled() -> bool:
        return sum(1 for p in seen if "iteration" in p.message) >= 3

    with pytest.raises(RegistrationCancelled):
        register(
            pair.follow_up.volume, pair.baseline.volume, progress=seen.append, cancelled=cancelled
        )
    assert sum(1 for p in seen if "iteration" in p.message) == 3


def test_a_cancel_before_the_start_is_honoured(pair: FollowUpPair) -> None:
    with pytest.raises(RegistrationCancelled):
        register(pair.follow_up.volume, pair.baseline.volume, cancelled=lambda: True)


def test_stored_transform_round_trips_and_maps_both_ways() -> None:
    import SimpleITK as sitk

    euler = sitk.Euler3DTransform((5.0, -3.0, -180.0), 0.02, -0.01, 0.06, (4.0, -7.0, 12.0))
    stored = StoredTransform.from_sitk(euler)
    again = StoredTransform.from_json(stored.to_json())
    assert again == stored and again.kind is TransformType.RIGID
    point = (10.0, -20.0, -150.0)
    assert np.allclose(again.to_prior(point), euler.TransformPoint(point))
    assert np.allclose(again.to_current(again.to_prior(point)), point)
    assert np.allclose(StoredTransform.identity().to_prior(point), point)
