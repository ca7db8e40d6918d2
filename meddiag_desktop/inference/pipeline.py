"""Volume + ModelCard -> Segmentation + Findings, as a generator of Progress.

The pipeline is a plain generator so the CLI draws a progress bar and the GUI runs it in a
worker thread with a Cancel button, from the same code. Its result is the generator's return
value; :func:`run_to_end` drives it when nobody needs the progress.

The route reads straight: an :class:`~meddiag_desktop.inference.plan.InferencePlan` made once
from the scan's geometry and the card is applied to the scan (resampled from its stored integers
straight to float32 in model space), the model runs (large tiles sized to a working-memory
budget for a fully convolutional model, :mod:`tiling`; else sliding windows or one call) on the
CPU runtime chosen by :mod:`cpu_runtime` or a GPU, the plan is undone once (only where the
output differs from background, straight into the uint8 label map and the float32 probability
map), and lesions are labelled inside their own boxes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

import numpy as np

from meddiag_desktop.domain import Finding, Progress, Segmentation, Volume
from meddiag_desktop.inference.anatomy import check_volume
from meddiag_desktop.inference.card import Activation, InputMode, ModelCard, Precision
from meddiag_desktop.inference.cpu_runtime import (
    CpuRequest,
    PrecisionError,
    RuntimeChoice,
    choose,
    onnxruntime_choice,
    release_memory,
    runtime_of,
)
from meddiag_desktop.inference.findings import extract_findings
from meddiag_desktop.inference.model_signature import PackageSignature, check_package
from meddiag_desktop.inference.plan import InferencePlan
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
    # The CPU runtime ("openvino", "onnxruntime") and precision ("float32", "bfloat16"); None:
    # the fastest this machine has among the precisions the card lists (cpu_runtime.choose).
    runtime: str | None = None
    precision: str | None = None
    allow_unvalidated_precision: bool = False  # validating a model at a new precision only


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
    runtime: RuntimeChoice | None = None  # the library and precision that ran the model


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
    """Scan -> plan -> model input -> model -> back on the scan's grid -> findings."""
    options = options or InferenceOptions()
    sessions = sessions or _DEFAULT_SESSIONS
    timings: dict[str, float] = {}
    started = time.perf_counter()
    warnings = check_modality(volume, card, options.allow_modality_mismatch)
    warnings += check_anatomy(volume, card, options.allow_anatomy_mismatch)
    cpu = _cpu_choice(card, options)

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
        card.onnx_path, card.sha256, provider_preference(options.provider), cpu
    )
    model = _Model(session, card, cancel)
    timings["load_model"] = time.perf_counter() - clock
    _check_cancel(cancel)

    yield Progress(0.02, "preparing scan", "resampling and normalising")
    clock = time.perf_counter()
    plan = InferencePlan.make(volume, card)
    model_input = plan.apply(volume)
    timings["preprocess"] = time.perf_counter() - clock
    _check_cancel(cancel)

    clock = time.perf_counter()
    scores, plan_text = yield from _model_stage(model, model_input, volume, card, options, cancel)
    del model_input
    release_memory(session)  # OpenVINO keeps a tile's working memory until told
    timings["model"] = time.perf_counter() - clock
    _check_cancel(cancel)
    # After the model stage: a runtime that failed during a call has fallen back by now.
    runtime = runtime_of(session) if report.used == "CPUExecutionProvider" else _gpu_choice(cpu)
    if not runtime.validated:
        warnings.append(
            f"The model ran in {runtime.precision.value}, a precision it was not validated in "
            "(for validation only)."
        )

    yield Progress(0.9, "mapping back", "onto the scan's grid")
    clock = time.perf_counter()
    labels, probability = plan.undo(scores)
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
        tuple(model.calls),
        signature,
        runtime,
    )


def _cpu_choice(card: ModelCard, options: InferenceOptions) -> RuntimeChoice:
    """The CPU runtime and precision for this run; a refused precision is the card's mismatch."""
    try:
        precision = Precision(options.precision) if options.precision else None
    except ValueError as exc:
        allowed = ", ".join(p.value for p in Precision)
        raise ModelMismatchError(f"unknown precision '{options.precision}' ({allowed})") from exc
    request = CpuRequest(options.runtime, precision, options.allow_unvalidated_precision)
    try:
        return choose(card, request)
    except PrecisionError as exc:
        raise ModelMismatchError(str(exc)) from exc


def _gpu_choice(cpu: RuntimeChoice) -> RuntimeChoice:
    """On a GPU onnxruntime runs the model in float32 (no card lists another GPU precision)."""
    if cpu.precision is Precision.FLOAT32:
        return onnxruntime_choice()
    return onnxruntime_choice((f"{cpu.precision.value} is a CPU option: float32 on the GPU",))


class _Model:
    """The model's calls, as the sliding window and the tiles make them; cancellable."""

    def __init__(self, session, card: ModelCard, cancel: CancelToken | None) -> None:
        self.session = session
        self.input_name, self.output_name = _io_names(session, card)
        self.calls: list[tuple[int, ...]] = []
        self.cancel = cancel
        self.stop = run_options()
        if cancel is not None:
            cancel.on_cancel(self.stop.cancel)  # stops a model call already running

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.calls.append(batch.shape)
        try:
            return self.session.run(
                [self.output_name], {self.input_name: batch}, self.stop.options
            )[0]
        except Exception:
            _check_cancel(self.cancel)  # terminated by the cancel token: say so, not "failed"
            raise


def _model_stage(
    model: _Model,
    model_input: np.ndarray,
    volume: Volume,
    card: ModelCard,
    options: InferenceOptions,
    cancel: CancelToken | None,
) -> Generator[Progress, None, tuple[np.ndarray, str]]:
    """(C, z, y, x) scores on the model's grid: large tiles, sliding windows or one call."""
    channels = _channel_count(card)
    run = _activated(model, card)
    if card.input.mode is not InputMode.SLIDING_WINDOW:
        yield Progress(0.05, "running model", "whole volume")
        return run(model_input[np.newaxis, np.newaxis])[0], f"whole volume {model_input.shape}"
    tiles = _tile_plan(volume, model_input.shape, card, options)
    if tiles is not None:
        scores = yield from tiled_inference(model_input, run, channels, tiles, cancel, (0.05, 0.9))
        return scores, tiles.describe()
    window = WindowPlan(
        patch_zyx=card.input.shape_zyx,
        overlap=card.sliding_window.overlap if options.overlap is None else options.overlap,
        batch_size=options.batch_size or card.sliding_window.batch_size,
        sigma_scale=card.sliding_window.gaussian_sigma_scale,
    )
    scores = yield from sliding_window(model_input, run, channels, window, cancel, (0.05, 0.9))
    return scores, f"windows of {window.patch_zyx}, overlap {window.overlap}"


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
    volume: Volume, shape_zyx: tuple[int, ...], card: ModelCard, options: InferenceOptions
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
        shape_zyx,
        window.max_tile_zyx,
        window.tile_margin,
        window.tile_multiple,
        max_voxels,
        card.input.shape_zyx,
    )


__all__ = [
    "CancelToken",
    "InferenceOptions",
    "InferenceResult",
    "ModelLoadError",
    "ModelMismatchError",
    "run_inference",
    "run_to_end",
]
