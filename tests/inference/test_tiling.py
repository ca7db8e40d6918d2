"""Large tiles for fully convolutional models: the plan, the blend, and the same answer."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from tiny_models import CONV_MODEL_RADIUS, conv_model

from meddiag_desktop.inference.pipeline import run_to_end
from meddiag_desktop.inference.sliding_window import (
    CancelToken,
    InferenceCancelled,
    WindowPlan,
    sliding_window,
)
from meddiag_desktop.inference.tiling import blend_profile, plan_tiles, tiled_inference


@pytest.mark.parametrize(
    ("shape", "max_tile", "margin", "multiple", "max_voxels"),
    [
        ((200, 232, 232), (256, 256, 256), 24, 4, 2_600_000),
        ((67, 231, 229), (256, 256, 256), 24, 4, 1_000_000),
        ((30, 40, 50), (64, 64, 64), 5, 2, 6_000),
        ((30, 40, 50), (64, 64, 64), 5, 2, None),
        ((5, 300, 7), (64, 64, 64), 3, 4, 10_000),
    ],
)
def test_plans_cover_with_margins_and_fit_the_budget(
    shape, max_tile, margin, multiple, max_voxels
) -> None:
    plan = plan_tiles(shape, max_tile, margin, multiple, max_voxels)
    assert plan is not None
    tile = plan.tile_zyx
    if max_voxels is not None:
        assert math.prod(tile) <= max_voxels
    for size, padded, axis, limit in zip(shape, plan.padded_zyx, plan.axes, max_tile,
                                         strict=True):
        assert padded % multiple == 0 and padded >= size and axis.size <= limit
        assert axis.size % multiple == 0
        assert all(start % multiple == 0 for start in axis.starts)  # pooling grid kept
        assert axis.starts[0] == 0 and axis.starts[-1] + axis.size == padded
        for before, after in zip(axis.starts, axis.starts[1:], strict=False):
            assert before + axis.size - after >= 2 * margin  # both sides keep their context
        # the weights along the axis are a partition of unity
        total = np.zeros(padded)
        for index, start in enumerate(axis.starts):
            profile = blend_profile(axis, index, margin)
            total[start:start + axis.size] += profile
            # a tile is only trusted where it has `margin` voxels of context
            trusted = np.zeros(axis.size, bool)
            trusted[margin if index else 0:axis.size - (margin if index < len(axis.starts) - 1
                                                        else 0)] = True
            assert np.all(profile[~trusted] == 0)
        assert np.allclose(total, 1.0, atol=1e-6)


def test_no_plan_when_the_budget_cannot_hold_the_margins() -> None:
    assert plan_tiles((200, 200, 200), (256, 256, 256), 24, 4, 50**3) is None


def test_fewest_voxels_are_chosen() -> None:
    plan = plan_tiles((64, 64, 64), (256, 256, 256), 8, 4, None)
    assert plan is not None and plan.count == 1 and plan.tile_zyx == (64, 64, 64)


@pytest.fixture(scope="module")
def conv_session(tmp_path_factory: pytest.TempPathFactory) -> ort.InferenceSession:
    path = conv_model(Path(tmp_path_factory.mktemp("conv")) / "model.onnx")
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def whole_volume(session: ort.InferenceSession, volume: np.ndarray) -> np.ndarray:
    return session.run(None, {"input": volume[None, None]})[0][0]


@pytest.mark.parametrize("shape", [(36, 40, 44), (33, 47, 29)])
def test_tiles_give_the_whole_volume_answer(conv_session, shape) -> None:
    """Tiles with a margin >= the receptive field, on the pooling grid: the same output as one
    run over the whole volume (padded to the pooling multiple), to float rounding."""
    rng = np.random.default_rng(1)
    volume = rng.uniform(0.0, 1.0, shape).astype(np.float32)
    plan = plan_tiles(shape, (64, 64, 64), CONV_MODEL_RADIUS, 2, 24**3)
    assert plan is not None and plan.count >= 4
    progress = []
    tiled = run_to_end(tiled_inference(
        volume, lambda b: conv_session.run(None, {"input": b})[0], 1, plan), progress.append)
    padded = np.pad(volume, [(0, p - s) for s, p in zip(shape, plan.padded_zyx, strict=True)],
                    constant_values=float(volume.min()))
    reference = whole_volume(conv_session, padded)[(slice(None), *(slice(0, s) for s in shape))]
    assert tiled.shape == (1, *shape)
    assert np.abs(tiled - reference).max() < 1e-5
    assert len(progress) == plan.count
    assert progress[-1].message == f"tile {plan.count} of {plan.count}"


def test_margins_matter(conv_session) -> None:
    """Without the margin, tile borders show: the test above would notice a wrong margin."""
    volume = np.random.default_rng(2).uniform(0.0, 1.0, (36, 40, 44)).astype(np.float32)
    plan = plan_tiles(volume.shape, (64, 64, 64), 0, 2, 24**3)
    assert plan is not None and plan.count > 1
    tiled = run_to_end(tiled_inference(
        volume, lambda b: conv_session.run(None, {"input": b})[0], 1, plan))
    assert np.abs(tiled - whole_volume(conv_session, volume)).max() > 1e-3


def test_tiles_agree_with_patch_windows_away_from_window_borders(conv_session) -> None:
    """Patch-size windows blend border predictions in; where the Gaussian favours window
    centres, the two plans agree closely."""
    volume = np.random.default_rng(3).uniform(0.0, 1.0, (32, 32, 32)).astype(np.float32)
    windows = run_to_end(sliding_window(volume, lambda b: conv_session.run(None, {"input": b})[0],
                                        1, WindowPlan((16, 16, 16), 0.5, 2, 0.125)))
    plan = plan_tiles(volume.shape, (64, 64, 64), CONV_MODEL_RADIUS, 2, None)
    tiled = run_to_end(tiled_inference(
        volume, lambda b: conv_session.run(None, {"input": b})[0], 1, plan))
    assert np.median(np.abs(windows - tiled)) < 0.02


def test_cancel_between_tiles_and_during_a_tile(conv_session) -> None:
    volume = np.random.default_rng(4).uniform(0.0, 1.0, (36, 40, 44)).astype(np.float32)
    plan = plan_tiles(volume.shape, (64, 64, 64), CONV_MODEL_RADIUS, 2, 24**3)
    cancel = CancelToken()
    steps = tiled_inference(volume, lambda b: conv_session.run(None, {"input": b})[0], 1, plan,
                            cancel)
    next(steps)
    cancel.cancel()
    with pytest.raises(InferenceCancelled):
        next(steps)
    called = []
    cancel.on_cancel(lambda: called.append(True))  # already cancelled: runs at once
    assert called == [True]


def test_a_volume_smaller_than_the_patch_is_padded_to_it(conv_session) -> None:
    volume = np.random.default_rng(5).uniform(0.0, 1.0, (5, 6, 7)).astype(np.float32)
    plan = plan_tiles(volume.shape, (64, 64, 64), CONV_MODEL_RADIUS, 2, None, (16, 16, 16))
    assert plan is not None and plan.padded_zyx == (16, 16, 16) and plan.count == 1
    tiled = run_to_end(tiled_inference(
        volume, lambda b: conv_session.run(None, {"input": b})[0], 1, plan))
    padded = np.pad(volume, [(0, 16 - s) for s in volume.shape],
                    constant_values=float(volume.min()))
    assert tiled.shape == (1, 5, 6, 7)
    assert np.abs(tiled - whole_volume(conv_session, padded)[:, :5, :6, :7]).max() < 1e-6
