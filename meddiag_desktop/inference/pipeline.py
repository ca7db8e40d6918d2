"""Volume + ModelCard -> Segmentation + Findings, as a generator of Progress.

The pipeline is a plain generator so the CLI draws a progress bar and the GUI runs it in a
worker thread with a Cancel button, from the same code. Its result is the generator's return
value; :func:`run_to_end` drives it when nobody needs the progress.

Memory stays bounded: the scan is resampled from its stored integers straight to float32 in
model space; a fully convolutional model runs on tiles sized to a working-memory budget
(:mod:`tiling`); the probabilities come back to the scan's grid slab by slab, straight into the
uint8 label map and the float32 probability map; lesions are labelled inside their own boxes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field, replace

import numpy as np

from meddiag_desktop.domain import Finding, Progress, Segmentation, Volume
from meddiag_desktop.inference.anatomy import check_volume
from meddiag_desktop.inference.card import Activation, InputMode, ModelCard
from meddiag_desktop.inference.findings import extract_findings
from meddiag_desktop.inference.model_signature import PackageSignature, check_package
from meddiag_desktop.inference.preprocess import (
    ModelInput,
    model_channel,
    original_slabs,
    prepare,
    slab_on_original_grid,
)
from meddiag_desktop.inference.session import (
    ModelLoadError,
    ProviderReport,
    SessionCache,
    provider_preference,
    run_options,
)
from meddiag_desktop.inference.sliding_window import (
    CancelToken,
    WindowPlan,
    sliding_window,
)
from meddiag_desktop.inference.tiling import TilePlan, plan_tiles, tiled_inference
from meddiag_desktop.inference.trusted_keys import TrustStore


class ModelMismatchError(Exception):
    """The model does not fit this scan (modality) or the card does not fit the ONNX file."""


@dataclass(frozen=True)
class InferenceOptions:
    provider: str | None = None  # "cpu", "cuda", ...; None = best available
    # Sliding windows: None = the card's. Giving an overlap asks for the card's patch-size
    # windows even when the card allows large tiles.
    overlap: float | None = None
    batch_size: int | None = None
    allow_modality_mismatch: bool = False
    allow_anatomy_mismatch: bool = False  # run a model on a region its card does not name
    # Fully convolutional cards: run large tiles (same results, far fewer computations).
    large_tiles: bool = True
    # The model's working memory for one tile, in MB; None = 1.5 x the scan's float32 size,
    # within [256, 1024] MB (small scans: a few large tiles rather than many small ones).
    tile_memory_mb: float | None = None
    # An admin's explicit choice to run a package whose signature cannot be checked here
    # (model_signature.check_package); recorded with the run, so the audit trail shows it.
    allow_unsigned: bool = False
    trust: TrustStore | None = None  # None: the shipped key plus this site's trusted keys


@dataclass(frozen=True)
class InferenceResult:
    segmentation: Segmentation
    findings: tuple[Finding, ...]
    card: ModelCard
    provider: ProviderReport
    timings_s: dict[str, float]
    warnings: tuple[str, ...] = field(default_factory=tuple)
    plan: str = ""  # how the model was run, e.g. "6 tile(s) of (200, 140, 112) ..."
    model_inputs: tuple[tuple[int, ...], ...] = ()  # the shape of every model call's input
    signature: PackageSignature | None = None  # who vouches for the model (stored with the run)


TILE_MEMORY_MB_RANGE = (256.0, 1024.0)


_DEFAULT_SESSIONS = SessionCache()


def check_modality(volume: Volume, card: ModelCard, allow_mismatch: bool) -> list[str]:
    """A CT model on an MR scan gives nonsense: refuse unless asked; warn when unknown."""
    if not card.modality:
        return []
    if not volume.modality:
        return [f"The scan's modality is unknown; the model expects {card.modality}."]
    guessed = []
    if volume.metadata.modality_guessed_from:
        guessed = [
            f"The scan's modality ({volume.modality}) is a guess from its "
            f"{volume.metadata.modality_guessed_from}: the file does not record it."
        ]
    if volume.modality.upper() != card.modality.upper():
        message = (
            f"The model '{card.name}' is for {card.modality} scans, but this scan is "
            f"{volume.modality}{' (a guess)' if guessed else ''}."
        )
        if not allow_mismatch:
            raise ModelMismatchError(message + " Choose a model for this modality.")
        return [*guessed, message + " Run anyway on request."]
    return guessed


def check_anatomy(volume: Volume, card: ModelCard, allow_mismatch: bool) -> list[str]:
    """A chest model on a head finds nonsense: refuse unless asked; warn when unknown."""
    check = check_volume(volume, card)
    if check.refused and not allow_mismatch:
        raise ModelMismatchError(f"{check.message} Choose a model made for this anatomy.")
    if check.refused:
        return [f"{check.message} Run anyway on request."]
    return [check.message] if check.message else []


def run_inference(
    volume: Volume,
    card: ModelCard,
    options: InferenceOptions | None = None,
    cancel: CancelToken | None = None,
    sessions: SessionCache | None = None,
) -> Generator[Progress, None, InferenceResult]:
    options = options or InferenceOptions()
    sessions = sessions or _DEFAULT_SESSIONS
    timings: dict[str, float] = {}
    started = time.perf_counter()
    warnings = check_modality(volume, card, options.allow_modality_mismatch)
    warnings += check_anatomy(volume, card, options.allow_anatomy_mismatch)

    yield Progress(0.0, "loading model", card.name)
    clock = time.perf_counter()
    # The card's sha256 check and the package signature, at the last moment before loading.
    signature = check_package(card, options.trust or TrustStore(), options.allow_unsigned)
    if not signature.signed:
        warnings.append(
            f"The model '{card.name}' could not be verified ({signature.unsigned_reason}); it "
            "ran because an admin allowed unsigned models."
        )
    session, report = sessions.get(
        card.onnx_path, card.sha256, provider_preference(options.provider)
    )
    input_name, output_name = _io_names(session, card)
    timings["load_model"] = time.perf_counter() - clock
    _check_cancel(cancel)

    yield Progress(0.02, "preparing scan", "resampling and normalising")
    clock = time.perf_counter()
    model_input = prepare(volume, card)
    timings["preprocess"] = time.perf_counter() - clock
    _check_cancel(cancel)

    channels = _channel_count(card)
    calls: list[tuple[int, ...]] = []
    stop = run_options()
    if cancel is not None:
        cancel.on_cancel(stop.cancel)  # stops a model call already running on a large tile

    def run_batch(batch: np.ndarray) -> np.ndarray:
        calls.append(batch.shape)
        try:
            return session.run([output_name], {input_name: batch}, stop.options)[0]
        except Exception:
            _check_cancel(cancel)  # terminated by the cancel token: say so, not "failed"
            raise

    clock = time.perf_counter()
    plan_text = ""
    if card.input.mode is InputMode.SLIDING_WINDOW:
        tiles = _tile_plan(volume, model_input, card, options)
        if tiles is not None:
            plan_text = tiles.describe()
            scores = yield from tiled_inference(
                model_input.array_zyx,
                _activated(run_batch, card),
                channels,
                tiles,
                cancel,
                (0.05, 0.9),
            )
        else:
            plan = WindowPlan(
                patch_zyx=card.input.shape_zyx,
                overlap=card.sliding_window.overlap if options.overlap is None else options.overlap,
                batch_size=options.batch_size or card.sliding_window.batch_size,
                sigma_scale=card.sliding_window.gaussian_sigma_scale,
            )
            plan_text = f"windows of {plan.patch_zyx}, overlap {plan.overlap}"
            scores = yield from sliding_window(
                model_input.array_zyx,
                _activated(run_batch, card),
                channels,
                plan,
                cancel,
                (0.05, 0.9),
            )
    else:
        plan_text = f"whole volume {model_input.array_zyx.shape}"
        yield Progress(0.05, "running model", "whole volume")
        scores = _activated(run_batch, card)(model_input.array_zyx[np.newaxis, np.newaxis])[0]
    timings["model"] = time.perf_counter() - clock
    model_input = replace(model_input, array_zyx=np.empty((0, 0, 0), np.float32))  # free it
    _check_cancel(cancel)

    yield Progress(0.9, "mapping back", "onto the scan's grid")
    clock = time.perf_counter()
    labels, probability = _labels_on_original_grid(scores, model_input, card)
    del scores
    timings["postprocess"] = time.perf_counter() - clock
    _check_cancel(cancel)

    yield Progress(0.96, "measuring findings", "")
    clock = time.perf_counter()
    findings: list[Finding] = []
    if card.postprocessing.findings:
        labels, findings = extract_findings(
            volume,
            labels,
            probability,
            card.label_names,
            card.postprocessing.min_lesion_volume_mm3,
            in_place=True,
        )
    timings["findings"] = time.perf_counter() - clock
    timings["total"] = time.perf_counter() - started
    yield Progress(1.0, "done", f"{len(findings)} finding(s)")
    segmentation = Segmentation(labels, card.label_names, card.label_colours, probability)
    return InferenceResult(
        segmentation,
        tuple(findings),
        card,
        report,
        timings,
        tuple(warnings),
        plan_text,
        tuple(calls),
        signature,
    )


def run_to_end(
    steps: Generator[Progress, None, InferenceResult],
    on_progress: Callable[[Progress], None] | None = None,
) -> InferenceResult:
    """Drive the generator, passing each Progress on; returns the result."""
    while True:
        try:
            progress = next(steps)
        except StopIteration as done:
            return done.value
        if on_progress is not None:
            on_progress(progress)


def _check_cancel(cancel: CancelToken | None) -> None:
    if cancel is not None:
        cancel.raise_if_cancelled()


def _channel_count(card: ModelCard) -> int:
    channels = [label.channel for label in card.output.labels]
    if card.output.activation is Activation.SIGMOID:
        return max(channels) + 1
    return max(max(channels), 0) + 1  # channel 0 is the background


def _io_names(session, card: ModelCard) -> tuple[str, str]:
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = [o.name for o in session.get_outputs()]
    input_name = card.input.name or next(iter(inputs))
    output_name = card.output.name or outputs[0]
    problems = []
    if input_name not in inputs:
        problems.append(
            f"the card's input '{input_name}' is not in the model (it has {', '.join(inputs)})"
        )
    elif len(inputs[input_name].shape) != 5:
        problems.append(
            f"the model's input has {len(inputs[input_name].shape)} dimensions; the "
            "card's layout NCDHW needs 5"
        )
    if output_name not in outputs:
        problems.append(
            f"the card's output '{output_name}' is not in the model (it has {', '.join(outputs)})"
        )
    if problems:
        raise ModelMismatchError(f"{card.onnx_path}: " + "; ".join(problems))
    return input_name, output_name


def _activated(run_batch, card: ModelCard):
    if card.output.activation is not Activation.LOGITS:
        return run_batch

    def softmax_batch(batch: np.ndarray) -> np.ndarray:
        logits = run_batch(batch).astype(np.float32, copy=False)
        logits -= logits.max(axis=1, keepdims=True)
        np.exp(logits, out=logits)
        logits /= logits.sum(axis=1, keepdims=True)
        return logits

    return softmax_batch


def _tile_plan(
    volume: Volume, model_input: ModelInput, card: ModelCard, options: InferenceOptions
) -> TilePlan | None:
    """Large tiles when the card allows them and the options do not ask for windows."""
    window = card.sliding_window
    if window.max_tile_zyx is None or not options.large_tiles or options.overlap is not None:
        return None
    budget_mb = options.tile_memory_mb
    if budget_mb is None:
        scan_mb = volume.array_zyx.size * 4 / 2**20
        budget_mb = min(max(1.5 * scan_mb, TILE_MEMORY_MB_RANGE[0]), TILE_MEMORY_MB_RANGE[1])
    max_voxels = (
        int(budget_mb * 2**20 / window.tile_bytes_per_voxel)
        if window.tile_bytes_per_voxel > 0
        else None
    )
    return plan_tiles(
        model_input.array_zyx.shape,
        window.max_tile_zyx,
        window.tile_margin,
        window.tile_multiple,
        max_voxels,
        card.input.shape_zyx,
    )


def _labels_on_original_grid(
    scores: np.ndarray, model_input: ModelInput, card: ModelCard
) -> tuple[np.ndarray, np.ndarray]:
    """Threshold (sigmoid) or per-class comparison (softmax), slab by slab of the scan's grid.

    Besides the uint8 labels and the float32 probability map, only a few slices per channel
    exist at once, whatever the class count and the scan's size.
    """
    shape = model_input.original_grid.shape_zyx
    labels = np.zeros(shape, dtype=np.uint8)
    probability = np.zeros(shape, dtype=np.float32)
    sigmoid = card.output.activation is Activation.SIGMOID
    wanted = [label.channel for label in card.output.labels]
    if not sigmoid:
        wanted = [0, *wanted]  # the background first
    channels = {c: model_channel(scores[c], model_input) for c in dict.fromkeys(wanted)}
    for first, stop in original_slabs(model_input):
        out_labels = labels[first:stop]
        out_probability = probability[first:stop]
        if sigmoid:
            for label in card.output.labels:
                channel = slab_on_original_grid(channels[label.channel], model_input, first, stop)
                out_labels[channel >= card.postprocessing.threshold] = label.value
                np.maximum(out_probability, channel, out=out_probability)
            continue
        best = slab_on_original_grid(channels[0], model_input, first, stop)
        np.subtract(1.0, best, out=out_probability)  # probability of any label
        for label in card.output.labels:
            channel = slab_on_original_grid(channels[label.channel], model_input, first, stop)
            better = channel > best
            out_labels[better] = label.value
            np.maximum(best, channel, out=best)
    return labels, probability


__all__ = [
    "CancelToken",
    "InferenceOptions",
    "InferenceResult",
    "ModelLoadError",
    "ModelMismatchError",
    "run_inference",
    "run_to_end",
]
