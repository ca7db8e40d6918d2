"""Sliding windows cover the volume and blend to the right answer."""

from __future__ import annotations

import numpy as np
import pytest

from meddiag_desktop.inference.pipeline import run_to_end
from meddiag_desktop.inference.sliding_window import (
    WindowPlan,
    gaussian_weights,
    sliding_window,
    window_starts,
)


@pytest.mark.parametrize(("size", "patch", "overlap"), [(100, 32, 0.5), (32, 32, 0.5),
                                                        (10, 32, 0.25), (97, 16, 0.0)])
def test_windows_cover_everything(size: int, patch: int, overlap: float) -> None:
    starts = window_starts(size, patch, overlap)
    covered = np.zeros(max(size, patch), bool)
    for start in starts:
        covered[start:start + patch] = True
    assert covered[:size].all()
    assert starts[0] == 0 and starts[-1] + patch >= size


def test_identity_model_blends_back_to_the_input() -> None:
    rng = np.random.default_rng(0)
    volume = rng.random((37, 50, 45), dtype=np.float32)
    plan = WindowPlan((16, 16, 16), overlap=0.5, batch_size=3, sigma_scale=0.125)
    result = run_to_end(sliding_window(volume, lambda b: b.copy(), 1, plan))
    assert result.shape == (1, *volume.shape)
    assert np.allclose(result[0], volume, atol=1e-5)


def test_small_volume_is_padded() -> None:
    volume = np.ones((5, 6, 7), np.float32)
    plan = WindowPlan((8, 8, 8), overlap=0.5, batch_size=1, sigma_scale=0.125)
    result = run_to_end(sliding_window(volume, lambda b: b * 2, 1, plan))
    assert result.shape == (1, 5, 6, 7) and np.allclose(result, 2.0)


def test_gaussian_peaks_in_the_centre() -> None:
    weights = gaussian_weights((9, 9, 9), 0.125)
    assert weights[4, 4, 4] == pytest.approx(1.0) and weights.min() > 0
