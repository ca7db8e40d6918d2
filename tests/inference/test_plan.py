"""The plan: made once from the geometry, applied once, undone once, exactly as before."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import numpy as np
import pytest
from test_preprocess import DIRECTIONS
from tiny_models import make_model_folder

from meddiag_desktop.domain import ScanMetadata, Volume
from meddiag_desktop.inference.card import (
    Activation,
    InputMode,
    LabelSpec,
    ModelCard,
    read_card,
)
from meddiag_desktop.inference.plan import PROBABILITY_FLOOR, InferencePlan
from meddiag_desktop.inference.preprocess import (
    model_channel,
    original_slabs,
    prepare,
    slab_on_original_grid,
)


@pytest.fixture(scope="module")
def card(tmp_path_factory: pytest.TempPathFactory) -> ModelCard:
    return read_card(make_model_folder(tmp_path_factory.mktemp("m") / "m"))


def dense_undo(scores: np.ndarray, geometry, card: ModelCard) -> tuple[np.ndarray, np.ndarray]:
    """The route before the plan: every voxel of the scan interpolated, slab by slab."""
    shape = geometry.original_grid.shape_zyx
    labels = np.zeros(shape, dtype=np.uint8)
    probability = np.zeros(shape, dtype=np.float32)
    sigmoid = card.output.activation is Activation.SIGMOID
    wanted = [label.channel for label in card.output.labels]
    if not sigmoid:
        wanted = [0, *wanted]
    channels = {c: model_channel(scores[c], geometry) for c in dict.fromkeys(wanted)}
    for first, stop in original_slabs(geometry):
        out_labels, out_probability = labels[first:stop], probability[first:stop]
        if sigmoid:
            for label in card.output.labels:
                channel = slab_on_original_grid(channels[label.channel], geometry, first, stop)
                out_labels[channel >= card.postprocessing.threshold] = label.value
                np.maximum(out_probability, channel, out=out_probability)
            continue
        best = slab_on_original_grid(channels[0], geometry, first, stop)
        np.subtract(1.0, best, out=out_probability)
        # Outside the model's field of view every channel reads 0: probability 0 there (the
        # route before the plan said 1, its one difference from it).
        seen = model_channel(np.ones(scores.shape[1:], np.float32), geometry)
        out_probability[slab_on_original_grid(seen, geometry, first, stop) == 0.0] = 0.0
        for label in card.output.labels:
            channel = slab_on_original_grid(channels[label.channel], geometry, first, stop)
            out_labels[channel > best] = label.value
            np.maximum(best, channel, out=best)
    return labels, probability


def sparse_scores(shape: tuple[int, ...], channels: int, softmax: bool, seed: int) -> np.ndarray:
    """Mostly background, a few blobs of lesion, faint noise below the floor elsewhere."""
    rng = np.random.default_rng(seed)
    logits = np.full((channels, *shape), -9.0, dtype=np.float32)
    logits += rng.random(logits.shape, dtype=np.float32)
    for _ in range(3):
        centre = [rng.integers(0, s) for s in shape]
        box = tuple(slice(max(0, c - 3), c + 3) for c in centre)
        logits[(int(rng.integers(0, channels)), *box)] = 3.0 + rng.random()
    if not softmax:
        return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)
    logits[0] = 0.0
    exp = np.exp(logits - logits.max(axis=0))
    return (exp / exp.sum(axis=0)).astype(np.float32)


def assert_same_as_dense(labels, probability, reference_labels, reference_probability) -> None:
    assert np.array_equal(labels, reference_labels)
    above = reference_probability >= PROBABILITY_FLOOR
    assert np.array_equal(probability[above], reference_probability[above])
    assert np.abs(probability - reference_probability).max() < PROBABILITY_FLOOR


@pytest.mark.parametrize(
    ("direction", "spacing", "activation"),
    list(itertools.product(DIRECTIONS, [None, (1.5, 0.7, 2.1)], ["sigmoid", "softmax"])),
)
def test_undo_equals_interpolating_every_voxel(card, direction, spacing, activation) -> None:
    rng = np.random.default_rng(3)
    volume = Volume(rng.integers(-1000, 400, (23, 31, 29)).astype(np.int16), (0.8, 0.9, 2.0),
                    (-10.0, 5.0, 3.0), tuple(DIRECTIONS[direction].ravel()),
                    metadata=ScanMetadata(modality="CT"))
    spec = dataclasses.replace(card.input, target_spacing_xyz_mm=spacing)
    softmax = activation == "softmax"
    first = 1 if softmax else 0  # softmax: channel 0 is the background
    labels = (LabelSpec(1, "a", "#ff0000", first), LabelSpec(2, "b", "#00ff00", first + 1))
    output = dataclasses.replace(card.output, activation=Activation(activation), labels=labels)
    custom = dataclasses.replace(card, input=spec, output=output)
    plan = InferencePlan.make(volume, custom)
    model_input = prepare(volume, custom)
    assert plan.model_grid.same_as(model_input.model_grid)
    assert np.array_equal(plan.apply(volume), model_input.array_zyx)
    scores = sparse_scores(plan.shape_zyx, first + 2, softmax, seed=len(direction))
    assert_same_as_dense(*plan.undo(scores), *dense_undo(scores, model_input, custom))


@pytest.mark.parametrize("size", [29, 33])
def test_whole_volume_plan_pads_crops_and_undoes(card, size: int) -> None:
    spec = dataclasses.replace(card.input, mode=InputMode.WHOLE_VOLUME, shape_zyx=(30, 30, 30),
                               target_spacing_xyz_mm=None, orientation=None)
    custom = dataclasses.replace(card, input=spec)
    array = np.arange(size**3, dtype=np.int16).reshape(size, size, size)
    volume = Volume(array, (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    plan = InferencePlan.make(volume, custom)
    model_input = prepare(volume, custom)
    assert plan.shape_zyx == (30, 30, 30) and plan.crop_pad == model_input.crop_pad
    assert np.array_equal(plan.apply(volume), model_input.array_zyx)
    scores = sparse_scores((30, 30, 30), 1, False, seed=size)
    assert_same_as_dense(*plan.undo(scores), *dense_undo(scores, model_input, custom))


@pytest.mark.slow
def test_demo_model_findings_and_mask_as_before(tmp_path: Path) -> None:
    """The bundled model on a demo phantom: the same mask and findings as the dense route."""
    from meddiag_desktop.demo.phantom import make_phantom
    from meddiag_desktop.inference.findings import extract_findings
    from meddiag_desktop.inference.pipeline import InferenceOptions, run_inference, run_to_end
    from meddiag_desktop.inference.registry import ModelRegistry

    card = ModelRegistry().find("demo-lung-nodules")
    volume = make_phantom(seed=4242, shape_zyx=(90, 256, 256),
                          spacing_xyz_mm=(0.68, 0.68, 1.0)).volume
    captured = {}
    undo = InferencePlan.undo

    def keep_scores(self, scores):
        captured["scores"], captured["plan"] = scores.copy(), self
        return undo(self, scores)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(InferencePlan, "undo", keep_scores)
        result = run_to_end(run_inference(volume, card, InferenceOptions(provider="cpu")))
    labels, probability = dense_undo(captured["scores"], captured["plan"], card)
    labels, findings = extract_findings(volume, labels, probability, card.label_names,
                                        card.postprocessing.min_lesion_volume_mm3, in_place=True)
    assert len(findings) > 0
    assert np.array_equal(result.segmentation.labels_zyx, labels)
    assert result.findings == tuple(findings)
