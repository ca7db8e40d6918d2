"""Volume + ModelCard -> Segmentation + Findings, as a generator of Progress.

The pipeline is a plain generator so the CLI draws a progress bar and the GUI runs it in a
worker thread with a Cancel button, from the same code. Its result is the generator's return
value; :func:`run_to_end` drives it when nobody needs the progress.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

import numpy as np

from meddiag_desktop.domain import Finding, Progress, Segmentation, Volume
from meddiag_desktop.inference.card import Activation, InputMode, ModelCard, verify_onnx
from meddiag_desktop.inference.findings import extract_findings
from meddiag_desktop.inference.preprocess import ModelInput, prepare, to_original_grid
from meddiag_desktop.inference.session import (
    ModelLoadError,
    ProviderReport,
    SessionCache,
    provider_preference,
)
from meddiag_desktop.inference.sliding_window import CancelToken, WindowPlan, sliding_window


class ModelMismatchError(Exception):
    """The model does not fit this scan (modality) or the card does not fit the ONNX file."""


@dataclass(frozen=True)
class InferenceOptions:
    provider: str | None = None  # "cpu", "cuda", ...; None = best available
    overlap: float | None = None  # None = the card's
    batch_size: int | None = None
    allow_modality_mismatch: bool = False


@dataclass(frozen=True)
class InferenceResult:
    segmentation: Segmentation
    findings: tuple[Finding, ...]
    card: ModelCard
    provider: ProviderReport
    timings_s: dict[str, float]
    warnings: tuple[str, ...] = field(default_factory=tuple)


_DEFAULT_SESSIONS = SessionCache()


def check_modality(volume: Volume, card: ModelCard, allow_mismatch: bool) -> list[str]:
    """A CT model on an MR scan gives nonsense: refuse unless asked; warn when unknown."""
    if not card.modality:
        return []
    if not volume.modality:
        return [f"The scan's modality is unknown; the model expects {card.modality}."]
    if volume.modality.upper() != card.modality.upper():
        message = (
            f"The model '{card.name}' is for {card.modality} scans, but this scan is "
            f"{volume.modality}."
        )
        if not allow_mismatch:
            raise ModelMismatchError(message + " Choose a model for this modality.")
        return [message + " Run anyway on request."]
    return []


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

    yield Progress(0.0, "loading model", card.name)
    clock = time.perf_counter()
    verify_onnx(card)
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

    def run_batch(batch: np.ndarray) -> np.ndarray:
        return session.run([output_name], {input_name: batch})[0]

    clock = time.perf_counter()
    if card.input.mode is InputMode.SLIDING_WINDOW:
        plan = WindowPlan(
            patch_zyx=card.input.shape_zyx,
            overlap=card.sliding_window.overlap if options.overlap is None else options.overlap,
            batch_size=options.batch_size or card.sliding_window.batch_size,
            sigma_scale=card.sliding_window.gaussian_sigma_scale,
        )
        scores = yield from sliding_window(
            model_input.array_zyx, _activated(run_batch, card), channels, plan, cancel, (0.05, 0.9)
        )
    else:
        yield Progress(0.05, "running model", "whole volume")
        scores = _activated(run_batch, card)(model_input.array_zyx[np.newaxis, np.newaxis])[0]
    timings["model"] = time.perf_counter() - clock
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
            volume, labels, probability, card.label_names, card.postprocessing.min_lesion_volume_mm3
        )
    timings["findings"] = time.perf_counter() - clock
    timings["total"] = time.perf_counter() - started
    yield Progress(1.0, "done", f"{len(findings)} finding(s)")
    segmentation = Segmentation(labels, card.label_names, card.label_colours, probability)
    return InferenceResult(segmentation, tuple(findings), card, report, timings, tuple(warnings))


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


def _labels_on_original_grid(
    scores: np.ndarray, model_input: ModelInput, card: ModelCard
) -> tuple[np.ndarray, np.ndarray]:
    """Threshold (sigmoid) or per-class comparison (softmax) one channel at a time.

    Only two float32 volumes on the scan's grid exist at once, whatever the class count.
    """
    if card.output.activation is Activation.SIGMOID:
        shape = model_input.original_grid.GetSize()[::-1]
        labels = np.zeros(shape, dtype=np.uint8)
        probability = np.zeros(shape, dtype=np.float32)
        for label in card.output.labels:
            channel = to_original_grid(scores[label.channel], model_input)
            labels[channel >= card.postprocessing.threshold] = label.value
            np.maximum(probability, channel, out=probability)
        return labels, probability
    best = to_original_grid(scores[0], model_input)  # background
    background = best.copy()
    labels = np.zeros(best.shape, dtype=np.uint8)
    for label in card.output.labels:
        channel = to_original_grid(scores[label.channel], model_input)
        better = channel > best
        labels[better] = label.value
        np.maximum(best, channel, out=best)
        del channel, better
    np.subtract(1.0, background, out=background)  # probability of any label
    return labels, background


__all__ = [
    "CancelToken",
    "InferenceOptions",
    "InferenceResult",
    "ModelLoadError",
    "ModelMismatchError",
    "run_inference",
    "run_to_end",
]
